"""Face-crop cache: find faces with the very same FaceFinder and margin as inference, save square crops and an
index CSV that the training scripts read.

    python -m train.prepare --data DIR [--data NAME=DIR2 ...] --out data_cache/NAME [--size 256] [--frames 16]

Images: the largest face (or `--faces K` largest). Videos: N evenly spaced frames, picked and decoded as the video
engine does (video.decode, video.sampling), the largest face of each. Images with no face are logged to
`skipped.csv` and left out (`--keep-no-face` keeps the whole image instead, as the app's whole-image fallback
does). Splits are assigned on the originals, by group, before cropping, so every crop of one video or photo lands
in the same split.

Resumable: every processed original is appended to `progress.jsonl` as soon as its crops are on disk; a rerun
skips those (and redoes any whose crop files went missing). The cache remembers its crop settings in
`config.json` and refuses to mix crops made with other ones.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from analysis.errors import MediaError
from train.data import (DataError, Sample, SplitFractions, assign_splits, discover, limit_samples,
                        parse_data_arg, summarize, write_index)
from video.decode import StreamBroken, open_reader, probe_video
from video.sampling import VideoOptions, sample_indices

log = logging.getLogger("train.prepare")

CONFIG_KEYS = ("size", "format", "margin", "min_face_size", "face_threshold", "detect_max_side", "frames",
               "faces", "keep_no_face")
FORMATS = {"png": (".png", []), "jpg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])}


@dataclass
class PrepareConfig:
    size: int = 256
    format: str = "png"
    margin: float = 0.3
    min_face_size: int = 40
    face_threshold: float = 0.9
    detect_max_side: int = 1600
    frames: int = 16
    faces: int = 1
    keep_no_face: bool = False


@dataclass
class PrepareResult:
    index: Path
    out: Path
    originals: int = 0
    crops: int = 0
    no_face: int = 0
    errors: int = 0
    reused: int = 0
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- decoding
def read_video_frames(path: str | Path, n: int) -> list[tuple[int, np.ndarray]]:
    """N evenly spaced frames (index, RGB uint8) in order, picked and decoded as the video engine does
    (video.decode.probe_video verifies the frame count; video.sampling picks; the engine's reader decodes). A
    stream that breaks keeps the frames decoded before the break."""
    info = probe_video(path, hash_file=False)
    n = max(1, int(n))
    plan = sample_indices(info.times, VideoOptions(frames=n, max_frames=n, keep_thumbnails=False))
    frames: list[tuple[int, np.ndarray]] = []
    try:
        for frame in open_reader(info).frames(plan.indices):
            frames.append((frame.index, frame.rgb))
    except StreamBroken:
        pass
    if not frames:
        raise MediaError(f"no decodable frames in {path}")
    return frames


def landmarks_in_crop(landmarks: Sequence[Sequence[float]] | None, box: Sequence[float], margin: float,
                      size: int) -> list[list[float]] | None:
    """Landmarks mapped into the saved crop's pixels (the square of analysis.faces.square_crop, resized)."""
    if not landmarks:
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, int(round(max(x2 - x1, y2 - y1) * (1.0 + margin))))
    left, top = int(round((x1 + x2) / 2.0 - side / 2.0)), int(round((y1 + y2) / 2.0 - side / 2.0))
    s = size / side
    return [[round((x - left) * s, 2), round((y - top) * s, 2)] for x, y in landmarks]


