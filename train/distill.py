"""Distil a detector that has no offline ImageNet start (EfficientNet-B3, Swin) from the shipped detectors that have.

    python -m train.distill --name efficientnet_b3 --data data_cache/faces/index.csv \
        --pixels data_cache/features/cross_attention_224_rgb.blocks.3_<key> \
        --teacher converted_models/xception --teacher converted_models/cnn_transformer \
        --size 128 --pair-reals sdfd=ffhq_stylegan2 --out runs/efficientnet_b3/distill

Why: no ImageNet weights for EfficientNet-B3 or Swin can be reached offline, and trained from scratch on a few
thousand faces they score near chance. Here the student starts from random weights and learns from the soft
verdicts of the ImageNet-started teachers (the mean of their calibrated probabilities) blended with the true labels,
on the same training views the teachers were fine-tuned on: clean crops, crops degraded by the augmentation policy
(JPEG, rescaling, blur, noise, colour) and self-blended pseudo-fakes, all mirrored at random.

The views are read from a frozen-prefix cache of a detector that reads pixels (`train.frozen_prefix` writes
`<split>_pixels.npy` there for the cross-attention hybrid); its `key.json` gives the view recipe, so the rows line up
with the crop index exactly as they did for the teachers. The teachers' probabilities are computed once per view and
kept in `<out>/teacher.npy`. A teacher given as `ARTIFACT=CACHE` reads its own frozen-prefix cache of the same
views and runs only the layers after its cut (Xception at 224 px is ~4x cheaper that way on this CPU). Validation
picks the epoch (mean per-source AUC on true labels) and fits the temperature; the checkpoint has the layout
`train.convert` reads.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from analysis.report import json_safe
from detectors.artifacts import LoadedDetector, load_artifact
from detectors.preprocess import resize_rgb
from detectors.registry import build_model, get_spec
from train.calibration import fit_temperature
from train.checkpoints import cpu_state
from train.epochs import EpochPlan, run_epochs
from train.run_record import finish_run
from train.data import DataError, Sample, by_split, load_samples, parse_pairs, summarize
from train.frozen_prefix import (balance_weights, manifest_metrics, pixels_tensor, split_metrics,
                                 split_model, training_views)
from train.metrics import roc_auc

log = logging.getLogger("train.distill")
SPLITS = ("train", "val", "test")


def load_views(pixels_dir: Path, samples: Sequence[Sample]) -> dict[str, dict]:
    """Rows of each split (labels, sources, cached 224-px uint8 views) from a frozen-prefix cache with pixels."""
    key_path = pixels_dir / "key.json"
    if not key_path.is_file():
        raise SystemExit(f"{pixels_dir} is not a frozen-prefix cache (no key.json)")
    key = json.loads(key_path.read_text())
    parts = by_split([s for s in samples if s.source not in set(key.get("exclude", []))])
    out = {}
    for name in SPLITS:
        path, done = pixels_dir / f"{name}_pixels.npy", pixels_dir / f"{name}.done"
        if not path.is_file() or not done.is_file():
            raise SystemExit(f"{path} is missing or unfinished: train the pixel-reading detector first")
        split = parts[name]
        rows = (training_views(split, key["augment"], key["sbi"], key["seed"]) if name == "train"
                else [(i, "clean", s.label) for i, s in enumerate(split)])
        pixels = np.load(path, mmap_mode="r")
        if len(pixels) != len(rows) or int(done.read_text()) < len(rows):
            raise SystemExit(f"{path} holds {len(pixels)} rows, the crop index gives {len(rows)}: "
                             f"the cache was made from other data")
        out[name] = {"pixels": pixels, "labels": np.array([r[2] for r in rows], dtype=np.int64),
                     "sources": [split[r[0]].source for r in rows], "kinds": [r[1] for r in rows]}
    return out


@dataclass
class Teacher:
    """A shipped detector; with `cache`, a frozen-prefix cache of its own training views, so only the part of the
    model after the cut runs (the cached prefix is the same frozen ImageNet part the artifact holds)."""
    detector: LoadedDetector
    cache: Path | None = None
    cut: str | None = None      # the cache's last frozen layer (from its key.json)

    @property
    def name(self) -> str:
        return self.detector.name


def parse_teacher(item: str) -> Teacher:
    """`ARTIFACT` or `ARTIFACT=CACHE_DIR` -> a Teacher; a cache of another detector is refused in one line."""
    folder, _, cache = item.partition("=")
    detector = load_artifact(folder)
    if not cache:
        return Teacher(detector)
    key_path = Path(cache) / "key.json"
    if not key_path.is_file():
        raise SystemExit(f"{cache} is not a frozen-prefix cache (no key.json)")
    key = json.loads(key_path.read_text())
    if key.get("name") != detector.name or int(key.get("size", -1)) != detector.input_size:
        raise SystemExit(f"{cache} caches {key.get('name')} at {key.get('size')} px, not the teacher {detector.name} "
                         f"at {detector.input_size} px")
    return Teacher(detector, Path(cache), key["cut"])


def _suffix_logits(teacher: Teacher, pixels: np.ndarray, n: int, batch: int) -> np.ndarray:
    features = np.load(teacher.cache / "train.npy", mmap_mode="r")
    if len(features) != n:
        raise SystemExit(f"{teacher.cache} holds {len(features)} training views, the pixel cache {n}: "
                         f"they were made from other data")
    split = split_model(teacher.detector.model, teacher.cut)
    split.model.eval()
    out = []
    with torch.inference_mode():
        for lo in range(0, n, batch):
            x = torch.from_numpy(np.asarray(features[lo:lo + batch], dtype=np.float32))
            px = (pixels_tensor(np.asarray(pixels[lo:lo + batch]), teacher.detector.mean, teacher.detector.std)
                  if split.needs_pixels else None)
            out.append(split.forward_suffix(x, pixels=px).reshape(-1).float().numpy())
            if lo % (batch * 20) == 0:
                log.info("teacher %s: %d/%d views", teacher.name, lo + len(x), n)
    return np.concatenate(out)


def teacher_probabilities(teachers: Sequence[Teacher], pixels: np.ndarray, path: Path,
                          batch: int = 64) -> np.ndarray:
    """Mean calibrated P(fake) of the teachers for every view, kept in `path` (computed once)."""
    if path.is_file():
        return np.load(path)
    n, per_teacher = len(pixels), []
    for teacher in teachers:
        if teacher.cache is not None:
            logits = _suffix_logits(teacher, pixels, n, batch)
        else:
            logits = np.concatenate([teacher.detector.logits(list(np.asarray(pixels[lo:lo + batch])), batch)
                                     for lo in range(0, n, batch)])
        per_teacher.append(teacher.detector.calibrate(logits))
    probs = np.mean(per_teacher, axis=0).astype(np.float32)
    np.save(path, probs)
    return probs


def student_batch(pixels: np.ndarray, idx: np.ndarray, size: int, mean, std,
                  flip: np.ndarray | None = None) -> torch.Tensor:
    """Cached views -> the student's normalised input (resized with the inference resize, optionally mirrored)."""
    views = np.stack([resize_rgb(np.asarray(pixels[i]), size) for i in idx])
    if flip is not None:
        views[flip] = views[flip, :, ::-1]
    return pixels_tensor(views, mean, std).contiguous(memory_format=torch.channels_last)


