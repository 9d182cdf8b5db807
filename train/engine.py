"""The training engine shared by the five train_<name>.py scripts.

A script only names its detector; the registry's `train_defaults` (lr, batch_size, epochs, train_size) become the
argparse defaults of `build_parser(name)`. `run(name, argv)` then trains: AdamW, linear warm-up then cosine decay
(or reduce-on-plateau), AMP on CUDA, gradient clipping, early stopping on validation AUC, `last.pt` and `best.pt`
every epoch, resumable, time-limited; and at the end evaluates the best weights (temperature fitted on validation,
ECE before/after, test metrics per source and per video), writes `eval_report.json` and plots, logs everything to
MLflow, and optionally converts the best checkpoint into an artifact.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from train import augment as aug
from train.calibration import apply_temperature, fit_temperature
from train.data import (BALANCE_MODES, DataError, Sample, SplitFractions, assign_splits, by_split, check_no_leak,
                        limit_samples, load_samples, parse_source_weights, sample_weights, summarize)
from train.metrics import aggregate_by, clean_json, compute_metrics, expected_calibration_error, metrics_by, save_plots
from train.tracking import DEFAULT_EXPERIMENT, Tracker

log = logging.getLogger("train")

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------------- arguments
def build_parser(name: str) -> argparse.ArgumentParser:
    """The common command line; defaults from get_spec(name).train_defaults where the registry gives them."""
    from detectors.registry import get_spec

    spec = get_spec(name)
    d = dict(spec.train_defaults)
    p = argparse.ArgumentParser(prog=f"python -m train.train_{name}",
                                description=f"Train the {name} detector ({spec.architecture}).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", default=None,
                   help="crop index (train/prepare.py output: index.csv or its folder), or a raw layout of face "
                        "crops (DIR/{real,fake}, DIR/{train,val,test}/{real,fake}, a manifest CSV); NAME=PATH names "
                        "the source; repeat for several data sets")
    g.add_argument("--val-fraction", type=float, default=0.15, help="validation share where no split is given")
    g.add_argument("--test-fraction", type=float, default=0.15, help="test share where no split is given")
    g.add_argument("--group-regex", default=None, help="regex on file stems whose first group is the group id")
    g.add_argument("--limit", type=int, default=None, help="at most N samples per split (quick runs)")
    g.add_argument("--samples-per-epoch", type=int, default=None,
                   help="training samples drawn per epoch (default: the training set's size)")
    g.add_argument("--source-balance", choices=sorted(BALANCE_MODES), default="sqrt",
                   help="share of each source in an epoch: equal, by sqrt(size) or by size; labels are balanced "
                        "within each source")
    g.add_argument("--source-weight", action="append", default=None, metavar="NAME=W",
                   help="multiply a source's share, e.g. ffhq_stylegan2=2")
    g.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")

    g = p.add_argument_group("model and optimisation")
    g.add_argument("--size", type=int, default=d.get("train_size", spec.input_size),
                   help=f"input size (the registry's default for {name} is {spec.input_size})")
    g.add_argument("--pretrained", action="store_true",
                   help="start from ImageNet weights where the registry has them offline")
    g.add_argument("--epochs", type=int, default=d.get("epochs", 20))
    g.add_argument("--batch-size", type=int, default=d.get("batch_size", 32))
    g.add_argument("--lr", type=float, default=d.get("lr", 3e-4))
    g.add_argument("--weight-decay", type=float, default=d.get("weight_decay", 0.05))
    g.add_argument("--scheduler", choices=("cosine", "plateau"), default=d.get("scheduler", "cosine"))
    g.add_argument("--warmup-epochs", type=float, default=d.get("warmup_epochs", 1.0))
    g.add_argument("--min-lr-ratio", type=float, default=0.01, help="cosine floor as a fraction of --lr")
    g.add_argument("--clip-grad", type=float, default=d.get("clip_grad", 1.0), help="max gradient norm (0: off)")
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--patience", type=int, default=d.get("patience", 5),
                   help="epochs without a better validation AUC before stopping (0: never)")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="mixed precision (CUDA only)")
    g.add_argument("--precise-bn", type=int, default=16, metavar="BATCHES",
                   help="re-estimate BatchNorm statistics on this many training batches before each validation "
                        "(0: keep the running averages, which lag the weights in short runs)")

    g = p.add_argument_group("augmentation and fault injection")
    g.add_argument("--augment", choices=sorted(aug.AUGMENT_LEVELS), default="default")
    g.add_argument("--sbi-fraction", type=float, default=0.0,
                   help="share of real training faces turned into self-blended pseudo-fakes")
    g.add_argument("--label-noise", type=float, default=0.0, help="fault: flip this fraction of training labels")
    g.add_argument("--input-noise", type=float, default=0.0, help="fault: Gaussian noise std (0-255) on inputs")
    g.add_argument("--shuffle-labels", action="store_true", help="fault: permute training labels")

    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help=f"run folder (default runs/{name}/<timestamp>)")
    g.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint (last.pt)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--max-minutes", type=float, default=None, help="stop training cleanly after this long")
    g.add_argument("--eval-batch-size", type=int, default=None)
    g.add_argument("--convert-to", default=None, metavar="DIR",
                   help="convert the best checkpoint into an artifact in DIR (e.g. converted_models)")
    g.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    g.add_argument("--tracking-uri", default=None, help="MLflow URI (default $MLFLOW_TRACKING_URI or "
                                                        "sqlite:///<repo>/mlflow.db)")
    g.add_argument("--run-name", default=None)
    g.add_argument("--no-mlflow", action="store_true")
    g.add_argument("--no-log-checkpoint", action="store_true", help="do not copy best.pt into MLflow")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(name=name)
    return p


def parse_args(name: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv`; with --resume, the checkpoint's arguments are the defaults that `argv` overrides."""
    parser = build_parser(name)
    args = parser.parse_args(argv)
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        if ckpt["name"] != name:
            parser.error(f"{args.resume} is a {ckpt['name']} checkpoint, not {name}")
        saved = dict(ckpt.get("training", {}).get("args", {}))
        known = {a.dest for a in parser._actions}
        appended = ("data", "source_weight")  # append actions would add to a saved default list
        parser.set_defaults(**{k: v for k, v in saved.items()
                               if k in known and k not in ("resume", "out", *appended)})
        args = parser.parse_args(argv)
        for key in appended:
            if getattr(args, key) is None:
                setattr(args, key, saved.get(key))
    if not args.data:
        parser.error("--data is required (a crop index from train/prepare.py, or a folder of face crops)")
    for key in ("sbi_fraction", "label_noise"):
        if not 0 <= getattr(args, key) <= 1:
            parser.error(f"--{key.replace('_', '-')} must be in [0, 1]")
    return args


