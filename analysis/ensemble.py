"""Combining the detectors' calibrated probabilities into one verdict.

Every strategy maps {detector: calibrated fake probability} (and the matching calibrated logits)
to one ensemble probability. The verdict then compares it with a threshold and an uncertainty band.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .report import FAKE, REAL, UNCERTAIN
from .settings import DEFAULT_BAND, DEFAULT_THRESHOLD, STRATEGY_NAMES, AnalysisSettings

_EPS = 1e-6


@dataclass
class EnsembleResult:
    probability: float
    verdict: str
    agreement: float
    strategy: str


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def mean_probability(probs: dict[str, float], logits: dict[str, float],
                     weights: dict[str, float], threshold: float) -> float:
    return float(np.mean(list(probs.values())))


def mean_logit(probs: dict[str, float], logits: dict[str, float],
               weights: dict[str, float], threshold: float) -> float:
    return _sigmoid(float(np.mean([logits[n] for n in probs])))


def weighted(probs: dict[str, float], logits: dict[str, float],
             weights: dict[str, float], threshold: float) -> float:
    """Weighted mean of calibrated logits; weights usually come from each model's validation AUC."""
    w = np.array([max(weights.get(n, 1.0), 0.0) for n in probs], dtype=float)
    if w.sum() <= 0:
        w = np.ones_like(w)
    z = np.array([logits[n] for n in probs], dtype=float)
    return _sigmoid(float((w * z).sum() / w.sum()))


def majority(probs: dict[str, float], logits: dict[str, float],
             weights: dict[str, float], threshold: float) -> float:
    """Share of detectors voting FAKE: 0.5 is a tie, which the band turns into UNCERTAIN."""
    return float(np.mean([p >= threshold for p in probs.values()]))


def confidence_weighted(probs: dict[str, float], logits: dict[str, float],
                        weights: dict[str, float], threshold: float) -> float:
    """Mean probability where each detector counts as much as it is sure (distance from 0.5)."""
    p = np.array(list(probs.values()), dtype=float)
    c = np.abs(p - 0.5) * 2 + 0.05  # the floor keeps an all-unsure ensemble defined
    return float((c * p).sum() / c.sum())


Strategy = Callable[[dict[str, float], dict[str, float], dict[str, float], float], float]

STRATEGIES: dict[str, Strategy] = {
    "mean_probability": mean_probability,
    "mean_logit": mean_logit,
    "weighted": weighted,
    "majority": majority,
    "confidence_weighted": confidence_weighted,
}
if tuple(STRATEGIES) != STRATEGY_NAMES:  # AnalysisSettings validates against the names kept in settings.py
    raise ImportError(f"analysis.settings.STRATEGY_NAMES {STRATEGY_NAMES} differ from the strategies here "
                      f"{tuple(STRATEGIES)}")


def verdict_for(probability: float | None, threshold: float, band: float) -> str | None:
    if probability is None or (isinstance(probability, float) and math.isnan(probability)):
        return None
    if abs(probability - threshold) < band - 1e-9:  # tolerance: 0.6 vs 0.5 +- 0.1 is on the edge, not inside
        return UNCERTAIN
    return FAKE if probability >= threshold else REAL


def agreement(probs: dict[str, float], threshold: float) -> float:
    """1.0 when all detectors fall on the same side of the threshold with similar scores, 0.0 at an even split
    with opposite extremes. Mixes the vote margin with the spread of the probabilities."""
    if len(probs) <= 1:
        return 1.0
    p = np.array(list(probs.values()), dtype=float)
    votes = p >= threshold
    vote_share = max(votes.mean(), 1 - votes.mean())          # 0.5 .. 1
    vote_term = (vote_share - 0.5) * 2                          # 0 .. 1
    spread_term = 1 - min(float(p.std()) * 2, 1.0)              # std of 0.5 is maximal disagreement
    return float(round(0.5 * vote_term + 0.5 * spread_term, 4))


def combine(probs: dict[str, float], logits: dict[str, float], settings: AnalysisSettings,
            weights: dict[str, float] | None = None) -> EnsembleResult:
    """probs/logits: calibrated, per detector. Raises KeyError for an unknown strategy, ValueError when empty.

    A threshold or band left None (not resolved by `Analyzer.resolve_settings`) is the built-in default."""
    if not probs:
        raise ValueError("no detector scores to combine")
    try:
        strategy = STRATEGIES[settings.strategy]
    except KeyError:
        raise KeyError(f"unknown strategy {settings.strategy!r}; choose one of {', '.join(STRATEGIES)}") from None
    missing = [n for n in probs if n not in logits]
    if missing:
        logits = {**logits, **{n: _logit(probs[n]) for n in missing}}
    w = dict(weights or {})
    if settings.weights:
        w.update(settings.weights)
    threshold = DEFAULT_THRESHOLD if settings.threshold is None else settings.threshold
    band = DEFAULT_BAND if settings.band is None else settings.band
    p = float(strategy(probs, logits, w, threshold))
    return EnsembleResult(probability=p, verdict=verdict_for(p, threshold, band),
                          agreement=agreement(probs, threshold), strategy=settings.strategy)
