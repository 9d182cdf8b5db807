"""How a video's overall verdict combines its faces and its voice (selectable; documented here, in one place).

  * `faces`    — faces only; the voice is shown beside them but does not count.
  * `equal`    — the mean of the faces' and the voice's probabilities (whichever exist).
  * `adaptive` — a weighted mean, each side weighted by its confidence |2p - 1| (at least MIN_CONFIDENCE), so a
                 side that is sure counts more than one that hesitates near 0.5.
  * `either`   — the more suspicious side decides (the larger probability): a video is manipulated when its
                 faces or its voice are, and a real voice never vouches for a swapped face (DFDC swaps keep the
                 actor's real voice) nor real faces for a cloned voice.
  * `auto`     — the default: `either` when the audio detector passes its quality gate (detectors.gate, on
                 its manifest's per-source validation AUCs), else `faces`.
A side that is missing (no face scored; no audio track, no speech, no audio model) leaves the other alone;
under `faces` a video without a scored face has no overall verdict even when its voice was scored.
The fused probability gets its verdict from the faces' threshold and band (the report's settings).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from analysis.ensemble import verdict_for
from analysis.settings import DEFAULT_FUSION, FUSION_NAMES

MIN_CONFIDENCE = 0.05


def _faces(faces: float | None, voice: float | None) -> dict[str, float]:
    return {"faces": 1.0} if faces is not None else {}


def _equal(faces: float | None, voice: float | None) -> dict[str, float]:
    present = {k: 1.0 for k, v in (("faces", faces), ("voice", voice)) if v is not None}
    return {k: 1.0 / len(present) for k in present}


def _adaptive(faces: float | None, voice: float | None) -> dict[str, float]:
    raw = {k: max(MIN_CONFIDENCE, abs(2 * v - 1)) for k, v in (("faces", faces), ("voice", voice)) if v is not None}
    total = sum(raw.values())
    return {k: w / total for k, w in raw.items()}


def _either(faces: float | None, voice: float | None) -> dict[str, float]:
    present = {k: v for k, v in (("faces", faces), ("voice", voice)) if v is not None}
    return {max(present, key=present.__getitem__): 1.0} if present else {}


FUSIONS: dict[str, Callable[[float | None, float | None], dict[str, float]]] = {
    "faces": _faces, "either": _either, "equal": _equal, "adaptive": _adaptive}
assert set(FUSION_NAMES) == {"auto", *FUSIONS}, "analysis.settings.FUSION_NAMES and FUSIONS disagree"
__all__ = ["DEFAULT_FUSION", "FUSIONS", "FUSION_MEANING", "FUSION_NAMES", "FusionResult", "fuse"]
FUSION_MEANING = {
    "auto": "either when the audio detector passes its quality gate, else faces only",
    "faces": "faces only (the voice is shown, not counted)",
    "either": "the more suspicious of faces and voice decides",
    "equal": "the mean of faces and voice",
    "adaptive": "faces and voice weighted by how confident each is",
}


@dataclass
class FusionResult:
    mode: str                              # as asked ("auto", "faces", "either", "equal", "adaptive")
    applied: str                           # what ran ("auto" resolves to "faces" or "either")
    probability: float | None
    verdict: str | None
    faces_probability: float | None
    voice_probability: float | None
    weights: dict[str, float] = field(default_factory=dict)   # "faces" / "voice" -> share in `probability`
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fuse(faces: float | None, voice: float | None, mode: str, voice_passes_gate: bool, threshold: float,
         band: float) -> FusionResult:
    if mode not in FUSION_NAMES:
        raise ValueError(f"unknown fusion {mode!r}; choose one of {', '.join(FUSION_NAMES)}")
    applied = ("either" if voice_passes_gate else "faces") if mode == "auto" else mode
    weights = FUSIONS[applied](faces, voice)
    values = {"faces": faces, "voice": voice}
    p = sum(w * float(values[k]) for k, w in weights.items()) if weights else None
    note = None
    if mode == "auto" and not voice_passes_gate and voice is not None:
        note = "the voice is shown but not counted: the audio detector does not pass its quality gate"
    elif applied == "faces" and faces is None and voice is not None:
        note = "no face was scored; under faces-only fusion the voice alone gives no overall verdict"
    return FusionResult(mode=mode, applied=applied, probability=None if p is None else round(p, 6),
                        verdict=verdict_for(p, threshold, band) if p is not None else None,
                        faces_probability=faces, voice_probability=voice,
                        weights={k: round(w, 4) for k, w in weights.items()}, note=note)
