"""Result dataclasses of the audio analysis: the voice of an audio file (`AudioReport`, kind "audio") or of a
video (`AudioResult`, the video report's `audio` section). `to_dict()` is JSON-safe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis import __version__
from analysis.report import json_safe, utc_now

# AudioResult.status values: only "scored" has a probability; the others are notes, never errors
SCORED, NO_AUDIO_TRACK, NO_SPEECH, NO_AUDIO_MODEL, NOT_READ = (
    "scored", "no audio track", "no speech", "no audio model", "not read")
AUDIO_VERDICT_NOTES = {
    NO_AUDIO_TRACK: "no audio track",
    NO_SPEECH: "no speech found in the sound track; the voice was not scored",
    NO_AUDIO_MODEL: "no audio detector is installed; the voice was not scored",
}
AGGREGATION = "calibrated mean of the speech windows' logits"


@dataclass
class AudioWindowResult:
    start: float                          # seconds in the track
    end: float
    speech: bool                          # passed the voice-activity test (analysis.audio.windows): scored
    probability: float | None = None      # calibrated fake probability (mean of the audio detectors), speech only
    models: dict[str, float] = field(default_factory=dict)
    reason: str | None = None             # why it was not scored
    level_dbfs: float | None = None


@dataclass
class AudioResult:
    status: str = SCORED                  # SCORED / NO_AUDIO_TRACK / NO_SPEECH / NO_AUDIO_MODEL / NOT_READ
    windows: list[AudioWindowResult] = field(default_factory=list)
    probability: float | None = None      # the voice's fake probability (AGGREGATION; mean over detectors)
    verdict: str | None = None            # FAKE / REAL / UNCERTAIN with the audio detector's threshold
    speech_share: float | None = None     # share of the windows that hold speech
    threshold: float | None = None
    band: float | None = None
    aggregation: str = AGGREGATION
    models_used: list[str] = field(default_factory=list)
    models_missing: dict[str, str] = field(default_factory=dict)
    model_checksums: dict[str, str] = field(default_factory=dict)
    gate: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> GateDecision.to_dict()
    passes_gate: bool = False             # every audio detector used passes the quality gate
    metadata: dict[str, Any] = field(default_factory=dict)   # duration, sample_rate, channels, codec, excerpts
    message: str | None = None            # notes: long file, damaged packets, why not scored
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self)

    @property
    def scored_windows(self) -> list[AudioWindowResult]:
        return [w for w in self.windows if w.probability is not None]


@dataclass
class AudioReport(AudioResult):
    path: str = ""
    kind: str = "audio"
    error: str | None = None              # the file cannot be analysed (one line)
    sha256: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    operating_point: dict[str, Any] = field(default_factory=dict)   # the faces' (Analyzer.record_decision)
    created: str = field(default_factory=utc_now)
    version: str = __version__

    @classmethod
    def from_result(cls, result: AudioResult, **values: Any) -> "AudioReport":
        fields_ = {k: getattr(result, k) for k in AudioResult.__dataclass_fields__}
        return cls(**fields_, **values)
