"""The epoch loop of the trainers on cached views (frozen_prefix, distill): resume from `last.pt`, one optimiser
step per batch, validation by the mean per-source AUC, `best_state.pt` and `last.pt` after every epoch, and the
best epoch's weights loaded back at the end."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from train.checkpoints import cpu_state, save_checkpoint
from train.metrics import auc_by_source, roc_auc

log = logging.getLogger("train.epochs")


@dataclass(frozen=True)
class EpochPlan:
    epochs: int
    steps_per_epoch: int
    seed: int
    resume: bool


def run_epochs(model: nn.Module, params: Sequence[nn.Parameter], optimizer: torch.optim.Optimizer,
               scheduler: Any, plan: EpochPlan, out_dir: Path,
               batch_loss: Callable[[np.random.Generator], torch.Tensor], train_mode: Callable[[], None],
               val_logits: Callable[[], np.ndarray], val_labels: np.ndarray, val_sources: Sequence[str],
               pair_reals: dict[str, str]) -> dict[str, Any]:
    """Train `plan.epochs` epochs of `batch_loss(rng)` batches; returns {"history", "best_epoch"}."""
    total = plan.steps_per_epoch * plan.epochs
    rng = np.random.default_rng(plan.seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -1.0, "epoch": -1}
    start_epoch = 0
    last = out_dir / "last.pt"
    if plan.resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        if state["scheduler"].get("total_steps") != total:
            raise SystemExit(f"--resume needs the interrupted run's --epochs, --samples-per-epoch and --batch-size "
                             f"({state['scheduler'].get('total_steps')} steps in all, not {total})")
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        rng = np.random.default_rng([plan.seed, start_epoch])
        log.info("resumed at epoch %d", start_epoch)
    for epoch in range(start_epoch, plan.epochs):
        train_mode()
        t0, losses = time.time(), []
        for _ in range(plan.steps_per_epoch):
            loss = batch_loss(rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        logits = val_logits()
        by_source = auc_by_source(val_labels, logits, val_sources, pair_reals)
        scores = [v for v in by_source.values() if v is not None]
        score = float(np.mean(scores)) if scores else float("nan")
        entry = {"epoch": epoch, "loss": float(np.mean(losses)), "val_auc": float(roc_auc(val_labels, logits)),
                 "val_auc_by_source": by_source, "val_mean_source_auc": score, "seconds": time.time() - t0}
        history.append(entry)
        log.info("epoch %d: loss %.4f val AUC %.4f by source %s (%.0fs)", epoch, entry["loss"], entry["val_auc"],
                 {k: round(v, 4) for k, v in by_source.items() if v is not None}, entry["seconds"])
        if score > best["score"]:
            best = {"score": score, "epoch": epoch}
            save_checkpoint(out_dir / "best_state.pt", {"model": cpu_state(model), "epoch": epoch})
        save_checkpoint(last, {"model": cpu_state(model), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "history": history, "best": best,
                               "epoch": epoch})
    best_state = torch.load(out_dir / "best_state.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(best_state["model"], strict=True)
    return {"history": history, "best_epoch": best["epoch"]}
