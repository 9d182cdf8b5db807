"""The ensemble's operating point: the threshold and uncertainty band chosen on validation scores.

`train/evaluate.py --out-operating-point converted_models/ensemble.json` writes it; the app reads it with
`load_operating_point(models_dir)`. The file is validated strictly: a bad one raises `OperatingPointError` with a
one-line message, a missing one gives None (the app's own defaults apply).

    {"strategy": "weighted", "threshold": 0.62, "band": 0.1, "max_fpr": 0.05,
     "val": {"fpr": 0.048, "tpr": 0.61, "uncertain_real": 0.2, "uncertain_fake": 0.15, "n_real": 800, "n_fake": 700},
     "detectors": ["xception", "swin"], "mirror": true, "created": "2025-01-01T12:00:00"}

`mirror`: whether the validation faces were scored with their mirror image too (AnalysisSettings.mirror); a file
without it was measured without.

A face is FAKE when its ensemble probability p >= threshold + band, REAL when p <= threshold - band, else
UNCERTAIN (analysis.ensemble.verdict_for), so at most `max_fpr` of the validation reals were called FAKE.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .ensemble import STRATEGIES

FILE_NAME = "ensemble.json"
_VAL_RATES = ("fpr", "tpr", "uncertain_real", "uncertain_fake")
_VAL_COUNTS = ("n_real", "n_fake")
_KEYS = ("strategy", "threshold", "band", "max_fpr", "val", "detectors", "created")
_OPTIONAL_KEYS = ("mirror",)


class OperatingPointError(ValueError):
    """An operating-point file that cannot be used; the message is one line."""


@dataclass
class ValidationRates:
    """What the operating point gave on the validation split it was chosen on."""
    fpr: float               # share of real faces called FAKE
    tpr: float               # share of fake faces called FAKE
    uncertain_real: float    # share of real faces called UNCERTAIN
    uncertain_fake: float    # share of fake faces called UNCERTAIN
    n_real: int
    n_fake: int


@dataclass
class OperatingPoint:
    strategy: str            # the ensemble strategy the scores came from (analysis.ensemble.STRATEGIES)
    threshold: float         # AnalysisSettings.threshold
    band: float              # AnalysisSettings.band
    max_fpr: float           # the target: at most this share of validation reals called FAKE
    val: ValidationRates
    detectors: list[str] = field(default_factory=list)   # the detectors whose ensemble was measured
    created: str = ""
    mirror: bool = False     # faces scored with their mirror image too (AnalysisSettings.mirror)

    def __post_init__(self) -> None:
        if isinstance(self.val, dict):
            self.val = _rates(self.val, "operating point")
        problem = _problem(self)
        if problem:
            raise OperatingPointError(f"operating point: {problem}")
        self.threshold, self.band, self.max_fpr = float(self.threshold), float(self.band), float(self.max_fpr)
        self.detectors = list(self.detectors)

    def settings(self) -> dict[str, Any]:
        """The AnalysisSettings fields this operating point sets: `AnalysisSettings(**op.settings())`."""
        return {"strategy": self.strategy, "threshold": self.threshold, "band": self.band}

    def matches(self, detectors: list[str] | None) -> bool:
        """True when it was measured on exactly these detectors (order aside)."""
        return detectors is not None and sorted(detectors) == sorted(self.detectors)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        """Writes the JSON file atomically (a folder gets `ensemble.json` inside it)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rates(data: Any, where: str) -> ValidationRates:
    if not isinstance(data, dict):
        raise OperatingPointError(f"{where}: 'val' must be an object with {', '.join(_VAL_RATES + _VAL_COUNTS)}")
    missing = [k for k in _VAL_RATES + _VAL_COUNTS if k not in data]
    if missing:
        raise OperatingPointError(f"{where}: 'val' lacks {', '.join(missing)}")
    unknown = sorted(set(data) - set(_VAL_RATES + _VAL_COUNTS))
    if unknown:
        raise OperatingPointError(f"{where}: unknown key(s) in 'val': {', '.join(unknown)}")
    for k in _VAL_RATES:
        if not _number(data[k]) or not 0.0 <= data[k] <= 1.0:
            raise OperatingPointError(f"{where}: val.{k} must be a share between 0 and 1, got {data[k]!r}")
    for k in _VAL_COUNTS:
        if not isinstance(data[k], int) or isinstance(data[k], bool) or data[k] < 0:
            raise OperatingPointError(f"{where}: val.{k} must be a count (integer >= 0), got {data[k]!r}")
    return ValidationRates(**{k: float(data[k]) for k in _VAL_RATES}, **{k: int(data[k]) for k in _VAL_COUNTS})


def _problem(op: OperatingPoint) -> str | None:
    if not isinstance(op.strategy, str) or op.strategy not in STRATEGIES:
        return f"unknown strategy {op.strategy!r}; choose one of {', '.join(STRATEGIES)}"
    if not _number(op.threshold) or not 0.0 < op.threshold < 1.0:
        return f"threshold must be between 0 and 1 (exclusive), got {op.threshold!r}"
    if not _number(op.band) or not 0.0 <= op.band < 0.5:
        return f"band must be at least 0 and below 0.5, got {op.band!r}"
    if not _number(op.max_fpr) or not 0.0 < op.max_fpr < 1.0:
        return f"max_fpr must be between 0 and 1 (exclusive), got {op.max_fpr!r}"
    if not isinstance(op.detectors, list) or not all(isinstance(d, str) and d for d in op.detectors):
        return "detectors must be a list of detector names"
    if not isinstance(op.mirror, bool):
        return f"mirror must be true or false, got {op.mirror!r}"
    if not isinstance(op.created, str):
        return f"created must be a string, got {op.created!r}"
    return None


def read_operating_point(path: str | Path) -> OperatingPoint:
    """The operating point in a JSON file; OperatingPointError (one line) when it is missing or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OperatingPointError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OperatingPointError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperatingPointError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise OperatingPointError(f"{path}: expected a JSON object with {', '.join(_KEYS)}")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise OperatingPointError(f"{path}: missing key(s): {', '.join(missing)}")
    unknown = sorted(set(data) - set(_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise OperatingPointError(f"{path}: unknown key(s): {', '.join(unknown)}")
    val = _rates(data["val"], str(path))
    try:
        return OperatingPoint(strategy=data["strategy"], threshold=data["threshold"], band=data["band"],
                              max_fpr=data["max_fpr"], val=val, detectors=data["detectors"],
                              created=data["created"], mirror=data.get("mirror", False))
    except OperatingPointError as exc:
        raise OperatingPointError(str(exc).replace("operating point:", f"{path}:", 1)) from None


def load_operating_point(models_dir: str | Path) -> OperatingPoint | None:
    """`<models_dir>/ensemble.json` validated, or None when there is none. Raises OperatingPointError (one line)
    for a file that is there but bad: a broken operating point must not silently fall back to defaults."""
    path = Path(models_dir) / FILE_NAME
    if not path.exists():
        return None
    return read_operating_point(path)
