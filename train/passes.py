"""Whole-loader passes of a model outside the optimisation step: predictions, and precise BatchNorm statistics."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, device: torch.device, batches: int,
                          amp: bool = False) -> int:
    """Precise BN: BatchNorm statistics recomputed as plain averages over `batches` training batches with the
    final weights of the epoch. The running averages otherwise mix statistics of older weights, which in short
    runs makes eval-mode outputs nearly constant. Returns the number of batches used (0: no BatchNorm)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or batches <= 0:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    model.train()
    used = 0
    for x, _, _ in loader:
        if used >= batches:
            break
        if len(x) < 2:
            continue
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            model(x.to(device, non_blocking=True))
        used += 1
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return used


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
                   progress: bool = False, desc: str = "eval") -> np.ndarray:
    model.eval()
    out = np.zeros(len(loader.dataset), dtype=np.float64)
    for x, _, idx in tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            z = model(x.to(device, non_blocking=True)).reshape(-1)
        out[idx.numpy()] = z.float().cpu().numpy()
    return out
