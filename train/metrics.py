"""Binary detection metrics (label 1 = fake, score = probability of fake) in plain numpy, matching scikit-learn,
and the ROC / confusion-matrix / reliability-diagram plots (matplotlib, Agg backend)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from analysis.ensemble import verdict_for
from analysis.report import FAKE, UNCERTAIN
from analysis.settings import DEFAULT_BAND

FPR_TARGETS = (0.01, 0.05, 0.10)


def _arrays(y_true: Sequence, scores: Sequence) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({len(y)} vs {len(s)})")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(len(y)) and 0 < y.sum() < len(y)


def _counts_by_threshold(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds descending, true positives, false positives) counted at score >= each distinct threshold."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return s[last], tps.astype(np.float64), fps.astype(np.float64)


def roc_curve(y_true: Sequence, scores: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf as scikit-learn does."""
    y, s = _arrays(y_true, scores)
    thr, tps, fps = _counts_by_threshold(y, s)
    p, n = tps[-1] if len(tps) else 0.0, fps[-1] if len(fps) else 0.0
    tpr = np.r_[0.0, tps / p] if p else np.r_[0.0, np.full(len(tps), np.nan)]
    fpr = np.r_[0.0, fps / n] if n else np.r_[0.0, np.full(len(fps), np.nan)]
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(y_true: Sequence, scores: Sequence) -> float:
    y, s = _arrays(y_true, scores)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def average_precision(y_true: Sequence, scores: Sequence) -> float:
    """Sum over thresholds of (recall step) x precision, as sklearn.metrics.average_precision_score."""
    y, s = _arrays(y_true, scores)
    if not y.sum():
        return float("nan")
    _, tps, fps = _counts_by_threshold(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y_true: Sequence, probs: Sequence) -> float:
    y, p = _arrays(y_true, probs)
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def confusion(y_true: Sequence, probs: Sequence, threshold: float = 0.5) -> np.ndarray:
    """[[TN, FP], [FN, TP]]: rows true real/fake, columns predicted real/fake (sklearn's layout)."""
    y, p = _arrays(y_true, probs)
    pred = (p >= threshold).astype(np.int64)
    return np.array([[np.sum((y == 0) & (pred == 0)), np.sum((y == 0) & (pred == 1))],
                     [np.sum((y == 1) & (pred == 0)), np.sum((y == 1) & (pred == 1))]], dtype=np.int64)