def student_logits(model: nn.Module, pixels: np.ndarray, size: int, mean, std, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(pixels), batch):
            out.append(model(student_batch(pixels, np.arange(lo, min(len(pixels), lo + batch)), size, mean, std)
                             ).reshape(-1).float().numpy())
    return np.concatenate(out).astype(np.float64)


def fit(model: nn.Module, views: dict[str, dict], soft: np.ndarray, args: argparse.Namespace, out_dir: Path,
        pair_reals: dict[str, str]) -> dict:
    spec = get_spec(args.name)
    train, val = views["train"], views["val"]
    target = torch.from_numpy((args.alpha * soft + (1 - args.alpha) * train["labels"]).astype(np.float32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, args.samples_per_epoch // args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total, pct_start=0.15,
                                                    anneal_strategy="cos")
    weights = balance_weights(train["labels"], train["sources"], args.balance)
    loss_fn = nn.BCEWithLogitsLoss()

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        idx = np.sort(rng.choice(len(target), size=args.batch_size, p=weights))
        x = student_batch(train["pixels"], idx, args.size, spec.mean, spec.std, flip=rng.random(len(idx)) < 0.5)
        return loss_fn(model(x).reshape(-1), target[idx])

    plan = EpochPlan(epochs=args.epochs, steps_per_epoch=steps_per_epoch, seed=args.seed, resume=args.resume)
    return run_epochs(model, list(model.parameters()), optimizer, scheduler, plan, out_dir, batch_loss, model.train,
                      lambda: student_logits(model, val["pixels"], args.size, spec.mean, spec.std), val["labels"],
                      val["sources"], pair_reals)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.distill", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--name", required=True, help="registered detector name of the student")
    p.add_argument("--data", action="append", required=True, help="crop index from train/prepare.py (with splits)")
    p.add_argument("--pixels", required=True, help="frozen-prefix cache folder with <split>_pixels.npy")
    p.add_argument("--teacher", action="append", required=True, metavar="ARTIFACT[=CACHE]",
                   help="artifact folder of a teacher detector; with =CACHE, the frozen-prefix cache of its training "
                        "views (only the layers after the cut then run)")
    p.add_argument("--size", type=int, default=128, help="the student's input side")
    p.add_argument("--pair-reals", action="append", default=[], help="FAKE_SOURCE=REAL_SOURCE for fake-only sources")
    p.add_argument("--alpha", type=float, default=0.7, help="weight of the teachers' soft label against the true one")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--samples-per-epoch", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--balance", type=float, default=0.5, help="(source, label) balancing power, 0..1")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-mlflow", action="store_true")
    return p


