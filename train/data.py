"""Data sets on disk: layouts, manifests, the crop index, grouped splits and class/source balancing.

Recognised layouts (folder names in any capitalisation, Kaggle names included):
- `DIR/{real,fake}/...`
- `DIR/{train,val,test}/{real,fake}/...` (`Train`, `Validation`/`valid`/`dev`, `Test`, ...)
- a CSV manifest `path,label[,group][,source][,split]` (a file, or `DIR/manifest.csv`); labels real/fake or 0/1
- `DIR/labels.json` mapping file -> "real" | "fake" | "unknown" (or {"label": ...}); "unknown" is skipped
- a crop index written by train/prepare.py (`index.csv`, or a folder holding one)

Every sample carries a group: the CSV group column, else the video's stem (FaceForensics++ `519_515.mp4` belongs
to `519`), else the image itself. Splits never put one group on both sides.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import re
import warnings
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from analysis.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, sniff_kind

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "trn": "train",
                 "val": "val", "valid": "val", "validation": "val", "dev": "val",
                 "test": "test", "testing": "test", "tst": "test"}
LABEL_ALIASES = {"real": 0, "fake": 1, "0": 0, "1": 1, "original": 0, "pristine": 0, "authentic": 0, "genuine": 0,
                 "deepfake": 1, "manipulated": 1, "synthetic": 1, "generated": 1, "false": 0, "true": 1}
SKIP_LABELS = {"", "unknown", "-1", "none", "na", "n/a", "?"}
LABEL_NAMES = ("real", "fake")
INDEX_NAME = "index.csv"
_CSV_ALIASES = {"path": ("path", "file", "filename", "filepath", "file_path", "image", "video", "crop"),
                "label": ("label", "class", "target", "is_fake", "y"),
                "group": ("group", "group_id", "source_video", "original", "original_video"),
                "source": ("source", "dataset"),
                "split": ("split", "subset", "fold")}
_FFPP_PAIR = re.compile(r"^(\d+)_(\d+)$")


class DataError(ValueError):
    """A data set cannot be read as given; the message is one line."""


@dataclass
class Sample:
    """One training/evaluation item: a media file (raw layouts) or a face crop (prepared index)."""

    path: str                    # absolute path of the image/video, or of the crop in an index
    label: int                   # 0 real, 1 fake
    group: str                   # never split across train/val/test
    source: str                  # data set name, for balancing and per-source metrics
    split: str | None = None     # train | val | test | None (not assigned yet)
    kind: str = "image"          # image | video (of the original media)
    original: str = ""           # the media file a crop came from ("" = path itself)
    frame: int = -1              # frame index in the original video, -1 for images
    face: int = 0                # face number within the image/frame
    score: float = float("nan")  # face detector probability (nan: whole image, no detection)
    landmarks: str = ""          # JSON [[x, y], ...] in crop pixels, "" when unknown

    @property
    def media(self) -> str:
        """The original media file: what video-level metrics aggregate over."""
        return self.original or self.path

    def landmark_array(self) -> np.ndarray | None:
        if not self.landmarks:
            return None
        points = np.asarray(json.loads(self.landmarks), dtype=np.float32)
        return points if points.ndim == 2 and len(points) >= 3 else None


# ---------------------------------------------------------------------------------------------- labels, groups
def parse_label(value: object, where: str = "") -> int | None:
    """0/1 from real/fake/0/1 (any case); None for unknown labels that are to be skipped."""
    text = str(value).strip().lower()
    if text in SKIP_LABELS:
        return None
    if text in LABEL_ALIASES:
        return LABEL_ALIASES[text]
    try:
        number = float(text)
    except ValueError:
        number = None
    if number in (0.0, 1.0):
        return int(number)
    raise DataError(f"{where}unknown label {value!r}: use real/fake or 0/1 (or 'unknown' to skip)")


def media_kind(path: Path) -> str | None:
    """"image" | "video" from the suffix; unknown suffixes are sniffed from the content."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    try:  # content sniffing only for unusual names
        return sniff_kind(path)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the caller
        return None


def video_group(stem: str) -> str:
    """Group of a video from its stem: FaceForensics++ `target_source` pairs belong to the target video."""
    match = _FFPP_PAIR.match(stem)
    return match.group(1) if match else stem