# ---------------------------------------------------------------------------------------------- data
def read_rgb(path: str) -> np.ndarray:
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        from analysis.media import load_image  # formats OpenCV does not read
        return load_image(path).rgb
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class CropDataset(Dataset):
    """Face crops -> normalised tensors at the model's input size, with detectors.preprocess (as inference).

    Training mode: self-blended pseudo-fakes from real faces (label 1), augmentation, optional input-noise fault.
    Items are (image tensor, label float, index)."""

    def __init__(self, samples: Sequence[Sample], size: int, mean: Sequence[float], std: Sequence[float], *,
                 labels: np.ndarray | None = None, augmenter: aug.Compose | None = None,
                 sbi: aug.SelfBlend | None = None, sbi_fraction: float = 0.0, input_noise: float = 0.0) -> None:
        self.samples = list(samples)
        self.labels = np.asarray([s.label for s in self.samples] if labels is None else labels, dtype=np.int64)
        self.size, self.mean, self.std = int(size), tuple(mean), tuple(std)
        self.augmenter, self.sbi, self.sbi_fraction = augmenter, sbi, float(sbi_fraction)
        self.noise = aug.InputNoise(input_noise) if input_noise > 0 else None

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
        s = self.samples[i]
        img, label = read_rgb(s.path), int(self.labels[i])
        if rng is None:
            return img, label
        if self.sbi is not None and label == 0 and rng.random() < self.sbi_fraction:
            img, _ = self.sbi(img, rng, s.landmark_array())
            label = 1
        if self.augmenter is not None:
            img = self.augmenter(img, rng)
        if self.noise is not None:
            img = self.noise(img, rng)
        return img, label

    def __getitem__(self, i: int):
        from detectors.preprocess import to_tensor_batch
        train = self.augmenter is not None or self.sbi is not None or self.noise is not None
        # torch seeds each worker (and the main process) from --seed: augmentations are reproducible
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item())) if train else None
        img, label = self.load(i, rng)
        x = to_tensor_batch([img], self.size, self.mean, self.std)[0]
        return x, torch.tensor(float(label)), i