def per_class(cm: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of each class from a confusion matrix (0 where undefined, as zero_division=0)."""
    out = {}
    for k, name in enumerate(("real", "fake")):
        tp = float(cm[k, k])
        predicted, actual = float(cm[:, k].sum()), float(cm[k, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}
    return out


def expected_calibration_error(y_true: Sequence, probs: Sequence, bins: int = 15) -> float:
    """Mean |fraction fake - mean predicted P(fake)| over equal-width probability bins, weighted by bin size."""
    y, p = _arrays(y_true, probs)
    if not len(y):
        return float("nan")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(y[sel].mean() - p[sel].mean())
    return float(total / len(y))


def reliability_bins(y_true: Sequence, probs: Sequence, bins: int = 15) -> dict[str, list[float]]:
    y, p = _arrays(y_true, probs)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    centre, frac, conf, count = [], [], [], []
    for b in range(bins):
        sel = which == b
        if sel.any():
            centre.append((b + 0.5) / bins)
            frac.append(float(y[sel].mean()))
            conf.append(float(p[sel].mean()))
            count.append(int(sel.sum()))
    return {"centre": centre, "fraction_fake": frac, "mean_probability": conf, "count": count}


def equal_error_rate(y_true: Sequence, scores: Sequence) -> tuple[float, float]:
    """(EER, threshold) where the false-positive rate equals the false-negative rate, interpolated on the ROC."""
    y, s = _arrays(y_true, scores)
    if not _both_classes(y):
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, s)
    fnr = 1 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    k = int(np.flatnonzero(diff <= 0)[0])
    if k == 0 or diff[k] == 0:
        t = thr[k] if np.isfinite(thr[k]) else thr[min(k + 1, len(thr) - 1)]
        return float((fpr[k] + fnr[k]) / 2), float(t)
    w = diff[k - 1] / (diff[k - 1] - diff[k])
    eer = fpr[k - 1] + w * (fpr[k] - fpr[k - 1])
    lo = thr[k - 1] if np.isfinite(thr[k - 1]) else thr[k]
    return float(eer), float(lo + w * (thr[k] - lo))


def threshold_at_fpr(y_true: Sequence, scores: Sequence, target: float) -> dict[str, float]:
    """The lowest threshold whose false-positive rate stays at or under `target`, and the TPR it gives."""
    y, s = _arrays(y_true, scores)
    if not _both_classes(y):
        return {"target_fpr": target, "threshold": float("nan"), "fpr": float("nan"), "tpr": float("nan")}
    fpr, tpr, thr = roc_curve(y, s)
    k = int(np.flatnonzero(fpr <= target + 1e-12)[-1])
    return {"target_fpr": target, "threshold": float(thr[k]), "fpr": float(fpr[k]), "tpr": float(tpr[k])}


def compute_metrics(y_true: Sequence, probs: Sequence, threshold: float = 0.5, bins: int = 15) -> dict:
    """Every scalar metric of one set of calibrated probabilities; NaN (JSON null) where undefined."""
    y, p = _arrays(y_true, probs)
    cm = confusion(y, p, threshold)
    eer, eer_thr = equal_error_rate(y, p)
    classes = per_class(cm)
    return {
        "n": int(len(y)), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
        "auc": roc_auc(y, p), "average_precision": average_precision(y, p),
        "accuracy": float((cm[0, 0] + cm[1, 1]) / len(y)) if len(y) else float("nan"),
        "balanced_accuracy": float(np.mean([classes[c]["recall"] for c in classes
                                            if classes[c]["support"]])) if len(y) else float("nan"),
        "log_loss": log_loss(y, p) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p, bins),
        "eer": eer, "eer_threshold": eer_thr, "threshold": threshold,
        "precision_real": classes["real"]["precision"], "recall_real": classes["real"]["recall"],
        "f1_real": classes["real"]["f1"],
        "precision_fake": classes["fake"]["precision"], "recall_fake": classes["fake"]["recall"],
        "f1_fake": classes["fake"]["f1"],
        "confusion": cm.tolist(),
        "operating_points": [threshold_at_fpr(y, p, t) for t in FPR_TARGETS],
    }


# ---------------------------------------------------------------------------------------------- verdicts
@dataclass
class VerdictRates:
    """Shares of real and fake items per verdict under the app's rule (analysis.ensemble.verdict_for)."""
    threshold: float
    band: float
    fpr: float               # reals called FAKE
    tpr: float               # fakes called FAKE
    uncertain_real: float    # reals called UNCERTAIN
    uncertain_fake: float    # fakes called UNCERTAIN
    n_real: int
    n_fake: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict_rates(y_true: Sequence, probs: Sequence, threshold: float, band: float) -> VerdictRates:
    """FPR, TPR and UNCERTAIN shares of `probs` judged exactly as the app judges them (NaN for an absent class)."""
    y, p = _arrays(y_true, probs)
    verdicts = np.array([verdict_for(float(v), threshold, band) for v in p], dtype=object)

    def share(label: int, verdict: str) -> float:
        sel = y == label
        return float(np.mean(verdicts[sel] == verdict)) if sel.any() else float("nan")

    return VerdictRates(threshold=float(threshold), band=float(band), fpr=share(0, FAKE), tpr=share(1, FAKE),
                        uncertain_real=share(0, UNCERTAIN), uncertain_fake=share(1, UNCERTAIN),
                        n_real=int((y == 0).sum()), n_fake=int((y == 1).sum()))


@dataclass
class OperatingPointResult:
    """A threshold and band for AnalysisSettings, and what they give on the scores they were chosen on."""
    threshold: float
    band: float
    max_fpr: float
    fake_from: float         # the lowest probability called FAKE: threshold + band
    requested_band: float    # the band asked for (narrowed when the FAKE edge is too low to fit it below)
    rates: VerdictRates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def operating_point(y_true: Sequence, probs: Sequence, max_fpr: float = 0.05,
                    band: float = DEFAULT_BAND) -> OperatingPointResult:
    """The most permissive (threshold, band) that calls at most `max_fpr` of the reals FAKE.

    The app calls p FAKE from threshold + band on (analysis.ensemble.verdict_for). With k = floor(max_fpr x reals)
    false positives allowed, the FAKE edge goes to the lowest score above the (k+1)-th highest real score: every
    lower edge calls more than k reals FAKE, every higher one calls fewer fakes FAKE (on these scores). The band
    sits below the edge: threshold = edge - band, narrowed to edge / 2 when the edge is too low for it, so that
    0 < threshold < 1 and the REAL region is never empty. Use validation scores, never the test split's.
    Raises ValueError (one line) for bad arguments or scores without both classes.
    """
    y, p = _arrays(y_true, probs)
    if not 0.0 < max_fpr < 1.0:
        raise ValueError(f"max_fpr must be between 0 and 1 (exclusive), got {max_fpr}")
    if not 0.0 <= band < 0.5:
        raise ValueError(f"band must be at least 0 and below 0.5, got {band}")
    if not _both_classes(y):
        raise ValueError("an operating point needs scores of both real and fake items")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("scores must be probabilities between 0 and 1")
    reals = np.sort(p[y == 0])[::-1]
    allowed = int(np.floor(max_fpr * len(reals) + 1e-9))
    kept_out = reals[allowed]           # the highest real score that must not be FAKE
    above = p[p > kept_out]
    edge = float(above.min()) if len(above) else (kept_out + 1.0) / 2.0
    if edge <= kept_out:
        raise ValueError(f"{len(reals) - allowed} real items score 1.0: no threshold below 1 keeps them from FAKE")

    def place(edge: float) -> tuple[float, float]:
        b = min(float(band), edge / 2.0)
        t = edge - b
        if t >= 1.0:  # band 0 and an edge at 1.0: any edge above kept_out separates the same way
            t = (kept_out + 1.0) / 2.0
        return t, b

    threshold, used_band = place(edge)
    rates = verdict_rates(y, p, threshold, used_band)
    for _ in range(8):  # verdict_for's 1e-9 tolerance may pull a real just below the edge into FAKE
        if rates.fpr <= max_fpr:
            break
        edge = min(edge + 1e-9, 1.0)
        threshold, used_band = place(edge)
        rates = verdict_rates(y, p, threshold, used_band)
    if rates.fpr > max_fpr:
        raise ValueError(f"no threshold keeps the false positives at or under {max_fpr:.1%}")
    return OperatingPointResult(threshold=float(threshold), band=float(used_band), max_fpr=float(max_fpr),
                                fake_from=float(threshold + used_band), requested_band=float(band), rates=rates)


# ---------------------------------------------------------------------------------------------- calibration
@dataclass
class CalibrationSummary:
    """Calibration of one scorer before (temperature 1) and after (the manifest's temperature)."""
    n: int
    ece_before: float
    ece_after: float
    log_loss_before: float
    log_loss_after: float
    bins_before: dict[str, list[float]]
    bins_after: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_summary(y_true: Sequence, before: Sequence, after: Sequence, bins: int = 15) -> CalibrationSummary:
    y, b = _arrays(y_true, before)
    _, a = _arrays(y, after)
    empty = not len(y)
    return CalibrationSummary(
        n=int(len(y)), ece_before=expected_calibration_error(y, b, bins),
        ece_after=expected_calibration_error(y, a, bins),
        log_loss_before=float("nan") if empty else log_loss(y, b),
        log_loss_after=float("nan") if empty else log_loss(y, a),
        bins_before=reliability_bins(y, b, bins), bins_after=reliability_bins(y, a, bins))


def source_groups(keys: Sequence[str], y_true: Sequence, pair_reals: Mapping[str, str] | None = None
                  ) -> dict[str, list[int]]:
    """Item indices per key (e.g. source). A key whose items are all fake and that `pair_reals` maps to a partner
    (e.g. Stable Diffusion faces -> the FFHQ photographs) also gets the partner's reals, so it has an AUC."""
    y = np.asarray(y_true)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[str(k)].append(i)
    for key, partner in (pair_reals or {}).items():
        idx = groups.get(key)
        if idx and not (y[idx] == 0).any():
            groups[key] = sorted(idx + [i for i in groups.get(partner, []) if y[i] == 0])
    return dict(sorted(groups.items()))


def metrics_by(keys: Sequence[str], y_true: Sequence, probs: Sequence, threshold: float = 0.5,
               pair_reals: Mapping[str, str] | None = None) -> dict[str, dict]:
    """compute_metrics per value of `keys` (e.g. each sample's source); see source_groups for `pair_reals`."""
    y, p = _arrays(y_true, probs)
    return {k: compute_metrics(y[idx], p[idx], threshold) for k, idx in source_groups(keys, y, pair_reals).items()}


def aggregate_by(keys: Sequence[str], y_true: Sequence, probs: Sequence) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One score per key (e.g. per video): the mean probability of its items; the label must agree."""
    y, p = _arrays(y_true, probs)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[str(k)].append(i)
    names = sorted(groups)
    labels = []
    for k in names:
        values = set(y[groups[k]].tolist())
        if len(values) != 1:
            raise ValueError(f"{k}: items with different labels cannot be aggregated")
        labels.append(values.pop())
    return names, np.array(labels, np.int64), np.array([p[groups[k]].mean() for k in names])


# ---------------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def plot_roc(curves: dict[str, tuple[Sequence, Sequence]], path: str | Path, title: str = "ROC") -> Path:
    """One ROC line per entry of `curves` (name -> (labels, scores))."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    for name, (y, s) in curves.items():
        if not _both_classes(np.asarray(y)):
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, path: str | Path, title: str = "Confusion matrix") -> Path:
    plt = _pyplot()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=110)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"], yticklabels=["real", "fake"],
           xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


