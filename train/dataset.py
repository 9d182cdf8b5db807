"""Training data: face crops as normalised tensors (augmented, self-blended, with optional faults), and the
train / val / test split of a run's `--data`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from analysis.media import load_image
from detectors.preprocess import to_tensor_batch
from train import augment as aug
from train.config import TrainConfig
from train.data import (DataError, Sample, SplitFractions, assign_splits, by_split, check_no_leak, limit_samples,
                        load_samples, summarize)

log = logging.getLogger("train")


def read_rgb(path: str) -> np.ndarray:
    """An image file as RGB uint8 (OpenCV, else the app's own loader)."""
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        return load_image(path).rgb  # formats OpenCV does not read
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

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
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


def load_data(args: TrainConfig) -> DataBundle:
    """The run's samples split into train / val / test, with the label faults applied to the training labels."""
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
