#!/usr/bin/env python3
"""Eager PyTorch against ONNX Runtime on this CPU, for the shipped detectors, at equal outputs.

For each artifact in converted_models/: ms per face at batch 1 and 16 with eager PyTorch (`torch.inference_mode`,
contiguous and channels-last inputs) and with ONNX Runtime (the graph and session of detectors.onnx_graph, exported
from the loaded artifact), both on the same threads, on real face crops when `--crops` names a folder of images
(else smooth random textures), and the largest difference of calibrated probability between the two.

  .venv/bin/python -m bench.bench_onnx [--models converted_models] [--crops DIR] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from detectors.artifacts import load_detectors
from detectors.onnx_graph import GraphError, GraphSession, export_graph

ROOT = Path(__file__).resolve().parent.parent


def _crops(folder: str | None, n: int) -> list[np.ndarray]:
    if folder:
        from train.dataset import read_rgb
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:n]
        if len(paths) < n:
            raise SystemExit(f"{folder} holds {len(paths)} images, {n} are needed")
        return [read_rgb(p) for p in paths]
    from train.synthetic import texture
    rng = np.random.default_rng(0)
    return [texture(rng, 256) for _ in range(n)]


def _timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), np.asarray(out).reshape(-1)


def bench(models_dir: Path, crops: list[np.ndarray], threads: int, repeats: int) -> dict[str, dict]:
    torch.set_num_threads(threads)
    detectors, missing = load_detectors(models_dir)
    for name, reason in missing.items():
        print(f"{name}: skipped ({reason})", file=sys.stderr)
    results: dict[str, dict] = {}
    for name, det in detectors.items():
        model = det.model
        x16 = det.preprocess(crops[:16])
        try:   # the graph the conversion stores, run the way the app runs it
            graph = GraphSession(export_graph(model, det.input_size), model.state_dict(), threads)
        except GraphError as exc:   # an operator ONNX lacks: that model stays eager
            results[name] = {"export_error": str(exc)}
            print(f"{name:16s} not exportable: {exc}", flush=True)
            continue
        row: dict[str, float] = {}
        for batch in (1, 16):
            x = x16[:batch]
            cl = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                t_eager, eager = _timed(lambda: model(x).numpy(), repeats)
                t_cl, _ = _timed(lambda: model(cl).numpy(), repeats)
            t_ort, onnx = _timed(lambda: graph.run(x.numpy()), repeats)
            row[f"eager_ms_b{batch}"] = 1000 * t_eager / batch
            row[f"channels_last_ms_b{batch}"] = 1000 * t_cl / batch
            row[f"onnxruntime_ms_b{batch}"] = 1000 * t_ort / batch
            row[f"max_prob_diff_b{batch}"] = float(np.abs(det.calibrate(eager) - det.calibrate(onnx)).max())
        row["speedup_b1"] = row["eager_ms_b1"] / row["onnxruntime_ms_b1"]
        row["speedup_b16"] = row["eager_ms_b16"] / row["onnxruntime_ms_b16"]
        results[name] = row
        print(f"{name:16s} ms/face b1: eager {row['eager_ms_b1']:6.1f} channels-last {row['channels_last_ms_b1']:6.1f}"
              f" ORT {row['onnxruntime_ms_b1']:6.1f} | b16: eager {row['eager_ms_b16']:6.1f} channels-last "
              f"{row['channels_last_ms_b16']:6.1f} ORT {row['onnxruntime_ms_b16']:6.1f} | max prob diff "
              f"{max(row['max_prob_diff_b1'], row['max_prob_diff_b16']):.1e}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=str(ROOT / "converted_models"))
    p.add_argument("--crops", default=None, help="a folder of face images (default: random textures)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    results = bench(Path(args.models), _crops(args.crops, 16), args.threads, args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "torch": torch.__version__,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
