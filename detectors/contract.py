"""What every face detector model offers besides `forward` (timm's conventions), so that explanations ask the model
instead of naming its layers:

- `forward_features(x)` and `forward_head(features, pre_logits=False)`, with `forward(x) ==
  forward_head(forward_features(x))`;
- `forward_intermediates(x) -> dict[str, Tensor]`: 3 to 5 named stages, shallow to deep, every one (B, C, H, W)
  (tokens and channels-last grids are turned into maps by the model itself);
- `cam_target() -> CamTarget`: the layer(s) Grad-CAM explains and the reshape of their activations to
  (B, C, H, W), derived from the instance (depth, trunk and stage counts as built).

`detectors.registry.build_model` refuses a model without these methods.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

MIN_STAGES, MAX_STAGES = 3, 5
CONTRACT_METHODS = ("forward", "forward_features", "forward_head", "forward_intermediates", "cam_target")

Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CamTarget:
    """Where Grad-CAM looks: `layers` of the model (their outputs), and `reshape` turning each output into
    (B, C, H, W) (None when it already is). `name` says where, for captions."""
    name: str
    layers: tuple[nn.Module, ...]
    reshape: Reshape | None = None


@runtime_checkable
class DetectorModel(Protocol):
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]: ...

    def cam_target(self) -> CamTarget: ...


def missing_methods(model: Any) -> list[str]:
    """The contract's methods `model` lacks (empty for a detector model)."""
    return [m for m in CONTRACT_METHODS if not callable(getattr(model, m, None))]


def cam_target_at(model: nn.Module, name: str, reshape: Reshape | None = None) -> CamTarget:
    """The CamTarget of the submodule `name` of `model`, with a one-line error when there is none."""
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"layer {name!r} is not in {type(model).__name__}") from None
    return CamTarget(name=name, layers=(layer,), reshape=reshape)


def check_intermediates(stages: Mapping[str, torch.Tensor], batch: int,
                        where: str = "model") -> dict[str, torch.Tensor]:
    """`stages` as the contract promises them (3 to 5 named (batch, C, H, W) tensors), else a one-line ValueError."""
    if not isinstance(stages, Mapping) or not MIN_STAGES <= len(stages) <= MAX_STAGES:
        count = len(stages) if isinstance(stages, Mapping) else type(stages).__name__
        raise ValueError(f"{where}: forward_intermediates must give {MIN_STAGES} to {MAX_STAGES} named stages, "
                         f"not {count}")
    for name, tensor in stages.items():
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[0] != batch:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{where}: stage {name!r} is {shape}, not ({batch}, C, H, W)")
    return dict(stages)


def tokens_to_nchw(x: torch.Tensor, prefix_tokens: int = 0) -> torch.Tensor:
    """(B, prefix + H*W, C) tokens of a square grid -> (B, C, H, W), dropping `prefix_tokens` leading tokens
    (a class token)."""
    if x.ndim != 3:
        raise ValueError(f"expected (B, N, C) tokens, got shape {tuple(x.shape)}")
    x = x[:, prefix_tokens:]
    side = int(round(x.shape[1] ** 0.5))
    if side * side != x.shape[1]:
        raise ValueError(f"{x.shape[1]} tokens (after {prefix_tokens} prefix tokens) do not form a square grid")
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)


def drop_class_token(x: torch.Tensor) -> torch.Tensor:
    return tokens_to_nchw(x, prefix_tokens=1)


def nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    """Channels-last (B, H, W, C) activations (timm's Swin) -> (B, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"expected a (B, H, W, C) activation, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2)


M = TypeVar("M", bound=nn.Module)


def adopt(model: nn.Module, cls: type[M]) -> M:
    """Give `model` (built by timm) the methods of `cls`, a subclass of exactly its class.

    timm's builders hard-code the classes they instantiate; `cls` adds methods only (no __init__, no state), so
    the modules, the state dict and every computation stay those of the model timm built.
    """
    if type(model) not in cls.__bases__ or "__init__" in vars(cls):
        raise TypeError(f"{cls.__name__} does not extend {type(model).__name__} with methods only")
    model.__class__ = cls
    return model
