"""Score converted detectors and their ensemble on a labelled data set through the app's own pipeline.

    python -m train.evaluate --models converted_models [--names xception swin] --data DIR|INDEX.csv [--data ...]
                             [--split test] [--ensemble weighted] [--frames 32] [--threshold T] [--band B]
                             [--operating-point-split val [--max-fpr 0.05] [--out-operating-point FILE]]
                             [--out reports/NAME]

`--data` is a raw layout or a crop index from train/prepare.py:
- raw images go through `Analyzer.analyze_image` (the app's face finder, margin and detectors; `--keep-no-face`
  scores the whole image when no face is found, as the app's whole-image fallback does);
- raw videos (clips) go through the real video engine, `video.engine.analyze_video`, with the app's settings and
  `--frames` evenly spaced frames: faces, tracks, the per-track confident strategy and the most suspicious
  decisive track. A clip's result is the video report's probability and verdict; per detector, its face
  probabilities are aggregated over tracks the same way. `report.json` lists every clip (`clips`); clips labelled
  `unknown` in a `labels.json` are reported (whatever the split) but not scored; a clip without a face has no
  verdict and counts as not correct;
- crops of an index are scored as they are, each crop one face, through the analyzer's detectors and ensemble;
  `--frame-fill reflect|blur` first replaces the black frame the finder puts around a published tight crop with
  image context (train.augment.ContextFill), a robustness check: the face's surroundings as a video frame has them.

Items (images, video frames, crops) score as their most suspicious face. Metrics per model (the detectors and
`ensemble:<strategy>`): per source, frame level and video level (engine clips: the engine's aggregate; videos of a
crop index: the mean of their frames), with the thresholds that give 1%, 5% and 10% false positives, and the
calibration (ECE before and after each detector's temperature) with a reliability diagram per model.

`--operating-point-split val` chooses on that split's ensemble scores the threshold and band under which at most
`--max-fpr` of the real items are called FAKE (train.metrics.operating_point), reports what they give on the
evaluated split, and `--out-operating-point converted_models/ensemble.json` writes them for the app
(analysis.operating_point). Writes `report.json`, `scores.csv` and ROC / confusion / reliability PNGs to `--out`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from analysis.analyzer import Analyzer
from analysis.ensemble import STRATEGIES, combine, verdict_for
from analysis.faces import Face
from analysis.operating_point import OperatingPoint, OperatingPointError, ValidationRates
from analysis.report import FAKE, REAL, FaceResult, json_safe, report_failed
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD, AnalysisSettings
from train.augment import ContextFill
from train.data import (LABEL_NAMES, DataError, Sample, SplitFractions, assign_splits, by_split, load_samples,
                        media_kind, parse_data_arg, parse_label, parse_pairs)
from train.dataset import read_rgb
from train.metrics import (OperatingPointResult, aggregate_by, calibration_summary, compute_metrics,
                           confusion, metrics_by, operating_point, plot_confusion, plot_reliability, plot_roc,
                           verdict_rates)
from video.aggregate import summarize, video_probability
from video.engine import analyze_video
from video.report import FrameFace, VideoReport
from video.sampling import VideoOptions

log = logging.getLogger("train.evaluate")
REPO_ROOT = Path(__file__).resolve().parent.parent
ENGINE, MEAN_OF_FRAMES = "engine", "mean_of_frames"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Unit:
    """What gets one score: an image, one frame of a video, or one crop-index item (the most suspicious face)."""

    media: str
    frame: int
    label: int
    source: str
    kind: str
    scores: dict[str, float] = field(default_factory=dict)       # calibrated P(fake) per model and the ensemble
    raw_scores: dict[str, float] = field(default_factory=dict)   # the same with temperature 1 (before calibration)


@dataclass
class ClipResult:
    """One video through the engine: the report's probability and verdict, per detector too."""

    path: str
    label: str                           # real | fake | unknown
    source: str
    split: str | None
    probability: float | None            # the video report's (ensemble, most suspicious decisive track)
    verdict: str | None                  # FAKE | REAL | UNCERTAIN, None without a face
    models: dict[str, float | None]      # per detector, aggregated like the ensemble
    model_verdicts: dict[str, str | None]  # per detector, its probability judged with the same threshold and band
    frames_analysed: int
    faces: int
    tracks: int
    correct: bool | None                 # verdict matches the label (UNCERTAIN is not correct); None: unknown
    error: str | None = None
    message: str | None = None
    verdict_at_operating_point: str | None = None

    @property
    def scored(self) -> bool:
        return self.label != "unknown" and self.probability is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScoredSet:
    units: list[Unit] = field(default_factory=list)
    clips: list[ClipResult] = field(default_factory=list)
    skipped_no_face: int = 0
    failed: list[str] = field(default_factory=list)   # "path: one-line error"