@dataclass
class DataBundle:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    train_labels: np.ndarray
    summary: dict


def load_data(args: argparse.Namespace) -> DataBundle:
    samples = load_samples(args.data, args.group_regex)
    raw_videos = [s for s in samples if s.kind == "video" and not s.original]
    if raw_videos:
        raise DataError(f"{raw_videos[0].path} is a video: crop faces first with train/prepare.py "
                        "and train on its index.csv")
    if not all(s.split for s in samples):
        samples = assign_splits(samples, SplitFractions(args.val_fraction, args.test_fraction), args.seed)
    leaks = check_no_leak(samples)
    if leaks:
        example = next(iter(leaks))
        log.warning("%d group(s) appear in several given splits, e.g. %s in %s", len(leaks), example,
                    sorted(leaks[example]))
    parts = by_split(samples)
    parts = {k: limit_samples(v, args.limit, args.seed) for k, v in parts.items()}
    if not parts["train"]:
        raise DataError("no training samples")
    if not parts["val"]:
        raise DataError("no validation samples: best.pt is chosen on validation; give a val split or more groups")
    rng = np.random.default_rng(args.seed + 1)
    labels = np.array([s.label for s in parts["train"]], dtype=np.int64)
    faults: dict[str, Any] = {}
    if args.label_noise > 0:
        labels, flipped = aug.flip_labels(labels, args.label_noise, rng)
        faults["label_noise"] = {"fraction": args.label_noise, "flipped": int(len(flipped))}
    if args.shuffle_labels:
        labels = aug.shuffle_labels(labels, rng)
        faults["shuffled_labels"] = True
    if args.input_noise > 0:
        faults["input_noise_std"] = args.input_noise
    summary = summarize(parts["train"] + parts["val"] + parts["test"])
    summary.update({"data": [str(d) for d in args.data], "faults": faults, "limit": args.limit})
    return DataBundle(parts["train"], parts["val"], parts["test"], labels, summary)