def default_group(path: Path, kind: str, source: str, root: Path, pattern: re.Pattern | None = None) -> str:
    """Group when none is given: a regex on the stem if asked for, else the video's stem, else the image itself."""
    if pattern is not None:
        match = pattern.search(path.stem)
        if match:
            return match.group(1) if match.groups() else match.group(0)
    if kind == "video":
        return video_group(path.stem)
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    return f"{source}/{rel}"


# ---------------------------------------------------------------------------------------------- layouts
def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _label_dirs(folder: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = defaultdict(list)
    for child in _children(folder):
        if child.is_dir() and child.name.lower() in LABEL_ALIASES:
            found[LABEL_ALIASES[child.name.lower()]].append(child)
    return found


def _split_dirs(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for child in _children(folder):
        split = SPLIT_ALIASES.get(child.name.lower())
        if child.is_dir() and split and _label_dirs(child):
            if split in found:
                raise DataError(f"{folder}: two folders for the {split} split ({found[split].name}, {child.name})")
            found[split] = child
    return found


def _media_files(folder: Path) -> list[Path]:
    files = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts):
            if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                files.append(p)
    return files


def _find_manifest(folder: Path) -> Path | None:
    for name in ("manifest.csv", "labels.csv", "metadata.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def _is_index(path: Path) -> bool:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    return {"path", "label", "group", "source", "original"} <= {h.strip().lower() for h in header}


def discover(root: str | Path, source: str | None = None, group_pattern: str | None = None) -> list[Sample]:
    """All labelled samples of one data set, whatever its layout (see the module docstring).

    `source` defaults to the folder's name (the CSV's folder for a manifest file). Raises DataError when no layout
    is recognised or nothing labelled is found.
    """
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DataError(f"data not found: {root}")
    pattern = re.compile(group_pattern) if group_pattern else None
    if root.is_file():
        src = source or root.parent.name
        if root.suffix.lower() == ".csv":
            samples = read_index(root) if _is_index(root) else read_manifest(root, src, pattern)
        elif root.suffix.lower() == ".json":
            samples = read_labels_json(root, src, pattern)
        else:
            raise DataError(f"{root}: expected a folder, a .csv manifest or a labels.json")
    else:
        src = source or root.name
        if (root / INDEX_NAME).is_file() and _is_index(root / INDEX_NAME):
            samples = read_index(root / INDEX_NAME)
        elif (manifest := _find_manifest(root)) is not None:
            samples = read_manifest(manifest, src, pattern)
        elif (root / "labels.json").is_file():
            samples = read_labels_json(root / "labels.json", src, pattern)
        elif splits := _split_dirs(root):
            samples = []
            for split, folder in splits.items():
                samples += _read_label_folders(folder, src, root, split, pattern)
        elif _label_dirs(root):
            samples = _read_label_folders(root, src, root, None, pattern)
        else:
            raise DataError(f"no data layout recognised in {root}: expected real/ and fake/ folders, "
                            "train/val/test folders holding them, a manifest.csv or a labels.json")
    if not samples:
        raise DataError(f"no labelled images or videos found in {root}")
    return samples


def _read_label_folders(folder: Path, source: str, root: Path, split: str | None,
                        pattern: re.Pattern | None) -> list[Sample]:
    samples = []
    for label, dirs in sorted(_label_dirs(folder).items()):
        for d in dirs:
            for f in _media_files(d):
                kind = "video" if f.suffix.lower() in VIDEO_SUFFIXES else "image"
                samples.append(Sample(path=str(f), label=label, source=source, split=split, kind=kind,
                                      group=default_group(f, kind, source, root, pattern)))
    return samples


def _column(header: list[str], role: str) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for alias in _CSV_ALIASES[role]:
        if alias in lowered:
            return lowered[alias]
    return None


def read_manifest(path: str | Path, source: str | None = None, pattern: re.Pattern | None = None) -> list[Sample]:
    """A CSV `path,label[,group][,source][,split]`; paths are relative to the CSV's folder (or absolute)."""
    path = Path(path).resolve()
    source = source or path.parent.name
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        cols = {role: _column(header, role) for role in _CSV_ALIASES}
        if cols["path"] is None or cols["label"] is None:
            raise DataError(f"{path}: a manifest needs a header with 'path' and 'label' columns (found {header})")
        samples, missing, skipped = [], [], 0
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}: "
            label = parse_label(row.get(cols["label"], ""), where)
            if label is None:
                skipped += 1
                continue
            raw = (row.get(cols["path"]) or "").strip()
            if not raw:
                raise DataError(f"{where}empty path")
            file = Path(raw) if Path(raw).is_absolute() else path.parent / raw
            if not file.is_file():
                missing.append(str(file))
                continue
            kind = media_kind(file)
            if kind is None:
                raise DataError(f"{where}not an image or video: {file}")
            src = (row.get(cols["source"]) or "").strip() if cols["source"] else ""
            src = src or source
            group = (row.get(cols["group"]) or "").strip() if cols["group"] else ""
            split = (row.get(cols["split"]) or "").strip().lower() if cols["split"] else ""
            if split and split not in SPLIT_ALIASES:
                raise DataError(f"{where}unknown split {split!r}: use train/val/test")
            samples.append(Sample(path=str(file), label=label, source=src, kind=kind,
                                  split=SPLIT_ALIASES[split] if split else None,
                                  group=group or default_group(file, kind, src, path.parent, pattern)))
    if missing:
        raise DataError(f"{path}: {len(missing)} listed file(s) not found, e.g. {missing[0]}")
    if skipped:
        log.info("%s: skipped %d row(s) with unknown labels", path, skipped)
    return samples


def read_labels_json(path: str | Path, source: str | None = None, pattern: re.Pattern | None = None) -> list[Sample]:
    """`labels.json`: {"file": "real" | "fake" | "unknown" | {"label": ..., "group": ...}} or a list of
    {"path": ..., "label": ...}; files are relative to the JSON's folder; unknown labels are skipped."""
    path = Path(path).resolve()
    source = source or path.parent.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, list):
        entries = [(str(e.get("path") or e.get("file") or ""), e) for e in data]
    elif isinstance(data, dict):
        entries = [(name, value if isinstance(value, dict) else {"label": value}) for name, value in data.items()]
    else:
        raise DataError(f"{path}: expected an object or a list of entries")
    samples = []
    for name, entry in entries:
        label = parse_label(entry.get("label", ""), f"{path.name} {name}: ")
        if label is None:
            continue
        file = path.parent / name
        if not file.is_file():
            raise DataError(f"{path.name}: listed file not found: {file}")
        kind = media_kind(file)
        if kind is None:
            raise DataError(f"{path.name}: not an image or video: {file}")
        group = str(entry.get("group") or "") or default_group(file, kind, source, path.parent, pattern)
        split = str(entry.get("split") or "").lower()
        samples.append(Sample(path=str(file), label=label, source=source, kind=kind, group=group,
                              split=SPLIT_ALIASES.get(split)))
    return samples


