"""The audio detectors' registry, apart from the face detectors' (detectors.registry).

Keeping them apart is what keeps a voice model out of everything that iterates face detectors: the face Analyzer,
train/evaluate.py, the face model cards and ENSEMBLE.md, the Models page's face list and the face quality gate
all walk `detectors.registry.detector_names()`, which never lists an audio detector. Audio artifacts carry
`"modality": "audio"` in their manifest, and the face loader refuses them.

Every audio model's forward takes (B, samples) float32 waveforms at `sample_rate` in [-1, 1] (one window of
`window_seconds`) and returns (B, 1) logits for "fake".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from detectors import audio_models


@dataclass(frozen=True)
class AudioDetectorSpec:
    name: str                               # also the artifact folder: <models_dir>/<name>/
    architecture: str                       # recorded in manifests; an artifact must match it to load
    builder: Callable[..., nn.Module]       # builder(pretrained: bool = False, **kwargs) -> nn.Module
    sample_rate: int = 16_000
    window_seconds: float = 4.0
    n_mels: int = 64
    train_defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    imagenet_start: bool = False            # train.train_audio builds it with pretrained=True (offline weights)
    shipped: bool = True                    # the app expects its artifact; others load only when their folder exists

    def __post_init__(self) -> None:
        if not self.name.startswith("audio_"):
            raise ValueError(f"audio detector names start with 'audio_' (their folder names), not {self.name!r}")


_AUDIO_REGISTRY: dict[str, AudioDetectorSpec] = {}


def register_audio(spec: AudioDetectorSpec) -> AudioDetectorSpec:
    if spec.name in _AUDIO_REGISTRY:
        raise ValueError(f"audio detector {spec.name!r} is already registered")
    _AUDIO_REGISTRY[spec.name] = spec
    return spec


def audio_detector_names() -> list[str]:
    return list(_AUDIO_REGISTRY)


def get_audio_spec(name: str) -> AudioDetectorSpec:
    try:
        return _AUDIO_REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown audio detector {name!r}; known: {', '.join(_AUDIO_REGISTRY)}") from None


def build_audio_model(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build audio detector `name`; the model records `detector_name` and `detector_kwargs` (effective kwargs)."""
    spec = get_audio_spec(name)
    effective = {"sample_rate": spec.sample_rate, "n_mels": spec.n_mels, **kwargs}
    model = spec.builder(pretrained=pretrained, **effective)
    model.detector_name = name
    model.detector_kwargs = effective
    return model


register_audio(AudioDetectorSpec(
    name="audio_cnn",
    architecture=audio_models.AUDIO_CNN_ARCH,
    builder=audio_models.build_audio_cnn,
    train_defaults={"lr": 2e-3, "batch_size": 32, "epochs": 14},
    description="log-mel (64 bands, 25 ms / 10 ms) and a compact 7-layer CNN with mean and max pooling over time",
))

register_audio(AudioDetectorSpec(
    name="audio_lite0",
    architecture=audio_models.AUDIO_LITE0_ARCH,
    builder=audio_models.build_audio_lite0,
    train_defaults={"lr": 1e-3, "batch_size": 32},
    description="the same log-mel as a 3-channel image into the EfficientNet-Lite0 trunk started from ImageNet, "
                "mean and max pooling over time",
    imagenet_start=True,
    shipped=False,
))
