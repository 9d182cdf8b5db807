"""Ensemble arithmetic: every strategy, the verdict band, agreement, calibration through the analyzer."""
import math

import pytest

from analysis.ensemble import (AGREEMENT_MEANING, STRATEGIES, agreement, agreement_label, combine,
                               count_votes, shows_votes, verdict_for, votes_text)
from analysis.settings import AnalysisSettings


def logit(p):
    return math.log(p / (1 - p))


PROBS = {"a": 0.9, "b": 0.8, "c": 0.2}
LOGITS = {k: logit(v) for k, v in PROBS.items()}


def test_every_strategy_is_registered():
    assert set(STRATEGIES) == {"mean_probability", "mean_logit", "weighted", "majority", "confidence_weighted"}


def test_mean_probability():
    r = combine(PROBS, LOGITS, AnalysisSettings(strategy="mean_probability"))
    assert r.probability == pytest.approx((0.9 + 0.8 + 0.2) / 3)


def test_mean_logit():
    r = combine(PROBS, LOGITS, AnalysisSettings(strategy="mean_logit"))
    z = (logit(0.9) + logit(0.8) + logit(0.2)) / 3
    assert r.probability == pytest.approx(1 / (1 + math.exp(-z)))


def test_weighted_follows_the_heavier_detector():
    s = AnalysisSettings(strategy="weighted")
    heavy_c = combine(PROBS, LOGITS, s, weights={"a": 0.01, "b": 0.01, "c": 10})
    heavy_a = combine(PROBS, LOGITS, s, weights={"a": 10, "b": 0.01, "c": 0.01})
    assert heavy_c.probability < 0.25 and heavy_a.probability > 0.85
    equal = combine(PROBS, LOGITS, s, weights={"a": 1, "b": 1, "c": 1})
    assert equal.probability == pytest.approx(combine(PROBS, LOGITS, AnalysisSettings(strategy="mean_logit")).probability)


def test_settings_weights_override_manifest_weights():
    s = AnalysisSettings(strategy="weighted", weights={"c": 100.0})
    assert combine(PROBS, LOGITS, s, weights={"a": 1, "b": 1, "c": 1}).probability < 0.25


def test_majority_is_the_share_of_fake_votes():
    r = combine(PROBS, LOGITS, AnalysisSettings(strategy="majority"))
    assert r.probability == pytest.approx(2 / 3)
    assert r.verdict == "FAKE"
    assert r.votes == {"fake": 2, "real": 1, "abstain": 0}
    tie = combine({"a": 0.9, "b": 0.1}, {}, AnalysisSettings(strategy="majority"))
    assert tie.probability == 0.5 and tie.verdict == "UNCERTAIN"


def test_majority_counts_detectors_inside_the_band_as_abstaining():
    probs = {"a": 0.99, "b": 0.99, "c": 0.2, "d": 0.1, "e": 0.55}     # 0.55 is inside 0.5 +- 0.1
    r = combine(probs, {}, AnalysisSettings(strategy="majority", threshold=0.5, band=0.1))
    assert r.votes == {"fake": 2, "real": 2, "abstain": 1}
    assert r.probability == 0.5 and r.verdict == "UNCERTAIN"            # 2 against 2: the abstention is no vote
    assert votes_text(r.votes) == "2 of 5 detectors say fake, 2 say real, 1 abstains"
    two_sure = combine({"a": 0.99, "b": 0.99, "c": 0.52, "d": 0.48, "e": 0.57}, {},
                       AnalysisSettings(strategy="majority", threshold=0.5, band=0.1))
    assert two_sure.votes == {"fake": 2, "real": 0, "abstain": 3} and two_sure.verdict == "FAKE"
    assert votes_text(two_sure.votes) == "2 of 5 detectors say fake, 3 abstain"
    nobody = combine({"a": 0.55, "b": 0.45}, {}, AnalysisSettings(strategy="majority", threshold=0.5, band=0.1))
    assert nobody.votes == {"fake": 0, "real": 0, "abstain": 2} and nobody.verdict == "UNCERTAIN"
    assert shows_votes("majority") and not shows_votes("weighted")