# ---------------------------------------------------------------------------------------------- the crop index
_INDEX_FIELDS = [f.name for f in fields(Sample)]


def write_index(path: str | Path, samples: Iterable[Sample]) -> Path:
    """CSV of samples with paths relative to the CSV's folder where possible (the cache can be moved)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=_INDEX_FIELDS)
        writer.writeheader()
        for s in samples:
            row = asdict(s)
            row["path"] = _relative(Path(s.path), path.parent)
            row["split"] = s.split or ""
            row["score"] = "" if math.isnan(s.score) else f"{s.score:.5f}"
            writer.writerow(row)
    tmp.replace(path)
    return path


def _relative(file: Path, base: Path) -> str:
    try:
        return file.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(file)


def read_index(path: str | Path) -> list[Sample]:
    path = Path(path).resolve()
    samples = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                file = Path(row["path"])
                label = parse_label(row["label"], f"{path.name} line {line}: ")
                if label is None:
                    continue
                samples.append(Sample(
                    path=str(file if file.is_absolute() else path.parent / file), label=label,
                    group=row["group"], source=row["source"], split=SPLIT_ALIASES.get((row.get("split") or "").lower()),
                    kind=row.get("kind") or "image", original=row.get("original") or "",
                    frame=int(row.get("frame") or -1), face=int(row.get("face") or 0),
                    score=float(row["score"]) if row.get("score") else float("nan"),
                    landmarks=row.get("landmarks") or ""))
            except (KeyError, ValueError) as exc:
                raise DataError(f"{path.name} line {line}: bad index row ({exc})") from None
    return samples


def load_samples(paths: Sequence[str | Path], group_pattern: str | None = None) -> list[Sample]:
    """Samples of several data sets (`PATH` or `SOURCE=PATH`), concatenated."""
    samples: list[Sample] = []
    for spec in paths:
        source, path = parse_data_arg(spec)
        samples += discover(path, source, group_pattern)
    return samples


def parse_data_arg(spec: str | Path) -> tuple[str | None, Path]:
    """`NAME=PATH` names the source; a plain PATH takes its folder's name."""
    text = str(spec)
    if "=" in text and not Path(text).exists():
        name, _, rest = text.partition("=")
        if name and "/" not in name:
            return name, Path(rest)
    return None, Path(text)


