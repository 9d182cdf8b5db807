"""Result dataclasses of the analysis core, serialisable with to_dict()."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from . import __version__
from .provenance import Provenance

FAKE, REAL, UNCERTAIN = "FAKE", "REAL", "UNCERTAIN"

# How a verdict reads for a person (dashboard badges, the HTML report).
HEADLINES = {FAKE: "LIKELY FAKE", REAL: "LIKELY REAL", UNCERTAIN: "UNCERTAIN", None: "NOT SCORED"}
VERDICT_EXPLANATIONS = {
    FAKE: "The detectors found traces typical of generated or face-swapped faces. This is a statistical signal, "
          "not proof: confirm it with other evidence (the source, the context, other copies).",
    REAL: "The detectors found no strong traces of manipulation. This does not prove the media is authentic: "
          "new manipulation methods, or ones they were not trained on, can escape them.",
    UNCERTAIN: "The score lies close to the decision threshold, inside the uncertainty band. Draw no conclusion "
               "from this result alone.",
    None: "No face could be scored, so there is no verdict.",
}
CAVEATS = ("Automatic detectors make mistakes in both directions, and they are least reliable on small, blurry or "
           "heavily compressed faces and on manipulation methods they have not seen. Use the result as one clue "
           "among others, never as proof.")


def utc_now() -> str:
    """Now in UTC, ISO 8601 to the second with a Z: "2025-06-01T12:00:00Z" (a report's `created`)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_stamp() -> dict[str, str]:
    """`created` and `version` for a report built as a plain dict (error records)."""
    return {"created": utc_now(), "version": __version__}


@dataclass
class FaceResult:
    box: list[float]                    # [x1, y1, x2, y2] in original pixels
    score: float                        # face detector probability
    models: dict[str, float]            # detector name -> calibrated fake probability
    probability: float | None           # ensemble fake probability
    verdict: str | None                 # FAKE / REAL / UNCERTAIN
    agreement: float | None = None      # 1 = the detectors give the same score, 0 = split 0 / 1 (ensemble.agreement)
    logits: dict[str, float] = field(default_factory=dict)
    landmarks: list[list[float]] | None = None
    size: int = 0                       # side of the face box in original pixels (longest side)
    votes: dict[str, int] = field(default_factory=dict)      # {"fake", "real", "abstain"}: each detector's verdict
    weights: dict[str, float] = field(default_factory=dict)  # each detector's share in `probability` (sums to 1)

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
    whole_image: bool = False           # no face was found and the whole picture was scored instead (`faces[0]`)
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    models_used: list[str] = field(default_factory=list)
    models_missing: dict[str, str] = field(default_factory=dict)   # name -> why
    models_not_voting: list[dict[str, str]] = field(default_factory=list)   # {"name", "reason"}: left out by the gate
    model_checksums: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)          # resolved: the threshold and band used
    operating_point: dict[str, Any] = field(default_factory=dict)   # where they came from (Analyzer.decision)
    timings: dict[str, float] = field(default_factory=dict)        # stage -> seconds
    quality: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None                            # what the file says of itself (no verdict)
    created: str = field(default_factory=utc_now)                   # when the analysis started (UTC)
    version: str = __version__                                      # of the app that made the report

    def to_dict(self) -> dict[str, Any]:
        # json_safe, not asdict: it leaves out fields marked json=False (provenance's private values)
        return json_safe(self)


# the report's note when the whole-picture fallback scored a picture without a face
WHOLE_IMAGE_NOTE = "no face found; the whole picture was scored instead (whole-picture fallback is on)"


def face_count_text(faces: int, whole_image: bool = False) -> str:
    """An image report's face count in words: "1 face", "3 faces", "0 faces (whole picture scored)" when the
    whole-picture fallback scored a picture without a face (its one entry in `faces` is no face)."""
    if whole_image:
        return "0 faces (whole picture scored)"
    return f"{faces} face{'s' if faces != 1 else ''}"


def join_notes(*notes: str | None) -> str | None:
    """The report's `message`: its non-empty notes joined by "; " (None when there is none)."""
    return "; ".join(n for n in notes if n) or None


def not_voting_text(entries: list[dict[str, str]] | None) -> str:
    """The detectors a report's gate left out, on one line: "swin (validation AUC below 0.75 on dfdc (0.501)); ..."."""
    return "; ".join(f"{e.get('name')} ({e.get('reason')})" if e.get("reason") else str(e.get("name"))
                     for e in entries or [])


def report_failed(report: Mapping[str, Any] | Any) -> bool:
    """An error with nothing analysed (a report or its JSON dict). A video that broke halfway keeps its sound
    frames and faces: that is a result, not a failure."""
    def get(key: str) -> Any:
        return report.get(key) if isinstance(report, Mapping) else getattr(report, key, None)
    return bool(get("error")) and not (get("faces") or get("frames"))


def json_safe(value: Any) -> Any:
    """Strict-JSON copy of reports, metrics and dataclasses: NaN / inf as null, numpy as Python, dataclass fields
    marked `metadata={"json": False}` (thumbnails, crops) left out, anything unknown as its str()."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in fields(value) if f.metadata.get("json", True)}
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bytes in a JSON field; mark the dataclass field json=False")
    return str(value)
