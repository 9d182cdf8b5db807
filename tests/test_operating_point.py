"""The ensemble's operating point: chosen on validation scores (train.metrics.operating_point), written and read
back strictly (analysis.operating_point)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis.ensemble import verdict_for
from analysis.operating_point import (OperatingPoint, OperatingPointError, ValidationRates, load_operating_point,
                                      read_operating_point)
from train.metrics import operating_point, threshold_at_fpr, verdict_rates


def _scores(seed: int, n_real: int = 400, n_fake: int = 200, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    p = np.r_[rng.beta(2, 5, n_real), rng.beta(5, 2, n_fake)]
    if decimals is not None:
        p = np.round(p, decimals)   # many ties
    return np.r_[np.zeros(n_real, int), np.ones(n_fake, int)], p


def _rates(y, p, threshold, band):
    v = np.array([verdict_for(float(x), threshold, band) for x in p])
    return np.mean(v[y == 0] == "FAKE"), np.mean(v[y == 1] == "FAKE"), v


def _best_tpr(y, p, max_fpr):
    """Brute force: the highest share of fakes at or above a cutoff that keeps reals at or under max_fpr."""
    best = 0.0
    for c in np.unique(p):
        if np.mean(p[y == 0] >= c) <= max_fpr:
            best = max(best, np.mean(p[y == 1] >= c))
    return best


@pytest.mark.parametrize("seed,band,decimals,max_fpr", [(0, 0.1, None, 0.05), (1, 0.0, None, 0.05),
                                                         (2, 0.1, 2, 0.05), (3, 0.2, 1, 0.05),
                                                         (4, 0.05, None, 0.01), (5, 0.1, 2, 0.10)])
def test_keeps_fpr_under_the_target_and_is_the_most_permissive(seed, band, decimals, max_fpr):
    y, p = _scores(seed, decimals=decimals)
    op = operating_point(y, p, max_fpr=max_fpr, band=band)
    assert 0 < op.threshold < 1 and 0 <= op.band < 0.5 and op.band == pytest.approx(band)
    fpr, tpr, verdicts = _rates(y, p, op.threshold, op.band)
    assert fpr <= max_fpr
    assert op.rates.fpr == pytest.approx(fpr) and op.rates.tpr == pytest.approx(tpr)
    assert op.rates.uncertain_real == pytest.approx(np.mean(verdicts[y == 0] == "UNCERTAIN"))
    assert op.rates.uncertain_fake == pytest.approx(np.mean(verdicts[y == 1] == "UNCERTAIN"))
    assert (op.rates.n_real, op.rates.n_fake) == ((y == 0).sum(), (y == 1).sum())
    # no cutoff catches more fakes within the target ...
    assert tpr == pytest.approx(_best_tpr(y, p, max_fpr))
    assert op.fake_from == pytest.approx(threshold_at_fpr(y, p, max_fpr)["threshold"])
    # ... and moving the FAKE edge down to the next lower score breaks the target
    lower = p[p < op.fake_from - 1e-9].max()
    assert _rates(y, p, lower - op.band, op.band)[0] > max_fpr


def test_the_band_sits_below_the_fake_edge_and_narrows_when_it_cannot_fit():
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    p = np.r_[np.linspace(0.0, 0.04, 100), np.linspace(0.06, 0.09, 100)]
    op = operating_point(y, p, max_fpr=0.05, band=0.1)
    assert op.band < 0.1 and op.threshold > 0 and op.threshold - op.band >= 0
    assert op.rates.fpr <= 0.05 and op.rates.tpr == 1.0
    # a wide band keeps reals near the edge UNCERTAIN instead of REAL: never FAKE
    y, p = _scores(7)
    wide, narrow = operating_point(y, p, band=0.3), operating_point(y, p, band=0.0)
    assert wide.fake_from == pytest.approx(narrow.fake_from)
    assert wide.rates.uncertain_real > narrow.rates.uncertain_real == 0.0


def test_separable_scores_and_top_ties():
    op = operating_point([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9], band=0.1)
    assert op.rates.fpr == 0.0 and op.rates.tpr == 1.0 and op.fake_from == pytest.approx(0.8)
    # the highest real ties with a fake and no real may be called FAKE: the FAKE region lies above every score
    op = operating_point([0, 0, 1], [0.2, 0.9, 0.9], band=0.0)
    assert op.rates.fpr == 0.0 and op.rates.tpr == 0.0 and 0.9 < op.threshold < 1


@pytest.mark.parametrize("y,p,kw", [([0, 0], [0.1, 0.2], {}), ([1, 1], [0.1, 0.2], {}),
                                    ([0, 1], [0.1, 0.9], {"max_fpr": 0.0}), ([0, 1], [0.1, 0.9], {"max_fpr": 1.0}),
                                    ([0, 1], [0.1, 0.9], {"band": 0.5}), ([0, 1], [0.1, 1.5], {}),
                                    ([0, 1], [1.0, 1.0], {})])
def test_bad_arguments_are_one_line_errors(y, p, kw):
    with pytest.raises(ValueError) as info:
        operating_point(y, p, **kw)
    assert "\n" not in str(info.value)


def test_verdict_rates_follow_the_app_rule_on_the_band_edges():
    # 0.6 against 0.5 +- 0.1 is on the edge: FAKE, as analysis.ensemble.verdict_for says
    r = verdict_rates([0, 0, 1, 1], [0.4, 0.45, 0.6, 0.55], 0.5, 0.1)
    assert (r.fpr, r.tpr, r.uncertain_real, r.uncertain_fake) == (0.0, 0.5, 0.5, 0.5)


# ---------------------------------------------------------------------------------------------- the file
def _good() -> dict:
    return {"strategy": "weighted", "threshold": 0.62, "band": 0.1, "max_fpr": 0.05,
            "val": {"fpr": 0.04, "tpr": 0.6, "uncertain_real": 0.2, "uncertain_fake": 0.15, "n_real": 100,
                    "n_fake": 80},
            "detectors": ["swin", "xception"], "created": "2025-01-01T00:00:00", "mirror": True}


def test_missing_file_is_none_and_a_written_one_reads_back(tmp_path):
    assert load_operating_point(tmp_path) is None
    op = OperatingPoint(**{**_good(), "val": ValidationRates(**_good()["val"])})
    path = op.write(tmp_path / "ensemble.json")
    assert json.loads(path.read_text()) == _good()
    back = load_operating_point(tmp_path)
    assert back == op and back.settings() == {"strategy": "weighted", "threshold": 0.62, "band": 0.1}
    assert back.matches(["xception", "swin"]) and not back.matches(["swin"]) and not back.matches(None)


def test_a_file_from_before_mirrored_scoring_was_measured_without_it(tmp_path):
    data = _good()
    del data["mirror"]
    (tmp_path / "ensemble.json").write_text(json.dumps(data))
    assert load_operating_point(tmp_path).mirror is False


def _edit(**changes):
    data = _good()
    for key, value in changes.items():
        if key.startswith("val_"):
            if value is ...:
                del data["val"][key[4:]]
            else:
                data["val"][key[4:]] = value
        elif value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize("text,expected", [
    ("{not json", "not valid JSON"), ("[]", "expected a JSON object"),
    (_edit(threshold=0.0), "threshold"), (_edit(threshold=1.0), "threshold"), (_edit(threshold=1.5), "threshold"),
    (_edit(threshold="0.5"), "threshold"), (_edit(threshold=True), "threshold"), (_edit(threshold=None), "threshold"),
    (_edit(band=-0.01), "band"), (_edit(band=0.5), "band"), (_edit(max_fpr=0), "max_fpr"),
    (_edit(strategy="median"), "unknown strategy"), (_edit(strategy=["weighted"]), "unknown strategy"),
    (_edit(threshold=...), "missing key(s): threshold"), (_edit(extra=1), "unknown key(s): extra"),
    (_edit(val=[]), "'val' must be an object"), (_edit(val_n_real=...), "'val' lacks n_real"),
    (_edit(val_fpr=1.5), "val.fpr"), (_edit(val_n_fake=-1), "val.n_fake"), (_edit(val_n_fake=2.5), "val.n_fake"),
    (_edit(detectors="swin"), "detectors"), (_edit(detectors=[""]), "detectors"), (_edit(created=3), "created"),
    (_edit(mirror="yes"), "mirror must be true or false"), (_edit(mirror=1), "mirror must be true or false"),
    ('{"strategy": "weighted", "threshold": NaN, "band": 0.1}', "missing key(s)"),
])
def test_bad_files_are_rejected_with_one_line(tmp_path, text, expected):
    (tmp_path / "ensemble.json").write_text(text)
    with pytest.raises(OperatingPointError) as info:
        load_operating_point(tmp_path)
    message = str(info.value)
    assert expected in message and "\n" not in message and "ensemble.json" in message


def test_nan_threshold_is_rejected(tmp_path):
    path = tmp_path / "op.json"
    path.write_text(_edit().replace('"threshold": 0.62', '"threshold": NaN'))
    with pytest.raises(OperatingPointError, match="threshold"):
        read_operating_point(path)
    with pytest.raises(OperatingPointError, match="file not found"):
        read_operating_point(tmp_path / "none.json")


def test_the_loader_imports_no_ui_and_no_training_code():
    code = ("import sys, analysis.operating_point; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('train', 'ui', 'pages', 'streamlit', 'api', "
            "'video', 'torch')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------- AnalysisSettings: None = the operating point
from analysis.ensemble import STRATEGIES
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD, STRATEGY_NAMES, AnalysisSettings


def test_settings_leave_threshold_and_band_to_the_operating_point():
    s = AnalysisSettings()
    assert s.threshold is None and s.band is None and not s.resolved
    assert (DEFAULT_THRESHOLD, DEFAULT_BAND) == (0.5, 0.1)
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    op = OperatingPoint(**{**_good(), "val": ValidationRates(**_good()["val"])})
    assert AnalysisSettings(**op.settings()).resolved
    assert AnalysisSettings(threshold=0, band=0).resolved and AnalysisSettings(threshold=1.0, band=0.49).resolved


@pytest.mark.parametrize("kwargs,fragment", [
    ({"threshold": 1.5}, "threshold must be between 0 and 1, got 1.5"),
    ({"threshold": -0.1}, "threshold must be between 0 and 1"),
    ({"threshold": float("nan")}, "threshold must be between 0 and 1"),
    ({"threshold": True}, "threshold must be between 0 and 1"),
    ({"band": 0.5}, "band must be at least 0 and below 0.5, got 0.5"),
    ({"band": -0.01}, "band must be at least 0 and below 0.5"),
    ({"strategy": "nope"}, "unknown strategy 'nope'"),
    ({"margin": -0.1}, "margin must be between 0 and 2"),
    ({"margin": 2.5}, "margin must be between 0 and 2, got 2.5"),
    ({"min_face_size": 0}, "min_face_size must be at least 1"),
    ({"max_faces": 0}, "max_faces must be at least 1"),
    ({"mirror": "false"}, "mirror must be true or false, got 'false'"),
    ({"whole_image_fallback": 1}, "whole_image_fallback must be true or false"),
])
def test_settings_reject_bad_values_with_one_line(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        AnalysisSettings(**kwargs)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=fragment):
        AnalysisSettings.from_dict(kwargs)


def test_settings_import_no_cycle():
    for first in ("analysis.settings", "analysis.ensemble", "analysis.operating_point", "analysis.analyzer"):
        result = subprocess.run([sys.executable, "-c", f"import {first}"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