# ---------------------------------------------------------------------------------------------- scoring
def face_scores(results: Sequence[FaceResult], settings: AnalysisSettings, weights: dict[str, float],
                ensemble_name: str) -> tuple[dict[str, float], dict[str, float]]:
    """(calibrated, temperature-1) scores of an item: per detector and the ensemble, its most suspicious face.

    The temperature-1 ensemble combines the detectors' uncalibrated probabilities and logits with the same strategy
    and weights, so that the ensemble's calibration can be compared too."""
    names = sorted({n for r in results for n in r.models})
    scores = {n: max(float(r.models[n]) for r in results if n in r.models) for n in names}
    raw = {n: max(_sigmoid(float(r.logits[n])) for r in results if n in r.logits) for n in names}
    ens = [r.probability for r in results if r.probability is not None]
    if ens:
        scores[ensemble_name] = float(max(ens))
        raw_ens = []
        for r in results:
            z = {n: float(v) for n, v in r.logits.items()}
            if z:
                raw_ens.append(combine({n: _sigmoid(v) for n, v in z.items()}, z, settings, weights).probability)
        raw[ensemble_name] = float(max(raw_ens))
    return scores, raw


def _unit(sample: Sample, frame: int, results: Sequence[FaceResult], settings: AnalysisSettings,
          analyzer: Analyzer, ensemble_name: str) -> Unit:
    scores, raw = face_scores(results, settings, analyzer.weights, ensemble_name)
    return Unit(media=sample.media, frame=frame, label=sample.label, source=sample.source, kind=sample.kind,
                scores=scores, raw_scores=raw)


def units_from_index(samples: Sequence[Sample], analyzer: Analyzer, settings: AnalysisSettings,
                     ensemble_name: str, frame_fill: ContextFill | None = None) -> list[Unit]:
    """Crops of a crop index: each one face, scored by the analyzer's detectors and ensemble as the app scores a
    face (the crops were already cut with the app's finder and margin). `frame_fill` first fills each crop's black
    frame, drawing from the same seed for every crop."""
    groups: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.media, s.frame)].append(s)
    faces: list[Face] = []
    for members in groups.values():
        for s in members:
            crop = read_rgb(s.path)
            if frame_fill is not None:
                crop = frame_fill(crop, np.random.default_rng(0))
            h, w = crop.shape[:2]
            faces.append(Face(box=(0.0, 0.0, float(w), float(h)),
                              score=0.0 if math.isnan(s.score) else float(s.score), landmarks=None, crop=crop))
    names = analyzer.active_detectors(settings)
    logits = analyzer.score_crops([f.crop for f in faces], names, mirror=settings.mirror)
    units, start = [], 0
    for (_, frame), members in groups.items():
        end = start + len(members)
        part = {n: v[start:end] for n, v in logits.items()}
        results = analyzer.face_results(faces[start:end], part, settings)
        units.append(_unit(members[0], frame, results, settings, analyzer, ensemble_name))
        start = end
    return units


def image_unit(sample: Sample, analyzer: Analyzer, settings: AnalysisSettings, ensemble_name: str,
               scored: ScoredSet) -> None:
    """A raw image through Analyzer.analyze_image (faces, whole-image fallback and all)."""
    report = analyzer.analyze_image(sample.path, settings)
    if report.error:
        log.warning("skipped %s: %s", sample.path, report.error)
        scored.failed.append(f"{sample.path}: {report.error}")
    elif not report.faces:
        scored.skipped_no_face += 1
    else:
        scored.units.append(_unit(sample, -1, report.faces, settings, analyzer, ensemble_name))


