#!/usr/bin/env python3
"""Load test of the HTTP API, on loopback only, bounded in count and time.

Starts `cli.py serve` on 127.0.0.1 and a free port (its own process, so its memory is measured alone), waits
until /readyz answers, then runs N concurrent clients posting images and small videos to /v1/analyze until
`--requests` are done or `--duration` has passed. Reports throughput, p50 / p95 / max latency (all and per
kind), errors by status and code (the goal is none), and the server's peak RSS (VmHWM from /proc).

  .venv/bin/python bench/loadtest.py --models-dir converted_models --clients 8 --requests 48
  .venv/bin/python bench/loadtest.py --out bench/results/loadtest.json     # also write the numbers

Synthetic inputs (no data needed): the skimage astronaut photo at 256 px as JPEG, and a 2 s 320x240 clip
of her face moving, analysed at `--frames` frames. `--image` / `--video` use files of your own instead.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"    # loopback only, by design: there is no option to change it
LIMITS = {"clients": 64, "requests": 2000, "duration": 900}


@dataclass
class Result:
    kind: str
    status: int
    seconds: float
    code: str | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def sample_image() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((256, 256)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def sample_video(folder: Path, frames: int = 24) -> bytes:
    import cv2
    import numpy as np
    from skimage import data

    face = cv2.resize(data.astronaut()[20:220, 140:300], (96, 120))
    path = folder / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (320, 240))
    for i in range(frames):
        frame = np.full((240, 320, 3), 180, dtype=np.uint8)
        x = 20 + i * 6
        frame[60:180, x:x + 96] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path.read_bytes()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_of(pid: int) -> tuple[int | None, int | None]:
    """(current RSS, peak RSS) of a process in bytes, from /proc (Linux); None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0]) * 1024
    return values.get("VmRSS"), values.get("VmHWM")


class ServerProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="loadtest-server-", suffix=".log", delete=False)
        cmd = [sys.executable, str(REPO_ROOT / "cli.py"), "serve", "--host", HOST, "--port", str(self.port),
               "--max-concurrent", str(args.max_concurrent), "--max-waiting", str(args.max_waiting),
               "--queue-timeout", str(args.queue_timeout), "--max-frames", str(max(args.frames, 1)),
               "--log-level", "warning"]
        if args.models_dir:
            cmd += ["--models-dir", args.models_dir]
        if args.torch_threads:
            cmd += ["--torch-threads", str(args.torch_threads)]
        if getattr(args, "batch_crops", None) is not None:
            cmd += ["--batch-crops", str(args.batch_crops)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.torch_threads or os.environ.get("OMP_NUM_THREADS", 2))}
        env.pop("DEEPFAKE_API_KEY", None)
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; log: {self.log.name}")
            try:
                resp = httpx.get(self.url + "/readyz", timeout=2)
                if resp.status_code == 200:
                    return resp.json()
                if resp.status_code == 503:
                    raise RuntimeError(f"server up but not ready: {resp.json()['error']['message']}")
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s; log: {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def run_clients(url: str, args: argparse.Namespace, image: bytes, video: bytes) -> tuple[list[Result], float]:
    import httpx

    lock = threading.Lock()
    issued = 0
    results: list[Result] = []
    every_video = round(1 / args.video_share) if args.video_share > 0 else 0
    deadline = time.monotonic() + args.duration

    def next_index() -> int | None:
        nonlocal issued
        with lock:
            if issued >= args.requests or time.monotonic() >= deadline:
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        with httpx.Client(base_url=url, timeout=args.request_timeout) as http:
            while (i := next_index()) is not None:
                is_video = bool(every_video) and i % every_video == every_video - 1
                kind = "video" if is_video else "image"
                files = {"file": ("clip.mp4", video, "video/mp4") if is_video else ("face.jpg", image, "image/jpeg")}
                data = {"frames": str(args.frames)} if is_video else {}
                started = time.perf_counter()
                try:
                    resp = http.post("/v1/analyze", files=files, data=data)
                    code = None
                    if resp.status_code != 200:
                        try:
                            code = resp.json()["error"]["code"]
                        except Exception:  # noqa: BLE001 - a non-JSON error is itself a finding
                            code = "non_json_error"
                    result = Result(kind, resp.status_code, time.perf_counter() - started, code)
                except httpx.HTTPError as exc:
                    result = Result(kind, 0, time.perf_counter() - started, type(exc).__name__)
                with lock:
                    results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def summarize(results: list[Result], wall: float) -> dict[str, Any]:
    ok = [r for r in results if r.status == 200]

    def lat(rs: list[Result]) -> dict[str, Any]:
        s = [r.seconds for r in rs]
        return {"n": len(s), "p50_s": _r(percentile(s, 0.5)), "p95_s": _r(percentile(s, 0.95)),
                "max_s": _r(max(s) if s else None), "mean_s": _r(statistics.fmean(s) if s else None)}

    errors = Counter(f"{r.status} {r.code}" for r in results if r.status != 200)
    return {
        "requests": len(results), "ok": len(ok), "errors": sum(errors.values()), "errors_by_kind": dict(errors),
        "wall_s": round(wall, 2), "throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
        "latency_ok": lat(ok), "latency_image": lat([r for r in ok if r.kind == "image"]),
        "latency_video": lat([r for r in ok if r.kind == "video"]),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=None, help="models folder (default: the server's default)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--requests", type=int, default=48, help="total requests (the bound on count)")
    p.add_argument("--duration", type=float, default=180, help="seconds after which no new request starts")
    p.add_argument("--video-share", type=float, default=0.25, help="fraction of requests that post the video")
    p.add_argument("--frames", type=int, default=4, help="frames analysed per video")
    p.add_argument("--image", default=None, help="post this image instead of the synthetic one")
    p.add_argument("--video", default=None, help="post this video instead of the synthetic one")
    p.add_argument("--max-concurrent", type=int, default=1, help="server: analyses at once")
    p.add_argument("--max-waiting", type=int, default=64, help="server: requests queued for a slot")
    p.add_argument("--queue-timeout", type=float, default=300, help="server: seconds a request may wait")
    p.add_argument("--torch-threads", type=int, default=None, help="server: torch threads (and OMP_NUM_THREADS)")
    p.add_argument("--batch-crops", type=int, default=None, help="server: most crops in one merged pass (0: off)")
    p.add_argument("--request-timeout", type=float, default=600, help="client timeout per request")
    p.add_argument("--ready-timeout", type=float, default=600, help="seconds to wait for the server to load")
    p.add_argument("--out", default=None, help="write the results as JSON here too")
    args = p.parse_args(argv)
    for name, limit in LIMITS.items():
        value = getattr(args, name)
        if not 0 < value <= limit:
            p.error(f"--{name} must be between 1 and {limit}")
    if not 0 <= args.video_share <= 1:
        p.error("--video-share must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        image = Path(args.image).read_bytes() if args.image else sample_image()
        video = Path(args.video).read_bytes() if args.video else sample_video(Path(tmp))
    server = ServerProcess(args)
    samples: list[int] = []
    stop_sampling = threading.Event()
    try:
        t0 = time.perf_counter()
        ready = server.wait_ready(args.ready_timeout)
        load_s = time.perf_counter() - t0
        _, rss_loaded = rss_of(server.proc.pid)

        def sample() -> None:
            while not stop_sampling.wait(0.2):
                rss, _ = rss_of(server.proc.pid)
                if rss:
                    samples.append(rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results, wall = run_clients(server.url, args, image, video)
        stop_sampling.set()
        sampler.join()
        _, peak = rss_of(server.proc.pid)
        alive = server.proc.poll() is None
    finally:
        stop_sampling.set()
        server.stop()
    report = {
        "config": {k: getattr(args, k) for k in ("clients", "requests", "duration", "video_share", "frames",
                                                 "max_concurrent", "max_waiting", "queue_timeout", "torch_threads")},
        "models_dir": args.models_dir, "detectors": ready.get("detectors"), "server_load_s": round(load_s, 1),
        **summarize(results, wall),
        "server_alive_after": alive,
        "rss_after_load_mb": round(rss_loaded / 2**20, 1) if rss_loaded else None,
        "peak_rss_mb": round(peak / 2**20, 1) if peak else None,
        "rss_samples_max_mb": round(max(samples) / 2**20, 1) if samples else None,
        "image_bytes": len(image), "video_bytes": len(video),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    lo, im, vi = report["latency_ok"], report["latency_image"], report["latency_video"]
    print(f"\n{report['ok']}/{report['requests']} ok, {report['errors']} errors in {report['wall_s']} s: "
          f"{report['throughput_rps']} req/s; latency p50 {lo['p50_s']} s, p95 {lo['p95_s']} s "
          f"(images p50 {im['p50_s']} / p95 {im['p95_s']}; videos p50 {vi['p50_s']} / p95 {vi['p95_s']}); "
          f"server peak RSS {report['peak_rss_mb']} MiB", file=sys.stderr)
    if report["errors"] == 0 and alive:
        Path(server.log.name).unlink(missing_ok=True)
        return 0
    print(f"server log kept: {server.log.name}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