# ---------------------------------------------------------------------------------------------- the cache
class CropCache:
    def __init__(self, out: str | Path, config: PrepareConfig, force: bool = False) -> None:
        self.out = Path(out).resolve()
        self.config = config
        self.out.mkdir(parents=True, exist_ok=True)
        config_path = self.out / "config.json"
        wanted = asdict(config)
        if config_path.is_file():
            old = json.loads(config_path.read_text())
            diff = {k: (old.get(k), wanted[k]) for k in CONFIG_KEYS if old.get(k) != wanted[k]}
            if diff and not force:
                text = ", ".join(f"{k}: cache {a!r} vs asked {b!r}" for k, (a, b) in diff.items())
                raise DataError(f"{self.out} holds crops made with other settings ({text}); "
                                "use another --out, or --force to redo everything")
            if diff:
                (self.out / "progress.jsonl").unlink(missing_ok=True)
        config_path.write_text(json.dumps(wanted, indent=2))
        self.progress_path = self.out / "progress.jsonl"
        self.done: dict[str, dict] = {}
        if self.progress_path.is_file():
            for line in self.progress_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                self.done[entry["original"]] = entry

    def is_done(self, original: str) -> bool:
        entry = self.done.get(original)
        return entry is not None and all((self.out / c["crop"]).is_file() for c in entry["crops"])

    def record(self, entry: dict) -> None:
        self.done[entry["original"]] = entry
        with self.progress_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()

    def crop_name(self, sample: Sample, frame: int, face: int) -> str:
        digest = hashlib.sha1(sample.path.encode("utf-8")).hexdigest()[:8]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(sample.path).stem)[:60]
        frame_part = f"_f{frame:06d}" if frame >= 0 else ""
        ext = FORMATS[self.config.format][0]
        source = re.sub(r"[^A-Za-z0-9_.-]+", "_", sample.source) or "data"
        return f"crops/{source}/{stem}_{digest}{frame_part}_{face}{ext}"

    def save_crop(self, rel: str, crop: np.ndarray) -> None:
        from detectors.preprocess import resize_rgb  # the resizing inference applies

        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img = cv2.cvtColor(resize_rgb(crop, self.config.size), cv2.COLOR_RGB2BGR)
        tmp = path.with_name(path.stem + ".tmp" + path.suffix)
        if not cv2.imwrite(str(tmp), img, FORMATS[self.config.format][1]):
            raise OSError(f"cannot write {path}")
        tmp.replace(path)


def _largest(faces: list, k: int) -> list:
    return sorted(faces, key=lambda f: f.size, reverse=True)[:k]


def _whole_image_face(rgb: np.ndarray):
    from analysis.faces import Face, square_crop
    h, w = rgb.shape[:2]
    box = (0.0, 0.0, float(w), float(h))
    return Face(box=box, score=float("nan"), landmarks=None, crop=square_crop(rgb, box, 0.0))


def _crop_entries(cache: CropCache, sample: Sample, frame: int, faces: list) -> list[dict]:
    entries = []
    for k, face in enumerate(faces):
        rel = cache.crop_name(sample, frame, k)
        cache.save_crop(rel, face.crop)
        lm = landmarks_in_crop(face.landmarks, face.box, cache.config.margin, cache.config.size)
        entries.append({"crop": rel, "frame": frame, "face": k,
                        "score": None if math.isnan(face.score) else round(float(face.score), 5),
                        "landmarks": lm})
    return entries


def _process_images(cache: CropCache, finder, samples: list[Sample]) -> Iterator[dict]:
    from analysis.media import load_image

    loaded, entries = [], {}
    for s in samples:
        try:
            loaded.append((s, load_image(s.path).rgb))
        except MediaError as exc:
            entries[s.path] = {"original": s.path, "status": "error", "message": str(exc), "crops": []}
    found = finder.detect_many([rgb for _, rgb in loaded]) if loaded else []
    for (s, rgb), faces in zip(loaded, found):
        faces = _largest(faces, cache.config.faces)
        status = "ok"
        if not faces and cache.config.keep_no_face:
            faces, status = [_whole_image_face(rgb)], "whole_image"
        entries[s.path] = {"original": s.path, "status": status if faces else "no_face",
                           "message": "" if faces else "no face found", "crops": _crop_entries(cache, s, -1, faces)}
    for s in samples:
        yield entries[s.path]