def engine_aggregate(report: VideoReport, value: Callable[[FrameFace], float | None],
                     threshold: float) -> float | None:
    """A video probability from one number per face, aggregated as video.engine aggregates the ensemble's: the
    confident strategy over each track's frames, then the most suspicious decisive track."""
    by_track: dict[int, list[float | None]] = defaultdict(list)
    for frame in report.frames:
        for face in frame.faces:
            by_track[face.track].append(value(face))
    track_probs = {}
    for tid, values in by_track.items():
        p = summarize(values, threshold).probability
        track_probs[tid] = None if p is None else round(float(p), 5)
    return video_probability(track_probs, [t.id for t in report.tracks if t.decisive])[0]


def _label_name(label: int) -> str:
    return LABEL_NAMES[label] if label in (0, 1) else "unknown"


def clip_result(sample: Sample, analyzer: Analyzer, settings: AnalysisSettings, options: VideoOptions,
                ensemble_name: str, scored: ScoredSet) -> ClipResult:
    """A raw video through the real engine; its frames with faces become units (frame-level metrics)."""
    report = analyze_video(sample.path, analyzer, settings, options)
    if report_failed(report):
        log.warning("clip %s: %s", sample.path, report.error)
        scored.failed.append(f"{sample.path}: {report.error}")
    elif report.error:
        log.warning("clip %s (partial result kept): %s", sample.path, report.error)
    faces = report.faces
    models = {n: engine_aggregate(report, lambda f, n=n: f.models.get(n), settings.threshold)
              for n in report.models_used}
    label = _label_name(sample.label)
    correct = None
    if label != "unknown":
        correct = report.verdict == (FAKE if sample.label == 1 else REAL)
        if not faces:
            scored.skipped_no_face += 1
        for frame in report.frames:
            if frame.faces:
                scored.units.append(_unit(sample, frame.index, frame.faces, settings, analyzer, ensemble_name))
    clip = ClipResult(path=sample.path, label=label, source=sample.source, split=sample.split,
                      probability=report.probability, verdict=report.verdict, models=models,
                      model_verdicts={n: verdict_for(v, settings.threshold, settings.band) for n, v in models.items()},
                      frames_analysed=len(report.frames), faces=len(faces), tracks=len(report.tracks),
                      correct=correct, error=report.error, message=report.message)
    scored.clips.append(clip)
    return clip


