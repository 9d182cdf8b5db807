"""Linking faces across sampled frames into one track per person."""
from __future__ import annotations

from video.tracking import TrackParams, iou, link_tracks

import numpy as np


def box(x, y, s=100):
    return [x, y, x + s, y + s]


def test_iou():
    assert iou(np.array(box(0, 0)), np.array(box(0, 0))) == 1.0
    assert iou(np.array(box(0, 0)), np.array(box(50, 0))) == 50 * 100 / (2 * 100 * 100 - 50 * 100)
    assert iou(np.array(box(0, 0)), np.array(box(200, 0))) == 0.0


def test_two_people_moving_apart_keep_their_ids_even_when_listed_in_any_order():
    frames = [[box(0, 0), box(400, 300)],
              [box(400 - 40, 300), box(40, 0)],       # detector order swapped
              [box(80, 0), box(400 - 80, 300)]]
    assert link_tracks(frames) == [[0, 1], [1, 0], [0, 1]]


def test_fast_motion_beyond_overlap_is_followed_by_velocity():
    # 140 px per sampled frame on a 100 px face: no overlap between frames; from the 3rd frame on the
    # predicted box lands on the face
    frames = [[box(140 * i, 50)] for i in range(6)]
    assert link_tracks(frames, times=[i * 1.0 for i in range(6)]) == [[0]] * 6


def test_crossing_paths_are_kept_apart_by_prediction():
    # A moves right, B moves left on the same row; they pass each other between frames 2 and 3
    a = [box(x, 0) for x in (0, 90, 180, 270, 360)]
    b = [box(x, 0) for x in (360, 270, 180 + 5, 90, 0)]
    frames = [[a[i], b[i]] for i in range(5)]
    frames[2] = [a[2]]                               # at the crossing the detector sees one face only
    ids = link_tracks(frames, times=list(range(5)))
    assert ids[0] == [0, 1] and ids[3] == [0, 1] and ids[4] == [0, 1]


def test_a_jump_beyond_max_distance_is_a_new_face():
    assert link_tracks([[box(0, 0)], [box(160, 0)]]) == [[0], [1]]


def test_new_face_far_away_starts_a_track_and_gaps_are_bridged():
    frames = [[box(0, 0)], [], [box(5, 0)], [box(5, 0), box(600, 400)]]
    assert link_tracks(frames) == [[0], [], [0], [0, 1]]


def test_a_track_ends_after_max_gap():
    frames = [[box(0, 0)], [], [], [box(0, 0)]]
    assert link_tracks(frames, params=TrackParams(max_gap=1)) == [[0], [], [], [1]]


def test_a_face_twice_the_size_is_someone_else():
    frames = [[box(0, 0, 100)], [box(0, 0, 250)]]
    assert link_tracks(frames) == [[0], [1]]


def test_landmarks_decide_when_boxes_do_not_overlap():
    lm = lambda x, y: [[x + 30, y + 40], [x + 70, y + 40], [x + 50, y + 60], [x + 35, y + 80], [x + 65, y + 80]]  # noqa
    frames = [[box(0, 0)], [box(75, 0)]]             # IoU 0.14 < 0.3, landmark shift 75 px = 0.75 face
    assert link_tracks(frames, landmarks=[[lm(0, 0)], [lm(75, 0)]]) == [[0], [0]]
    assert link_tracks(frames, landmarks=[[lm(0, 0)], [lm(75, 0)]],
                       params=TrackParams(max_distance=0.5)) == [[0], [1]]
