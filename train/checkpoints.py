"""Checkpoint I/O: what a training run writes (`last.pt`, `best.pt`) and what convert.py reads.

A checkpoint is a dict of plain types and tensors, loaded with weights_only=True (no pickled code runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from detectors.checksums import file_sha256

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


def average_states(paths: Sequence[str | Path], weights: Sequence[float] | None = None
                   ) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """A model soup (Wortsman et al., 2022): the weighted mean of the weights of checkpoints fine-tuned from one
    start with one recipe. Floating-point tensors are averaged; integer ones (batch-norm counters) come from the
    first. Returns the state and, per ingredient, its path, sha256, epoch and weight. Checkpoints of different
    detectors, builder arguments, input sizes or tensor names are refused."""
    if len(paths) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("one non-negative weight per checkpoint, not all zero")
    shares = [w / sum(weights) for w in weights]

    def ingredient(path: str | Path, ckpt: dict, share: float) -> dict:
        return {"path": str(path), "sha256": file_sha256(path), "epoch": ckpt.get("epoch"), "weight": share}

    def ident(ckpt: dict) -> tuple:
        return ckpt["name"], ckpt.get("model_kwargs", {}), ckpt.get("input_size"), set(ckpt["model"])

    first = load_checkpoint(paths[0])
    soup = {k: v.double() * shares[0] if v.is_floating_point() else v.clone() for k, v in first["model"].items()}
    ingredients = [ingredient(paths[0], first, shares[0])]
    for path, share in zip(paths[1:], shares[1:]):
        ckpt = load_checkpoint(path)
        if ident(ckpt) != ident(first):
            raise ValueError(f"{path} is not the same model as {paths[0]} (detector, builder arguments, input size "
                             f"and tensor names must match)")
        for k, v in ckpt["model"].items():
            if v.shape != soup[k].shape:
                raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, not {tuple(soup[k].shape)}")
            if v.is_floating_point():
                soup[k] += v.double() * share
        ingredients.append(ingredient(path, ckpt, share))
    return {k: v.to(first["model"][k].dtype) for k, v in soup.items()}, ingredients