def unknown_clips(data: Sequence[str]) -> list[Sample]:
    """Videos listed with an unknown label (`unknown`, `?`, ...) in the `labels.json` of each `--data`: reported,
    never scored. (train.data skips them: they cannot be trained or scored on.)"""
    out = []
    for spec in data:
        source, path = parse_data_arg(spec)
        path = Path(path).expanduser().resolve()
        labels = path if path.suffix.lower() == ".json" else path / "labels.json"
        if not labels.is_file() or (path.is_dir() and ((path / "index.csv").is_file() or
                                                      any((path / n).is_file() for n in
                                                          ("manifest.csv", "labels.csv", "metadata.csv")))):
            continue
        try:
            entries = json.loads(labels.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # load_samples has already said what is wrong with it
        if isinstance(entries, dict):
            entries = [{"path": k, **(v if isinstance(v, dict) else {"label": v})} for k, v in entries.items()]
        for entry in entries if isinstance(entries, list) else []:
            name = str(entry.get("path") or entry.get("file") or "")
            try:
                label = parse_label(entry.get("label", ""))
            except DataError:
                continue
            file = labels.parent / name
            if label is None and name and file.is_file() and media_kind(file) == "video":
                out.append(Sample(path=str(file), label=-1, group=file.stem,
                                  source=source or labels.parent.name, kind="video"))
    return out


def score_samples(samples: Sequence[Sample], analyzer: Analyzer, settings: AnalysisSettings,
                  options: VideoOptions, ensemble_name: str, progress: bool = True, chunk: int = 64,
                  desc: str = "", frame_fill: ContextFill | None = None) -> ScoredSet:
    from tqdm import tqdm

    scored = ScoredSet()
    prepared = [s for s in samples if s.original]
    raw = [s for s in samples if not s.original]
    for start in tqdm(range(0, len(prepared), chunk), desc=f"{desc}crops", disable=not progress or not prepared):
        scored.units += units_from_index(prepared[start:start + chunk], analyzer, settings, ensemble_name,
                                         frame_fill)
    for s in tqdm(raw, desc=f"{desc}media", disable=not progress or not raw):
        if s.kind == "video":
            clip_result(s, analyzer, settings, options, ensemble_name, scored)
        else:
            image_unit(s, analyzer, settings, ensemble_name, scored)
    return scored


# ---------------------------------------------------------------------------------------------- metrics
def _clip_score(clip: ClipResult, name: str) -> float | None:
    return clip.probability if name.startswith("ensemble:") else clip.models.get(name)


def model_report(units: list[Unit], name: str, threshold: float,
                 clips: Sequence[ClipResult] | None = None, pair_reals: dict[str, str] | None = None) -> dict:
    """Metrics of one model; video level from the engine's clip results where there are some, else the mean of
    each video's frames (crop indexes)."""
    y = np.array([u.label for u in units], dtype=np.int64)
    p = np.array([u.scores[name] for u in units], dtype=np.float64)
    out = {"items": compute_metrics(y, p, threshold),
           "by_source": metrics_by([u.source for u in units], y, p, threshold, pair_reals)}
    images = [i for i, u in enumerate(units) if u.kind == "image"]
    videos = [i for i, u in enumerate(units) if u.kind == "video"]
    if images and videos:
        out["images"] = compute_metrics(y[images], p[images], threshold)
    if videos:
        out["frames"] = compute_metrics(y[videos], p[videos], threshold)
        engine = {c.path: c for c in clips or [] if c.scored and _clip_score(c, name) is not None}
        rest = [i for i in videos if units[i].media not in engine]
        per_video = {}
        if rest:
            names, yv, pv = aggregate_by([units[i].media for i in rest], y[rest], p[rest])
            per_video = {n: {"label": int(lab), "probability": float(q), "aggregation": MEAN_OF_FRAMES}
                         for n, lab, q in zip(names, yv, pv)}
        for path, c in engine.items():
            per_video[path] = {"label": LABEL_NAMES.index(c.label), "probability": float(_clip_score(c, name)),
                               "aggregation": ENGINE}
        per_video = dict(sorted(per_video.items()))
        out["videos"] = compute_metrics([v["label"] for v in per_video.values()],
                                        [v["probability"] for v in per_video.values()], threshold)
        out["per_video"] = per_video
    return out


def calibration_report(units: list[Unit], model_names: Sequence[str],
                       temperatures: dict[str, float]) -> dict[str, dict]:
    y = np.array([u.label for u in units], dtype=np.int64)
    out = {}
    for n in model_names:
        summary = calibration_summary(y, [u.raw_scores[n] for u in units], [u.scores[n] for u in units])
        out[n] = {"temperature": temperatures.get(n), **summary.to_dict(), "plot": f"reliability_{_safe(n)}.png"}
    return out


def clips_summary(clips: Sequence[ClipResult]) -> dict:
    scored = [c for c in clips if c.label != "unknown"]
    verdicts = defaultdict(int)
    for c in scored:
        verdicts[c.verdict or "none"] += 1
    return {"n": len(clips), "scored": len(scored), "unknown": len(clips) - len(scored),
            "correct": sum(bool(c.correct) for c in scored),
            "accuracy": sum(bool(c.correct) for c in scored) / len(scored) if scored else float("nan"),
            "verdicts": dict(verdicts)}


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else "  n/a "


def print_summary(report: dict, stream=None) -> None:
    stream = stream or sys.stdout
    print(f"{'model':<28}{'n':>7}{'AUC':>9}{'AP':>9}{'acc':>9}{'logloss':>9}{'ECE':>9}{'ECE T=1':>9}{'EER':>9}"
          f"{'video AUC':>11}", file=stream)
    calibration = report.get("calibration") or {}
    for name, r in report["models"].items():
        m = r["items"]
        print(f"{name:<28}{m['n']:>7}{_fmt(m['auc']):>9}{_fmt(m['average_precision']):>9}{_fmt(m['accuracy']):>9}"
              f"{_fmt(m['log_loss']):>9}{_fmt(m['ece']):>9}{_fmt(calibration.get(name, {}).get('ece_before')):>9}"
              f"{_fmt(m['eer']):>9}{_fmt(r.get('videos', {}).get('auc')):>11}", file=stream)
    print("\noperating points (threshold on P(fake) -> TPR at that FPR):", file=stream)
    for name, r in report["models"].items():
        points = "  ".join(f"FPR<={p['target_fpr']:.0%}: t={_fmt(p['threshold'])} TPR={_fmt(p['tpr'])}"
                           for p in r["items"]["operating_points"])
        print(f"  {name:<26}{points}", file=stream)
    op = report.get("operating_point")
    if op:
        fit = op["fit"]
        print(f"\nchosen on {op['fit_split']} ({op['strategy']}): threshold {op['threshold']:.4f}, band "
              f"{op['band']:.4f} (FAKE from {op['fake_from']:.4f}): FPR {_fmt(fit['fpr'])}, TPR {_fmt(fit['tpr'])}, "
              f"uncertain real {_fmt(fit['uncertain_real'])} / fake {_fmt(fit['uncertain_fake'])}", file=stream)
        ev = op.get("evaluated")
        if ev:
            print(f"  on {report['split']}: FPR {_fmt(ev['fpr'])}, TPR {_fmt(ev['tpr'])}, uncertain real "
                  f"{_fmt(ev['uncertain_real'])} / fake {_fmt(ev['uncertain_fake'])}", file=stream)
        if op.get("file"):
            print(f"  written to {op['file']}", file=stream)
    clips = report.get("clips") or []
    if clips:
        print(f"\nclips (video engine, {report.get('video_options', {}).get('frames')} frames):", file=stream)
        for c in clips:
            mark = "" if c["correct"] is None else ("ok" if c["correct"] else "WRONG")
            print(f"  {Path(c['path']).name:<28}{c['label']:<9}{_fmt(c['probability']):>9}  "
                  f"{c['verdict'] or '-':<10}{mark:<6}{c['frames_analysed']:>4} frames {c['faces']:>4} faces",
                  file=stream)


# ---------------------------------------------------------------------------------------------- main flow
def _settings(names: Sequence[str] | None, ensemble: str | None, threshold: float | None, band: float | None,
              keep_no_face: bool, mirror: bool | None = None) -> AnalysisSettings:
    base = AnalysisSettings()
    strategy = ensemble or base.strategy
    if strategy not in STRATEGIES:
        raise DataError(f"unknown ensemble strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    settings = AnalysisSettings(strategy=strategy, detectors=list(names) if names else None,
                                threshold=DEFAULT_THRESHOLD if threshold is None else float(threshold),
                                band=DEFAULT_BAND if band is None else float(band), whole_image_fallback=keep_no_face,
                                mirror=base.mirror if mirror is None else bool(mirror))
    if not 0 < settings.threshold < 1 or not 0 <= settings.band < 0.5:
        raise DataError(f"threshold must be in (0, 1) and band in [0, 0.5), got {settings.threshold} and "
                        f"{settings.band}")
    return settings


def _ensemble_arrays(units: Sequence[Unit], ensemble_name: str) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([u.label for u in units], dtype=np.int64),
            np.array([u.scores[ensemble_name] for u in units], dtype=np.float64))


