"""The audio analysis: decode (analysis.audio.decode), window and test for speech (analysis.audio.windows),
score the speech windows with every loaded audio detector, aggregate, and give a verdict.

`analyze_audio` makes the report of an audio file (kind "audio"); `audio_section` the `audio` section of a video
report, where "no audio track" and "no speech" are notes, never errors. Neither raises on bad input."""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analysis.audio.decode import AudioLimits, NoAudioTrack, load_audio
from analysis.audio.report import (NO_AUDIO_MODEL, NO_AUDIO_TRACK, NO_SPEECH, NOT_READ, SCORED, AudioReport,
                                   AudioResult, AudioWindowResult)
from analysis.audio.windows import make_windows
from analysis.ensemble import verdict_for
from analysis.errors import MediaError
from analysis.settings import DEFAULT_BAND, AnalysisSettings
from detectors.artifacts import default_models_dir
from detectors.audio_artifacts import LoadedAudioDetector, load_audio_detectors
from detectors.gate import GATE_FLOOR, gate_decision

Progress = Callable[[float, str], None]


@dataclass
class AudioModels:
    """The audio detectors of one models folder, loaded once, with their quality-gate decisions."""
    detectors: dict[str, LoadedAudioDetector] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    gate: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, models_dir: str | Path, floor: float = GATE_FLOOR) -> "AudioModels":
        loaded, missing = load_audio_detectors(models_dir)
        gate = {n: gate_decision(d.manifest.to_dict(), floor).to_dict() for n, d in loaded.items()}
        return cls(loaded, missing, gate)

    @property
    def passes_gate(self) -> bool:
        return bool(self.detectors) and all(g["votes"] for g in self.gate.values())

    def info(self) -> list[dict[str, Any]]:
        """One entry per audio detector (the Models page's audio list, `cli.py models`)."""
        out = []
        for name, d in self.detectors.items():
            m = d.manifest
            out.append({"name": name, "modality": "audio", "loaded": True, "architecture": m.architecture,
                        "temperature": m.temperature, "threshold": m.threshold, "sha256": m.sha256,
                        "created": m.created, "metrics": m.metrics, "gate": self.gate.get(name)})
        out += [{"name": n, "modality": "audio", "loaded": False, "error": e} for n, e in self.missing.items()]
        return out


_CACHE: dict[str, AudioModels] = {}
_CACHE_LOCK = threading.Lock()


def audio_models(models_dir: str | Path | None = None) -> AudioModels:
    """The audio detectors of `models_dir`, loaded once per process and folder (thread-safe)."""
    key = str(Path(models_dir or default_models_dir()).resolve())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = AudioModels.load(key)
        return _CACHE[key]


def aggregate_logits(logits: np.ndarray | list[float]) -> float:
    """AGGREGATION: one detector's logit for a whole track, the mean of its speech windows' logits. Training
    (train/train_audio.py) scores clips with this same function, so the temperature and the validation numbers
    in a manifest hold for the app's track probability."""
    return float(np.mean(np.asarray(logits, dtype=np.float64)))


def score_track(source: str | Path | bytes, models: AudioModels, limits: AudioLimits | None = None,
                label: str | None = None) -> AudioResult:
    """Decode, window, test and score; raises MediaError / NoAudioTrack for unreadable input (callers decide)."""
    limits = limits or AudioLimits()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    track = load_audio(source, limits, label=label)
    timings["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    windows = make_windows(track, limits)
    timings["windows"] = time.perf_counter() - t0
    result = AudioResult(metadata=track.metadata(), models_missing=dict(models.missing), gate=dict(models.gate),
                         passes_gate=models.passes_gate, models_used=list(models.detectors),
                         model_checksums={n: d.manifest.sha256 for n, d in models.detectors.items()})
    speech = [w for w in windows if w.speech]
    result.speech_share = round(len(speech) / len(windows), 4) if windows else 0.0
    result.windows = [AudioWindowResult(start=w.start, end=w.end, speech=w.speech, reason=w.reason,
                                        level_dbfs=w.level_dbfs) for w in windows]
    notes = list(track.notes)
    t0 = time.perf_counter()
    if not speech:
        result.status = NO_SPEECH
    elif not models.detectors:
        result.status = NO_AUDIO_MODEL
    else:
        batch = np.stack([w.samples for w in speech])
        logits = {n: d.logits(batch) for n, d in models.detectors.items()}
        scored = [r for r in result.windows if r.speech]
        for i, r in enumerate(scored):
            r.models = {n: round(float(models.detectors[n].calibrate(z[i:i + 1])[0]), 6) for n, z in logits.items()}
            r.probability = round(float(np.mean(list(r.models.values()))), 6)
        result.threshold = float(np.mean([d.threshold for d in models.detectors.values()]))
        result.band = DEFAULT_BAND
        track = [float(models.detectors[n].calibrate([aggregate_logits(z)])[0]) for n, z in logits.items()]
        result.probability = round(float(np.mean(track)), 6)
        result.verdict = verdict_for(result.probability, result.threshold, result.band)
    timings["score"] = time.perf_counter() - t0
    if result.status != SCORED:
        notes.append({NO_SPEECH: "no speech found in the sound track; the voice was not scored",
                      NO_AUDIO_MODEL: "no audio detector is installed; the voice was not scored"}[result.status])
    result.message = "; ".join(notes) or None
    result.timings = {k: round(v, 4) for k, v in timings.items()}
    return result


def analyze_audio(path: str | Path, models_dir: str | Path | None = None, settings: AnalysisSettings | None = None,
                  progress: Progress | None = None, *, name: str | None = None,
                  limits: AudioLimits | None = None) -> AudioReport:
    """The report of an audio file (kind "audio"); bad input gives a report with a one-line `error`."""
    label = name or str(path)
    settings = settings or AnalysisSettings()
    t0 = time.perf_counter()
    try:
        result = score_track(path, audio_models(models_dir), limits, label=Path(label).name)
    except MediaError as exc:
        return AudioReport(path=label, status=NOT_READ, error=str(exc), settings=settings.to_dict())
    report = AudioReport.from_result(result, path=label, sha256=_sha256(path), settings=settings.to_dict())
    report.timings["total"] = round(time.perf_counter() - t0, 4)
    if progress:
        progress(1.0, "done")
    return report


def audio_section(path: str | Path, models_dir: str | Path | None = None,
                  limits: AudioLimits | None = None) -> AudioResult:
    """A video's `audio` section: never raises; "no audio track" and unreadable sound are notes."""
    try:
        return score_track(path, audio_models(models_dir), limits)
    except NoAudioTrack:
        return AudioResult(status=NO_AUDIO_TRACK, message="no audio track")
    except MediaError as exc:
        return AudioResult(status=NOT_READ, message=f"the sound track could not be read: {exc}")


def _sha256(path: str | Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None
