"""Settings of one analysis: what the sidebar, the CLI flags and the API parameters set.

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
DEFAULT_STRATEGY = "weighted"
# The names of analysis.ensemble.STRATEGIES, kept here because ensemble.py imports this module; ensemble.py
# checks at import that the two agree.
STRATEGY_NAMES: tuple[str, ...] = ("mean_probability", "mean_logit", "weighted", "majority", "confidence_weighted")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    max_pixels: int = 100_000_000       # decompression-bomb limit
    detect_max_side: int = 1600         # images are downscaled to this for detection, cropped from the original
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        """The first invalid value as one line, or None."""
        if self.strategy not in STRATEGY_NAMES:
            return f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGY_NAMES)}"
        if self.threshold is not None and not (_is_number(self.threshold) and 0.0 <= self.threshold <= 1.0):
            return f"threshold must be between 0 and 1, got {self.threshold!r}"
        if self.band is not None and not (_is_number(self.band) and 0.0 <= self.band < 0.5):
            return f"band must be at least 0 and below 0.5, got {self.band!r}"
        if not (_is_number(self.margin) and self.margin >= 0.0):
            return f"margin must be at least 0, got {self.margin!r}"
        if not (_is_number(self.min_face_size) and self.min_face_size >= 1):
            return f"min_face_size must be at least 1 pixel, got {self.min_face_size!r}"
        if not (_is_number(self.max_faces) and self.max_faces >= 1):
            return f"max_faces must be at least 1, got {self.max_faces!r}"
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