def evaluate(models_dir: str | Path, data: Sequence[str], names: Sequence[str] | None = None,
             split: str = "test", ensemble: str | None = None, frames: int = 32, out: str | Path | None = None,
             threshold: float | None = None, seed: int = 0, fractions: SplitFractions | None = None,
             keep_no_face: bool = False, progress: bool = True, chunk: int = 64, band: float | None = None,
             operating_point_split: str | None = None, max_fpr: float = 0.05,
             out_operating_point: str | Path | None = None, pair_reals: dict[str, str] | None = None,
             mirror: bool | None = None, frame_fill: str | None = None) -> dict:
    """Scores `data` (split `split`) as the app would and returns the report (also written to `out`).
    `pair_reals` (fake-only source -> source whose reals it is scored against) gives such a source an AUC.
    `mirror` None: the app's default (AnalysisSettings.mirror). `frame_fill` (a ContextFill mode) fills the black
    frame of prepared crops before scoring; no operating point is chosen on crops changed so.
    Raises DataError (one line) for unusable data, models or options."""
    if out_operating_point and not operating_point_split:
        operating_point_split = "val"
    if frame_fill and operating_point_split:
        raise DataError("--frame-fill is a robustness check: choose the operating point on the crops as they are")
    try:
        fill = ContextFill(mode=frame_fill) if frame_fill else None
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if out_operating_point and operating_point_split != "val":
        raise DataError("the operating point written for the app is chosen on validation scores: "
                        "use --operating-point-split val")
    settings = _settings(names, ensemble, threshold, band, keep_no_face, mirror)
    try:
        options = VideoOptions(frames=frames, keep_thumbnails=False).validate()
    except ValueError as exc:
        raise DataError(str(exc)) from None
    analyzer = Analyzer(models_dir, list(names) if names else None)
    if threshold is None and band is None and not operating_point_split:
        # judged as the app judges by default: at the models' validated operating point when it applies
        settings = analyzer.resolve_settings(dataclasses.replace(settings, threshold=None, band=None))
    for name, why in analyzer.load_errors.items():
        if names or "no artifact" not in why:
            log.warning("%s not loaded: %s", name, why)
    if not analyzer.detectors:
        raise DataError(f"no detector loaded from {models_dir}: " +
                        "; ".join(f"{k}: {v}" for k, v in analyzer.load_errors.items()))
    try:
        detector_list = analyzer.active_detectors(settings)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    ensemble_name = f"ensemble:{settings.strategy}"

    samples = load_samples(data)
    if not all(s.split for s in samples) and (split != "all" or operating_point_split not in (None, "all")):
        log.warning("no split given for some data: splitting by group with seed %d (the same as "
                    "train/prepare.py only for a data set prepared on its own)", seed)
        samples = assign_splits(samples, fractions, seed)
    splits = by_split(samples)
    chosen = samples if split == "all" else splits.get(split, [])
    if not chosen:
        raise DataError(f"no samples in the {split} split")

    started = time.time()
    scored = score_samples(chosen + unknown_clips(data), analyzer, settings, options, ensemble_name, progress,
                           frame_fill=fill)
    if not scored.units:
        raise DataError("no face found in any of the samples")
    model_names = detector_list + [ensemble_name]
    temperatures = {n: float(analyzer.detectors[n].temperature) for n in detector_list}

    op_report = None
    if operating_point_split:
        if operating_point_split == split:
            fit_units = scored.units
        else:
            fit_samples = samples if operating_point_split == "all" else splits.get(operating_point_split, [])
            if not fit_samples:
                raise DataError(f"no samples in the {operating_point_split} split to choose the operating point on")
            fit_units = score_samples(fit_samples, analyzer, settings, options, ensemble_name, progress,
                                      desc=f"{operating_point_split} ").units
        try:
            op = operating_point(*_ensemble_arrays(fit_units, ensemble_name), max_fpr=max_fpr, band=settings.band)
        except ValueError as exc:
            raise DataError(f"operating point on the {operating_point_split} split: {exc}") from None
        op_report = _operating_point_report(op, operating_point_split, split, settings.strategy, detector_list,
                                            scored, ensemble_name, out_operating_point, settings.mirror)

    report = {"models_dir": str(models_dir), "data": [str(d) for d in data], "split": split,
              "ensemble": settings.strategy, "threshold": settings.threshold, "band": settings.band,
              "settings": settings.to_dict(), "video_options": {"frames": options.frames}, "frame_fill": frame_fill,
              "created": datetime.now().isoformat(timespec="seconds"),
              "n_units": len(scored.units), "n_media": len({u.media for u in scored.units}),
              "skipped_no_face": scored.skipped_no_face, "failed": scored.failed,
              "seconds": round(time.time() - started, 1), "temperatures": temperatures,
              "pair_reals": dict(pair_reals or {}),
              "models": {n: model_report(scored.units, n, settings.threshold, scored.clips, pair_reals)
                         for n in model_names},
              "calibration": calibration_report(scored.units, model_names, temperatures),
              "clips": [c.to_dict() for c in scored.clips], "clips_summary": clips_summary(scored.clips),
              "operating_point": op_report, "not_loaded": analyzer.load_errors}
    report = json_safe(report)
    if out:
        write_outputs(report, scored.units, model_names, Path(out), settings.threshold)
    return report


