"""EfficientNet-B3 detector: timm `efficientnet_b3` with a one-logit head (ImageNet start from the timm hub)."""
from __future__ import annotations

import torch
from timm.models.efficientnet import EfficientNet

from detectors.contract import CamTarget, adopt, cam_target_at
from detectors.registry import IMAGENET_MEAN, IMAGENET_STD, DetectorSpec, register
from detectors.timm_create import create_timm

EFFICIENTNET_B3_ARCH = "efficientnet_b3"


class EfficientNetB3Detector(EfficientNet):
    """timm's EfficientNet with the detector contract; its list-returning forward_intermediates becomes the
    contract's named stages."""

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """timm's five feature levels (strides 2 to 32), named by their blocks ("blocks.0" ... "blocks.6")."""
        maps = super().forward_intermediates(x, intermediates_only=True)
        return {info["module"]: fmap for info, fmap in zip(self.feature_info, maps, strict=True)}

    def cam_target(self) -> CamTarget:
        return cam_target_at(self, "bn2")   # the head conv's normalised, activated output


def build_efficientnet_b3(pretrained: bool = False, **kwargs) -> EfficientNetB3Detector:
    return adopt(create_timm(EFFICIENTNET_B3_ARCH, pretrained, **kwargs), EfficientNetB3Detector)


register(DetectorSpec(
    name="efficientnet_b3",
    architecture=f"timm/{EFFICIENTNET_B3_ARCH}",
    builder=build_efficientnet_b3,
    input_size=300,
    mean=IMAGENET_MEAN, std=IMAGENET_STD,
    family="cnn",
    train_defaults={"lr": 1e-3, "batch_size": 32, "epochs": 30, "train_size": 128},
))
