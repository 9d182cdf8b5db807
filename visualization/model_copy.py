"""The private copy of a loaded detector's model that explanations run on.

Loaded models are shared by every dashboard session, API request and analysis thread for inference. Grad-CAM needs
hooks and gradients, so explanations never run on the shared model: each call deep-copies it and leaves whatever
it does to the copy, which nobody else sees. Copying only reads the shared model, as inference does.
"""
from __future__ import annotations

import copy

from torch import nn


def private_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` in eval mode with its parameters frozen (backward reaches activations only)."""
    work = copy.deepcopy(model)
    work.eval()
    work.requires_grad_(False)
    return work
