"""Grad-CAM heatmaps (pytorch-grad-cam) for the face detectors, on a private copy of each model.

Each detector returns one "fake" logit, so the target is `BinaryClassifierOutputTarget`: category 1 explains
what pushes the logit up (evidence for FAKE), category 0 what pushes it down (evidence for REAL).
Where to look comes from the model (`cam_target()`, detectors.contract): its layer(s) and the reshape of their
activations to (B, C, H, W). The CAM's hooks and gradients live on a copy of the model made for the call
(visualization.model_copy), so the shared inference model never carries a hook, a gradient or a changed flag.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget
from torch import nn

from .model_copy import private_copy
from .overlays import cam_overlay

if TYPE_CHECKING:
    from detectors.artifacts import LoadedDetector

CAM_METHODS: dict[str, type] = {
    "Grad-CAM": GradCAM,
    "Grad-CAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGrad-CAM": XGradCAM,
    "LayerCAM": LayerCAM,
}
TARGETS = {"fake": 1, "real": 0}


@dataclass
class CamMaps:
    maps: np.ndarray                # (B, S, S) float32 in [0, 1] at the input's size
    logits: np.ndarray              # (B,) the model's fake logits from the same pass
    layer: str                      # where the model's cam_target looks


@dataclass
class CamResult:
    name: str
    cam: np.ndarray                 # (S, S) float32 in [0, 1] at the model's input size
    overlay: np.ndarray             # the crop (RGB uint8, its own size) with the heatmap blended in
    logit: float                    # the model's raw fake logit for this crop (from the same pass)
    probability: float | None       # calibrated with the manifest temperature, when known
    target: str                     # "fake" or "real"
    method: str
    layer: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def compute_cam(model: nn.Module, input_tensor: torch.Tensor, target: str = "fake",
                method: str = "Grad-CAM") -> CamMaps:
    """CAM of the fake logit for a (B, 3, S, S) batch at the model's `cam_target()`, computed on a private copy of
    `model` (which is only read)."""
    if target not in TARGETS:
        raise ValueError(f"unknown Grad-CAM target {target!r}; choose one of {', '.join(TARGETS)}")
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    work = private_copy(model)
    where = work.cam_target()
    targets = [BinaryClassifierOutputTarget(TARGETS[target]) for _ in range(input_tensor.shape[0])]
    maps = outputs = None
    with torch.inference_mode(False), torch.enable_grad():
        # the parameters are frozen, so the input carries the graph that gradients flow back through
        x = input_tensor.detach().clone().float().requires_grad_(True)
        cam = CAM_METHODS[method](model=work, target_layers=list(where.layers), reshape_transform=where.reshape)
        try:
            maps = cam(input_tensor=x, targets=targets)
            outputs = cam.outputs.detach().reshape(x.shape[0], -1)[:, 0].float().numpy().copy()
        except IndexError:   # pytorch-grad-cam indexes the activations and gradients it recorded: there were none
            maps = None
        finally:
            cam.activations_and_grads.release()
    if maps is None or outputs is None:
        raise RuntimeError(f"Grad-CAM failed at layer {where.name!r} (no activations or gradients were recorded)")
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0)
    return CamMaps(maps=np.clip(maps, 0.0, 1.0), logits=outputs, layer=where.name)


def explain_crop(detector: "LoadedDetector", crop: np.ndarray, target: str = "fake", method: str = "Grad-CAM",
                 alpha: float = 0.45) -> CamResult:
    """Grad-CAM of one loaded detector on one face crop (RGB uint8), with the heatmap blended over the crop."""
    started = time.perf_counter()
    found = compute_cam(detector.model, detector.preprocess([crop]), target, method)
    probability = None
    try:
        probability = float(np.asarray(detector.calibrate(found.logits)).reshape(-1)[0])
    except Exception:  # noqa: BLE001 - the probability is a caption, not the result
        probability = None
    return CamResult(name=detector.name, cam=found.maps[0], overlay=cam_overlay(crop, found.maps[0], alpha=alpha),
                     logit=float(found.logits[0]), probability=probability, target=target, method=method,
                     layer=found.layer, seconds=round(time.perf_counter() - started, 4))


def explain_all(detectors: dict[str, "LoadedDetector"], crop: np.ndarray, target: str = "fake",
                method: str = "Grad-CAM", alpha: float = 0.45) -> tuple[dict[str, CamResult], dict[str, str]]:
    """Grad-CAM for every given detector: (results, name -> one-line error for those that failed)."""
    results: dict[str, CamResult] = {}
    errors: dict[str, str] = {}
    for name, detector in detectors.items():
        try:
            results[name] = explain_crop(detector, crop, target=target, method=method, alpha=alpha)
        except (RuntimeError, ValueError) as exc:
            errors[name] = " ".join(str(exc).split())[:300]
    return results, errors
