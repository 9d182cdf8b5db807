"""Deepfake detectors: the registry of architectures, artifacts on disk, and loaded models ready for inference."""
from detectors.registry import (DetectorSpec, build_model, detector_names, get_spec, model_kwargs_for,
                                register)

__all__ = ["DetectorSpec", "build_model", "detector_names", "get_spec", "model_kwargs_for", "register"]
