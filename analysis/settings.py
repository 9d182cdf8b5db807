"""Settings of one analysis: what the sidebar, the CLI flags and the API parameters set."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class AnalysisSettings:
    strategy: str = "weighted"          # a name from analysis.ensemble.STRATEGIES
    threshold: float = 0.5              # probability at and above which a face is FAKE
    band: float = 0.1                   # |p - threshold| < band -> UNCERTAIN
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