def _process_video(cache: CropCache, finder, sample: Sample, chunk: int = 8) -> dict:
    try:
        frames = read_video_frames(sample.path, cache.config.frames)
    except MediaError as exc:
        return {"original": sample.path, "status": "error", "message": str(exc), "crops": []}
    crops = []
    for start in range(0, len(frames), chunk):
        part = frames[start:start + chunk]
        for (index, rgb), faces in zip(part, finder.detect_many([rgb for _, rgb in part])):
            faces = _largest(faces, cache.config.faces)
            if not faces and cache.config.keep_no_face:
                faces = [_whole_image_face(rgb)]
            crops += _crop_entries(cache, sample, index, faces)
    return {"original": sample.path, "status": "ok" if crops else "no_face",
            "message": "" if crops else f"no face in {len(frames)} sampled frames", "crops": crops,
            "frames": len(frames)}


def build_index(cache: CropCache, samples: Sequence[Sample]) -> tuple[list[Sample], list[dict]]:
    """Crops of every processed original, with the original's current label, group, source and split."""
    crops: list[Sample] = []
    skipped: list[dict] = []
    for s in samples:
        entry = cache.done.get(s.path)
        if entry is None:
            continue
        if not entry["crops"]:
            skipped.append({"original": s.path, "source": s.source, "label": s.label, "status": entry["status"],
                            "message": entry.get("message", "")})
        for c in entry["crops"]:
            crops.append(Sample(
                path=str(cache.out / c["crop"]), label=s.label, group=s.group, source=s.source, split=s.split,
                kind=s.kind, original=s.path, frame=int(c["frame"]), face=int(c["face"]),
                score=float("nan") if c.get("score") is None else float(c["score"]),
                landmarks=json.dumps(c["landmarks"]) if c.get("landmarks") else ""))
    return crops, skipped


def prepare(data: Sequence[str | Path], out: str | Path, config: PrepareConfig | None = None, *,
            fractions: SplitFractions | None = None, seed: int = 0, limit: int | None = None,
            group_pattern: str | None = None, device: str = "cpu", batch: int = 16, force: bool = False,
            progress: bool = True) -> PrepareResult:
    """Crop every labelled image/video of `data` into `out` and write `out/index.csv`; see the module docstring."""
    config = config or PrepareConfig()
    if config.format not in FORMATS:
        raise DataError(f"unknown crop format {config.format!r}; choose png or jpg")
    started = time.time()
    samples: list[Sample] = []
    for spec in data:
        source, path = parse_data_arg(spec)
        found = discover(path, source, group_pattern)
        if any(s.original for s in found) or (Path(path) / "index.csv").is_file():
            raise DataError(f"{path} is already a crop index: train on it directly")
        samples += limit_samples(found, limit, seed)
    samples = assign_splits(samples, fractions, seed)
    cache = CropCache(out, config, force=force)
    todo = [s for s in samples if not cache.is_done(s.path)]
    result = PrepareResult(index=cache.out / "index.csv", out=cache.out, originals=len(samples),
                           reused=len(samples) - len(todo))
    log.info("%d originals (%d already cached), %d to crop into %s", len(samples), result.reused, len(todo), cache.out)
    if todo:
        from analysis.faces import FaceFinder
        finder = FaceFinder(margin=config.margin, min_face_size=config.min_face_size,
                            face_threshold=config.face_threshold, detect_max_side=config.detect_max_side,
                            device=device)
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="cropping", unit="file", disable=not progress, dynamic_ncols=True)
        images = [s for s in todo if s.kind == "image"]
        for start in range(0, len(images), max(1, batch)):
            for entry in _process_images(cache, finder, images[start:start + batch]):
                _log_entry(entry)
                cache.record(entry)
                bar.update(1)
        for s in (s for s in todo if s.kind == "video"):
            entry = _process_video(cache, finder, s)
            _log_entry(entry)
            cache.record(entry)
            bar.update(1)
        bar.close()
    crops, skipped = build_index(cache, samples)
    write_index(result.index, crops)
    _write_skipped(cache.out / "skipped.csv", skipped)
    result.crops = len(crops)
    result.no_face = sum(s["status"] == "no_face" for s in skipped)
    result.errors = sum(s["status"] == "error" for s in skipped)
    result.seconds = round(time.time() - started, 1)
    result.summary = {"originals": summarize(samples), "crops": summarize(crops), "no_face": result.no_face,
                      "errors": result.errors, "config": asdict(config), "seed": seed,
                      "fractions": asdict(fractions or SplitFractions()),
                      "data": [str(d) for d in data]}
    (cache.out / "summary.json").write_text(json.dumps(result.summary, indent=2))
    return result


