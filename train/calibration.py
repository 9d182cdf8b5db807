"""Temperature scaling (Guo et al., 2017) for a binary logit: p = sigmoid(z / T), T fitted on validation logits
by minimising the negative log-likelihood. T > 1 softens an over-confident model; the ranking (AUC) is unchanged."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

T_MIN, T_MAX = 0.05, 20.0


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def apply_temperature(logits: Sequence[float], temperature: float) -> np.ndarray:
    """Calibrated probabilities of fake."""
    return sigmoid(np.asarray(logits, dtype=np.float64) / float(temperature))


def nll(logits: Sequence[float], labels: Sequence[int], temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of sigmoid(logits / T), computed stably in log space."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: Sequence[float], labels: Sequence[int]) -> float:
    """The T in [0.05, 20] minimising the NLL on (logits, labels); 1.0 when it cannot be fitted (one class only,
    or no data), since a temperature cannot be learnt from a set without both kinds of mistake to weigh."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(z) != len(y):
        raise ValueError(f"logits and labels differ in length ({len(z)} vs {len(y)})")
    if len(z) < 2 or y.min() == y.max() or not np.isfinite(z).all():
        return 1.0
    result = minimize_scalar(lambda log_t: nll(z, y, float(np.exp(log_t))),
                             bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded",
                             options={"xatol": 1e-6})
    return float(np.exp(result.x))
