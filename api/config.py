"""Settings of the HTTP API: where the models are, and every limit that keeps one server from running out
of memory. Defaults suit one small CPU machine; each field can be set by an environment variable
`DEEPFAKE_API_<FIELD>` (upper case); the models folder also reads `DEEPFAKE_MODELS_DIR` and the key
`DEEPFAKE_API_KEY`."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from analysis.batching import DEFAULT_MAX_CROPS
from detectors.artifacts import default_models_dir

ENV_PREFIX = "DEEPFAKE_API_"
ALIASES = {"models_dir": "DEEPFAKE_MODELS_DIR", "api_key": "DEEPFAKE_API_KEY"}   # shorter names also read


@dataclass
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    models_dir: str = ""                  # "" -> $DEEPFAKE_MODELS_DIR or converted_models/
    detectors: str | None = None          # comma-separated names to load; None: all
    api_key: str | None = None            # when set, every /v1 call needs header X-API-Key
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 40_000_000          # per image or video frame
    max_video_seconds: float = 600.0      # longer videos are refused
    max_video_frames: int = 54_000        # frames in the file (30 min at 30 fps)
    max_frames: int = 128                 # most frames one analysis may sample (the `frames` parameter)
    # analyses running at once: their face detections take turns, and their faces are scored together, one
    # batched pass per detector (analysis.batching), so a few at once raise throughput without oversubscribing
    max_concurrent: int = 4
    max_waiting: int = 64                 # requests waiting for a slot; one more gets 429 at once
    queue_timeout_s: float = 120.0        # a request waits at most this long for a slot, then 429
    batch_crops: int = DEFAULT_MAX_CROPS  # most face crops in one shared detector pass; 0: no merging
    retry_after_s: int = 5                # Retry-After header of a 429
    max_jobs: int = 64                    # jobs kept in memory (queued, running and finished)
    job_ttl_s: float = 3600.0             # finished jobs are forgotten after this
    temp_dir: str | None = None           # parent of the private upload folder; None: the system temp
    torch_threads: int | None = None      # torch intra-op threads; None: torch's default

    def __post_init__(self) -> None:
        if not self.models_dir:
            self.models_dir = str(default_models_dir())
        for name in ("max_upload_bytes", "max_pixels", "max_video_frames", "max_frames", "max_concurrent",
                     "max_jobs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_video_seconds", "queue_timeout_s", "job_ttl_s"):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_waiting < 0 or self.retry_after_s < 0 or self.batch_crops < 0:
            raise ValueError("max_waiting, retry_after_s and batch_crops cannot be negative")

    @property
    def detector_names(self) -> list[str] | None:
        if not self.detectors:
            return None
        return [d.strip() for d in self.detectors.split(",") if d.strip()] or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ApiConfig":
        """Defaults, then `DEEPFAKE_API_*` variables, then `overrides` (None values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if f.name in ALIASES:
                raw = raw or env.get(ALIASES[f.name])
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _convert(name: str, type_name: Any, raw: str) -> Any:
    text = str(type_name)
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    return raw