def _log_entry(entry: dict) -> None:
    if entry["status"] == "no_face":
        log.info("no face, skipped: %s", entry["original"])
    elif entry["status"] == "error":
        log.warning("skipped %s: %s", entry["original"], entry["message"])


def _write_skipped(path: Path, rows: list[dict]) -> None:
    import csv
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["original", "source", "label", "status", "message"])
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    from analysis.settings import AnalysisSettings
    defaults = AnalysisSettings()
    p = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", action="append", required=True,
                   help="data set: a folder (any layout), a manifest CSV or labels.json; NAME=PATH names the source")
    p.add_argument("--out", required=True, help="cache folder, e.g. data_cache/NAME")
    p.add_argument("--size", type=int, default=256, help="side of the saved square crops")
    p.add_argument("--frames", type=int, default=16, help="evenly spaced frames per video")
    p.add_argument("--format", choices=sorted(FORMATS), default="png", help="png, or jpg at quality 95")
    p.add_argument("--faces", type=int, default=1, help="largest faces kept per image / frame")
    p.add_argument("--keep-no-face", action="store_true", help="keep the whole image when no face is found")
    p.add_argument("--margin", type=float, default=defaults.margin, help="crop margin (keep the app's default)")
    p.add_argument("--min-face-size", type=int, default=defaults.min_face_size)
    p.add_argument("--face-threshold", type=float, default=defaults.face_threshold)
    p.add_argument("--val", type=float, default=0.15, help="validation fraction (by group)")
    p.add_argument("--test", type=float, default=0.15, help="test fraction (by group)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="at most N originals per data set (quick runs)")
    p.add_argument("--group-regex", default=None, help="regex on file stems whose first group is the group id")
    p.add_argument("--batch", type=int, default=16, help="images per face-detection batch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--force", action="store_true", help="redo a cache made with other settings")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from analysis.settings import AnalysisSettings
    defaults = AnalysisSettings()
    if args.margin != defaults.margin or args.min_face_size != defaults.min_face_size:
        log.warning("margin/min face size differ from the app's (%s, %s): crops will not match inference",
                    defaults.margin, defaults.min_face_size)
    config = PrepareConfig(size=args.size, format=args.format, margin=args.margin, min_face_size=args.min_face_size,
                           face_threshold=args.face_threshold, detect_max_side=defaults.detect_max_side,
                           frames=args.frames, faces=args.faces, keep_no_face=args.keep_no_face)
    try:
        result = prepare(args.data, args.out, config, fractions=SplitFractions(args.val, args.test), seed=args.seed,
                         limit=args.limit, group_pattern=args.group_regex, device=args.device, batch=args.batch,
                         force=args.force, progress=not args.no_progress)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    splits = result.summary["crops"]["splits"]
    print(f"index: {result.index}")
    print(f"{result.crops} crops from {result.originals} originals ({result.reused} cached); "
          f"no face: {result.no_face}, errors: {result.errors}; {result.seconds}s")
    print("splits: " + ", ".join(f"{k} {v['n']} ({v['real']} real / {v['fake']} fake)" for k, v in splits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