def plot_reliability(series: dict[str, tuple[Sequence, Sequence]], path: str | Path, bins: int = 15,
                     title: str = "Reliability") -> Path:
    """Fraction of fakes against mean predicted probability per bin, one line per entry (e.g. before/after)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    for name, (y, p) in series.items():
        rb = reliability_bins(y, p, bins)
        ax.plot(rb["mean_probability"], rb["fraction_fake"], marker="o", ms=3,
                label=f"{name} (ECE {expected_calibration_error(y, p, bins):.3f})")
    ax.set(xlabel="mean predicted P(fake)", ylabel="fraction fake", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=7)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_plots(y_true: Sequence, probs: Sequence, out_dir: str | Path, prefix: str, threshold: float = 0.5,
               uncalibrated: Sequence | None = None) -> list[Path]:
    """ROC, confusion matrix and reliability diagram PNGs for one split; returns their paths."""
    out_dir = Path(out_dir)
    y, p = _arrays(y_true, probs)
    series = {"calibrated": (y, p)}
    if uncalibrated is not None:
        series = {"before": (y, np.asarray(uncalibrated, np.float64)), "after": (y, p)}
    return [plot_roc({prefix: (y, p)}, out_dir / f"{prefix}_roc.png", f"ROC ({prefix})"),
            plot_confusion(confusion(y, p, threshold), out_dir / f"{prefix}_confusion.png",
                           f"Confusion ({prefix}, t={threshold:.2f})"),
            plot_reliability(series, out_dir / f"{prefix}_reliability.png", title=f"Reliability ({prefix})")]


def auc_by_source(labels: np.ndarray, probs: np.ndarray, sources: Sequence[str],
                  pair_reals: dict[str, str]) -> dict[str, float | None]:
    """AUC within each source; a source of fakes only is paired with the reals of its partner source."""
    out: dict[str, float | None] = {}
    for src, idx in source_groups(sources, labels, pair_reals).items():
        y = labels[idx]
        out[src] = float(roc_auc(y, probs[idx])) if len(set(y.tolist())) == 2 else None
    return out
