#!/usr/bin/env python3
"""Memory and time of one `cli.py analyze` against the length of the video.

A real clip is looped into clips of the given lengths (same content, same frame size, H.264 at its frame rate),
then each is analysed in a fresh process with the same number of sampled frames; the peak resident memory of that
process (`wait4`) and its wall time are printed. Flat memory means the engine never holds more than the sampled
frames, however long the file.

  .venv/bin/python -m bench.bench_length --clip ../shared/data/videos/519.mp4 --minutes 1 --minutes 10 [--frames 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent


def loop_clip(source: Path, out: Path, seconds: float) -> int:
    """`source` repeated until `seconds` long, written to `out`; returns the frame count."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(stream)]
    if not frames:
        raise SystemExit(f"{source} has no video frames")
    h, w = frames[0].shape[:2]
    total = int(round(seconds * float(rate)))
    with av.open(str(out), "w") as dst:
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        enc.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(total):
            img = frames[i % len(frames)][:enc.height, :enc.width]
            for packet in enc.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                dst.mux(packet)
        for packet in enc.encode():
            dst.mux(packet)
    return total


def analyse(clip: Path, frames: int, models: str | None) -> dict:
    cmd = [sys.executable, str(ROOT / "cli.py"), "analyze", str(clip), "--frames", str(frames), "--json"]
    if models:
        cmd += ["--models-dir", models]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)   # reaped here, so its own peak memory is ours to read
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"cli.py analyze {clip.name} failed ({code}): "
                             f"{err.read().decode(errors='replace').strip()[-300:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", default=str(ROOT.parent / "shared" / "data" / "videos" / "519.mp4"))
    p.add_argument("--minutes", type=float, action="append", default=None)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--models-dir", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes or [1.0, 10.0]:
            clip = Path(tmp) / f"loop_{minutes:g}min.mp4"
            n = loop_clip(Path(args.clip), clip, 60 * minutes)
            row = {"minutes": minutes, "frames_in_file": n, "mib_on_disk": round(clip.stat().st_size / 2**20, 1),
                   **analyse(clip, args.frames, args.models_dir)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
