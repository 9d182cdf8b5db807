"""Activation maps of a detector's intermediate stages, as a grid of small images.

The stages are the model's own (`forward_intermediates`, detectors.contract): named, shallow to deep, each already
(B, C, H, W). One forward pass of one face crop on a private copy of the model (visualization.model_copy) gives
them all.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from detectors.contract import check_intermediates

from .model_copy import private_copy
from .overlays import colorize

if TYPE_CHECKING:
    from detectors.artifacts import LoadedDetector


@dataclass
class FeatureMaps:
    layer: str                  # the stage's name in the model's forward_intermediates
    maps: np.ndarray            # (C, H, W) float32, one image


@dataclass
class FeatureGrid:
    image: np.ndarray           # (rows*H + pad*(rows-1), cols*W + pad*(cols-1)) float32 in [0, 1]; NaN-free
    channels: list[int]         # which channels are shown, in grid order (strongest mean activation first)
    rows: int
    cols: int
    tile: tuple[int, int]       # (H, W) of one map


def capture_feature_maps(detector: "LoadedDetector", crop: np.ndarray,
                         layers: Sequence[str] | None = None) -> dict[str, FeatureMaps]:
    """The model's stages for `crop` (RGB uint8), shallow to deep; `layers` picks some of them (default: all)."""
    x = detector.preprocess([crop])
    work = private_copy(detector.model)
    with torch.inference_mode():
        stages = check_intermediates(work.forward_intermediates(x), batch=1, where=detector.name)
    if layers is not None:
        unknown = [name for name in layers if name not in stages]
        if unknown:
            raise ValueError(f"{detector.name} has no stage {', '.join(map(repr, unknown))}; "
                             f"its stages: {', '.join(stages)}")
        stages = {name: stages[name] for name in layers}
    return {name: FeatureMaps(layer=name, maps=fmap[0].float().numpy().astype(np.float32, copy=False))
            for name, fmap in stages.items()}


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
