"""Score converted detectors (and their ensemble) on a labelled data set, as the app would.

    python -m train.evaluate --models converted_models [--names xception swin] --data DIR|INDEX.csv [--data ...]
                             [--split test] [--ensemble weighted] [--frames 16] [--out reports/NAME]

`--data` is a raw layout (images and videos: faces are found with the app's FaceFinder and margin, videos sampled
at `--frames` evenly spaced frames) or a crop index from train/prepare.py (its crops are scored as they are).
Images score as their most suspicious face (as the app reports them); video frames likewise, and a video as the
mean of its frames. Metrics: per model, per source, frame level and video level, with the thresholds that give
1%, 5% and 10% false positives. Writes `report.json` and ROC / confusion / reliability PNGs to `--out`.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from train.data import DataError, Sample, SplitFractions, assign_splits, by_split, load_samples
from train.metrics import (aggregate_by, clean_json, compute_metrics, metrics_by, plot_confusion,
                           plot_reliability, plot_roc, confusion)

log = logging.getLogger("train.evaluate")
REPO_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- ensemble
def ensemble_function(strategy: str | None, weights: dict[str, float]) -> Callable[[dict, dict], float] | None:
    """probs, calibrated logits -> ensemble probability, through analysis.ensemble.combine when it exists."""
    if not strategy:
        return None
    from analysis.ensemble import STRATEGIES, combine
    from analysis.settings import AnalysisSettings

    if strategy not in STRATEGIES:
        raise DataError(f"unknown ensemble strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    settings = AnalysisSettings(strategy=strategy)
    return lambda probs, logits: float(combine(probs, logits, settings, weights).probability)


# ---------------------------------------------------------------------------------------------- units
@dataclass
class Unit:
    """What gets one score: an image, or one frame of a video (several faces: the most suspicious counts)."""

    media: str
    frame: int
    label: int
    source: str
    kind: str
    crops: list[np.ndarray] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


def units_from_index(samples: Sequence[Sample]) -> list[Unit]:
    from train.engine import read_rgb
    units: dict[tuple[str, int], Unit] = {}
    for s in samples:
        key = (s.media, s.frame)
        unit = units.setdefault(key, Unit(media=s.media, frame=s.frame, label=s.label, source=s.source, kind=s.kind))
        unit.crops.append(read_rgb(s.path))
    return list(units.values())


def units_from_media(sample: Sample, finder, frames: int, keep_no_face: bool) -> list[Unit]:
    """Faces of one raw image or video, found as the app finds them."""
    from analysis.errors import MediaError
    from analysis.media import load_image
    from train.prepare import _whole_image_face, read_video_frames

    try:
        if sample.kind == "video":
            pictures = read_video_frames(sample.path, frames)
        else:
            pictures = [(-1, load_image(sample.path).rgb)]
    except MediaError as exc:
        log.warning("skipped %s: %s", sample.path, exc)
        return []
    units = []
    for (index, rgb), faces in zip(pictures, finder.detect_many([rgb for _, rgb in pictures])):
        if not faces and keep_no_face:
            faces = [_whole_image_face(rgb)]
        if faces:
            units.append(Unit(media=sample.path, frame=index, label=sample.label, source=sample.source,
                              kind=sample.kind, crops=[f.crop for f in faces]))
    return units


def score_units(units: list[Unit], detectors: dict, ensemble: Callable | None, ensemble_name: str) -> None:
    """Fill unit.scores: per model (and ensemble) the highest calibrated probability among the unit's faces."""
    crops = [c for u in units for c in u.crops]
    if not crops:
        return
    probs, cal_logits = {}, {}
    for name, det in detectors.items():
        z = np.asarray(det.logits(crops), dtype=np.float64)
        probs[name] = det.calibrate(z)
        cal_logits[name] = z / float(det.temperature)
    ens = None
    if ensemble is not None:
        ens = np.array([ensemble({n: float(probs[n][i]) for n in detectors},
                                 {n: float(cal_logits[n][i]) for n in detectors}) for i in range(len(crops))])
    start = 0
    for u in units:
        end = start + len(u.crops)
        for name in detectors:
            u.scores[name] = float(probs[name][start:end].max())
        if ens is not None:
            u.scores[ensemble_name] = float(ens[start:end].max())
        u.crops = []  # free the pixels once scored
        start = end


# ---------------------------------------------------------------------------------------------- metrics
def model_report(units: list[Unit], name: str, threshold: float) -> dict:
    y = np.array([u.label for u in units], dtype=np.int64)
    p = np.array([u.scores[name] for u in units], dtype=np.float64)
    out = {"items": compute_metrics(y, p, threshold),
           "by_source": metrics_by([u.source for u in units], y, p, threshold)}
    images = [i for i, u in enumerate(units) if u.kind == "image"]
    videos = [i for i, u in enumerate(units) if u.kind == "video"]
    if images and videos:
        out["images"] = compute_metrics(y[images], p[images], threshold)
    if videos:
        names, yv, pv = aggregate_by([units[i].media for i in videos], y[videos], p[videos])
        out["frames"] = compute_metrics(y[videos], p[videos], threshold)
        out["videos"] = compute_metrics(yv, pv, threshold)
        out["per_video"] = {n: {"label": int(l), "probability": float(q)} for n, l, q in zip(names, yv, pv)}
    return out


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else "  n/a "


