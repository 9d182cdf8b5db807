#!/usr/bin/env python3
"""The whole speed / memory / throughput table in one command, every figure next to the seed-style reference
pipeline (bench.reference) measured in the same run, so each row is a ratio that survives a busy machine.

  python -m bench.table [--models-dir converted_models] [--photo P] [--clip C] [--frames 16]
                        [--clients 16] [--per-client 4] [--skip-api] [--out table.json]

Rows: cold start (`cli.py analyze PHOTO --json` in a fresh process vs `bench.reference cold PHOTO`); per-frame
decode, faces and detectors of `video.engine.analyze_video` vs the reference (OpenCV seeking each frame, MTCNN
per frame, each face one crop at a time); per-face latency of the five detectors at batch 16 vs batch 1; server
RSS idle and under load; API throughput and p95 latency with `--clients` clients x `--per-client` photos
(`bench.loadtest`'s server and clients) under the current defaults vs the seed's (one analysis at a time,
8 waiting, no merged batches).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHOTO = Path("/work/shared/data/faces/sdfd/fake/sd21_bbW-26,1.jpg")
CLIP = Path("/work/shared/data/videos/519.mp4")


def timed_process(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def cold_start(photo: Path, models_dir: Path) -> tuple[float, float]:
    ours = timed_process([sys.executable, "cli.py", "analyze", str(photo), "--json", "--models-dir", str(models_dir)])
    ref = timed_process([sys.executable, "-m", "bench.reference", "cold", str(photo), "--models-dir", str(models_dir)])
    return ours, ref


def video_rows(models_dir: Path, clip: Path, frames: int) -> tuple[dict[str, float], dict[str, float], Any]:
    from analysis.analyzer import Analyzer
    from analysis.settings import AnalysisSettings
    from video.engine import analyze_video
    from video.sampling import VideoOptions

    from bench import reference

    analyzer = Analyzer(models_dir)
    settings = AnalysisSettings(detectors=list(analyzer.detectors))   # all five score, as in the reference
    analyze_video(clip, analyzer, settings, VideoOptions(frames=4, batch_frames=4))   # warm-up
    t = time.perf_counter()
    report = analyze_video(clip, analyzer, settings, VideoOptions(frames=frames))
    wall = time.perf_counter() - t
    n = max(1, len(report.frames))
    tm = report.timings
    ours = {"decode": tm.get("decode", 0.0) / n, "faces": tm.get("faces", 0.0) / n,
            "detectors": sum(v for k, v in tm.items() if k.startswith("model:")) / n, "total": wall / n}
    ref = reference.video_stages(analyzer, clip, [f.index for f in report.frames])
    return ours, ref, analyzer


def per_face(analyzer: Any, batch: int = 16) -> tuple[float, float]:
    """ms per face through the five detectors: one batch of `batch` crops, and the same crops one at a time."""
    import numpy as np

    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (160, 160, 3), dtype=np.uint8) for _ in range(batch)]
    dets = list(analyzer.detectors.values())
    for d in dets:   # warm-up at both shapes
        d.logits(crops[:1])
        d.logits(crops)
    t = time.perf_counter()
    for d in dets:
        d.logits(crops)
    batched = (time.perf_counter() - t) / batch * 1000
    t = time.perf_counter()
    for c in crops:
        for d in dets:
            d.logits([c])
    single = (time.perf_counter() - t) / batch * 1000
    return batched, single


def api_run(models_dir: Path, photo: Path, clients: int, per_client: int, seed_style: bool) -> dict[str, Any]:
    from bench import loadtest

    # the seed's server: one analysis at a time, 8 waiting, 30 s queue timeout, every request scored alone
    server = dict(max_concurrent=1, max_waiting=8, queue_timeout=30, batch_crops=0) if seed_style else \
        dict(max_concurrent=4, max_waiting=64, queue_timeout=120, batch_crops=64)
    args = SimpleNamespace(models_dir=str(models_dir), frames=4, torch_threads=None, clients=clients,
                           requests=clients * per_client, duration=900, video_share=0.0, request_timeout=600,
                           **server)
    proc = loadtest.ServerProcess(args)
    try:
        proc.wait_ready(600)
        time.sleep(1.0)
        idle, _ = loadtest.rss_of(proc.proc.pid)
        results, wall = loadtest.run_clients(proc.url, args, photo.read_bytes(), b"")
        _, peak = loadtest.rss_of(proc.proc.pid)
    finally:
        proc.stop()
    summary = loadtest.summarize(results, wall)
    summary["rss_idle_mb"] = round(idle / 2**20, 1) if idle else None
    summary["rss_peak_mb"] = round(peak / 2**20, 1) if peak else None
    return summary


def ratio(ref: float | None, ours: float | None, higher_is_better: bool = False) -> str:
    if not ref or not ours:
        return "-"
    return f"{(ours / ref if higher_is_better else ref / ours):.2f}x"


def print_table(rows: list[tuple[str, float | None, float | None, str]]) -> None:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    print(f"\n| {'measure':<48} | {'ours':>10} | {'reference':>10} | {'ratio':>10} |")
    print(f"| {'-' * 48} | {'-' * 10}:| {'-' * 10}:| {'-' * 10}:|")
    for name, o_, r_, ra in rows:
        print(f"| {name:<48} | {fmt(o_):>10} | {fmt(r_):>10} | {ra:>10} |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "converted_models")
    p.add_argument("--photo", type=Path, default=PHOTO)
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-client", type=int, default=4)
    p.add_argument("--skip-api", action="store_true", help="leave out the two server runs (the longest part)")
    p.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    args = p.parse_args()

    rows: list[tuple[str, float | None, float | None, str]] = []
    cold_ours, cold_ref = cold_start(args.photo, args.models_dir)
    rows.append(("cold start, first result (s)", cold_ours, cold_ref, ratio(cold_ref, cold_ours)))
    ours, ref, analyzer = video_rows(args.models_dir, args.clip, args.frames)
    for stage in ("decode", "faces", "detectors", "total"):
        rows.append((f"video {stage} (s/frame)", ours[stage], ref[stage], ratio(ref[stage], ours[stage])))
    b16, b1 = per_face(analyzer)
    rows.append(("per face, five detectors (ms): batch 16 vs 1", b16, b1, ratio(b1, b16)))
    api: dict[str, Any] = {}
    if not args.skip_api:
        print_table(rows)   # the local rows first: the server runs take the longest
        api = {"ours": api_run(args.models_dir, args.photo, args.clients, args.per_client, seed_style=False),
               "reference": api_run(args.models_dir, args.photo, args.clients, args.per_client, seed_style=True)}
        o, r = api["ours"], api["reference"]
        rows.append(("server RSS idle (MiB)", o["rss_idle_mb"], r["rss_idle_mb"], ratio(r["rss_idle_mb"], o["rss_idle_mb"])))
        rows.append(("server RSS peak under load (MiB)", o["rss_peak_mb"], r["rss_peak_mb"],
                     ratio(r["rss_peak_mb"], o["rss_peak_mb"])))
        rows.append((f"API answered 200 ({args.clients} clients x {args.per_client})", o["ok"], r["ok"],
                     f"{o['requests'] - o['ok']} / {r['requests'] - r['ok']} refused or failed"))
        rows.append(("API throughput (requests/s answered)", o["throughput_rps"], r["throughput_rps"],
                     ratio(r["throughput_rps"], o["throughput_rps"], higher_is_better=True)))
        rows.append(("API latency p95 (s)", o["latency_ok"]["p95_s"], r["latency_ok"]["p95_s"],
                     ratio(r["latency_ok"]["p95_s"], o["latency_ok"]["p95_s"])))

    print_table(rows)
    print("\nratio: how many times better ours is (the reference's time / ours; for throughput ours / the reference's)")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "api": api}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