def _operating_point_report(op: OperatingPointResult, fit_split: str, split: str, strategy: str,
                            detectors: list[str], scored: ScoredSet, ensemble_name: str,
                            path: str | Path | None, mirror: bool) -> dict:
    fit = op.rates
    out: dict[str, Any] = {"strategy": strategy, "threshold": op.threshold, "band": op.band,
                           "requested_band": op.requested_band, "fake_from": op.fake_from, "max_fpr": op.max_fpr,
                           "fit_split": fit_split, "detectors": detectors, "mirror": mirror, "fit": fit.to_dict(),
                           "file": None}
    if fit_split != split:
        out["evaluated"] = verdict_rates(*_ensemble_arrays(scored.units, ensemble_name), op.threshold,
                                         op.band).to_dict()
    for clip in scored.clips:
        clip.verdict_at_operating_point = verdict_for(clip.probability, op.threshold, op.band)
    if path:
        try:
            point = OperatingPoint(strategy=strategy, threshold=op.threshold, band=op.band, max_fpr=op.max_fpr,
                                   val=ValidationRates(fpr=fit.fpr, tpr=fit.tpr, uncertain_real=fit.uncertain_real,
                                                       uncertain_fake=fit.uncertain_fake, n_real=fit.n_real,
                                                       n_fake=fit.n_fake),
                                   detectors=list(detectors), created=datetime.now().isoformat(timespec="seconds"),
                                   mirror=mirror)
        except OperatingPointError as exc:
            raise DataError(str(exc)) from None
        out["file"] = str(point.write(path))
    return out


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
        before = np.array([u.raw_scores[n] for u in units])
        plot_reliability({"before (T=1)": (yy, before), "after": (yy, p)}, out / f"reliability_{_safe(n)}.png",
                         title=f"Reliability: {n}")
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
    p.add_argument("--ensemble", default=None,
                   help=f"ensemble strategy (default: the app's, {AnalysisSettings().strategy})")
    p.add_argument("--frames", type=int, default=VideoOptions().frames,
                   help="evenly spaced frames per video, analysed by the video engine")
    p.add_argument("--threshold", type=float, default=None,
                   help=f"verdict threshold (default: the app's, {DEFAULT_THRESHOLD})")
    p.add_argument("--band", type=float, default=None,
                   help=f"uncertainty band around it (default: the app's, {DEFAULT_BAND})")
    p.add_argument("--keep-no-face", action="store_true", help="score the whole image when no face is found")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help=f"score each face with its mirror image too (default: the app's, {AnalysisSettings().mirror})")
    p.add_argument("--frame-fill", default=None, choices=[m for m in ContextFill.MODES if m != "either"],
                   help="fill the black frame around prepared crops with image context first (a robustness check)")
    p.add_argument("--operating-point-split", default=None, choices=("train", "val", "test", "all"),
                   help="choose the ensemble's threshold and band on this split's scores")
    p.add_argument("--max-fpr", type=float, default=0.05, help="at most this share of reals called FAKE there")
    p.add_argument("--out-operating-point", default=None,
                   help="write the operating point (chosen on val) to this JSON file, e.g. "
                   "converted_models/ensemble.json")
    p.add_argument("--pair-reals", action="append", default=[], metavar="FAKE_SOURCE=REAL_SOURCE",
                   help="score a source of fakes only against another source's reals (e.g. sdfd=ffhq_stylegan2)")
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
        report = evaluate(args.models, args.data, names=args.names, split=args.split, ensemble=args.ensemble,
                          frames=args.frames, out=out, threshold=args.threshold, band=args.band, seed=args.seed,
                          keep_no_face=args.keep_no_face, progress=not args.no_progress,
                          operating_point_split=args.operating_point_split, max_fpr=args.max_fpr,
                          out_operating_point=args.out_operating_point,
                          pair_reals=parse_pairs(args.pair_reals), mirror=args.mirror,
                          frame_fill=args.frame_fill)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(report)
    print(f"\nreport: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
