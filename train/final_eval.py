"""The end of a run: the best weights on validation (temperature fitted, ECE before and after) and test, per
source and per video; `eval_report.json`, plots, and the compact metrics an artifact's manifest carries."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from analysis.report import json_safe
from detectors.registry import build_model, get_spec
from train.calibration import apply_temperature, fit_temperature
from train.checkpoints import load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.data import Sample
from train.dataset import CropDataset, DataBundle
from train.metrics import aggregate_by, compute_metrics, expected_calibration_error, metrics_by, save_plots
from train.passes import predict_logits
from train.tracking import Tracker

log = logging.getLogger("train")


def split_report(samples: Sequence[Sample], logits: np.ndarray, temperature: float,
                 threshold: float = 0.5) -> dict:
    """Metrics of one split: calibrated (with `temperature`) and raw, per source, and per video."""
    y = np.array([s.label for s in samples], dtype=np.int64)
    raw = apply_temperature(logits, 1.0)
    cal = apply_temperature(logits, temperature)
    report = {"calibrated": compute_metrics(y, cal, threshold), "uncalibrated": compute_metrics(y, raw, threshold),
              "ece_before": expected_calibration_error(y, raw), "ece_after": expected_calibration_error(y, cal),
              "by_source": metrics_by([s.source for s in samples], y, cal, threshold)}
    video = [i for i, s in enumerate(samples) if s.kind == "video"]
    if video:
        names, yv, pv = aggregate_by([samples[i].media for i in video], y[video], cal[video])
        report["videos"] = {"frame_level": compute_metrics(y[video], cal[video], threshold),
                            "video_level": compute_metrics(yv, pv, threshold),
                            "per_video": {n: {"label": int(l), "probability": float(p)}
                                          for n, l, p in zip(names, yv, pv)}}
    return report


def manifest_metrics(report: dict) -> dict:
    """The compact metrics an artifact's manifest carries (the analyzer weights models by val_auc)."""
    out: dict[str, Any] = {"temperature": report["temperature"]}
    for split in ("val", "test"):
        part = report.get(split)
        if not part:
            continue
        cal = part["calibrated"]
        for key in ("auc", "accuracy", "average_precision", "log_loss", "eer", "n"):
            out[f"{split}_{key}"] = cal[key]
        out[f"{split}_ece_before"], out[f"{split}_ece_after"] = part["ece_before"], part["ece_after"]
        out[f"{split}_auc_by_source"] = {k: v["auc"] for k, v in part["by_source"].items()}
        if "videos" in part:
            out[f"{split}_video_auc"] = part["videos"]["video_level"]["auc"]
    return json_safe(out)


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def final_evaluation(best_path: Path, data: DataBundle, device: torch.device, amp: bool, out_dir: Path,
                     args: TrainConfig, tracker: Tracker) -> dict:
    """Best weights on val (fit T, ECE before/after) and test; eval_report.json, plots, and best.pt updated
    with the temperature and metrics so that convert.py carries them into the artifact."""
    ckpt = load_checkpoint(best_path)
    spec = get_spec(ckpt["name"])
    model = build_model(ckpt["name"], pretrained=False, **ckpt["model_kwargs"])
    model.load_state_dict(ckpt["model"])
    model.to(device)
    size = int(ckpt["input_size"])
    eval_bs = args.eval_batch_size or args.batch_size * 2

    def logits_for(samples: list[Sample], desc: str) -> np.ndarray:
        loader = DataLoader(CropDataset(samples, size, spec.mean, spec.std), batch_size=eval_bs,
                            num_workers=args.num_workers)
        return predict_logits(model, loader, device, amp, not args.no_progress, desc)

    val_logits = logits_for(data.val, "validation")
    y_val = np.array([s.label for s in data.val])
    temperature = fit_temperature(val_logits, y_val)
    report: dict[str, Any] = {"name": ckpt["name"], "checkpoint": str(best_path), "epoch": int(ckpt["epoch"]) + 1,
                              "input_size": size, "temperature": temperature,
                              "val": split_report(data.val, val_logits, temperature)}
    plots = save_plots(y_val, apply_temperature(val_logits, temperature), out_dir / "plots", "val",
                       uncalibrated=apply_temperature(val_logits, 1.0))
    if data.test:
        test_logits = logits_for(data.test, "test")
        y_test = np.array([s.label for s in data.test])
        report["test"] = split_report(data.test, test_logits, temperature)
        plots += save_plots(y_test, apply_temperature(test_logits, temperature), out_dir / "plots", "test",
                            uncalibrated=apply_temperature(test_logits, 1.0))
    report["data"] = data.summary
    report = json_safe(report)
    (out_dir / "eval_report.json").write_text(json.dumps(report, indent=2))
    compact = manifest_metrics(report)
    ckpt["temperature"] = temperature
    ckpt["metrics"] = compact
    save_checkpoint(best_path, ckpt)
    tracker.log_metrics({f"final_{k}": v for k, v in compact.items()})
    tracker.log_artifact(out_dir / "eval_report.json")
    tracker.log_artifact(out_dir / "history.json")
    for p in plots:
        tracker.log_artifact(p, "plots")
    val_cal = report["val"]
    log.info("val: AUC %s, ECE %s -> %s with T=%.3f", fmt(val_cal["calibrated"]["auc"]), fmt(val_cal["ece_before"]),
             fmt(val_cal["ece_after"]), temperature)
    return report
