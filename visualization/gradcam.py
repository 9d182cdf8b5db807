"""Grad-CAM heatmaps (pytorch-grad-cam) for the five detectors, safe on models shared by every session.

Each detector returns one "fake" logit, so the target is `BinaryClassifierOutputTarget`: category 1 explains
what pushes the logit up (evidence for FAKE), category 0 what pushes it down (evidence for REAL).
Transformers give tokens at their cam layer; the registry's `reshape_transform` turns them into a (B, C, H, W)
grid (timm's Swin is channels-last and is permuted there too).

Safety on a shared model: the model's lock is held for the whole pass, parameters are frozen (so backward only
reaches the input and no `.grad` is ever written on the shared weights), the hooks record only this thread and
are released by the CAM's context manager before the lock is let go; the model stays in eval mode.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget
from torch import nn

from .hooks import frozen_parameters, model_lock, resolve_layer
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


class _ThreadBoundActivations(ActivationsAndGradients):
    """pytorch-grad-cam's recorder, deaf to forward passes of other threads through the same shared model."""

    def __init__(self, model, target_layers, reshape_transform, detach=True):
        self._owner = threading.get_ident()
        super().__init__(model, target_layers, reshape_transform, detach)

    def _mine(self) -> bool:
        return threading.get_ident() == self._owner

    def save_activation(self, module, input, output):
        if self._mine():
            super().save_activation(module, input, output)

    def save_gradient(self, module, input, output):
        if self._mine():
            super().save_gradient(module, input, output)


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


def compute_cam(model: nn.Module, input_tensor: torch.Tensor, layer: str,
                reshape_transform: Callable | None = None, target: str = "fake",
                method: str = "Grad-CAM") -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of the fake logit for a (B, 3, S, S) batch: ((B, S, S) maps in [0, 1], (B,) logits).

    Holds the model's lock, leaves no hook, no gradient and no changed flag behind."""
    if target not in TARGETS:
        raise ValueError(f"unknown Grad-CAM target {target!r}; choose one of {', '.join(TARGETS)}")
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    target_layer = resolve_layer(model, layer)
    x = input_tensor.detach().clone().float().requires_grad_(True)
    targets = [BinaryClassifierOutputTarget(TARGETS[target]) for _ in range(x.shape[0])]
    maps = outputs = None
    with model_lock(model), frozen_parameters(model), torch.inference_mode(False), torch.enable_grad():
        cam = CAM_METHODS[method](model=model, target_layers=[target_layer], reshape_transform=reshape_transform)
        try:
            # Swap in the thread-bound recorder before any forward pass runs.
            cam.activations_and_grads.release()
            cam.activations_and_grads = _ThreadBoundActivations(model, [target_layer], reshape_transform)
            with cam:  # __exit__ releases the hooks (and would swallow an IndexError: checked below)
                maps = cam(input_tensor=x, targets=targets)
                outputs = cam.outputs.detach().reshape(x.shape[0], -1)[:, 0].float().numpy().copy()
        finally:
            cam.activations_and_grads.release()
            cam.outputs = None
        model.eval()
    if maps is None or outputs is None:
        raise RuntimeError(f"Grad-CAM failed at layer {layer!r} (no activations or gradients were recorded)")
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0)
    return np.clip(maps, 0.0, 1.0), outputs


def explain_crop(detector: "LoadedDetector", crop: np.ndarray, target: str = "fake", method: str = "Grad-CAM",
                 layer: str | None = None, alpha: float = 0.45) -> CamResult:
    """Grad-CAM of one loaded detector on one face crop (RGB uint8), with the heatmap blended over the crop."""
    spec = detector.spec
    layer = layer or spec.cam_layer
    started = time.perf_counter()
    x = detector.preprocess([crop])
    maps, logits = compute_cam(detector.model, x, layer, spec.reshape_transform, target, method)
    probability = None
    try:
        probability = float(np.asarray(detector.calibrate(logits)).reshape(-1)[0])
    except Exception:  # noqa: BLE001 - the probability is a caption, not the result
        probability = None
    return CamResult(name=detector.name, cam=maps[0], overlay=cam_overlay(crop, maps[0], alpha=alpha),
                     logit=float(logits[0]), probability=probability, target=target, method=method,
                     layer=layer, seconds=round(time.perf_counter() - started, 4))


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