# ---------------------------------------------------------------------------------------------- schedules
class WarmupCosine:
    """LambdaLR factor: linear warm-up to 1, then cosine down to `floor`. A plain object, so the scheduler's
    state_dict (which stores its __dict__) loads with weights_only=True."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float) -> None:
        self.warmup_steps, self.total_steps, self.floor = int(warmup_steps), int(total_steps), float(floor)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Schedule:
    """Per-batch warm-up + cosine, or warm-up then reduce-on-plateau on the validation AUC (per epoch)."""

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str, steps_per_epoch: int, epochs: int,
                 warmup_epochs: float, floor: float) -> None:
        self.kind = kind
        self.optimizer = optimizer
        self.warmup_steps = int(round(warmup_epochs * steps_per_epoch))
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.step_count = 0
        if kind == "cosine":
            self.inner = torch.optim.lr_scheduler.LambdaLR(
                optimizer, WarmupCosine(self.warmup_steps, steps_per_epoch * epochs, floor))
        else:
            self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
            self._warm()

    def _warm(self) -> None:
        if self.step_count < self.warmup_steps:
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * (self.step_count + 1) / self.warmup_steps
        elif self.step_count == self.warmup_steps and self.warmup_steps:
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base

    def step_batch(self) -> None:
        self.step_count += 1
        if self.kind == "cosine":
            self.inner.step()
        else:
            self._warm()

    def step_epoch(self, score: float) -> None:
        if self.kind == "plateau" and self.step_count >= self.warmup_steps and math.isfinite(score):
            self.inner.step(score)

    def state_dict(self) -> dict:
        return {"kind": self.kind, "step_count": self.step_count, "base_lrs": list(self.base_lrs),
                "warmup_steps": self.warmup_steps, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.base_lrs = int(state["step_count"]), list(state["base_lrs"])
        self.warmup_steps = int(state["warmup_steps"])
        self.inner.load_state_dict(state["inner"])

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


# ---------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """One of our checkpoints: plain types only, loaded with weights_only=True (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "name" not in ckpt:
        raise ValueError(f"{path} is not a training checkpoint of this project")
    return ckpt


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def _plain_args(args: argparse.Namespace) -> dict[str, Any]:
    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return {k: plain(v) for k, v in vars(args).items()}


# ---------------------------------------------------------------------------------------------- devices
def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device available")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("--device mps: MPS is not available")
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, device: torch.device, batches: int,
                          amp: bool = False) -> int:
    """Precise BN: BatchNorm statistics recomputed as plain averages over `batches` training batches with the
    final weights of the epoch. The running averages otherwise mix statistics of older weights, which in short
    runs makes eval-mode outputs nearly constant. Returns the number of batches used (0: no BatchNorm)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or batches <= 0:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    model.train()
    used = 0
    for x, _, _ in loader:
        if used >= batches:
            break
        if len(x) < 2:
            continue
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            model(x.to(device, non_blocking=True))
        used += 1
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return used


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
                   progress: bool = False, desc: str = "eval") -> np.ndarray:
    from tqdm import tqdm
    model.eval()
    out = np.zeros(len(loader.dataset), dtype=np.float64)
    for x, _, idx in tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            z = model(x.to(device, non_blocking=True)).reshape(-1)
        out[idx.numpy()] = z.float().cpu().numpy()
    return out


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
    return clean_json(out)


# ---------------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    out_dir: Path
    best_path: Path
    last_path: Path
    best_auc: float
    best_epoch: int
    epochs_run: int
    temperature: float
    stopped: str                     # "completed" | "early_stopping" | "time_limit"
    run_id: str | None
    report: dict = field(default_factory=dict)
    artifact: Path | None = None


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "token" in name
         else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _setup_logging(out_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        root.addHandler(stream)
    return handler


def train(args: argparse.Namespace) -> TrainResult:
    from detectors.registry import build_model, get_spec
    from tqdm import tqdm

    name = args.name
    spec = get_spec(name)
    started = time.time()
    deadline = started + args.max_minutes * 60 if args.max_minutes else None
    resume = load_checkpoint(args.resume) if args.resume else None
    if args.out:
        out_dir = Path(args.out)
    elif resume is not None:
        out_dir = Path(args.resume).resolve().parent
    else:
        out_dir = REPO_ROOT / "runs" / name / datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(out_dir)
    tracker: Tracker | None = None
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        # a resumed run continues with fresh draws rather than replaying epoch 1's samples and augmentations
        epochs_done = int(resume["epoch"]) + 1 if resume else 0
        seed_everything(args.seed + epochs_done)
        device = resolve_device(args.device)
        amp = device.type == "cuda" and args.amp != "off"
        data = load_data(args)
        log.info("%s: train %d, val %d, test %d samples; device %s%s", name, len(data.train), len(data.val),
                 len(data.test), device, " (AMP)" if amp else "")

        size = int(resume["input_size"]) if resume else int(args.size)
        try:
            model = build_model(name, pretrained=bool(args.pretrained and resume is None), input_size=size)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot build {name}: {str(exc).splitlines()[0]}") from None
        model_kwargs = dict(getattr(model, "detector_kwargs", {}))
        if resume:
            model.load_state_dict(resume["model"])
        model.to(device)

        augmenter = aug.build_augmenter(args.augment)
        sbi = aug.SelfBlend() if args.sbi_fraction > 0 else None
        train_set = CropDataset(data.train, size, spec.mean, spec.std, labels=data.train_labels,
                                augmenter=augmenter, sbi=sbi, sbi_fraction=args.sbi_fraction,
                                input_noise=args.input_noise)
        weights = sample_weights(data.train, parse_source_weights(args.source_weight), args.source_balance)
        per_epoch = int(args.samples_per_epoch or len(data.train))
        generator = torch.Generator().manual_seed(args.seed + epochs_done)
        sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), per_epoch, replacement=True,
                                        generator=generator)
        loader_kw = dict(num_workers=args.num_workers, pin_memory=device.type == "cuda",
                         persistent_workers=args.num_workers > 0)
        train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler,
                                  drop_last=per_epoch > args.batch_size, **loader_kw)
        eval_bs = args.eval_batch_size or args.batch_size * 2
        val_loader = DataLoader(CropDataset(data.val, size, spec.mean, spec.std), batch_size=eval_bs, **loader_kw)

        optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.lr)
        schedule = Schedule(optimizer, args.scheduler, len(train_loader), args.epochs, args.warmup_epochs,
                            args.min_lr_ratio)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        loss_fn = nn.BCEWithLogitsLoss()

        start_epoch, best_auc, best_epoch, bad_epochs, history = 0, -math.inf, -1, 0, []
        run_id = None
        if resume:
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["scheduler"])
            if resume.get("scaler"):
                scaler.load_state_dict(resume["scaler"])
            start_epoch = int(resume["epoch"]) + 1
            best_auc = float(resume["best_auc"]) if resume.get("best_auc") is not None else -math.inf
            best_epoch, bad_epochs = int(resume.get("best_epoch", -1)), int(resume.get("bad_epochs", 0))
            history = list(resume.get("history", []))
            run_id = resume.get("run_id") or None
            if args.scheduler == "cosine" and isinstance(schedule.inner, torch.optim.lr_scheduler.LambdaLR):
                plan = schedule.inner.lr_lambdas[0]
                total = len(train_loader) * args.epochs
                if plan.total_steps != total:  # --epochs changed: stretch the cosine over the new length
                    log.info("cosine schedule re-planned from %d to %d steps", plan.total_steps, total)
                    plan.total_steps = total
            log.info("resumed from %s after epoch %d (best AUC %.4f at epoch %d)", args.resume, start_epoch,
                     best_auc, best_epoch + 1)

        tracker = Tracker(enabled=not args.no_mlflow, tracking_uri=args.tracking_uri, experiment=args.experiment)
        run_id = tracker.start(run_name=args.run_name or f"{name}-{out_dir.name}",
                               tags={"detector": name, "architecture": spec.architecture,
                                     "out_dir": str(out_dir)}, run_id=run_id) or run_id
        training_info = {"data": data.summary, "args": _plain_args(args), "model_kwargs": model_kwargs,
                         "input_size": size, "architecture": spec.architecture, "device": str(device),
                         "samples_per_epoch": per_epoch, "torch": str(torch.__version__)}
        if resume is None:
            tracker.log_params({**{k: v for k, v in _plain_args(args).items() if v is not None},
                                "input_size": size, "n_train": len(data.train), "n_val": len(data.val),
                                "n_test": len(data.test)})
            tracker.log_dict(data.summary, "data_summary.json")
        (out_dir / "data_summary.json").write_text(json.dumps(clean_json(data.summary), indent=2))
        (out_dir / "args.json").write_text(json.dumps(_plain_args(args), indent=2))

        def checkpoint(epoch: int, metrics: dict) -> dict:
            return {"version": CHECKPOINT_VERSION, "model": cpu_state(model), "name": name, "input_size": size,
                    "model_kwargs": model_kwargs, "epoch": epoch, "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(), "scaler": scaler.state_dict(),
                    "best_auc": best_auc if math.isfinite(best_auc) else None, "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs, "temperature": 1.0, "metrics": clean_json(metrics),
                    "training": training_info, "run_id": run_id or "", "history": clean_json(history)}

        last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
        stopped = "completed"
        epoch = start_epoch - 1
        for epoch in range(start_epoch, args.epochs):
            model.train()
            losses, seen, t0 = 0.0, 0, time.time()
            bar = tqdm(train_loader, desc=f"{name} epoch {epoch + 1}/{args.epochs}", leave=False,
                       disable=args.no_progress, dynamic_ncols=True)
            timed_out = False
            for x, y, _ in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if args.label_smoothing:
                    y = y * (1 - args.label_smoothing) + 0.5 * args.label_smoothing
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    z = model(x).reshape(-1)
                loss = loss_fn(z.float(), y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower --lr")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if args.clip_grad:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                schedule.step_batch()
                losses += float(loss.detach()) * len(x)
                seen += len(x)
                bar.set_postfix(loss=f"{losses / seen:.4f}", lr=f"{schedule.lr:.2e}")
                if deadline and time.time() > deadline:
                    timed_out = True
                    break
            bar.close()
            recalibrate_batchnorm(model, train_loader, device, args.precise_bn, amp)
            val_logits = predict_logits(model, val_loader, device, amp, not args.no_progress, "validation")
            val = compute_metrics([s.label for s in data.val], apply_temperature(val_logits, 1.0))
            score = val["auc"] if val["auc"] == val["auc"] else -val["log_loss"]
            schedule.step_epoch(score)
            row = {"epoch": epoch + 1, "train_loss": losses / max(seen, 1), "val_auc": val["auc"],
                   "val_loss": val["log_loss"], "val_accuracy": val["accuracy"], "val_ece": val["ece"],
                   "lr": schedule.lr, "seconds": round(time.time() - t0, 1), "samples": seen}
            history.append(row)
            improved = score > best_auc + 1e-6
            if improved:
                best_auc, best_epoch, bad_epochs = score, epoch, 0
            else:
                bad_epochs += 1
            state = checkpoint(epoch, {"val": val})
            save_checkpoint(last_path, state)
            if improved:
                save_checkpoint(best_path, state)
            tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            log.info("epoch %d: train loss %.4f, val AUC %.4f, val loss %.4f, lr %.2e, %.0fs%s", epoch + 1,
                     row["train_loss"], val["auc"], val["log_loss"], row["lr"], row["seconds"],
                     " (best)" if improved else "")
            if timed_out:
                stopped = "time_limit"
                log.info("time limit of %s minutes reached: stopping (best epoch %d kept)", args.max_minutes,
                         best_epoch + 1)
                break
            if args.patience and bad_epochs >= args.patience:
                stopped = "early_stopping"
                log.info("no better validation AUC for %d epochs: stopping", bad_epochs)
                break
        (out_dir / "history.json").write_text(json.dumps(clean_json(history), indent=2))
        if not best_path.is_file():
            raise RuntimeError("no epoch finished: nothing to evaluate (raise --max-minutes or --epochs)")

        report = final_evaluation(best_path, data, device, amp, out_dir, args, tracker)
        result = TrainResult(out_dir=out_dir, best_path=best_path, last_path=last_path,
                             best_auc=float(best_auc), best_epoch=best_epoch + 1, epochs_run=epoch + 1,
                             temperature=report["temperature"], stopped=stopped, run_id=run_id, report=report)
        tracker.set_tags({"stopped": stopped, "best_epoch": best_epoch + 1})
        if args.convert_to:
            from train.convert import convert
            result.artifact = convert(best_path, args.convert_to, tracking_uri=tracker.uri if tracker.enabled
                                      else None, experiment=args.experiment, log_to_mlflow=tracker.enabled)
        if tracker.enabled and not args.no_log_checkpoint:
            tracker.log_artifact(best_path, "checkpoint")
        tracker.end("FINISHED")
        tracker = None
        log.info("done in %.1f min: best val AUC %.4f (epoch %d), T=%.3f, test AUC %s; %s", (time.time() - started) / 60,
                 best_auc, best_epoch + 1, report["temperature"],
                 _fmt(report.get("test", {}).get("calibrated", {}).get("auc")), out_dir)
        return result
    except BaseException as exc:
        if tracker is not None:
            tracker.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def final_evaluation(best_path: Path, data: DataBundle, device: torch.device, amp: bool, out_dir: Path,
                     args: argparse.Namespace, tracker: Tracker) -> dict:
    """Best weights on val (fit T, ECE before/after) and test; eval_report.json, plots, and best.pt updated
    with the temperature and metrics so that convert.py carries them into the artifact."""
    from detectors.registry import build_model, get_spec

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
    report = clean_json(report)
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
    log.info("val: AUC %s, ECE %s -> %s with T=%.3f", _fmt(val_cal["calibrated"]["auc"]), _fmt(val_cal["ece_before"]),
             _fmt(val_cal["ece_after"]), temperature)
    return report


# ---------------------------------------------------------------------------------------------- entry points
def run(name: str, argv: Sequence[str] | None = None) -> TrainResult:
    return train(parse_args(name, argv))


def main(name: str, argv: Sequence[str] | None = None) -> int:
    args = parse_args(name, argv)
    try:
        result = train(args)
    except (DataError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"best checkpoint: {result.best_path}")
    print(f"report: {result.out_dir / 'eval_report.json'}")
    if result.artifact:
        print(f"artifact: {result.artifact}")
    return 0
