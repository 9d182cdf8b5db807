"""From per-face probabilities to per-frame, per-track and per-video ones.

The reference is the DFDC winner's (Seferbekov) "confident strategy": when many frames are confidently fake,
average only those (a face swap that shows in part of the frames is not diluted by the rest); when nearly all
are confidently real, average those; else the plain mean. The winner's thresholds are kept (0.8 / 0.2, more
than 1/2.5 of the frames fake, more than 90 % real); its absolute "more than 11 fakes" was for 32 frames, where
the share already demands 13: it becomes a floor of 2 so that 10-frame analyses can be confident too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class AggregationParams:
    fake_t: float = 0.8            # a frame is confidently fake at or above this
    real_t: float = 0.2            # ... confidently real below this
    fake_share: float = 1 / 2.5    # more than this share of confident fakes -> mean of those
    min_fake: int = 2              # ... and at least this many
    real_share: float = 0.9        # more than this share of confident reals -> mean of those
    top_share: float = 0.25        # "most suspicious part": mean of the top quarter of frames
    min_track_share: float = 0.1   # tracks on fewer analysed frames than this share (and < 3 frames)
    #                                do not decide the video: they are mostly false detections


@dataclass
class Summary:
    probability: float | None      # the aggregate the verdict uses
    method: str                    # "confident_fake" | "confident_real" | "mean" | "none"
    mean: float | None
    top_mean: float | None         # mean of the most suspicious `top_share` of frames
    max: float | None
    fake_share: float | None       # share of frames at or above the verdict threshold
    count: int

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 5)  # noqa: E731
        return {"probability": r(self.probability), "method": self.method, "mean": r(self.mean),
                "top_mean": r(self.top_mean), "max": r(self.max), "fake_share": r(self.fake_share),
                "count": self.count}


def confident_mean(probs: Sequence[float], params: AggregationParams | None = None) -> tuple[float | None, str]:
    p = params or AggregationParams()
    x = np.asarray([v for v in probs if v is not None], dtype=np.float64)
    if len(x) == 0:
        return None, "none"
    fakes = x >= p.fake_t
    if fakes.sum() > len(x) * p.fake_share and fakes.sum() >= p.min_fake:
        return float(x[fakes].mean()), "confident_fake"
    reals = x < p.real_t
    if reals.sum() > len(x) * p.real_share:
        return float(x[reals].mean()), "confident_real"
    return float(x.mean()), "mean"


def top_mean(probs: Sequence[float], share: float = 0.25) -> float | None:
    x = np.sort(np.asarray([v for v in probs if v is not None], dtype=np.float64))[::-1]
    if len(x) == 0:
        return None
    k = max(1, int(np.ceil(len(x) * share)))
    return float(x[:k].mean())


def summarize(probs: Sequence[float | None], threshold: float = 0.5,
              params: AggregationParams | None = None) -> Summary:
    p = params or AggregationParams()
    x = np.asarray([v for v in probs if v is not None], dtype=np.float64)
    if len(x) == 0:
        return Summary(None, "none", None, None, None, None, 0)
    value, method = confident_mean(x, p)
    return Summary(probability=value, method=method, mean=float(x.mean()), top_mean=top_mean(x, p.top_share),
                   max=float(x.max()), fake_share=float((x >= threshold).mean()), count=int(len(x)))


def frame_probability(face_probs: Sequence[float | None]) -> float | None:
    """A frame is as suspicious as its most suspicious face."""
    x = [v for v in face_probs if v is not None]
    return float(max(x)) if x else None


def mean_per_model(models: Sequence[dict[str, float]]) -> dict[str, float]:
    names = sorted({n for m in models for n in m})
    return {n: round(float(np.mean([m[n] for m in models if n in m])), 5) for n in names}


def decisive_tracks(track_frames: dict[int, int], analysed_frames: int,
                    params: AggregationParams | None = None) -> list[int]:
    """Tracks long enough to decide the video; all of them when none is."""
    p = params or AggregationParams()
    need = min(3, max(1, int(np.ceil(analysed_frames * p.min_track_share))))
    keep = [t for t, n in track_frames.items() if n >= need]
    return keep or list(track_frames)


def video_probability(track_probs: dict[int, float | None], decisive: Sequence[int]) -> tuple[float | None, int | None]:
    """The video is as suspicious as its most suspicious person (decisive track). Returns (probability, track)."""
    best, best_id = None, None
    for t in decisive:
        v = track_probs.get(t)
        if v is not None and (best is None or v > best):
            best, best_id = v, t
    return best, best_id
