"""A tiny generated data set for smoke tests of the training pipeline (no faces, no downloads).

Real images are smooth random colour textures; fake ones carry a pasted patch of another texture with
high-frequency noise and a sharp seam, which a small network learns to spot within a few epochs.

    python -m train.synthetic --out /tmp/synthetic --layout splits --n 64
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

LAYOUTS = ("flat", "splits", "kaggle", "csv")


def texture(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Smooth colour field: a 4x4 random grid upsampled bicubically, plus a gentle gradient."""
    grid = rng.uniform(40, 215, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(-20, 20, size, dtype=np.float32)[None, :, None] * rng.uniform(-1, 1)
    return np.clip(img + ramp, 0, 255).astype(np.uint8)


def fake_from(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paste a noisy patch of another texture with a hard edge (the "blending seam")."""
    size = img.shape[0]
    other = texture(rng, size).astype(np.float32) + rng.normal(0, 28, img.shape).astype(np.float32)
    ph, pw = (int(size * rng.uniform(0.35, 0.6)) for _ in range(2))
    y, x = int(rng.integers(0, size - ph)), int(rng.integers(0, size - pw))
    out = img.copy()
    out[y:y + ph, x:x + pw] = np.clip(other[y:y + ph, x:x + pw], 0, 255).astype(np.uint8)
    return out


def make_pair(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    real = texture(rng, size)
    return real, fake_from(texture(rng, size), rng)


def _save(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def write_dataset(root: str | Path, layout: str = "flat", n: int = 32, size: int = 64, seed: int = 0,
                  group_size: int = 1) -> Path:
    """`n` real and `n` fake images in `layout`:
    flat    root/real, root/fake
    splits  root/{train,val,test}/{real,fake} (60/20/20)
    kaggle  root/{Train,Validation,Test}/{Real,Fake}
    csv     root/images/*.png and root/manifest.csv (path,label,group), `group_size` images per group
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = {"splits": ("train", "val", "test", "real", "fake"),
             "kaggle": ("Train", "Validation", "Test", "Real", "Fake")}
    rows = []
    for i in range(n):
        real, fake = make_pair(rng, size)
        for label, img in ((0, real), (1, fake)):
            word = ("real", "fake")[label]
            if layout == "flat":
                _save(root / word / f"{word}_{i:04d}.png", img)
            elif layout in names:
                tr, va, te, r, f = names[layout]
                split = tr if i < 0.6 * n else va if i < 0.8 * n else te
                _save(root / split / (r, f)[label] / f"{word}_{i:04d}.png", img)
            else:
                rel = f"images/{word}_{i:04d}.png"
                _save(root / rel, img)
                rows.append({"path": rel, "label": word if i % 2 else str(label),
                             "group": f"g{label}_{i // max(1, group_size)}"})
    if layout == "csv":
        with (root / "manifest.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "label", "group"])
            writer.writeheader()
            writer.writerows(rows)
    return root


def write_crop_index(root: str | Path, per_split: dict[str, int], seed: int = 0, size: int = 64,
                     source: Callable[[int], str] = lambda i: "tex") -> Path:
    """A prepared crop index (as train/prepare.py writes it) of `per_split[split]` real/fake texture pairs per
    split, one group per crop; `source(i)` names the source of pair i."""
    from train.data import Sample, write_index

    root = Path(root)
    rng = np.random.default_rng(seed)
    samples = []
    for split, n in per_split.items():
        for i in range(n):
            for label in (0, 1):
                path = root / "crops" / f"{split}_{label}_{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), make_pair(rng, size)[label])
                samples.append(Sample(path=str(path), label=label, group=f"{split}{label}{i}", source=source(i),
                                      split=split, original=f"/media/{split}_{label}_{i}.png", score=0.99))
    return write_index(root / "index.csv", samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--layout", choices=LAYOUTS, default="flat")
    p.add_argument("--n", type=int, default=32, help="images per class")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(write_dataset(args.out, args.layout, args.n, args.size, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
