"""Builders for the detectors that are plain timm classifiers with a one-logit head."""
from __future__ import annotations

import timm
import torch
from torch import nn

from detectors.xception_start import XCEPTION_ARCH, build_keras_xception

EFFICIENTNET_B3_ARCH = "efficientnet_b3"
SWIN_ARCH = "swin_tiny_patch4_window7_224"
SWIN_PATCH = 4
SWIN_STAGES = 4
SWIN_MAX_WINDOW = 7


def _create(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    """timm model with num_classes=1; with `pretrained` (an explicit option, online only) timm downloads ImageNet weights."""
    try:
        return timm.create_model(arch, pretrained=pretrained, num_classes=1, **kwargs)
    except (OSError, RuntimeError) as exc:
        if not pretrained:
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeError(f"cannot fetch ImageNet weights for {arch} from the timm hub (needs network): "
                           f"{first}") from exc


def build_xception(pretrained: bool = False, **kwargs) -> nn.Module:
    """legacy_xception computing as Keras's Xception; `pretrained` loads the offline Keras ImageNet weights."""
    return build_keras_xception(pretrained=pretrained, num_classes=1, **kwargs)


def build_efficientnet_b3(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create(EFFICIENTNET_B3_ARCH, pretrained, **kwargs)


def swin_stage_grids(input_size: int) -> list[int]:
    """Token grid side of each Swin stage, as timm computes it (patch embed, then halving with ceil)."""
    grid = -(-input_size // SWIN_PATCH)
    grids = [grid]
    for _ in range(SWIN_STAGES - 1):
        grid = -(-grid // 2)
        grids.append(grid)
    return grids


def swin_window_for(input_size: int) -> int:
    """Largest window (at most 7, at least 2) dividing every stage's grid: 224 -> 7, 160 -> 5, 128 -> 4, 64 -> 2."""
    grids = swin_stage_grids(input_size)
    for window in range(SWIN_MAX_WINDOW, 1, -1):
        if all(g % window == 0 for g in grids):
            return window
    raise ValueError(f"swin cannot use input size {input_size}: its stage grids {grids} share no window size "
                     f"from 2 to {SWIN_MAX_WINDOW}; use a multiple of 32 such as 64, 128, 160 or 224")


def swin_kwargs(input_size: int) -> dict:
    return {"img_size": int(input_size), "window_size": swin_window_for(input_size)}


def build_swin(pretrained: bool = False, img_size: int = 224, window_size: int | None = None, **kwargs) -> nn.Module:
    """Swin-T at `img_size` (strict: inputs must be that size), window chosen by swin_window_for unless given."""
    if window_size is None:
        window_size = swin_window_for(img_size)
    return _create(SWIN_ARCH, pretrained, img_size=img_size, window_size=window_size, **kwargs)


def nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    """timm Swin activations are channels-last (B, H, W, C); Grad-CAM and the feature viewer want (B, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"expected a (B, H, W, C) Swin activation, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2)
