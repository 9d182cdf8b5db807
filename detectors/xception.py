"""Xception detector: timm `legacy_xception` computing as Keras's Xception (detectors/xception_start.py: TF-SAME
pools, BatchNorm eps 1e-3, the offline Keras ImageNet start), with a one-logit head."""
from __future__ import annotations

import torch
from timm.models.xception import Xception

from detectors.contract import CamTarget, adopt, cam_target_at
from detectors.registry import DetectorSpec, register
from detectors.xception_start import MEAN, STD, XCEPTION_ARCH, build_keras_xception


class XceptionDetector(Xception):
    """timm's legacy_xception with the detector contract; its list-returning forward_intermediates becomes the
    contract's named stages."""

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """timm's five feature levels (strides 2 to 32): the stem ("act2"), the ReLU-activated outputs of the
        blocks that end strides 4, 8 and 16 ("block1", "block2", "block11": the middle flow's end) and "act4"."""
        maps = super().forward_intermediates(x, intermediates_only=True)
        names = ["act2", *(f"block{end}" for end in self.feature_ends[1:-1]), "act4"]
        return dict(zip(names, maps, strict=True))

    def cam_target(self) -> CamTarget:
        return cam_target_at(self, "act4")


def build_xception(pretrained: bool = False, **kwargs) -> XceptionDetector:
    """`pretrained` loads the offline Keras ImageNet weights."""
    return adopt(build_keras_xception(pretrained=pretrained, num_classes=1, **kwargs), XceptionDetector)


register(DetectorSpec(
    name="xception",
    architecture=f"timm/{XCEPTION_ARCH}-keras",   # TF-SAME pools, BN eps 1e-3
    builder=build_xception,
    input_size=299,
    mean=MEAN, std=STD,   # timm's legacy_xception.tf_in1k normalisation, Keras's preprocess_input
    family="cnn",
    train_defaults={"lr": 1e-3, "batch_size": 32, "epochs": 30, "train_size": 128},
    offline_start=True,
))
