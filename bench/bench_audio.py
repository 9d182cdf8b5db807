#!/usr/bin/env python3
"""Seconds to analyse a 60 s sound track (the issue's target: at most 2 s on this CPU): decode, windows and voice
activity, scoring, total; for a WAV, an MP3 and an MP4's AAC track made here from a speech-like signal.

  .venv/bin/python -m bench.bench_audio [--models-dir converted_models] [--seconds 60] [--threads 1] [--repeat 3]

Without an audio detector in --models-dir a random-init one is written to a temporary folder (the arithmetic,
hence the time, does not depend on the weights).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from analysis.audio.encode import encode_audio
from analysis.audio.engine import analyze_audio
from detectors.audio_artifacts import save_audio_artifact
from detectors.audio_registry import audio_detector_names, build_audio_model, get_audio_spec


def speech_like(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.25 * voice * envelope / 3).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="converted_models")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_audio_"))
    models = Path(args.models_dir)
    shipped = [n for n in audio_detector_names() if get_audio_spec(n).shipped]
    if not all((models / n).is_dir() for n in shipped):
        models = tmp / "models"
        for name in shipped:
            save_audio_artifact(build_audio_model(name), name, models)
    x = speech_like(args.seconds)
    files = {"wav": ("pcm_s16le", None), "mp3": ("libmp3lame", None), "m4a": ("aac", "ipod")}
    print(f"{args.seconds:.0f} s track, {args.threads} thread(s), models from {models}")
    print(f"{'file':<6} {'decode':>8} {'windows':>8} {'score':>8} {'total':>8}  windows scored")
    for suffix, (codec, container) in files.items():
        path = tmp / f"track.{suffix}"
        path.write_bytes(encode_audio(x, 16_000, codec, container=container))
        analyze_audio(path, models)   # warm: models loaded once per process, as in the app
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = analyze_audio(path, models)
            runs.append((time.perf_counter() - t0, report))
        total, report = min(runs, key=lambda r: r[0])
        t = report.timings
        print(f"{suffix:<6} {t['decode']:8.3f} {t['windows']:8.3f} {t['score']:8.3f} {total:8.3f}  "
              f"{len(report.scored_windows)} of {len(report.windows)} (median total "
              f"{statistics.median(r[0] for r in runs):.3f} s)")


if __name__ == "__main__":
    main()
