"""Learning-rate schedules of the training loop: per-batch linear warm-up then cosine decay, or warm-up then
reduce-on-plateau on the validation AUC."""
from __future__ import annotations

import math

import torch


class WarmupCosine:
    """LambdaLR factor: linear warm-up to 1, then cosine down to `floor`. A plain object, so the scheduler's
    state_dict (which stores its __dict__) loads with weights_only=True."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float) -> None:
        self.warmup_steps, self.total_steps, self.floor = int(warmup_steps), int(total_steps), float(floor)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Schedule:
    """Per-batch warm-up + cosine, or warm-up then reduce-on-plateau on the validation AUC (per epoch)."""

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str, steps_per_epoch: int, epochs: int,
                 warmup_epochs: float, floor: float) -> None:
        self.kind = kind
        self.optimizer = optimizer
        self.warmup_steps = int(round(warmup_epochs * steps_per_epoch))
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.step_count = 0
        if kind == "cosine":
            self.inner = torch.optim.lr_scheduler.LambdaLR(
                optimizer, WarmupCosine(self.warmup_steps, steps_per_epoch * epochs, floor))
        else:
            self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
            self._warm()

    def _warm(self) -> None:
        if self.step_count < self.warmup_steps:
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * (self.step_count + 1) / self.warmup_steps
        elif self.step_count == self.warmup_steps and self.warmup_steps:
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base

    def step_batch(self) -> None:
        self.step_count += 1
        if self.kind == "cosine":
            self.inner.step()
        else:
            self._warm()

    def step_epoch(self, score: float) -> None:
        if self.kind == "plateau" and self.step_count >= self.warmup_steps and math.isfinite(score):
            self.inner.step(score)

    def state_dict(self) -> dict:
        return {"kind": self.kind, "step_count": self.step_count, "base_lrs": list(self.base_lrs),
                "warmup_steps": self.warmup_steps, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.base_lrs = int(state["step_count"]), list(state["base_lrs"])
        self.warmup_steps = int(state["warmup_steps"])
        self.inner.load_state_dict(state["inner"])

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