def run(args: argparse.Namespace) -> Path:
    if args.threads:
        torch.set_num_threads(args.threads)
    if not 0.0 <= args.alpha <= 1.0:
        raise SystemExit(f"--alpha must be between 0 and 1, not {args.alpha}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        pair_reals = parse_pairs(args.pair_reals)
    except DataError as exc:
        raise SystemExit(str(exc)) from None
    spec = get_spec(args.name)
    samples = load_samples(args.data)
    if not all(s.split for s in samples):
        raise SystemExit("the crop index has no splits: make it with train/prepare.py")
    views = load_views(Path(args.pixels), samples)
    teachers = [parse_teacher(t) for t in args.teacher]
    if args.name in {t.name for t in teachers}:
        raise SystemExit(f"{args.name} cannot be its own teacher")
    soft = teacher_probabilities(teachers, views["train"]["pixels"], out_dir / "teacher.npy")
    log.info("teachers %s: training-view AUC %.4f", [t.name for t in teachers], roc_auc(views["train"]["labels"], soft))
    torch.manual_seed(args.seed)
    model = build_model(args.name, pretrained=False, input_size=args.size).to(memory_format=torch.channels_last)
    result = fit(model, views, soft, args, out_dir, pair_reals)
    logits = {k: student_logits(model, views[k]["pixels"], args.size, spec.mean, spec.std) for k in ("val", "test")}
    temperature = float(fit_temperature(logits["val"], views["val"]["labels"]))
    metrics = {k: split_metrics(views[k]["labels"], logits[k], temperature, views[k]["sources"], pair_reals)
               for k in ("val", "test")}
    summary = summarize([s for s in samples if s.split in SPLITS])
    summary.update({"data": [str(d) for d in args.data], "pair_reals": pair_reals})
    training = {"data": summary, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "recipe": "knowledge distillation from the ImageNet-started detectors (train/distill.py)",
                "start": "random initialisation (no offline ImageNet weights exist for this architecture)",
                "teachers": [{"name": t.name, "sha256": t.detector.checksum} for t in teachers],
                "command": "python -m train.distill " + shlex.join(sys.argv[1:]),
                "train_rows": {"total": len(soft), "kinds": {k: views["train"]["kinds"].count(k)
                                                             for k in sorted(set(views["train"]["kinds"]))}},
                "history": result["history"], "best_epoch": result["best_epoch"], "torch": str(torch.__version__)}
    ckpt = {"name": args.name, "model": cpu_state(model), "model_kwargs": dict(model.detector_kwargs),
            "input_size": args.size, "temperature": temperature, "epoch": result["best_epoch"],
            "metrics": manifest_metrics(temperature, metrics), "training": json_safe(training), "run_id": ""}
    best = finish_run(out_dir, ckpt, args, result["history"], f"distill-{args.name}", "distill", {"metrics": metrics})
    log.info("test AUC %.4f by source %s", metrics["test"]["calibrated"]["auc"], metrics["test"]["auc_by_source"])
    return best


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
