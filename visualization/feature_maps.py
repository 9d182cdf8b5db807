"""Activation maps of a detector's intermediate layers, as a grid of small images.

A forward hook records the chosen layers for one face crop, under the model's lock and only for this thread;
the hooks are removed before the lock is released. Convolutional layers give (B, C, H, W). Transformer blocks
give tokens (B, N, C) (ViT-style, maybe with class/distillation tokens first) or channels-last grids
(B, H, W, C) (timm's Swin): the detector's `reshape_transform` turns them into (B, C, H, W), with shape rules as
the fallback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from .hooks import model_lock, resolve_layer, thread_bound
from .overlays import colorize

if TYPE_CHECKING:
    from detectors.artifacts import LoadedDetector


@dataclass
class FeatureMaps:
    layer: str
    maps: np.ndarray            # (C, H, W) float32, one image
    raw_shape: tuple[int, ...]  # the layer's output shape as recorded (batch included)
    layout: str                 # "BCHW", "BHWC" or "tokens"


@dataclass
class FeatureGrid:
    image: np.ndarray           # (rows*H + pad*(rows-1), cols*W + pad*(cols-1)) float32 in [0, 1]; NaN-free
    channels: list[int]         # which channels are shown, in grid order (strongest mean activation first)
    rows: int
    cols: int
    tile: tuple[int, int]       # (H, W) of one map


def _first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ValueError(f"layer output of type {type(output).__name__} is not a tensor")


def _tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, C) tokens -> (B, C, h, w), dropping leading extra tokens (class, distillation, registers)."""
    b, n, c = tokens.shape
    for extra in range(0, min(n, 9)):
        side = math.isqrt(n - extra)
        if side * side == n - extra and side > 0:
            return tokens[:, extra:, :].reshape(b, side, side, c).permute(0, 3, 1, 2)
    raise ValueError(f"cannot arrange {n} tokens on a square grid")


def to_channel_maps(activation: torch.Tensor, reshape_transform: Callable | None = None,
                    family: str = "cnn") -> tuple[torch.Tensor, str]:
    """Any recorded activation -> ((B, C, H, W), layout it came in).

    The detector's `reshape_transform` (registry contract: valid for the cam layer and every feature layer) is
    tried first; shape rules are the fallback for other layers."""
    a = activation.detach().float()
    layout = {2: "BC", 3: "tokens", 4: "BCHW"}.get(a.ndim, "?")
    if reshape_transform is not None:
        try:
            out = reshape_transform(a)
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                channels_last = a.ndim == 4 and out.shape[1] == a.shape[3] and out.shape[1] != a.shape[1]
                return out, "BHWC" if channels_last else layout
        except (RuntimeError, ValueError, IndexError):
            pass
    if a.ndim == 3:
        return _tokens_to_grid(a), "tokens"
    if a.ndim == 4:
        # Channels-last (timm Swin): H == W and the last dimension is not spatial.
        if family == "transformer" and a.shape[1] == a.shape[2] and a.shape[3] != a.shape[2]:
            return a.permute(0, 3, 1, 2), "BHWC"
        return a, "BCHW"
    if a.ndim == 2:  # pooled features (B, C): one pixel per channel
        return a[:, :, None, None], "BC"
    raise ValueError(f"activation of shape {tuple(a.shape)} cannot be shown as maps")


def capture_feature_maps(detector: "LoadedDetector", crop: np.ndarray, layers: list[str]) -> dict[str, FeatureMaps]:
    """One forward pass of `crop` (RGB uint8) recording each layer; hooks removed before returning."""
    model = detector.model
    spec = detector.spec
    modules = {name: resolve_layer(model, name) for name in layers}
    recorded: dict[str, torch.Tensor] = {}
    x = detector.preprocess([crop])
    handles = []
    with model_lock(model):
        try:
            for name, module in modules.items():
                def save(_module, _inputs, output, name=name):
                    recorded[name] = _first_tensor(output).detach().cpu()
                handles.append(module.register_forward_hook(thread_bound(save)))
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
    out: dict[str, FeatureMaps] = {}
    for name in layers:
        if name not in recorded:
            raise ValueError(f"layer {name!r} did not run in the forward pass")
        maps, layout = to_channel_maps(recorded[name], spec.reshape_transform, spec.family)
        out[name] = FeatureMaps(layer=name, maps=maps[0].numpy().astype(np.float32),
                                raw_shape=tuple(recorded[name].shape), layout=layout)
    return out


def feature_grid(maps: np.ndarray, max_maps: int = 16, cols: int | None = None, pad: int = 1) -> FeatureGrid:
    """The `max_maps` channels with the highest mean activation, each min-max scaled, tiled row by row."""
    if maps.ndim != 3:
        raise ValueError(f"feature_grid expects (C, H, W), got shape {maps.shape}")
    c, h, w = maps.shape
    k = max(1, min(int(max_maps), c))
    strength = np.nan_to_num(maps.reshape(c, -1).mean(axis=1), nan=-np.inf)
    channels = [int(i) for i in np.argsort(-strength, kind="stable")[:k]]
    cols = int(cols or math.ceil(math.sqrt(k)))
    rows = math.ceil(k / cols)
    grid = np.zeros((rows * h + pad * (rows - 1), cols * w + pad * (cols - 1)), dtype=np.float32)
    for slot, ch in enumerate(channels):
        m = np.nan_to_num(maps[ch].astype(np.float32))
        lo, hi = float(m.min()), float(m.max())
        m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        r, q = divmod(slot, cols)
        grid[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = m
    return FeatureGrid(image=grid, channels=channels, rows=rows, cols=cols, tile=(h, w))


def grid_picture(grid: FeatureGrid, min_side: int = 480) -> np.ndarray:
    """The grid coloured (viridis) and enlarged with nearest-neighbour so small maps stay crisp."""
    import cv2

    rgb = colorize(grid.image)
    th, tw = grid.tile
    pad_y = (rgb.shape[0] - grid.rows * th) // max(1, grid.rows - 1) if grid.rows > 1 else 0
    pad_x = (rgb.shape[1] - grid.cols * tw) // max(1, grid.cols - 1) if grid.cols > 1 else 0
    for r in range(1, grid.rows):  # white gutters between the maps
        rgb[r * (th + pad_y) - pad_y:r * (th + pad_y), :] = 255
    for q in range(1, grid.cols):
        rgb[:, q * (tw + pad_x) - pad_x:q * (tw + pad_x)] = 255
    for slot in range(len(grid.channels), grid.rows * grid.cols):  # empty tiles of the last row
        r, q = divmod(slot, grid.cols)
        rgb[r * (th + pad_y):r * (th + pad_y) + th, q * (tw + pad_x):q * (tw + pad_x) + tw] = 255
    h, w = rgb.shape[:2]
    factor = max(1, math.ceil(min_side / max(h, w)))
    return cv2.resize(rgb, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)
