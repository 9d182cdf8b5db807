#!/usr/bin/env python3
"""Seconds per analysed frame of the video pipeline: decode, faces, each detector, ensemble, total.

The reference project's pipeline (five models, face detection per frame) takes 0.82 s per analysed frame on a
640x480 clip, 32 frames, on this 2-core CPU; the goal is at least 4x faster with all five detectors at their
manifests' input sizes. Detectors missing from --models-dir are built with random weights at their registry
input size into a cache folder (the arithmetic, hence the time, does not depend on the weights).

  .venv/bin/python -m bench.bench_video [--models-dir converted_models] [--clip 519.mp4] [--frames 32]
        [--batch-frames 8] [--threads N] [--channels-last] [--bf16] [--int8-linear] [--variants]

--channels-last / --bf16 / --int8-linear wrap the loaded models here (detectors/ is not touched) to measure
what such a change inside detectors/ would give; --variants times each detector under each of them on the
clip's own face crops after the main run (one table, to report to the detectors' owner).
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings
from detectors.artifacts import load_detectors, save_artifact
from detectors.registry import build_model, detector_names, get_spec, model_kwargs_for
from video.decode import probe_video
from video.engine import analyze_video
from video.sampling import VideoOptions

ROOT = Path(__file__).resolve().parent.parent

REFERENCE_S_PER_FRAME = 0.82
VARIANTS = ["fp32", "channels_last", "jit_cl", "bf16", "bf16_cl", "int8_linear"]
DEFAULT_CLIP = Path("/work/shared/data/videos/519.mp4")
CACHE = Path(tempfile.gettempdir()) / "bench_video_models"


# ---- inputs ----------------------------------------------------------------------------------------------------
def resolve_clip(requested: Path | None) -> Path:
    clip = requested or DEFAULT_CLIP
    if clip.is_file():
        info = probe_video(clip, hash_file=False)
        if (info.width, info.height) == (640, 480) or requested is not None:
            return clip
    out = CACHE / "clip_640x480.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    if clip.is_file():   # resize the given clip
        cap = cv2.VideoCapture(str(clip))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_AREA))
        writer.release()
    else:                # no clip at all: one pasted face moving (like 519.mp4: one face a frame), 300 frames
        from tests.video_fixtures import two_faces_frames, write_clip
        frames, _ = two_faces_frames(300, width=640, height=480, face_side=160, people=1)
        write_clip(out, frames, fps=25)
    return out


def resolve_models(models_dir: Path) -> tuple[Path, list[str]]:
    """models_dir when it holds all five artifacts; else a cache folder completed with random-weight artifacts."""
    loaded, missing = load_detectors(models_dir)
    if not missing:
        return models_dir, []
    target = CACHE / "models"
    target.mkdir(parents=True, exist_ok=True)
    for name in detector_names():
        if name in loaded:
            src = models_dir / name
            dst = target / name
            dst.mkdir(exist_ok=True)
            for f in src.iterdir():
                if f.is_file():
                    (dst / f.name).write_bytes(f.read_bytes())
        elif not (target / name / "manifest.json").is_file():
            size = get_spec(name).input_size
            kwargs = model_kwargs_for(name, size)
            model = build_model(name, pretrained=False, **kwargs)
            save_artifact(model, name, target, input_size=size, model_kwargs=kwargs,
                          training={"data": "random initialisation (benchmark)"}, run_id="bench")
    return target, sorted(missing)


# ---- model variants (measured here, to be adopted inside detectors/ by their owner) --------------------------
class Wrapped(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, channels_last: bool, bf16: bool) -> None:
        super().__init__()
        self.model, self.channels_last, self.bf16 = model, channels_last, bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.model(x).float()
        return self.model(x)


def variant(model: torch.nn.Module, kind: str, example: torch.Tensor | None = None) -> torch.nn.Module:
    if kind == "fp32":
        return model
    m = copy.deepcopy(model)
    if kind == "channels_last":
        return Wrapped(m.to(memory_format=torch.channels_last), True, False).eval()
    if kind == "bf16":
        return Wrapped(m, False, True).eval()
    if kind == "bf16_cl":
        return Wrapped(m.to(memory_format=torch.channels_last), True, True).eval()
    if kind == "jit_cl":        # traced + frozen (conv-bn folding, oneDNN fusions), channels-last
        m = m.to(memory_format=torch.channels_last).eval()
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(m, example.contiguous(memory_format=torch.channels_last), check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        return Wrapped(frozen, True, False).eval()
    if kind == "int8_linear":   # dynamic int8 for nn.Linear (the transformers' bulk); AVX-512 VNNI
        return torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8).eval()
    raise ValueError(kind)


def apply_flags(analyzer: Analyzer, args: argparse.Namespace) -> list[str]:
    applied = []
    for det in analyzer.detectors.values():
        model = det.model
        if args.int8_linear:
            model = variant(model, "int8_linear")
        if args.channels_last or args.bf16:
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            model = Wrapped(model, args.channels_last, args.bf16).eval()
        det.model = model
    for flag in ("channels_last", "bf16", "int8_linear"):
        if getattr(args, flag):
            applied.append(flag)
    return applied


def run_baseline(analyzer: Analyzer, clip: Path, indices: list[int], settings: AnalysisSettings) -> dict:
    """The reference-style pipeline: read (decode + convert) every frame up to the last sampled one, detect faces
    frame by frame, score each face with each model one crop at a time."""
    timings = {"decode": 0.0, "faces": 0.0, "models": 0.0, "ensemble": 0.0}
    finder = analyzer.face_finder(settings)
    wanted = set(indices)
    cap = cv2.VideoCapture(str(clip))
    start = time.perf_counter()
    for i in range(max(indices) + 1):
        t = time.perf_counter()
        ok, bgr = cap.read()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None
        timings["decode"] += time.perf_counter() - t
        if not ok:
            break
        if i not in wanted:
            continue
        t = time.perf_counter()
        faces = finder.detect(rgb)
        timings["faces"] += time.perf_counter() - t
        for face in faces:
            t = time.perf_counter()
            logits = {n: analyzer.score_crops([face.crop], [n])[n] for n in analyzer.detectors}
            timings["models"] += time.perf_counter() - t
            t = time.perf_counter()
            analyzer.face_results([face], logits, settings)
            timings["ensemble"] += time.perf_counter() - t
    cap.release()
    timings["total"] = time.perf_counter() - start
    return timings


def time_variants(analyzer: Analyzer, originals: dict[str, torch.nn.Module], crops: list[np.ndarray],
                  kinds: list[str], batch: int, repeats: int = 2) -> None:
    crops = crops[:batch]
    n = len(crops)
    print(f"\nper-detector variants, batches of {n} of the clip's face crops "
          f"(s per face, best of {repeats} after a warm-up at the same shape; max |logit - fp32|):")
    print(f"{'detector':<16}" + "".join(f"{k:>20}" for k in kinds))
    totals = {k: 0.0 for k in kinds}
    for name, det in analyzer.detectors.items():
        x = det.preprocess(crops)
        row, ref = [], None
        for kind in kinds:
            try:
                model = variant(originals[name], kind, x)
                with torch.inference_mode():
                    model(x)                                   # warm-up (oneDNN primitives for this shape)
                    best = float("inf")
                    for _ in range(repeats):
                        t = time.perf_counter()
                        out = model(x).reshape(-1).float().numpy()
                        best = min(best, (time.perf_counter() - t) / n)
                if ref is None:
                    ref = out
                totals[kind] += best
                row.append(f"{best:8.4f} ({float(np.abs(out - ref).max()):7.4f})")
            except Exception as exc:  # noqa: BLE001 - a variant that does not apply to a model is reported
                totals[kind] = float("nan")
                row.append(f"{'n/a: ' + type(exc).__name__[:14]:>19}")
        print(f"{name:<16}" + "".join(f"{r:>20}" for r in row), flush=True)
    print(f"{'all five':<16}" + "".join(f"{totals[k]:>8.4f}{'':>12}" for k in kinds))


# ---- main ------------------------------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "converted_models")
    p.add_argument("--clip", type=Path, default=None, help=f"default {DEFAULT_CLIP} (640x480), else generated")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--batch-frames", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (pays only with AVX512-BF16/AMX)")
    p.add_argument("--int8-linear", action="store_true", help="dynamic int8 quantisation of nn.Linear layers")
    p.add_argument("--no-seek", action="store_true", help="decode every frame up to the last sampled one")
    p.add_argument("--repeats", type=int, default=1, help="time the pipeline this many times, report the fastest")
    p.add_argument("--variants", action="store_true", help="then time each detector under each variant")
    p.add_argument("--baseline", action="store_true",
                   help="also time the reference-style pipeline (every frame decoded, per-frame detection, "
                        "batch-1 scoring) on the same frames, for a same-machine, same-load ratio")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    clip = resolve_clip(args.clip)
    models_dir, random_init = resolve_models(args.models_dir)
    analyzer = Analyzer(models_dir)
    originals = {n: d.model for n, d in analyzer.detectors.items()}
    applied = apply_flags(analyzer, args)
    info = probe_video(clip, hash_file=False)
    print(f"clip {clip} {info.width}x{info.height} {info.fps:g} fps {info.frame_count} frames; "
          f"{args.frames} frames analysed, batches of {args.batch_frames}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, cpu {torch.backends.cpu.get_cpu_capability()}")
    print("detectors: " + ", ".join(f"{n} {d.input_size}px" for n, d in analyzer.detectors.items())
          + (f" (random weights: {', '.join(random_init)})" if random_init else "")
          + (f"; variants: {', '.join(applied)}" if applied else ""))

    settings = AnalysisSettings()
    options = VideoOptions(frames=args.frames, batch_frames=args.batch_frames, seek=not args.no_seek)
    # warm-up on one batch: model and MTCNN first-call costs are not per-frame costs
    analyze_video(clip, analyzer, settings, VideoOptions(frames=args.batch_frames, batch_frames=args.batch_frames))
    report, wall = None, float("inf")
    for _ in range(max(1, args.repeats)):
        t = time.perf_counter()
        run = analyze_video(clip, analyzer, settings, options)
        if time.perf_counter() - t < wall:
            report, wall = run, time.perf_counter() - t
    if report.error:
        print(f"error: {report.error}")
        return 1
    n = len(report.frames)
    faces = sum(len(f.faces) for f in report.frames)
    print(f"\n{n} frames, {faces} faces, {len(report.tracks)} track(s); verdict {report.verdict} "
          f"p={report.probability}")
    print(f"{'stage':<28}{'s total':>10}{'s/frame':>10}")
    models_total = 0.0
    for stage, seconds in report.timings.items():
        if stage == "total":
            continue
        note = "  (own thread, overlapped)" if stage == "decode" else ""
        if stage.startswith("model:"):
            models_total += seconds
        print(f"{stage:<28}{seconds:>10.3f}{seconds / n:>10.4f}{note}")
    print(f"{'all five detectors':<28}{models_total:>10.3f}{models_total / n:>10.4f}")
    per_frame = wall / n
    print(f"{'total (wall)':<28}{wall:>10.3f}{per_frame:>10.4f}")
    print(f"\nreference {REFERENCE_S_PER_FRAME:.2f} s/frame -> {REFERENCE_S_PER_FRAME / per_frame:.2f}x faster "
          f"(goal >= 4x, i.e. <= {REFERENCE_S_PER_FRAME / 4:.3f} s/frame)")
    print(f"decoder: {report.summary.get('seeks', 0)} seeks, {report.summary.get('frames_skipped_by_grab', 0)} "
          f"frames grabbed without conversion")

    if args.baseline:
        base = run_baseline(analyzer, clip, [fr.index for fr in report.frames], settings)
        print("\nreference-style pipeline on the same frames (s/frame): " + ", ".join(
            f"{k} {v / n:.4f}" for k, v in base.items()))
        print(f"this pipeline is {base['total'] / wall:.2f}x faster than it on this machine now")

    if args.variants:
        crops = []
        from video.decode import open_reader
        finder = analyzer.face_finder(settings)
        frames = [f.rgb for f in open_reader(info).frames([fr.index for fr in report.frames])]
        for faces_ in finder.detect_many(frames):
            crops.extend(face.crop for face in faces_)
        time_variants(analyzer, originals, crops, VARIANTS, args.batch_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
