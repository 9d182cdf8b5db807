"""timm classifiers with a one-logit head, for the detectors built on a timm architecture."""
from __future__ import annotations

import timm
from torch import nn


def create_timm(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    """timm model with num_classes=1; with `pretrained` (an explicit option, online only) timm downloads ImageNet weights."""
    try:
        return timm.create_model(arch, pretrained=pretrained, num_classes=1, **kwargs)
    except (OSError, RuntimeError) as exc:
        if not pretrained:
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeError(f"cannot fetch ImageNet weights for {arch} from the timm hub (needs network): "
                           f"{first}") from exc
