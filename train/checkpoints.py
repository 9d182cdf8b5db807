"""Checkpoint I/O: what a training run writes (`last.pt`, `best.pt`) and what convert.py reads.

A checkpoint is a dict of plain types and tensors, loaded with weights_only=True (no pickled code runs)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict) -> None:
    """Written to a temporary file first, so a kill never leaves half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """One of our checkpoints: plain types only, loaded with weights_only=True (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "name" not in ckpt:
        raise ValueError(f"{path} is not a training checkpoint of this project")
    return ckpt


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's state dict (safe to save while training goes on)."""
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
