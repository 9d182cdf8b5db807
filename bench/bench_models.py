#!/usr/bin/env python3
"""Per-model and whole-ensemble latency per face on this CPU.

For each detector: ms per face at batch 1 and at batch 16, fp32, at the input size of its shipped
artifact (converted_models/<name>/manifest.json) or, with --default-sizes, the registry's default size.
Weights do not change the arithmetic, so models are built from scratch; nothing is downloaded.

  .venv/bin/python -m bench.bench_models [--default-sizes] [--bf16] [--repeats 10] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from detectors.registry import build_model, detector_names, get_spec, model_kwargs_for

ROOT = Path(__file__).resolve().parent.parent


def artifact_size(name: str, models_dir: Path) -> int | None:
    manifest = models_dir / name / "manifest.json"
    if manifest.is_file():
        return int(json.loads(manifest.read_text())["input_size"])
    return None


def time_per_face(model: torch.nn.Module, size: int, batch: int, repeats: int, bf16: bool) -> float:
    x = torch.randn(batch, 3, size, size)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), ctx:
        for _ in range(2):
            model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times) / batch * 1000.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "converted_models")
    p.add_argument("--default-sizes", action="store_true", help="use the registry's default input sizes")
    p.add_argument("--bf16", action="store_true", help="also time bfloat16 autocast")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for name in detector_names():
        size = None if args.default_sizes else artifact_size(name, args.models_dir)
        size = size or get_spec(name).input_size
        model = build_model(name, pretrained=False, **model_kwargs_for(name, size)).eval()
        row = {"name": name, "size": size,
               "ms_b1": time_per_face(model, size, 1, args.repeats, False),
               "ms_b16": time_per_face(model, size, 16, max(3, args.repeats // 3), False)}
        if args.bf16:
            row["ms_b16_bf16"] = time_per_face(model, size, 16, max(3, args.repeats // 3), True)
        rows.append(row)
        print(f"{name:<16} {size:>4}px  batch1 {row['ms_b1']:7.1f} ms/face  batch16 {row['ms_b16']:7.1f} ms/face"
              + (f"  batch16 bf16 {row['ms_b16_bf16']:7.1f} ms/face" if args.bf16 else ""), flush=True)
    total1 = sum(r["ms_b1"] for r in rows)
    total16 = sum(r["ms_b16"] for r in rows)
    print(f"{'ensemble (5)':<16}        batch1 {total1:7.1f} ms/face  batch16 {total16:7.1f} ms/face"
          f"   ({torch.get_num_threads()} threads, torch {torch.__version__})")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ensemble_ms_b1": total1, "ensemble_ms_b16": total16}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
