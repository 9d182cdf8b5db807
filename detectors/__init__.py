"""Deepfake detectors: the registry of architectures, artifacts on disk, and loaded models ready for inference.

Importing anything from this package registers the five face detectors, each from its own module.
"""
# Registration order is the order the app, the reports and the model cards list the detectors: keep it (no sorting).
from detectors import xception  # noqa: F401, I001
from detectors import efficientnet_b3  # noqa: F401
from detectors import swin  # noqa: F401
from detectors import cross_attention  # noqa: F401
from detectors import cnn_transformer  # noqa: F401
from detectors.registry import (DetectorSpec, build_model, detector_names, get_spec, model_kwargs_for, register,
                                unregister)

__all__ = ["DetectorSpec", "build_model", "detector_names", "get_spec", "model_kwargs_for", "register", "unregister"]
