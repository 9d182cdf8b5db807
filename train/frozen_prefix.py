"""Fine-tune the top of an ImageNet-started detector on cached outputs of its frozen lower part.

    python -m train.frozen_prefix --name xception --data data_cache/faces/index.csv --size 192 --cut block11 \
        --pair-reals sdfd=ffhq_stylegan2 --out runs/xception/prefix

Why: on a 2-core CPU one epoch of full Xception fine-tuning at 192 px takes hours; the lower blocks of an ImageNet
network change little in fine-tuning anyway. Their outputs are computed once, with the training-time views baked in
(half the training crops degraded by the augmentation policy — JPEG, rescaling, blur, noise, colour —, and extra
self-blended pseudo-fakes made from real training faces), and only the top (for Xception: block12 and the exit
flow) is trained, for many epochs in minutes. The saved checkpoint holds the whole model (frozen ImageNet part and
trained top), so `train.convert` turns it into an ordinary artifact.

The same cached features give the frozen-feature baseline for free: a logistic regression on the ImageNet model's
pooled features (`--probe`), scored on the same grouped splits.

Caches live under `data_cache/features/<key>/` and are resumable (each split is written in chunks, its progress in
`<split>.done`); a training run resumes from `last.pt` with `--resume`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from analysis.report import json_safe
from detectors.preprocess import check_crop, resize_rgb, to_tensor_batch
from detectors.registry import build_model, detector_names, get_spec
from train import augment as aug
from train.calibration import apply_temperature, fit_temperature
from train.checkpoints import average_states, cpu_state
from train.epochs import EpochPlan, run_epochs
from train.run_record import finish_run
from train.data import DataError, Sample, by_split, load_samples, parse_pairs, summarize
from train.dataset import read_rgb
from train.metrics import auc_by_source, compute_metrics, expected_calibration_error, roc_auc

log = logging.getLogger("train.frozen_prefix")
CHUNK = 128
REFRAME = aug.Reframe()
CONTEXT = aug.ContextFill()


# ---------------------------------------------------------------------------------------------- the split
class PrefixSplit:
    """A detector cut in two: a frozen `prefix` (ImageNet layers, computed once and cached) and a trained
    `suffix`. `split_model` picks the subclass that knows the model's layout."""

    model: nn.Module
    frozen: list[nn.Module]
    trained: list[nn.Module]
    needs_pixels: bool = False   # the suffix also reads the input pixels (a hybrid's frequency view)

    def forward_prefix(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_suffix(self, features: torch.Tensor, pre_logits: bool = False,
                       pixels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def head_parameters(self) -> list[nn.Parameter]:
        """Freshly initialised parameters (trained at a higher learning rate)."""
        raise NotImplementedError

    def probe_features(self, features: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """The ImageNet part's pooled features of cached prefix outputs: what the frozen-feature baseline sees."""
        raise NotImplementedError

    def trainable(self) -> list[nn.Parameter]:
        frozen = {id(p) for m in self.frozen for p in m.parameters()}
        return [p for p in self.model.parameters() if id(p) not in frozen]

    def train_mode(self) -> None:
        self.model.eval()
        for module in self.trained:
            module.train()


class ChildrenSplit(PrefixSplit):
    """Cut at a top-level child of a model whose forward_features runs its children in order (timm's
    legacy_xception); `forward_head` finishes the suffix."""

    HEAD = {"global_pool", "fc", "head", "classifier", "head_drop"}

    def __init__(self, model: nn.Module, cut: str) -> None:
        names = [n for n, _ in model.named_children()]
        if cut not in names or not hasattr(model, "get_classifier"):
            raise ValueError(f"{type(model).__name__} cannot be cut at {cut!r}; top-level layers: {names}")
        k = names.index(cut) + 1
        self.model = model
        self.prefix_names = names[:k]
        self.suffix_names = [n for n in names[k:] if n not in self.HEAD]
        self.frozen = [getattr(model, n) for n in self.prefix_names]
        self.trained = [getattr(model, n) for n in names[k:]]

    def forward_prefix(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.prefix_names:
            x = getattr(self.model, name)(x)
        return x

    def forward_suffix(self, features: torch.Tensor, pre_logits: bool = False,
                       pixels: torch.Tensor | None = None) -> torch.Tensor:
        x = features
        for name in self.suffix_names:
            x = getattr(self.model, name)(x)
        return self.model.forward_head(x, pre_logits=pre_logits)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.model.get_classifier().parameters())

    def probe_features(self, features: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_suffix(features, pre_logits=True)   # every layer up to the head is ImageNet's


class TrunkSplit(PrefixSplit):
    """Cut inside a hybrid's EfficientNet-Lite trunk (`backbone.blocks.K` or `rgb.blocks.K`: stem and stages
    before K frozen); the model's `tokens_from_trunk` and `forward_head` finish the suffix."""

    def __init__(self, model: nn.Module, cut: str) -> None:
        attr, _, rest = cut.partition(".blocks.")
        trunk = getattr(model, attr, None) if attr else None
        if trunk is None or not hasattr(trunk, "blocks") or not hasattr(model, "tokens_from_trunk") \
                or not rest.isdigit() or not 0 < int(rest) < len(trunk.blocks):
            raise ValueError(f"{type(model).__name__} cannot be cut at {cut!r}; use <trunk>.blocks.K with "
                             f"0 < K < the trunk's stages")
        k = int(rest)
        self.model, self.trunk = model, trunk
        self.needs_pixels = bool(getattr(model, "TOKENS_NEED_PIXELS", False))
        self.frozen = [trunk.conv_stem, trunk.bn1, *list(trunk.blocks)[:k]]
        self.rest = list(trunk.blocks)[k:]
        self.trained = [*self.rest] + [m for n, m in model.named_children() if m is not trunk]

    def forward_prefix(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.frozen:
            x = module(x)
        return x

    def forward_suffix(self, features: torch.Tensor, pre_logits: bool = False,
                       pixels: torch.Tensor | None = None) -> torch.Tensor:
        x = features
        for module in self.rest:
            x = module(x)
        if self.needs_pixels:
            if pixels is None:
                raise ValueError(f"{type(self.model).__name__}'s suffix needs the input pixels too")
            tokens = self.model.tokens_from_trunk(x, pixels)
        else:
            tokens = self.model.tokens_from_trunk(x)
        return self.model.forward_head(tokens, pre_logits=pre_logits)

    def head_parameters(self) -> list[nn.Parameter]:
        trunk = {id(p) for p in self.trunk.parameters()}
        return [p for p in self.model.parameters() if id(p) not in trunk]

    def probe_features(self, features: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        x = features   # the rest of the ImageNet trunk, pooled: not the freshly initialised tokens and head
        for module in self.rest:
            x = module(x)
        return x.mean(dim=(2, 3))


def split_model(model: nn.Module, cut: str) -> PrefixSplit:
    return TrunkSplit(model, cut) if ".blocks." in cut else ChildrenSplit(model, cut)


# ---------------------------------------------------------------------------------------------- the cache
@dataclass
class FeatureSet:
    features: np.ndarray        # (N, C, H, W) float16
    pixels: np.ndarray | None   # (N, S, S, 3) uint8 crops, for suffixes that read the pixels
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: np.ndarray          # (N,) int
    sources: list[str]
    clean: np.ndarray           # (N,) bool: an unaugmented crop (the probe uses only these)

    def batch(self, idx: np.ndarray | slice, flip: np.ndarray | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (float32) and pixels of rows `idx`, rows with `flip` mirrored left-right (both alike)."""
        x = torch.from_numpy(np.asarray(self.features[idx], dtype=np.float32))
        px = pixels_tensor(np.asarray(self.pixels[idx]), self.mean, self.std) if self.pixels is not None else None
        if flip is not None:
            f = torch.from_numpy(flip)
            x[f] = x[f].flip(-1)
            if px is not None:
                px[f] = px[f].flip(-1)
        return x, px


def training_views(samples: Sequence[Sample], augment_fraction: float, sbi_count: int, seed: int,
                   reframe_fraction: float = 0.0, context_fraction: float = 0.0) -> list[tuple[int, str, int]]:
    """Rows of the training cache: (sample index, view kind, label). Kinds: clean, augmented, sbi, reframed (an
    extra row for `reframe_fraction` of the crops: train.augment.Reframe, then the policy on half of them) and
    context (likewise for `context_fraction`, with train.augment.ContextFill)."""
    rng = np.random.default_rng(seed)
    rows = [(i, "augmented" if rng.random() < augment_fraction else "clean", s.label) for i, s in enumerate(samples)]
    reals = [i for i, s in enumerate(samples) if s.label == 0]
    for i in rng.permutation(reals)[:sbi_count]:
        rows.append((int(i), "sbi", 1))
    if reframe_fraction > 0:
        rng = np.random.default_rng([seed, 1])   # its own stream: the rows above stay those of older caches
        rows.extend((i, "reframed", s.label) for i, s in enumerate(samples) if rng.random() < reframe_fraction)
    if context_fraction > 0:
        rng = np.random.default_rng([seed, 2])
        rows.extend((i, "context", s.label) for i, s in enumerate(samples) if rng.random() < context_fraction)
    return rows


def _render(sample: Sample, kind: str, rng: np.random.Generator, augmenter: aug.Compose,
            sbi: aug.SelfBlend) -> np.ndarray:
    img = read_rgb(sample.path)
    if kind == "sbi":
        img, _ = sbi(img, rng, sample.landmark_array())
        return augmenter(img, rng) if rng.random() < 0.5 else img
    if kind == "augmented":
        return augmenter(img, rng)
    if kind in ("reframed", "context"):
        img = (REFRAME if kind == "reframed" else CONTEXT)(img, rng)
        return augmenter(img, rng) if rng.random() < 0.5 else img
    return img


def build_cache(split: PrefixSplit, samples: Sequence[Sample], rows: Sequence[tuple[int, str, int]], folder: Path,
                name: str, size: int, mean: Sequence[float], std: Sequence[float], seed: int,
                batch: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
    """Prefix outputs of every row, as a float16 .npy memmap in `folder/name.npy`; resumes a partial one.
    When the split's suffix needs the pixels too, the resized uint8 crops go to `folder/name_pixels.npy`
    (normalised at training time exactly as detectors.preprocess does)."""
    folder.mkdir(parents=True, exist_ok=True)
    split.model.eval()   # the frozen layers run with their ImageNet BatchNorm statistics, never batch statistics
    path, done_path = folder / f"{name}.npy", folder / f"{name}.done"
    with torch.inference_mode():
        shape = tuple(split.forward_prefix(torch.zeros(1, 3, size, size)).shape[1:])
    n = len(rows)
    done = int(done_path.read_text()) if done_path.is_file() and path.is_file() else 0
    mode = "r+" if done else "w+"
    out = np.lib.format.open_memmap(path, mode=mode, dtype=np.float16, shape=(n, *shape))
    pixels = (np.lib.format.open_memmap(folder / f"{name}_pixels.npy", mode=mode, dtype=np.uint8,
                                        shape=(n, size, size, 3)) if split.needs_pixels else None)
    if done >= n:
        return out, pixels
    augmenter, sbi = aug.build_augmenter("default"), aug.SelfBlend()
    start = time.time()
    for lo in range(done - done % CHUNK, n, CHUNK):
        hi = min(n, lo + CHUNK)
        crops = []
        for j in range(lo, hi):
            i, kind, _ = rows[j]
            rng = np.random.default_rng([seed, j])
            crops.append(_render(samples[i], kind, rng, augmenter, sbi))
        with torch.inference_mode():
            for b in range(0, len(crops), batch):
                x = to_tensor_batch(crops[b:b + batch], size, mean, std).contiguous(memory_format=torch.channels_last)
                out[lo + b: lo + b + len(x)] = split.forward_prefix(x).numpy().astype(np.float16)
        if pixels is not None:
            pixels[lo:hi] = np.stack([resize_rgb(check_crop(c), size) for c in crops])
            pixels.flush()
        out.flush()
        done_path.write_text(str(hi))
        rate = (hi - done) / max(1e-6, time.time() - start)
        log.info("%s: %d/%d cached (%.1f crops/s)", name, hi, n, rate)
    return out, pixels


def pixels_tensor(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Cached uint8 crops -> the normalised (N, 3, S, S) tensor detectors.preprocess.to_tensor_batch makes."""
    x = pixels.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------- metrics
def split_metrics(labels: np.ndarray, logits: np.ndarray, temperature: float, sources: Sequence[str],
                  pair_reals: dict[str, str]) -> dict:
    raw, cal = apply_temperature(logits, 1.0), apply_temperature(logits, temperature)
    return {"calibrated": compute_metrics(labels, cal), "ece_before": expected_calibration_error(labels, raw),
            "ece_after": expected_calibration_error(labels, cal),
            "auc_by_source": auc_by_source(labels, cal, sources, pair_reals)}


def manifest_metrics(temperature: float, parts: dict[str, dict]) -> dict:
    """The same keys as train.final_eval.manifest_metrics, which the analyzer, gate and cards read."""
    out: dict = {"temperature": temperature}
    for split, part in parts.items():
        cal = part["calibrated"]
        for key in ("auc", "accuracy", "average_precision", "log_loss", "eer", "n"):
            out[f"{split}_{key}"] = cal[key]
        out[f"{split}_ece_before"], out[f"{split}_ece_after"] = part["ece_before"], part["ece_after"]
        out[f"{split}_auc_by_source"] = part["auc_by_source"]
    return json_safe(out)


# ---------------------------------------------------------------------------------------------- training
def balance_weights(labels: np.ndarray, sources: Sequence[str], power: float) -> np.ndarray:
    """Sampling weight per row: (source, label) cells balanced to the power `power` (0: as is, 1: equal)."""
    keys = [f"{s}|{l}" for s, l in zip(sources, labels)]
    counts = {k: keys.count(k) for k in set(keys)}
    w = np.array([counts[k] ** -power for k in keys], dtype=np.float64)
    return w / w.sum()


def logits_of(split: PrefixSplit, data: FeatureSet, batch: int = 128, pre_logits: bool = False) -> np.ndarray:
    """The suffix's logits of every row, or with `pre_logits` the probe's features (PrefixSplit.probe_features)."""
    split.model.eval()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(data.labels), batch):
            x, px = data.batch(slice(lo, lo + batch))
            if pre_logits:
                out.append(split.probe_features(x, pixels=px).reshape(len(x), -1).numpy())
            else:
                out.append(split.forward_suffix(x, pixels=px).reshape(-1).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_suffix(split: PrefixSplit, train: FeatureSet, val: FeatureSet, args: argparse.Namespace,
               out_dir: Path, pair_reals: dict[str, str]) -> dict:
    torch.manual_seed(args.seed)
    params = split.trainable()
    head = {id(p) for p in split.head_parameters()}
    groups = [{"params": [p for p in params if id(p) not in head], "lr": args.lr},
              {"params": [p for p in params if id(p) in head], "lr": args.lr * args.head_lr_mult}]
    optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, args.samples_per_epoch // args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups], total_steps=total,
                                                    pct_start=0.1, anneal_strategy="cos")
    weights = balance_weights(train.labels, train.sources, args.balance)
    loss_fn = nn.BCEWithLogitsLoss()

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        idx = np.sort(rng.choice(len(train.labels), size=args.batch_size, p=weights))
        x, px = train.batch(idx, flip=rng.random(len(idx)) < 0.5)
        if args.feature_dropout > 0:
            x = nn.functional.dropout2d(x, args.feature_dropout, training=True)
        y = torch.from_numpy(train.labels[idx].astype(np.float32))
        return loss_fn(split.forward_suffix(x, pixels=px).reshape(-1), y * (1 - args.label_smoothing)
                       + 0.5 * args.label_smoothing)

    plan = EpochPlan(epochs=args.epochs, steps_per_epoch=steps_per_epoch, seed=args.seed, resume=args.resume)
    return run_epochs(split.model, params, optimizer, scheduler, plan, out_dir, batch_loss, split.train_mode,
                      lambda: logits_of(split, val), val.labels, val.sources, pair_reals)


def soup_suffix(split: PrefixSplit, checkpoints: Sequence[str], weights: Sequence[float] | None) -> dict:
    """The model soup of `checkpoints` loaded into `split.model` (strictly); run's history is empty."""
    try:
        state, ingredients = average_states(checkpoints, weights)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"--soup: {exc}") from None
    split.model.load_state_dict(state, strict=True)
    log.info("soup of %s", ", ".join(f"{i['path']} (epoch {i['epoch']}, weight {i['weight']:.2f})"
                                     for i in ingredients))
    return {"history": [], "best_epoch": None, "soup": ingredients}


# ---------------------------------------------------------------------------------------------- the probe
def frozen_probe(split: PrefixSplit, parts: dict[str, FeatureSet], pair_reals: dict[str, str], seed: int) -> dict:
    """Logistic regression on the ImageNet model's pooled features of clean crops; C chosen on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    feats = {k: logits_of(split, v, pre_logits=True) for k, v in parts.items()}
    clean = parts["train"].clean
    scaler = StandardScaler().fit(feats["train"][clean])
    best = None
    for c in (0.001, 0.003, 0.01, 0.03, 0.1):
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        clf.fit(scaler.transform(feats["train"][clean]), parts["train"].labels[clean])
        p = clf.predict_proba(scaler.transform(feats["val"]))[:, 1]
        by = auc_by_source(parts["val"].labels, p, parts["val"].sources, pair_reals)
        score = float(np.mean([v for v in by.values() if v is not None]))
        if best is None or score > best[0]:
            best = (score, c, clf)
    _, c, clf = best
    out = {"C": c}
    for name in ("val", "test"):
        p = clf.predict_proba(scaler.transform(feats[name]))[:, 1]
        out[f"{name}_auc"] = float(roc_auc(parts[name].labels, p))
        out[f"{name}_auc_by_source"] = auc_by_source(parts[name].labels, p, parts[name].sources, pair_reals)
    return out


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.frozen_prefix", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--name", required=True, help="registered detector name (its builder must take pretrained=True)")
    p.add_argument("--data", action="append", required=True, help="crop index from train/prepare.py (with splits)")
    p.add_argument("--size", type=int, default=192, help="input side")
    p.add_argument("--model-kwarg", action="append", default=[], metavar="KEY=JSON",
                   help="builder keyword recorded in the artifact, e.g. trunk_variant=2 (a hybrid on Lite2)")
    p.add_argument("--cut", required=True, help="last frozen top-level layer, e.g. block11 for xception")
    p.add_argument("--pair-reals", action="append", default=[], help="FAKE_SOURCE=REAL_SOURCE for fake-only sources")
    p.add_argument("--exclude-source", action="append", default=[], help="sources left out of training")
    p.add_argument("--augment-fraction", type=float, default=0.5, help="training crops cached degraded")
    p.add_argument("--reframe", type=float, default=0.0,
                   help="fraction of training crops added once more, re-framed (train.augment.Reframe)")
    p.add_argument("--context", type=float, default=0.0,
                   help="fraction of training crops added once more with their black frame filled "
                        "(train.augment.ContextFill)")
    p.add_argument("--sbi", type=int, default=1500, help="self-blended pseudo-fakes added from real training crops")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--samples-per-epoch", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--head-lr-mult", type=float, default=5.0)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--balance", type=float, default=0.5, help="(source, label) balancing power, 0..1")
    p.add_argument("--feature-dropout", type=float, default=0.1)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--probe", action="store_true", help="also fit the frozen-feature baseline and save probe.json")
    p.add_argument("--probe-only", action="store_true", help="fit the baseline, save probe.json and stop")
    p.add_argument("--cache", default="data_cache/features", help="feature cache root")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--soup", nargs="+", default=[], metavar="CHECKPOINT",
                   help="no training: average these checkpoints of this recipe (a model soup), refit the temperature "
                        "on validation and evaluate it like a trained run")
    p.add_argument("--soup-weights", nargs="+", type=float, default=None, metavar="W",
                   help="one weight per --soup checkpoint (default: equal)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-mlflow", action="store_true")
    return p


def _feature_set(split: PrefixSplit, samples: list[Sample], rows, key_dir: Path, name: str, size: int,
                 spec, seed: int) -> FeatureSet:
    feats, pixels = build_cache(split, samples, rows, key_dir, name, size, spec.mean, spec.std, seed)
    return FeatureSet(features=np.asarray(feats), pixels=None if pixels is None else np.asarray(pixels),
                      mean=tuple(spec.mean), std=tuple(spec.std), labels=np.array([r[2] for r in rows], dtype=np.int64),
                      sources=[samples[r[0]].source for r in rows], clean=np.array([r[1] == "clean" for r in rows]))


def parse_model_kwargs(items: Sequence[str]) -> dict:
    """KEY=JSON pairs (`trunk_variant=2`) -> builder kwargs; a bad pair ends the run with one line."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.isidentifier():
                raise ValueError
            out[key] = json.loads(value)
        except ValueError:
            raise SystemExit(f"--model-kwarg wants KEY=JSON (e.g. trunk_variant=2), not {item!r}") from None
    return out


def run(args: argparse.Namespace) -> Path:
    if args.threads:
        torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = get_spec(args.name)
    if not spec.offline_start:
        raise SystemExit(f"{args.name} has no offline ImageNet start: frozen-prefix training needs one "
                         f"({', '.join(n for n in detector_names() if get_spec(n).offline_start)} have one)")
    if args.soup_weights and not args.soup:
        raise SystemExit("--soup-weights needs --soup")
    try:
        pair_reals = parse_pairs(args.pair_reals)
    except DataError as exc:
        raise SystemExit(str(exc)) from None
    samples = [s for s in load_samples(args.data) if s.source not in set(args.exclude_source)]
    if not all(s.split for s in samples):
        raise SystemExit("the crop index has no splits: make it with train/prepare.py")
    parts = by_split(samples)
    model_kwargs = parse_model_kwargs(args.model_kwarg)
    model = build_model(args.name, pretrained=True, input_size=args.size, **model_kwargs
                        ).to(memory_format=torch.channels_last)
    model.eval()
    split = split_model(model, args.cut)
    key = {"name": args.name, "size": args.size, "cut": args.cut, "data": sorted(map(str, args.data)),
           "augment": args.augment_fraction, "sbi": args.sbi, "seed": args.seed, "exclude": sorted(args.exclude_source)}
    if model_kwargs:   # only when given, so caches made before the option keep their keys
        key["model_kwargs"] = model_kwargs
    if args.reframe:   # likewise
        key["reframe"] = args.reframe
    if args.context:
        key["context"] = args.context
    ident = json.dumps(key, sort_keys=True)
    key_dir = Path(args.cache) / f"{args.name}_{args.size}_{args.cut}_{hashlib.sha1(ident.encode()).hexdigest()[:10]}"
    key_dir.mkdir(parents=True, exist_ok=True)
    (key_dir / "key.json").write_text(ident)
    views = training_views(parts["train"], args.augment_fraction, args.sbi, args.seed, args.reframe,
                           args.context)
    sets = {"train": _feature_set(split, parts["train"], views, key_dir, "train", args.size, spec, args.seed)}
    for name in ("val", "test"):
        rows = [(i, "clean", s.label) for i, s in enumerate(parts[name])]
        sets[name] = _feature_set(split, parts[name], rows, key_dir, name, args.size, spec, args.seed)
    probe = None
    if args.probe or args.probe_only:
        probe = frozen_probe(split, sets, pair_reals, args.seed)
        trunk = f"efficientnet_lite{split.trunk.variant} trunk" if isinstance(split, TrunkSplit) else args.name
        probe = {"name": f"frozen ImageNet {trunk} features (global-pooled, {args.size} px face crops, clean "
                         f"training crops only) + logistic regression, C chosen on validation",
                 "command": "python -m train.frozen_prefix " + shlex.join(sys.argv[1:]), **probe}
        (out_dir / "probe.json").write_text(json.dumps(json_safe(probe), indent=2))
        log.info("frozen probe: test AUC %.4f by source %s", probe["test_auc"], probe["test_auc_by_source"])
        if args.probe_only:
            return out_dir / "probe.json"
    if args.soup:
        fit = soup_suffix(split, args.soup, args.soup_weights)
    else:
        fit = fit_suffix(split, sets["train"], sets["val"], args, out_dir, pair_reals)
    logits = {k: logits_of(split, sets[k]) for k in ("val", "test")}
    temperature = float(fit_temperature(logits["val"], sets["val"].labels))
    metrics = {k: split_metrics(sets[k].labels, logits[k], temperature, sets[k].sources, pair_reals)
               for k in ("val", "test")}
    summary = summarize(parts["train"] + parts["val"] + parts["test"])
    summary.update({"data": [str(d) for d in args.data], "pair_reals": pair_reals,
                    "excluded_sources": args.exclude_source})
    training = {"data": summary, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "recipe": "frozen-prefix fine-tuning on cached features (train/frozen_prefix.py)"
                          + (", weights averaged over several runs (model soup)" if args.soup else ""),
                "start": "ImageNet (offline, see the model card)", "frozen_up_to": args.cut,
                "train_rows": {"clean": int(sets["train"].clean.sum()), "total": len(sets["train"].labels),
                               "sbi": args.sbi, "reframed": args.reframe,
                               "context": args.context},
                "history": fit["history"], "best_epoch": fit["best_epoch"],
                "soup": fit.get("soup"),
                "torch": str(torch.__version__)}
    ckpt = {"name": args.name, "model": cpu_state(split.model), "model_kwargs": dict(model.detector_kwargs),
            "input_size": args.size, "temperature": temperature, "epoch": fit["best_epoch"],
            "metrics": manifest_metrics(temperature, metrics), "training": json_safe(training), "run_id": ""}
    best = finish_run(out_dir, ckpt, args, fit["history"], f"prefix-{args.name}", "frozen_prefix",
                      {"metrics": metrics, "probe": probe}, logged={"probe.json": probe} if probe else None)
    log.info("test AUC %.4f by source %s", metrics["test"]["calibrated"]["auc"], metrics["test"]["auc_by_source"])
    return best


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = build_parser().parse_args(argv)
    print(f"{'probe' if args.probe_only else 'checkpoint'}: {run(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
