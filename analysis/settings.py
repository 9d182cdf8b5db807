"""Settings of one analysis: what the sidebar, the CLI flags and the API parameters set (their public names and
help: analysis.options.OPTIONS).

`threshold` and `band` default to None: "the validated operating point of the loaded models"
(`<models_dir>/ensemble.json`, see analysis.operating_point), else DEFAULT_THRESHOLD / DEFAULT_BAND.
`Analyzer.resolve_settings` fills them in; explicit values are never overridden.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_THRESHOLD = 0.5   # the built-in threshold, when the models folder has no usable operating point
DEFAULT_BAND = 0.1        # the built-in uncertainty band, likewise
# how a video's overall verdict combines faces and voice (the functions and their meaning: analysis.audio.fusion)
FUSION_NAMES = ("auto", "faces", "either", "equal", "adaptive")
DEFAULT_FUSION = "auto"
DEFAULT_STRATEGY = "weighted"
# The names of analysis.ensemble.STRATEGIES, kept here because ensemble.py imports this module; ensemble.py
# checks at import that the two agree.
STRATEGY_NAMES: tuple[str, ...] = ("mean_probability", "mean_logit", "weighted", "majority", "confidence_weighted")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts. The checks below, the video options' and the HTTP API's parser use
    `contains` / `describe`; the API's OpenAPI document states `json_schema()`: one rule, everywhere."""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if not _is_number(value) or (self.integer and float(value) != int(value)):
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        if self.maximum is not None and (value >= self.maximum if self.exclusive_maximum else value > self.maximum):
            return False
        return True

    def describe(self) -> str:
        """The rule in words: "between 0 and 1", "at least 0 and below 0.5", "above 0"."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None and not (self.exclusive_minimum or self.exclusive_maximum):
            return f"between {_num(lo)} and {_num(hi)}"
        parts = []
        if lo is not None:
            parts.append(f"{'above' if self.exclusive_minimum else 'at least'} {_num(lo)}")
        if hi is not None:
            parts.append(f"{'below' if self.exclusive_maximum else 'at most'} {_num(hi)}")
        return " and ".join(parts) or ("an integer" if self.integer else "a number")

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (2020-12, as in OpenAPI 3.1) of the accepted values."""
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["exclusiveMaximum" if self.exclusive_maximum else "maximum"] = self.maximum
        return out


# The numeric settings' ranges (AnalysisSettings field -> Range). margin's cap bounds the crop's memory
# (side = box side * (1 + margin)).
RANGES: dict[str, Range] = {
    "threshold": Range(0.0, 1.0),
    "band": Range(0.0, 0.5, exclusive_maximum=True),
    "margin": Range(0.0, 2.0),
    "min_face_size": Range(1, integer=True),
    "max_faces": Range(1, integer=True),
    "max_pixels": Range(1, integer=True),
}
BOOLEANS = ("whole_image_fallback", "mirror")
# video.sampling.VideoOptions' sampling fields; `frames` is also capped by the options' (or the server's) max_frames.
VIDEO_RANGES: dict[str, Range] = {
    "frames": Range(1, integer=True),
    "every": Range(1, integer=True),
    "rate": Range(0.0, exclusive_minimum=True),
    "start": Range(0.0),
    "end": Range(0.0, exclusive_minimum=True),
}


@dataclass
class AnalysisSettings:
    strategy: str = DEFAULT_STRATEGY    # a name from analysis.ensemble.STRATEGIES
    threshold: float | None = None      # probability at and above which a face is FAKE; None: operating point
    band: float | None = None           # |p - threshold| < band -> UNCERTAIN; None: operating point
    detectors: list[str] | None = None  # None: every detector whose weights loaded
    weights: dict[str, float] | None = None  # per-detector weights for "weighted"; None: from manifests
    margin: float = 0.3                 # square crop side = longest box side * (1 + margin)
    min_face_size: int = 40             # pixels in the original image
    face_threshold: float = 0.9         # MTCNN probability below which a detection is dropped
    max_faces: int = 32                 # the most confident faces kept per image or frame
    whole_image_fallback: bool = False  # no face: score the whole image as one face
    mirror: bool = False                # each face also scored mirrored, the two logits averaged (Analyzer.score_crops)
    max_pixels: int = 100_000_000       # decompression-bomb limit
    detect_max_side: int = 1600         # images are downscaled to this for detection, cropped from the original
    fusion: str = DEFAULT_FUSION        # videos: faces and voice into the overall verdict (analysis.audio.fusion)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        """The first invalid value as one line, or None."""
        if self.strategy not in STRATEGY_NAMES:
            return f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGY_NAMES)}"
        if self.fusion not in FUSION_NAMES:
            return f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSION_NAMES)}"
        for name in BOOLEANS:
            if not isinstance(getattr(self, name), bool):
                return f"{name} must be true or false, got {getattr(self, name)!r}"
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("threshold", "band"):   # None: the operating point's
                continue
            if not allowed.contains(value):
                return f"{name} must be {allowed.describe()}, got {value!r}"
        return None

    @property
    def resolved(self) -> bool:
        """True when threshold and band are set (nothing is left for the operating point to fill)."""
        return self.threshold is not None and self.band is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "AnalysisSettings":
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)