def print_summary(report: dict, stream=None) -> None:
    stream = stream or sys.stdout
    print(f"{'model':<28}{'n':>7}{'AUC':>9}{'AP':>9}{'acc':>9}{'logloss':>9}{'ECE':>9}{'EER':>9}"
          f"{'video AUC':>11}", file=stream)
    for name, r in report["models"].items():
        m = r["items"]
        print(f"{name:<28}{m['n']:>7}{_fmt(m['auc']):>9}{_fmt(m['average_precision']):>9}{_fmt(m['accuracy']):>9}"
              f"{_fmt(m['log_loss']):>9}{_fmt(m['ece']):>9}{_fmt(m['eer']):>9}"
              f"{_fmt(r.get('videos', {}).get('auc')):>11}", file=stream)
    print("\noperating points (threshold on P(fake) -> TPR at that FPR):", file=stream)
    for name, r in report["models"].items():
        points = "  ".join(f"FPR<={p['target_fpr']:.0%}: t={_fmt(p['threshold'])} TPR={_fmt(p['tpr'])}"
                           for p in r["items"]["operating_points"])
        print(f"  {name:<26}{points}", file=stream)


# ---------------------------------------------------------------------------------------------- main flow
def evaluate(models_dir: str | Path, data: Sequence[str], names: Sequence[str] | None = None,
             split: str = "test", ensemble: str | None = None, frames: int = 16, out: str | Path | None = None,
             threshold: float = 0.5, seed: int = 0, fractions: SplitFractions | None = None,
             keep_no_face: bool = False, progress: bool = True, chunk: int = 16) -> dict:
    from detectors.artifacts import load_detectors
    from tqdm import tqdm

    detectors, errors = load_detectors(models_dir, list(names) if names else None)
    for name, why in errors.items():
        if names or "no artifact" not in why:
            log.warning("%s not loaded: %s", name, why)
    if not detectors:
        raise DataError(f"no detector loaded from {models_dir}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    from analysis.analyzer import model_weight
    weights = {n: model_weight(d) for n, d in detectors.items()}
    combine = ensemble_function(ensemble, weights)
    ensemble_name = f"ensemble:{ensemble}" if ensemble else ""

    samples = load_samples(data)
    if split != "all":
        if not all(s.split for s in samples):
            log.warning("no %s split given for some data: splitting by group with seed %d (the same as "
                        "train/prepare.py only for a data set prepared on its own)", split, seed)
            samples = assign_splits(samples, fractions, seed)
        samples = by_split(samples).get(split, [])
    if not samples:
        raise DataError(f"no samples in the {split} split")

    started = time.time()
    units: list[Unit] = []
    prepared = [s for s in samples if s.original]
    raw = [s for s in samples if not s.original]
    if prepared:
        for start in tqdm(range(0, len(prepared), chunk * 4), desc="crops", disable=not progress):
            batch = units_from_index(prepared[start:start + chunk * 4])
            score_units(batch, detectors, combine, ensemble_name)
            units += batch
    skipped = 0
    if raw:
        from analysis.faces import FaceFinder
        from analysis.settings import AnalysisSettings
        finder = FaceFinder.from_settings(AnalysisSettings())
        for start in tqdm(range(0, len(raw), chunk), desc="media", disable=not progress):
            batch = []
            for s in raw[start:start + chunk]:
                found = units_from_media(s, finder, frames, keep_no_face)
                skipped += not found
                batch += found
            score_units(batch, detectors, combine, ensemble_name)
            units += batch
    if not units:
        raise DataError("no face found in any of the samples")
    model_names = list(detectors) + ([ensemble_name] if ensemble else [])
    report = {"models_dir": str(models_dir), "data": [str(d) for d in data], "split": split,
              "ensemble": ensemble, "threshold": threshold, "created": datetime.now().isoformat(timespec="seconds"),
              "n_units": len(units), "n_media": len({u.media for u in units}), "skipped_no_face": skipped,
              "seconds": round(time.time() - started, 1),
              "temperatures": {n: float(d.temperature) for n, d in detectors.items()},
              "models": {n: model_report(units, n, threshold) for n in model_names},
              "not_loaded": errors}
    report = clean_json(report)
    if out:
        write_outputs(report, units, model_names, Path(out), threshold)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_outputs(report: dict, units: list[Unit], model_names: list[str], out: Path, threshold: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    y = np.array([u.label for u in units])
    curves = {n: (y, np.array([u.scores[n] for u in units])) for n in model_names}
    plot_roc(curves, out / "roc.png", "ROC (faces / frames)")
    plot_reliability(curves, out / "reliability.png")
    for n, (yy, p) in curves.items():
        plot_confusion(confusion(yy, p, threshold), out / f"confusion_{_safe(n)}.png", f"{n} (t={threshold:.2f})")
    with (out / "scores.csv").open("w", encoding="utf-8") as fh:
        fh.write("media,frame,label,source," + ",".join(model_names) + "\n")
        for u in units:
            fh.write(f"\"{u.media}\",{u.frame},{u.label},{u.source}," +
                     ",".join(f"{u.scores[n]:.6f}" for n in model_names) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default=str(REPO_ROOT / "converted_models"), help="folder of converted models")
    p.add_argument("--names", nargs="+", default=None, help="only these detectors")
    p.add_argument("--data", action="append", required=True,
                   help="raw layout (DIR, manifest CSV, labels.json) or a crop index; NAME=PATH names the source")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--ensemble", default=None, help="also score the ensemble with this strategy (e.g. weighted)")
    p.add_argument("--frames", type=int, default=16, help="evenly spaced frames per video (raw videos)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--keep-no-face", action="store_true", help="score the whole image when no face is found")
    p.add_argument("--seed", type=int, default=0, help="split seed where the data has no split")
    p.add_argument("--out", default=None, help="report folder (default reports/eval-<timestamp>)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else REPO_ROOT / "reports" / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        report = evaluate(args.models, args.data, args.names, args.split, args.ensemble, args.frames, out,
                          args.threshold, args.seed, keep_no_face=args.keep_no_face, progress=not args.no_progress)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(report)
    print(f"\nreport: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
