"""Metrics against scikit-learn, ECE/EER/operating points on known cases, temperature scaling, plots."""
from __future__ import annotations

import numpy as np
import math

import pytest
from sklearn import metrics as skm

from analysis.report import json_safe
from train import metrics as m
from train.calibration import apply_temperature, fit_temperature, nll


def _case(seed: int, n: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    if ties:
        p = np.round(p, 1)  # many tied scores
    return y, p


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, False), (3, True)])
def test_metrics_match_sklearn(seed, ties):
    y, p = _case(seed, ties=ties)
    assert m.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert m.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-9)
    cm = m.confusion(y, p, 0.5)
    assert np.array_equal(cm, skm.confusion_matrix(y, (p >= 0.5).astype(int), labels=[0, 1]))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, (p >= 0.5).astype(int), labels=[0, 1],
                                                                         zero_division=0)
    got = m.compute_metrics(y, p, 0.5)
    for k, name in enumerate(("real", "fake")):
        assert got[f"precision_{name}"] == pytest.approx(precision[k])
        assert got[f"recall_{name}"] == pytest.approx(recall[k])
        assert got[f"f1_{name}"] == pytest.approx(f1[k])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p >= 0.5))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p >= 0.5))
    fpr, tpr, thr = m.roc_curve(y, p)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, p, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr) and np.allclose(thr[1:], sk_thr[1:])


def test_undefined_metrics_are_nan_not_errors():
    y = np.zeros(10, int)
    p = np.linspace(0, 1, 10)
    got = m.compute_metrics(y, p)
    assert np.isnan(got["auc"]) and np.isnan(got["eer"]) and np.isnan(got["average_precision"])
    assert got["accuracy"] == pytest.approx(0.5)
    assert json_safe(got)["auc"] is None


def test_ece_hand_computed():
    # bin [0.2, 0.267): p=0.25 x2, one fake -> |0.5 - 0.25| ; bin [0.933, 1]: p=0.95 x2, both fake -> 0.05
    y = np.array([0, 1, 1, 1])
    p = np.array([0.25, 0.25, 0.95, 0.95])
    assert m.expected_calibration_error(y, p, bins=15) == pytest.approx((2 * 0.25 + 2 * 0.05) / 4)
    assert m.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_eer_and_operating_points():
    y = np.array([0] * 100 + [1] * 100)
    s = np.r_[np.linspace(0, 0.6, 100), np.linspace(0.4, 1.0, 100)]  # overlap in [0.4, 0.6]
    eer, thr = m.equal_error_rate(y, s)
    fpr = np.mean(s[y == 0] >= thr)
    fnr = np.mean(s[y == 1] < thr)
    assert eer == pytest.approx(fpr, abs=0.02) and eer == pytest.approx(fnr, abs=0.02)
    assert 0.1 < eer < 0.25 and 0.45 < thr < 0.55
    perfect = m.equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect[0] == 0.0
    for target in (0.01, 0.05, 0.10):
        op = m.threshold_at_fpr(y, s, target)
        assert op["fpr"] <= target
        assert np.mean(s[y == 0] >= op["threshold"]) == pytest.approx(op["fpr"])
        assert np.mean(s[y == 1] >= op["threshold"]) == pytest.approx(op["tpr"])
    assert [o["target_fpr"] for o in m.compute_metrics(y, s)["operating_points"]] == [0.01, 0.05, 0.10]


def test_per_source_and_video_aggregation():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.3, 0.8, 0.6, 0.2, 0.9])
    by = m.metrics_by(["a", "a", "a", "b", "b", "b"], y, p)
    assert set(by) == {"a", "b"} and by["a"]["n"] == 3 and by["b"]["auc"] == 1.0
    names, labels, scores = m.aggregate_by(["v1", "v1", "v2", "v2", "v3", "v3"], [0, 0, 1, 1, 1, 1], p)
    assert names == ["v1", "v2", "v3"] and labels.tolist() == [0, 1, 1]
    assert scores == pytest.approx([0.2, 0.7, 0.55])
    with pytest.raises(ValueError, match="different labels"):
        m.aggregate_by(["v", "v"], [0, 1], [0.1, 0.2])


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 40_000)
    y = (rng.random(len(z)) < apply_temperature(z, true_t)).astype(int)  # labels drawn with temperature true_t
    t = fit_temperature(z, y)
    assert t == pytest.approx(true_t, rel=0.05)
    assert nll(z, y, t) <= nll(z, y, 1.0) + 1e-12
    assert m.expected_calibration_error(y, apply_temperature(z, t)) < 0.02


def test_temperature_degenerate_inputs():
    assert fit_temperature([1.0, 2.0], [1, 1]) == 1.0
    assert fit_temperature([], []) == 1.0
    with pytest.raises(ValueError):
        fit_temperature([1.0], [0, 1])


def test_plots_are_written(tmp_path):
    y, p = _case(0)
    paths = m.save_plots(y, p, tmp_path, "val", uncalibrated=np.clip(p * 1.3, 0, 1))
    assert [x.name for x in paths] == ["val_roc.png", "val_confusion.png", "val_reliability.png"]
    for x in paths:
        assert x.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and x.stat().st_size > 5000


def test_calibration_summary_before_and_after_temperature():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 2000)
    z_true = rng.normal(0, 1.5, 2000) + (2 * y - 1) * 0.8       # an over-confident model: logits 3x too large
    y = (rng.random(2000) < apply_temperature(z_true, 1.0)).astype(int)
    logits = 3.0 * z_true
    s = m.calibration_summary(y, apply_temperature(logits, 1.0), apply_temperature(logits, fit_temperature(logits, y)))
    assert s.n == 2000 and s.ece_after < 0.05 < s.ece_before
    assert s.log_loss_after < s.log_loss_before
    assert s.ece_before == pytest.approx(m.expected_calibration_error(y, apply_temperature(logits, 1.0)))
    assert sum(s.bins_before["count"]) == sum(s.bins_after["count"]) == 2000
    assert set(s.to_dict()) >= {"ece_before", "ece_after", "bins_before", "bins_after"}


def test_a_fake_only_source_is_scored_against_its_partner_reals():
    from train.data import DataError, parse_pairs
    from train.metrics import metrics_by

    keys = ["photos", "photos", "photos", "diffusion", "diffusion"]
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.9, 0.5, 0.95]
    plain = metrics_by(keys, y, p)
    assert math.isnan(plain["diffusion"]["auc"]) or plain["diffusion"]["auc"] is None
    paired = metrics_by(keys, y, p, pair_reals=parse_pairs(["diffusion=photos"]))
    assert paired["diffusion"]["n_real"] == 2 and paired["diffusion"]["auc"] == 0.75
    assert paired["photos"]["n"] == 3
    with pytest.raises(DataError, match="FAKE_SOURCE=REAL_SOURCE"):
        parse_pairs(["diffusion"])
