"""Combining the detectors' calibrated probabilities into one verdict.

Every strategy maps {detector: calibrated fake probability} (and the matching calibrated logits)
to one ensemble probability. The verdict then compares it with a threshold and an uncertainty band.
Each result also carries the detectors' votes (each detector's own verdict: inside the band it abstains), how
much each detector weighs in it, and the agreement between them (see AGREEMENT_MEANING).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .report import FAKE, REAL, UNCERTAIN
from .settings import DEFAULT_BAND, DEFAULT_THRESHOLD, STRATEGY_NAMES, AnalysisSettings

_EPS = 1e-6


# The definition of agreement, in the one sentence every place that shows an agreement shows with it.
AGREEMENT_MEANING = ("Agreement is 1 − 2 × the mean distance of the detectors' calibrated probabilities from their "
                     "average: 1.00 when they all give the same score, 0.00 when they split between 0% and 100%; "
                     "the threshold does not change it.")
STRONG_AGREEMENT, PARTIAL_AGREEMENT = 0.75, 0.45   # the words for agreement values: strong / partial / weak

FAKE_VOTE, REAL_VOTE, ABSTAIN = "fake", "real", "abstain"   # the keys of `votes`
MAJORITY = "majority"   # the strategy whose result is a vote count, shown as votes rather than a probability


@dataclass
class EnsembleResult:
    probability: float
    verdict: str
    agreement: float | None
    strategy: str
    votes: dict[str, int] = field(default_factory=dict)      # {"fake", "real", "abstain"}: detectors per vote
    weights: dict[str, float] = field(default_factory=dict)  # each detector's share in `probability` (sums to 1)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def equal_weights(probs: Mapping[str, float], weights: Mapping[str, float]) -> dict[str, float]:
    """Every detector counts the same (mean_probability, mean_logit, majority)."""
    return {n: 1.0 / len(probs) for n in probs}


def auc_weights(probs: Mapping[str, float], weights: Mapping[str, float]) -> dict[str, float]:
    """The "weighted" strategy's shares: the given weights (from each model's validation AUC), normalised;
    equal when none is positive."""
    w = {n: max(float(weights.get(n, 1.0)), 0.0) for n in probs}
    total = sum(w.values())
    return {n: v / total for n, v in w.items()} if total > 0 else equal_weights(probs, weights)


def certainty_weights(probs: Mapping[str, float], weights: Mapping[str, float]) -> dict[str, float]:
    """The "confidence_weighted" strategy's shares: each detector counts as much as it is sure (distance from
    0.5); the floor keeps an all-unsure ensemble defined."""
    c = {n: abs(float(p) - 0.5) * 2 + 0.05 for n, p in probs.items()}
    total = sum(c.values())
    return {n: v / total for n, v in c.items()}


def mean_probability(probs: dict[str, float], logits: dict[str, float],
                     weights: dict[str, float], threshold: float, band: float) -> float:
    return float(np.mean(list(probs.values())))


def mean_logit(probs: dict[str, float], logits: dict[str, float],
               weights: dict[str, float], threshold: float, band: float) -> float:
    return _sigmoid(float(np.mean([logits[n] for n in probs])))


def weighted(probs: dict[str, float], logits: dict[str, float],
             weights: dict[str, float], threshold: float, band: float) -> float:
    """Weighted mean of calibrated logits; weights usually come from each model's validation AUC."""
    shares = auc_weights(probs, weights)
    return _sigmoid(float(sum(shares[n] * logits[n] for n in probs)))


def majority(probs: dict[str, float], logits: dict[str, float],
             weights: dict[str, float], threshold: float, band: float) -> float:
    """Share of FAKE votes among the detectors that vote: one inside the uncertainty band abstains. 0.5 is a tie
    (or every detector abstaining), which the band turns into UNCERTAIN."""
    votes = count_votes(probs, threshold, band)
    decided = votes[FAKE_VOTE] + votes[REAL_VOTE]
    return votes[FAKE_VOTE] / decided if decided else 0.5


def confidence_weighted(probs: dict[str, float], logits: dict[str, float],
                        weights: dict[str, float], threshold: float, band: float) -> float:
    """Mean probability where each detector counts as much as it is sure (distance from 0.5)."""
    shares = certainty_weights(probs, weights)
    return float(sum(shares[n] * probs[n] for n in probs))


