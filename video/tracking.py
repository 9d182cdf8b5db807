"""Linking the faces of sampled frames into tracks, one per person, so that each person gets a verdict.

Sampled frames can be a second apart, so a face may move further than its own width between them: matching
uses IoU with the box predicted by the track's velocity, and falls back to the distance between landmarks
(or box centres) relative to the face size. The assignment per frame is optimal (Hungarian), so two faces
never join one track and two tracks never take one face.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

_INFEASIBLE = 1e6


@dataclass(frozen=True)
class TrackParams:
    iou_min: float = 0.3          # boxes overlapping this much are the same face
    max_distance: float = 1.5     # else: landmark / centre distance up to this share of the face size
    max_size_ratio: float = 1.8   # face sizes of one track differ at most this much between matches
    max_gap: int = 4              # a track ends after this many sampled frames without its face


@dataclass
class _Track:
    id: int
    boxes: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    landmarks: list[np.ndarray | None] = field(default_factory=list)
    last_pos: int = 0

    def predicted(self, time: float) -> np.ndarray:
        box = self.boxes[-1]
        if len(self.boxes) >= 2 and self.times[-1] > self.times[-2]:
            velocity = (self.boxes[-1] - self.boxes[-2]) / (self.times[-1] - self.times[-2])
            box = box + velocity * (time - self.times[-1])
        return box


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 1e-6))


def _cost(track: _Track, box: np.ndarray, landmarks: np.ndarray | None, time: float, p: TrackParams) -> float:
    pred = track.predicted(time)
    last = track.boxes[-1]
    ratio = _side(box) / _side(last)
    if ratio > p.max_size_ratio or ratio < 1 / p.max_size_ratio:
        return _INFEASIBLE
    overlap = max(iou(pred, box), iou(last, box))
    if overlap >= p.iou_min:
        return 1.0 - overlap
    size = (_side(box) + _side(last)) / 2
    shift = pred[:2] - last[:2]
    prev_lm = track.landmarks[-1]
    if landmarks is not None and prev_lm is not None and prev_lm.shape == landmarks.shape:
        distance = float(np.mean(np.linalg.norm(landmarks - (prev_lm + shift), axis=1))) / size
    else:
        centre = lambda b: np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])  # noqa: E731
        distance = float(np.linalg.norm(centre(box) - centre(pred))) / size
    return 1.0 + distance if distance <= p.max_distance else _INFEASIBLE


def link_tracks(boxes: Sequence[Sequence[Sequence[float]]], times: Sequence[float] | None = None,
                landmarks: Sequence[Sequence[Sequence[Sequence[float]] | None]] | None = None,
                params: TrackParams | None = None) -> list[list[int]]:
    """boxes[f][j] = [x1, y1, x2, y2] of face j in sampled frame f (frames in time order).
    Returns track ids shaped like `boxes`; ids count from 0 in order of first appearance."""
    p = params or TrackParams()
    times = list(times) if times is not None else list(range(len(boxes)))
    tracks: list[_Track] = []
    out: list[list[int]] = []
    for f, frame_boxes in enumerate(boxes):
        dets = [np.asarray(b, dtype=np.float64)[:4] for b in frame_boxes]
        lms = [None if landmarks is None or landmarks[f] is None or landmarks[f][j] is None
               else np.asarray(landmarks[f][j], dtype=np.float64) for j in range(len(dets))]
        live = [t for t in tracks if f - t.last_pos <= p.max_gap]
        ids = [-1] * len(dets)
        if live and dets:
            cost = np.array([[_cost(t, d, lm, times[f], p) for d, lm in zip(dets, lms)] for t in live])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < _INFEASIBLE:
                    ids[c] = live[r].id
        for j, det in enumerate(dets):
            if ids[j] < 0:
                tracks.append(_Track(id=len(tracks)))
                ids[j] = tracks[-1].id
            track = tracks[ids[j]]
            track.boxes.append(det)
            track.times.append(float(times[f]))
            track.landmarks.append(lms[j])
            track.last_pos = f
        out.append(ids)
    return out