# ---------------------------------------------------------------------------------------------- grouped splits
@dataclass
class SplitFractions:
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise DataError(f"bad split fractions val={self.val} test={self.test}: each in [0, 1), sum below 1")


def _take_groups(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of about `fraction` of the samples, whole groups only, stratified by label when possible."""
    unique = np.unique(groups)
    if fraction <= 0 or len(unique) < 3:
        return np.zeros(len(labels), bool)
    n_splits = max(2, int(round(1 / fraction)))
    if len(unique) >= n_splits:
        from sklearn.model_selection import StratifiedGroupKFold
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "least populated class has only N members" is expected for tiny sets
            folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            _, held = next(folds.split(np.zeros(len(labels)), labels, groups))
        mask = np.zeros(len(labels), bool)
        mask[held] = True
        return mask
    # Too few groups for k folds (a handful of videos): whole groups at random, at least one.
    rng = np.random.default_rng(seed)
    k = max(1, int(round(fraction * len(unique))))
    chosen = rng.permutation(unique)[:k]
    return np.isin(groups, chosen)


def assign_splits(samples: Sequence[Sample], fractions: SplitFractions | None = None, seed: int = 0) -> list[Sample]:
    """Copies of `samples` with `split` set. Given splits (folders, CSV column) are kept; the rest is split per
    source, by group (StratifiedGroupKFold), so that frames of one video never land on both sides.

    A source that comes with some splits gets the missing val/test carved from its train part. A group already
    placed (given, or by an earlier source in name order) keeps its split everywhere.
    """
    fractions = fractions or SplitFractions()
    out = [replace(s) for s in samples]
    placed: dict[str, str] = {}   # group -> split
    owner: dict[str, str] = {}    # group -> the source that placed it
    given_by_source: dict[str, set[str]] = defaultdict(set)
    for s in out:
        if s.split:
            given_by_source[s.source].add(s.split)
            if placed.setdefault(s.group, s.split) != s.split:
                log.warning("group %s is in both %s and %s of the given splits", s.group, placed[s.group], s.split)
            owner.setdefault(s.group, s.source)
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(out):
        by_source[s.source].append(i)
    for source in sorted(by_source):
        idx = by_source[source]
        given = given_by_source.get(source, set())
        for i in idx:
            if not out[i].split and out[i].group in placed:
                out[i].split = placed[out[i].group]
        if given:  # carve the missing parts from this source's own train part
            wanted = [(name, getattr(fractions, name)) for name in ("test", "val") if name not in given]
            pool = [i for i in idx if out[i].split in (None, "train") and owner.get(out[i].group, source) == source]
        else:
            wanted = [("test", fractions.test), ("val", fractions.val)]
            pool = [i for i in idx if not out[i].split]
        remaining = 1.0
        seed_source = seed + zlib.crc32(source.encode()) % 10_000
        for name, fraction in wanted:
            if not pool or fraction <= 0:
                continue
            labels = np.array([out[i].label for i in pool])
            groups = np.array([out[i].group for i in pool])
            mask = _take_groups(labels, groups, min(1.0, fraction / remaining), seed_source)
            remaining -= fraction
            for i, take in zip(pool, mask):
                if take:
                    out[i].split = name
            pool = [i for i, take in zip(pool, mask) if not take]
        for i in idx:
            if not out[i].split:
                out[i].split = "train"
        for i in idx:
            g = out[i].group
            if owner.setdefault(g, source) == source:
                placed[g] = out[i].split
            placed.setdefault(g, out[i].split)
    return out


def check_no_leak(samples: Sequence[Sample]) -> dict[str, set[str]]:
    """Groups found in more than one split (empty dict: no leak)."""
    where: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        where[s.group].add(s.split or "")
    return {g: splits for g, splits in where.items() if len(splits) > 1}


def by_split(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for s in samples:
        out.setdefault(s.split or "train", []).append(s)
    return out


def limit_samples(samples: Sequence[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """At most `limit` samples, drawn with both labels kept in proportion (for quick runs)."""
    if not limit or len(samples) <= limit:
        return list(samples)
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    out: list[Sample] = []
    for label, items in sorted(by_label.items()):
        k = max(1, int(round(limit * len(items) / len(samples))))
        out += [items[i] for i in sorted(rng.choice(len(items), size=min(k, len(items)), replace=False))]
    return out[:limit] if len(out) > limit else out


# ---------------------------------------------------------------------------------------------- balancing
BALANCE_MODES = {"equal": lambda n: 1.0, "sqrt": math.sqrt, "size": float}


def sample_weights(samples: Sequence[Sample], source_weights: dict[str, float] | None = None,
                   balance: str = "sqrt") -> np.ndarray:
    """Per-sample sampling probabilities (sum 1): each source gets a share (by `balance` of its size, times its
    weight), split equally between the labels it has, then equally between that label's samples.

    `balance="sqrt"`: 672 photos beside 10,000 crops get sqrt(672)/(sqrt(672)+100) ~ 21% instead of 6%.
    """
    if balance not in BALANCE_MODES:
        raise DataError(f"unknown balance {balance!r}; choose one of {', '.join(BALANCE_MODES)}")
    source_weights = source_weights or {}
    unknown = set(source_weights) - {s.source for s in samples}
    if unknown:
        raise DataError(f"source weight(s) for unknown source(s): {', '.join(sorted(unknown))}")
    counts = Counter((s.source, s.label) for s in samples)
    per_source = Counter(s.source for s in samples)
    labels_in = defaultdict(set)
    for source, label in counts:
        labels_in[source].add(label)
    mass = {src: BALANCE_MODES[balance](n) * float(source_weights.get(src, 1.0)) for src, n in per_source.items()}
    total = sum(mass.values())
    if total <= 0:
        raise DataError("source weights leave nothing to sample")
    w = np.array([mass[s.source] / total / len(labels_in[s.source]) / counts[(s.source, s.label)]
                  for s in samples], dtype=np.float64)
    return w / w.sum()


def parse_source_weights(items: Sequence[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name or out[name] < 0:
            raise DataError(f"bad source weight {item!r}: use NAME=WEIGHT, e.g. ffhq_stylegan2=2")
    return out


# ---------------------------------------------------------------------------------------------- summaries
def summarize(samples: Sequence[Sample]) -> dict:
    """Counts per split, source and label, plus group counts: what the checkpoint and MLflow record."""
    out: dict = {"total": len(samples), "splits": {}, "sources": {}}
    for split, items in by_split(samples).items():
        out["splits"][split] = {"n": len(items), "real": sum(s.label == 0 for s in items),
                                "fake": sum(s.label == 1 for s in items),
                                "groups": len({s.group for s in items})}
    for source in sorted({s.source for s in samples}):
        items = [s for s in samples if s.source == source]
        out["sources"][source] = {
            split: {"real": sum(s.label == 0 and s.split == split for s in items),
                    "fake": sum(s.label == 1 and s.split == split for s in items)}
            for split in SPLITS}
    return out


def parse_pairs(values: Sequence[str]) -> dict[str, str]:
    """FAKE_SOURCE=REAL_SOURCE arguments -> a dict; DataError (one line) on a malformed one."""
    pairs = {}
    for v in values:
        fake, sep, real = v.partition("=")
        if not sep or not fake or not real:
            raise DataError(f"--pair-reals takes FAKE_SOURCE=REAL_SOURCE, not {v!r}")
        pairs[fake] = real
    return pairs
