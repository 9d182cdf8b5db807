"""Face crop -> model input, shared by inference (LoadedDetector) and training so both see identical pixels."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch


def check_crop(crop: object, index: int = 0) -> np.ndarray:
    """Return `crop` if it is an HxWx3 uint8 RGB array, else raise a one-line ValueError."""
    if not isinstance(crop, np.ndarray):
        raise ValueError(f"crop {index} is a {type(crop).__name__}, not a numpy array")
    if crop.dtype != np.uint8:
        raise ValueError(f"crop {index} has dtype {crop.dtype}, expected uint8")
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"crop {index} has shape {crop.shape}, expected (H, W, 3) RGB")
    if crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"crop {index} is empty ({crop.shape[0]}x{crop.shape[1]})")
    return crop


def resize_rgb(crop: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: INTER_AREA when shrinking (no aliasing), INTER_LINEAR when enlarging."""
    h, w = crop.shape[:2]
    if (h, w) == (size, size):
        return crop
    interpolation = cv2.INTER_AREA if h * w >= size * size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interpolation)


def to_tensor_batch(crops: Sequence[np.ndarray], size: int, mean: Sequence[float],
                    std: Sequence[float]) -> torch.Tensor:
    """List of HxWx3 uint8 RGB crops -> (N, 3, size, size) float32 tensor, normalised with mean/std (0-1 scale)."""
    if size < 1:
        raise ValueError(f"input size must be positive, not {size}")
    batch = np.empty((len(crops), size, size, 3), dtype=np.float32)
    for i, crop in enumerate(crops):
        batch[i] = resize_rgb(check_crop(crop, i), size)
    batch *= 1.0 / 255.0
    batch -= np.asarray(mean, dtype=np.float32)
    batch /= np.asarray(std, dtype=np.float32)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
