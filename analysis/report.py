"""Result dataclasses of the analysis core, serialisable with to_dict()."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

FAKE, REAL, UNCERTAIN = "FAKE", "REAL", "UNCERTAIN"


@dataclass
class FaceResult:
    box: list[float]                    # [x1, y1, x2, y2] in original pixels
    score: float                        # face detector probability
    models: dict[str, float]            # detector name -> calibrated fake probability
    probability: float | None           # ensemble fake probability
    verdict: str | None                 # FAKE / REAL / UNCERTAIN
    agreement: float | None = None      # 1 = all detectors on the same side of the threshold, with similar scores
    logits: dict[str, float] = field(default_factory=dict)
    landmarks: list[list[float]] | None = None
    size: int = 0                       # side of the face box in original pixels (longest side)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImageReport:
    path: str
    kind: str = "image"
    faces: list[FaceResult] = field(default_factory=list)
    probability: float | None = None    # of the most suspicious face
    verdict: str | None = None
    error: str | None = None
    message: str | None = None          # non-error note, e.g. "no face found"
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    models_used: list[str] = field(default_factory=list)
    models_missing: dict[str, str] = field(default_factory=dict)   # name -> why
    model_checksums: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)        # stage -> seconds
    quality: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_safe(value: Any) -> Any:
    """JSON-ready copy: NaN / inf as null, anything unknown as its str() (like `cli.py analyze --json`)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    try:
        return json_safe(json.loads(json.dumps(value, default=str)))
    except (TypeError, ValueError):
        return str(value)