Strategy = Callable[[dict[str, float], dict[str, float], dict[str, float], float, float], float]
Shares = Callable[[Mapping[str, float], Mapping[str, float]], dict[str, float]]

STRATEGIES: dict[str, Strategy] = {
    "mean_probability": mean_probability,
    "mean_logit": mean_logit,
    "weighted": weighted,
    "majority": majority,
    "confidence_weighted": confidence_weighted,
}
# how much each detector weighs in each strategy's probability
STRATEGY_WEIGHTS: dict[str, Shares] = {
    "mean_probability": equal_weights,
    "mean_logit": equal_weights,
    "weighted": auc_weights,
    "majority": equal_weights,
    "confidence_weighted": certainty_weights,
}
if tuple(STRATEGIES) != STRATEGY_NAMES or tuple(STRATEGY_WEIGHTS) != STRATEGY_NAMES:  # AnalysisSettings validates against the names kept in settings.py
    raise ImportError(f"analysis.settings.STRATEGY_NAMES {STRATEGY_NAMES} differ from the strategies here "
                      f"{tuple(STRATEGIES)}")


def verdict_for(probability: float | None, threshold: float, band: float) -> str | None:
    if probability is None or (isinstance(probability, float) and math.isnan(probability)):
        return None
    if abs(probability - threshold) < band - 1e-9:  # tolerance: 0.6 vs 0.5 +- 0.1 is on the edge, not inside
        return UNCERTAIN
    return FAKE if probability >= threshold else REAL


def agreement(probs: Mapping[str, float]) -> float | None:
    """How closely the detectors' calibrated probabilities agree, whatever the threshold (AGREEMENT_MEANING):
    1 - 2 x their mean absolute deviation from their mean, in [0, 1]. None for a single detector: one voice
    cannot agree or disagree, and "strong agreement" would overstate it."""
    if len(probs) <= 1:
        return None
    p = np.array(list(probs.values()), dtype=float)
    spread = float(np.mean(np.abs(p - p.mean())))               # 0 .. 0.5 (half at 0, half at 1)
    return float(round(min(max(1.0 - 2.0 * spread, 0.0), 1.0), 4))


def agreement_label(value: float | None) -> str:
    """"strong", "partial" or "weak" ("n/a" for None)."""
    if value is None:
        return "n/a"
    if value >= STRONG_AGREEMENT:
        return "strong"
    if value >= PARTIAL_AGREEMENT:
        return "partial"
    return "weak"


def count_votes(probs: Mapping[str, float], threshold: float, band: float) -> dict[str, int]:
    """Each detector's own verdict on its calibrated probability: {"fake": n, "real": n, "abstain": n}; a detector
    inside the uncertainty band abstains."""
    votes = {FAKE_VOTE: 0, REAL_VOTE: 0, ABSTAIN: 0}
    for p in probs.values():
        verdict = verdict_for(float(p), threshold, band)
        votes[FAKE_VOTE if verdict == FAKE else REAL_VOTE if verdict == REAL else ABSTAIN] += 1
    return votes


def votes_text(votes: Mapping[str, int] | None) -> str:
    """"2 of 5 detectors say fake, 2 say real, 1 abstains" ("" without votes)."""
    if not votes:
        return ""
    fake, real, abstain = (int(votes.get(k, 0)) for k in (FAKE_VOTE, REAL_VOTE, ABSTAIN))
    total = fake + real + abstain
    parts = [f"{fake} of {total} detector{'s' if total != 1 else ''} say{'s' if total == 1 else ''} fake"]
    if real:
        parts.append(f"{real} say{'s' if real == 1 else ''} real")
    if abstain:
        parts.append(f"{abstain} abstain{'s' if abstain == 1 else ''}")
    return ", ".join(parts)


def shows_votes(strategy: str | None) -> bool:
    """True when a strategy's result is a count of votes, to be shown as votes ("2 of 5 detectors say fake")
    rather than as a probability of fake."""
    return strategy == MAJORITY


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
    p = float(strategy(probs, logits, w, threshold, band))
    shares = STRATEGY_WEIGHTS[settings.strategy](probs, w)
    return EnsembleResult(probability=p, verdict=verdict_for(p, threshold, band), agreement=agreement(probs),
                          strategy=settings.strategy, votes=count_votes(probs, threshold, band),
                          weights={n: round(float(v), 4) for n, v in shares.items()})
