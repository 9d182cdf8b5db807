"""Which frames to analyse: evenly N, every k-th, or at a rate, inside an optional time range.

Indices refer to frames in presentation order; times are the verified timestamps from `decode.probe_video`,
so "by rate" and time ranges stay right on variable-frame-rate video.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis.errors import MediaError
from analysis.settings import VIDEO_RANGES


@dataclass
class VideoOptions:
    frames: int = 32                 # evenly spaced frames (the UI offers 10..300; any >= 1 works)
    every: int | None = None         # every k-th frame instead
    rate: float | None = None        # frames per second to sample instead
    start: float | None = None       # seconds
    end: float | None = None         # seconds (exclusive)
    max_frames: int = 300            # hard cap whatever the mode: longer plans are thinned evenly
    batch_frames: int = 8            # frames whose faces go through face detection and the detectors together
    keep_thumbnails: bool = True     # JPEG thumbnails and face crops for the dashboard (not in to_dict())
    thumb_side: int = 320            # longest side of a thumbnail
    crop_side: int = 160             # longest side of a kept face crop
    seek: bool = True                # seek across keyframes when that skips decoding

    def validate(self) -> "VideoOptions":
        """Raises ValueError (a caller's mistake, not bad media) for options that make no sense."""
        if self.every is not None and self.rate is not None:
            raise ValueError("choose one of every= and rate=, not both")
        for name, allowed in VIDEO_RANGES.items():   # frames, every (frames), rate (per second), start, end (s)
            value = getattr(self, name)
            if value is not None and not allowed.contains(value):
                raise ValueError(f"{name} must be {allowed.describe()}, got {value!r}")
        if self.start is not None and self.end is not None and float(self.end) <= float(self.start):
            raise ValueError(f"end ({self.end} s) must come after start ({self.start} s)")
        if int(self.max_frames) < 1 or int(self.batch_frames) < 1:
            raise ValueError("max_frames and batch_frames must be at least 1")
        if int(self.thumb_side) < 16 or int(self.crop_side) < 16:
            raise ValueError("thumb_side and crop_side must be at least 16 pixels")
        return self

    @property
    def mode(self) -> str:
        return "every" if self.every is not None else "rate" if self.rate is not None else "frames"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SamplePlan:
    indices: list[int]
    mode: str
    window: tuple[int, int]          # first and last frame index inside the time range
    capped_from: int | None = None   # how many frames the mode asked for before max_frames thinned them


def time_window(times: np.ndarray, start: float | None, end: float | None) -> tuple[int, int]:
    """First and last frame index with start <= time < end; MediaError when the range holds no frame."""
    n = len(times)
    if n == 0:
        raise MediaError("the video has no frames")
    lo = int(np.searchsorted(times, start, side="left")) if start is not None else 0
    hi = (int(np.searchsorted(times, end, side="left")) - 1) if end is not None else n - 1
    if lo >= n or hi < lo:
        duration = float(times[-1])
        span = f"{start or 0:g}–{'end' if end is None else f'{end:g}'} s"
        raise MediaError(f"the time range {span} holds no frame (the video's frames run from 0 to {duration:.2f} s)")
    return lo, hi


def _even(lo: int, hi: int, n: int) -> np.ndarray:
    count = hi - lo + 1
    if n >= count:
        return np.arange(lo, hi + 1)
    if n == 1:
        return np.array([(lo + hi) // 2])
    # the step is >= 1, so rounding keeps the indices distinct
    return np.round(np.linspace(lo, hi, n)).astype(np.int64)


def sample_indices(times: np.ndarray, options: VideoOptions) -> SamplePlan:
    """The frames to analyse, sorted and distinct."""
    options.validate()
    lo, hi = time_window(np.asarray(times, dtype=np.float64), options.start, options.end)
    if options.every is not None:
        idx = np.arange(lo, hi + 1, int(options.every))
    elif options.rate is not None:
        step = 1.0 / float(options.rate)
        t0, t1 = float(times[lo]), float(times[hi])
        targets = t0 + step * np.arange(int(np.floor((t1 - t0) / step + 1e-9)) + 1)
        # the frame on screen at each target time
        idx = np.searchsorted(times, targets + 1e-9, side="right") - 1
        idx = np.unique(np.clip(idx, lo, hi))
    else:
        idx = _even(lo, hi, int(options.frames))
    capped = None
    if len(idx) > options.max_frames:
        capped = int(len(idx))
        idx = idx[_even(0, len(idx) - 1, int(options.max_frames))]
    return SamplePlan(indices=[int(i) for i in idx], mode=options.mode, window=(lo, hi), capped_from=capped)
