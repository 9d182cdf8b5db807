"""Aggregation arithmetic on hand-made numbers."""
from __future__ import annotations

import pytest

from video.aggregate import (AggregationParams, TrackFaces, confident_mean, decision_text, decisive_tracks,
                             frame_probability, importance_order, mean_per_model, summarize, top_mean,
                             track_importance, video_probability)


def test_many_confident_fakes_use_their_mean():
    probs = [0.9] * 5 + [0.95] * 5 + [0.1] * 10 + [0.5] * 2     # 10 of 22 >= 0.8: more than 22/2.5 = 8.8
    value, method = confident_mean(probs)
    assert method == "confident_fake" and value == pytest.approx(0.925)


def test_few_confident_fakes_fall_back_to_the_mean():
    probs = [0.9] * 8 + [0.1] * 14                                # 8 of 22 <= 8.8
    value, method = confident_mean(probs)
    assert method == "mean" and value == pytest.approx((0.9 * 8 + 0.1 * 14) / 22)


def test_nearly_all_confident_reals_use_their_mean():
    probs = [0.1] * 19 + [0.05] + [0.6]                           # 20 of 21 < 0.2: more than 90 %
    value, method = confident_mean(probs)
    assert method == "confident_real" and value == pytest.approx((0.1 * 19 + 0.05) / 20)


def test_a_single_confident_frame_is_not_enough():
    assert confident_mean([0.9]) == (pytest.approx(0.9), "mean")
    assert confident_mean([0.9, 0.85]) == (pytest.approx(0.875), "confident_fake")
    assert confident_mean([]) == (None, "none")


def test_summary_numbers():
    s = summarize([0.2, 0.4, 0.6, 0.8, None], threshold=0.5)
    assert s.count == 4 and s.mean == pytest.approx(0.5) and s.max == 0.8
    assert s.fake_share == pytest.approx(0.5) and s.top_mean == pytest.approx(0.8)   # top quarter of 4 = 1 frame
    assert s.method == "mean" and s.probability == pytest.approx(0.5)
    assert top_mean([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], share=0.25) == pytest.approx(0.75)
    assert summarize([]).probability is None


def test_frame_is_its_most_suspicious_face():
    assert frame_probability([0.2, 0.7, None]) == 0.7
    assert frame_probability([]) is None


def test_mean_per_model():
    assert mean_per_model([{"a": 0.2, "b": 0.4}, {"a": 0.6, "b": 0.8}]) == {"a": 0.4, "b": 0.6}


def test_video_is_its_most_suspicious_decisive_track():
    assert video_probability({0: 0.3, 1: 0.99, 2: 0.7}, [0, 2]) == (0.7, 2)
    assert video_probability({0: None}, [0]) == (None, None)


# A news anchor on all 16 frames of a 720p clip, a face on a poster behind him on 3, a blurred passer-by on 1.
ANALYSED, FRAME_SIDE = 16, 720
ANCHOR = TrackFaces(sides=[200] * 16, scores=[0.999] * 16, sharpness=[180.0] * 16)
POSTER = TrackFaces(sides=[70, 72, 71], scores=[0.97, 0.98, 0.97], sharpness=[90.0] * 3)
PASSER_BY = TrackFaces(sides=[26], scores=[0.91], sharpness=[4.0])


def test_the_anchor_is_major_the_poster_and_the_passer_by_are_minor():
    imp = track_importance({0: POSTER, 1: ANCHOR, 2: PASSER_BY}, ANALYSED, FRAME_SIDE)
    anchor, poster, passer = imp[1], imp[0], imp[2]
    assert anchor.major and anchor.minor_reason is None and anchor.large
    assert anchor.frames == 16 and anchor.share == 1.0 and anchor.relative_side == pytest.approx(200 / 720, abs=1e-4)
    assert not poster.major and poster.brief and not poster.tiny and not poster.uncertain
    assert poster.minor_reason == "seen in only 3 of 16 frames"
    assert not passer.major and passer.brief and passer.tiny and passer.uncertain
    assert "small face (26 px" in passer.minor_reason and "uncertain face detection (mean score 0.91)" in passer.minor_reason
    assert anchor.score > poster.score > passer.score and importance_order(imp) == [1, 0, 2]
    assert decisive_tracks(imp) == [1]
    # the anchor at 0.15 decides; the poster at 0.9 and the passer-by at 0.88 do not
    assert video_probability({0: 0.9, 1: 0.15, 2: 0.88}, decisive_tracks(imp)) == (0.15, 1)


