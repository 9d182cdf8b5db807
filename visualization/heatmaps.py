"""Grad-CAM where people look: each face's heatmap pasted back into its box on the whole photo or video frame.

A detector only sees the square crop around a face (analysis.faces.square_crop: the box's longest side times
1 + margin, centred on the box). Its Grad-CAM covers that square; here it is mapped back onto the picture and
blended inside the face box only, so everything outside the faces stays exactly as it was. The ensemble's heatmap
is the mean of the detectors' heatmaps weighted by each detector's share in that face's result (the `weights` of
the face: the same shares the ensemble's strategy gives them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import cv2
import numpy as np

from .gradcam import explain_crop
from .overlays import cam_overlay

if TYPE_CHECKING:
    from detectors.artifacts import LoadedDetector

CAM_SIDE = 128    # heatmaps are kept at this side: detectors' maps are 7-14 cells upsampled, and this keeps caches small


@dataclass
class FaceCams:
    """The Grad-CAM of one face crop by each detector that could explain it."""
    cams: dict[str, np.ndarray] = field(default_factory=dict)    # detector -> (CAM_SIDE, CAM_SIDE) float32 in [0, 1]
    errors: dict[str, str] = field(default_factory=dict)         # detector -> one-line reason it failed


def face_cams(detectors: Mapping[str, "LoadedDetector"], crop: np.ndarray, names: Sequence[str],
              target: str = "fake", method: str = "Grad-CAM") -> FaceCams:
    """Grad-CAM of the face crop (RGB uint8, the square crop the detectors saw) for each of `names`."""
    out = FaceCams()
    for name in names:
        if name not in detectors:
            out.errors[name] = "not loaded"
            continue
        try:
            cam = explain_crop(detectors[name], crop, target=target, method=method).cam
        except (RuntimeError, ValueError) as exc:
            out.errors[name] = " ".join(str(exc).split())[:300]
            continue
        out.cams[name] = cv2.resize(np.asarray(cam, dtype=np.float32), (CAM_SIDE, CAM_SIDE),
                                    interpolation=cv2.INTER_LINEAR)
    return out


def weighted_cam(cams: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray | None:
    """The weighted mean of the detectors' heatmaps (weights renormalised over the detectors that have one; equal
    when none of them has a positive weight); None without any heatmap."""
    names = [n for n in cams if cams[n] is not None]
    if not names:
        return None
    side = max(int(cams[n].shape[0]) for n in names)
    maps = [np.asarray(cams[n], dtype=np.float32) for n in names]
    maps = [m if m.shape[0] == side else cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR) for m in maps]
    w = np.array([max(float(weights.get(n, 0.0)), 0.0) for n in names], dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(names), 1.0 / len(names))
    return np.clip(sum(float(wi) * m for wi, m in zip(w, maps)), 0.0, 1.0).astype(np.float32)


def _box_region(shape: tuple[int, int], box: Sequence[float]) -> tuple[int, int, int, int] | None:
    """The box as integer pixel bounds (x1, y1, x2, y2) inside an image of `shape` (h, w); None when outside."""
    h, w = shape
    x1, y1 = max(0, int(np.floor(float(box[0])))), max(0, int(np.floor(float(box[1]))))
    x2, y2 = min(w, int(np.ceil(float(box[2])))), min(h, int(np.ceil(float(box[3]))))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def paste_cam(shape: tuple[int, int], box: Sequence[float], cam: np.ndarray,
              margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A heatmap of the square crop around `box` (margin as in analysis.faces.square_crop) placed in an image of
    `shape` (h, w): (map (h, w) float32, mask (h, w) bool of the face box, where the map holds the heatmap)."""
    h, w = shape
    heat = np.zeros((h, w), dtype=np.float32)
    mask = np.zeros((h, w), dtype=bool)
    region = _box_region(shape, box)
    if region is None:
        return heat, mask
    bx1, by1, bx2, by2 = (float(v) for v in box)
    side = max(bx2 - bx1, by2 - by1) * (1.0 + float(margin))
    left, top = (bx1 + bx2) / 2.0 - side / 2.0, (by1 + by2) / 2.0 - side / 2.0
    x1, y1, x2, y2 = region
    # sample the square's heatmap at each box pixel's centre
    cam = np.asarray(cam, dtype=np.float32)
    s = cam.shape[0]
    xs = ((np.arange(x1, x2) + 0.5 - left) / side * s - 0.5).astype(np.float32)
    ys = ((np.arange(y1, y2) + 0.5 - top) / side * s - 0.5).astype(np.float32)
    map_x, map_y = np.meshgrid(xs, ys)
    heat[y1:y2, x1:x2] = cv2.remap(cam, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask[y1:y2, x1:x2] = True
    return heat, mask


def heatmap_overlay(rgb: np.ndarray, boxes: Sequence[Sequence[float]], cams: Sequence[np.ndarray | None],
                    margin: float, alpha: float = 0.45) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8) with each face's heatmap blended inside its box (boxes in `rgb`'s pixels,
    one heatmap per box, None for a face without one); pixels outside every box are unchanged. Where boxes
    overlap, the later face's heatmap is on top."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"heatmap_overlay expects an HxWx3 RGB image, got shape {rgb.shape}")
    if len(boxes) != len(cams):
        raise ValueError(f"{len(boxes)} boxes but {len(cams)} heatmaps")
    out = np.array(rgb, dtype=np.uint8, copy=True)
    for box, cam in zip(boxes, cams):
        if cam is None:
            continue
        heat, mask = paste_cam(rgb.shape[:2], box, cam, margin)
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out[y1:y2, x1:x2] = cam_overlay(rgb[y1:y2, x1:x2], heat[y1:y2, x1:x2], alpha=alpha)
    return out