def test_every_strategy_reports_votes_and_weights():
    probs = {"a": 0.9, "b": 0.55, "c": 0.1}
    for name in STRATEGIES:
        r = combine(probs, {}, AnalysisSettings(strategy=name, threshold=0.5, band=0.1),
                    weights={"a": 3.0, "b": 1.0, "c": 1.0})
        assert r.votes == {"fake": 1, "real": 1, "abstain": 1}, name
        assert set(r.weights) == set(probs) and sum(r.weights.values()) == pytest.approx(1.0, abs=1e-3), name
    weighted = combine(probs, {}, AnalysisSettings(strategy="weighted"), weights={"a": 3.0, "b": 1.0, "c": 1.0})
    assert weighted.weights == {"a": 0.6, "b": 0.2, "c": 0.2}
    equal = combine(probs, {}, AnalysisSettings(strategy="mean_probability"), weights={"a": 3.0})
    assert list(equal.weights.values()) == pytest.approx([1 / 3] * 3, abs=1e-4)
    sure = combine(probs, {}, AnalysisSettings(strategy="confidence_weighted"))
    assert sure.weights["b"] < sure.weights["a"] == sure.weights["c"]
    assert count_votes({"a": 0.65}, 0.7, 0.0) == {"fake": 0, "real": 1, "abstain": 0}   # the threshold decides votes


def test_confidence_weighted_leans_on_the_sure_detector():
    probs = {"sure": 0.99, "unsure1": 0.45, "unsure2": 0.45}
    r = combine(probs, {}, AnalysisSettings(strategy="confidence_weighted"))
    assert r.probability > sum(probs.values()) / 3


def test_verdict_band():
    assert verdict_for(0.75, 0.5, 0.1) == "FAKE"
    assert verdict_for(0.55, 0.5, 0.1) == "UNCERTAIN"
    assert verdict_for(0.45, 0.5, 0.1) == "UNCERTAIN"
    assert verdict_for(0.2, 0.5, 0.1) == "REAL"
    assert verdict_for(0.6, 0.5, 0.0) == "FAKE"
    assert verdict_for(0.5, 0.5, 0.0) == "FAKE"
    assert verdict_for(0.65, 0.7, 0.0) == "REAL"
    assert verdict_for(None, 0.5, 0.1) is None


def test_agreement():
    assert agreement({"a": 0.9, "b": 0.9, "c": 0.9}) == pytest.approx(1.0)
    assert agreement({"a": 0.99, "b": 0.01}) == pytest.approx(0.0, abs=0.02)
    mixed = agreement({"a": 0.9, "b": 0.8, "c": 0.2})
    assert 0.2 < mixed < 0.8
    assert agreement({"a": 0.3}) is None and agreement_label(agreement({"a": 0.3})) == "n/a"   # one voice
    assert agreement({"a": 0.0, "b": 1.0, "c": 0.0, "d": 1.0}) == 0.0      # the largest spread there is
    assert "threshold does not change it" in AGREEMENT_MEANING


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_agreement_does_not_depend_on_the_threshold(strategy):
    probs = {"a": 0.5, "b": 0.53, "c": 0.57, "d": 0.99, "e": 0.99}
    values = {combine(probs, {}, AnalysisSettings(strategy=strategy, threshold=t, band=0.05)).agreement
              for t in (0.2, 0.5, 0.55, 0.8, 0.95)}
    assert len(values) == 1


def test_three_unsure_and_two_sure_detectors_are_not_strong_agreement():
    probs = {"a": 0.50, "b": 0.53, "c": 0.57, "d": 0.99, "e": 0.99}
    value = agreement(probs)
    assert agreement_label(value) != "strong" and value < 0.75
    assert agreement_label(agreement({"a": 0.9, "b": 0.92, "c": 0.95})) == "strong"
    assert agreement_label(agreement({"a": 0.05, "b": 0.95})) == "weak"
    assert agreement_label(None) == "n/a"


def test_unknown_strategy_and_empty_input():
    with pytest.raises(ValueError, match="unknown strategy"):
        AnalysisSettings(strategy="nope")   # the settings refuse it ...
    settings = AnalysisSettings()
    settings.strategy = "nope"              # ... and so does combine, for settings changed after construction
    with pytest.raises(KeyError, match="unknown strategy"):
        combine(PROBS, LOGITS, settings)
    with pytest.raises(ValueError):
        combine({}, {}, AnalysisSettings())


def test_missing_logits_are_derived_from_probabilities():
    r = combine(PROBS, {}, AnalysisSettings(strategy="mean_logit"))
    assert r.probability == pytest.approx(combine(PROBS, LOGITS, AnalysisSettings(strategy="mean_logit")).probability)


def test_unresolved_settings_use_the_built_in_threshold_and_band():
    r = combine({"a": 0.65}, {}, AnalysisSettings(strategy="mean_probability"))
    assert r.verdict == verdict_for(0.65, 0.5, 0.1) == "FAKE"
    r = combine({"a": 0.65}, {}, AnalysisSettings(strategy="mean_probability", threshold=0.72, band=0.05))
    assert r.verdict == "REAL"