def test_decision_sentence_names_the_decisive_person_and_the_minor_ones():
    # ids as the engine numbers them: by importance, 0 = Person 1
    imp = track_importance({0: ANCHOR, 1: POSTER, 2: PASSER_BY}, ANALYSED, FRAME_SIDE)
    assert decision_text(imp, 0) == ("Person 1 (seen in 16 of 16 frames, large face) decides the video; "
                                     "person 2 (3 frames) and person 3 (1 frame, small face, uncertain detection) "
                                     "are minor and do not decide it.")
    assert decision_text(imp, None) is None
    alone = track_importance({0: ANCHOR}, ANALYSED, FRAME_SIDE)
    assert decision_text(alone, 0) == "Person 1 (seen in 16 of 16 frames, large face) decides the video: the only person found."


def test_only_minor_tracks_let_the_most_suspicious_minor_one_decide():
    crowd = TrackFaces(sides=[26] * 16, scores=[0.99] * 16)                 # tiny, on every frame
    unsure = TrackFaces(sides=[120] * 10, scores=[0.92] * 10)               # uncertain detections
    imp = track_importance({0: crowd, 1: unsure, 2: PASSER_BY}, ANALYSED, FRAME_SIDE)
    assert not any(i.major for i in imp.values())
    assert imp[0].tiny and imp[1].uncertain and not imp[1].tiny
    assert sorted(decisive_tracks(imp)) == [0, 1, 2]
    assert video_probability({0: 0.3, 1: 0.8, 2: 0.6}, decisive_tracks(imp)) == (0.8, 1)
    assert decision_text(imp, 1) == (
        "No person is seen long, large or clearly enough to decide the video on their own, so the most suspicious "
        "one does: person 2 (seen in 10 of 16 frames, large face, uncertain detection); person 1 (16 frames, small "
        "face) and person 3 (1 frame, small face, uncertain detection) are less suspicious.")


def test_two_main_people_both_count():
    other = TrackFaces(sides=[150] * 12, scores=[0.998] * 12, sharpness=[150.0] * 12)
    imp = track_importance({0: ANCHOR, 1: other, 2: POSTER}, ANALYSED, FRAME_SIDE)
    assert imp[0].major and imp[1].major and not imp[2].major
    assert sorted(decisive_tracks(imp)) == [0, 1]
    assert video_probability({0: 0.15, 1: 0.7, 2: 0.95}, decisive_tracks(imp)) == (0.7, 1)
    assert decision_text(imp, 1) == ("Person 2 (seen in 12 of 16 frames, large face) decides the video; person 1 "
                                     "(16 frames, large face) counts too but looks less suspicious; person 3 "
                                     "(3 frames) is minor and does not decide it.")


def test_minor_rules_follow_the_parameters():
    small = TrackFaces(sides=[30] * 16, scores=[0.99] * 16)          # 30 px: under 40 px
    assert track_importance({0: small}, 16, 720)[0].tiny
    assert not track_importance({0: small}, 16, 720, AggregationParams(tiny_face_px=20, tiny_face=0.01))[0].tiny
    few = TrackFaces(sides=[100] * 3, scores=[0.99] * 3)
    assert not track_importance({0: few}, 16, 720)[0].brief         # brief only beside a main person
    assert track_importance({0: few, 1: ANCHOR}, 16, 720)[0].brief
    no_sharpness = track_importance({0: TrackFaces(sides=[200] * 16, scores=[0.999] * 16)}, 16, 720)[0]
    assert no_sharpness.sharpness is None and no_sharpness.score == pytest.approx((0.4 + 0.3 + 0.15 * 0.99) / 0.85, abs=1e-3)
    with pytest.raises(ValueError):
        track_importance({0: TrackFaces(sides=[], scores=[])}, 16, 720)
