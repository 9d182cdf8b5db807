"""Audio detector artifacts: the face artifacts' format (detectors.artifacts: model.safetensors + manifest.json,
sha256, temperature, per-source validation metrics for the gate) with `"modality": "audio"` and an `audio` entry
(sample_rate, window_seconds). Loading checks the same things; every refusal is a one-line ArtifactError."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_save
from torch import nn

from detectors.artifacts import (FORMAT_VERSION, WEIGHTS_DTYPE, WEIGHTS_FILE,
                                 ArtifactError, Calibrated, Manifest, _atomic_write, _jsonable, _shape_problems, _stored_state_dict,
                                 default_models_dir, load_verified, write_manifest)
from detectors.audio_registry import AudioDetectorSpec, audio_detector_names, build_audio_model, get_audio_spec
from detectors.checksums import sha256_bytes


def save_audio_artifact(model: nn.Module, name: str, out_dir: str | Path, *, temperature: float = 1.0,
                        threshold: float = 0.5, training: dict[str, Any] | None = None,
                        metrics: dict[str, Any] | None = None, run_id: str | None = None,
                        dtype: str = WEIGHTS_DTYPE) -> Path:
    """Write `<out_dir>/<name>/` (weights checked against a model rebuilt from the manifest first)."""
    spec = get_audio_spec(name)
    kwargs = _jsonable(dict(getattr(model, "detector_kwargs", None) or {}))
    state = _stored_state_dict(model, dtype)
    with torch.device("meta"):
        reference = build_audio_model(name, **kwargs).state_dict()
    problem = _shape_problems(state, reference)
    if problem:
        raise ArtifactError(f"{name}: the model does not match {spec.architecture} built with {kwargs}: {problem}")
    run_id = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    data = safetensors_save(state, metadata={"name": name, "architecture": spec.architecture})
    manifest = Manifest(
        format_version=FORMAT_VERSION, name=name, architecture=spec.architecture, model_kwargs=kwargs,
        input_size=int(kwargs.get("n_mels", spec.n_mels)), mean=[0.0], std=[1.0],   # each window standardised
        temperature=float(temperature), threshold=float(threshold), weights_file=WEIGHTS_FILE,
        sha256=sha256_bytes(data), dtype=dtype, training=_jsonable(dict(training or {})),
        metrics=_jsonable(dict(metrics or {})), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        run_id=str(run_id), modality="audio",
        audio={"sample_rate": int(kwargs.get("sample_rate", spec.sample_rate)),
               "window_seconds": float(spec.window_seconds)})
    Manifest.from_dict(manifest.to_dict(), where=f"{name} manifest")
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / WEIGHTS_FILE, data)
    write_manifest(folder, manifest)
    return folder


@dataclass
class LoadedAudioDetector(Calibrated):
    """An audio detector ready for inference (eval, float32, CPU; read-only, so threads may share it)."""

    name: str
    spec: AudioDetectorSpec
    manifest: Manifest
    model: nn.Module
    folder: Path

    @property
    def sample_rate(self) -> int:
        return int(self.manifest.audio.get("sample_rate", self.spec.sample_rate))

    @property
    def window_seconds(self) -> float:
        return float(self.manifest.audio.get("window_seconds", self.spec.window_seconds))

    def logits(self, windows: np.ndarray | list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """(N, samples) float32 windows -> raw "fake" logits (N,)."""
        x = np.asarray(windows, dtype=np.float32).reshape(len(windows), -1)
        out = np.empty(len(x), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))
                out[start:start + len(batch)] = self.model(batch).reshape(-1).float().numpy()
        return out

    def predict(self, windows: np.ndarray | list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.calibrate(self.logits(windows, batch_size))


def load_audio_artifact(folder: str | Path, expected_name: str | None = None) -> LoadedAudioDetector:
    folder = Path(folder)
    manifest, spec, model = load_verified(folder, expected_name, "audio", get_audio_spec, build_audio_model)
    return LoadedAudioDetector(name=manifest.name, spec=spec, manifest=manifest, model=model, folder=folder)


def load_audio_detectors(models_dir: str | Path | None = None, names: Iterable[str] | None = None
                         ) -> tuple[dict[str, LoadedAudioDetector], dict[str, str]]:
    """The audio detectors `names` from `<models_dir>/<name>/`: (loaded, name -> why missing). By default the
    shipped ones (`AudioDetectorSpec.shipped`), and any other registered one whose folder is there."""
    models_dir = default_models_dir() if models_dir is None else Path(models_dir)
    loaded: dict[str, LoadedAudioDetector] = {}
    missing: dict[str, str] = {}
    if names is None:
        names = [n for n in audio_detector_names() if get_audio_spec(n).shipped or (models_dir / n).exists()]
    for name in list(dict.fromkeys(names)):
        folder = models_dir / name
        if name not in audio_detector_names():
            missing[name] = f"unknown audio detector {name!r}"
        elif not folder.exists():
            missing[name] = f"no artifact at {folder}; train one with python -m train.train_audio"
        else:
            try:
                loaded[name] = load_audio_artifact(folder, expected_name=name)
            except ArtifactError as exc:
                missing[name] = str(exc)
            except Exception as exc:   # noqa: BLE001 - a broken artifact must not take the analysis down
                missing[name] = " ".join(f"{name}: cannot load {folder}: {type(exc).__name__}: {exc}".split())[:300]
    return loaded, missing
