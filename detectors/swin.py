"""Swin-T detector: timm `swin_tiny_patch4_window7_224` with a one-logit head, at any input size whose stage grids
share a window size (ImageNet start from the timm hub)."""
from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformer

from detectors.contract import CamTarget, adopt, cam_target_at, nhwc_to_nchw
from detectors.registry import IMAGENET_MEAN, IMAGENET_STD, DetectorSpec, register
from detectors.timm_create import create_timm

SWIN_ARCH = "swin_tiny_patch4_window7_224"
SWIN_PATCH = 4
SWIN_STAGES = 4
SWIN_MAX_WINDOW = 7


class SwinDetector(SwinTransformer):
    """timm's Swin with the detector contract; timm computes channels-last, the contract's maps are NCHW."""

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output ("layers.0" ... ), already permuted to (B, C, H, W) by timm."""
        maps = super().forward_intermediates(x, intermediates_only=True)
        return {info["module"]: fmap for info, fmap in zip(self.feature_info, maps, strict=True)}

    def cam_target(self) -> CamTarget:
        # the normalised input of the last block's attention: channels-last tokens of the deepest grid
        last = len(self.layers) - 1
        return cam_target_at(self, f"layers.{last}.blocks.{len(self.layers[last].blocks) - 1}.norm1",
                             reshape=nhwc_to_nchw)


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


def build_swin(pretrained: bool = False, img_size: int = 224, window_size: int | None = None,
               **kwargs) -> SwinDetector:
    """Swin-T at `img_size` (strict: inputs must be that size), window chosen by swin_window_for unless given."""
    if window_size is None:
        window_size = swin_window_for(img_size)
    return adopt(create_timm(SWIN_ARCH, pretrained, img_size=img_size, window_size=window_size, **kwargs),
                 SwinDetector)


register(DetectorSpec(
    name="swin",
    architecture=f"timm/{SWIN_ARCH}",
    builder=build_swin,
    input_size=224,
    mean=IMAGENET_MEAN, std=IMAGENET_STD,
    family="transformer",
    train_defaults={"lr": 5e-4, "batch_size": 32, "epochs": 40, "train_size": 128},
    size_kwargs=swin_kwargs,
))
