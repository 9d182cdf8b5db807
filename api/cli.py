"""`cli.py serve`: run the HTTP API on uvicorn."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from cli_common import run_subcommand

from .config import ApiConfig

log = logging.getLogger("api")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_subcommand(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("serve", help="run the HTTP API (FastAPI on uvicorn; docs at /docs)",
                              description="Serve the HTTP API. Every option also reads an environment variable "
                                          "DEEPFAKE_API_<NAME> (e.g. DEEPFAKE_API_KEY, DEEPFAKE_API_MAX_CONCURRENT); "
                                          "the models folder reads DEEPFAKE_MODELS_DIR.")
    p.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--models-dir", default=None, help="folder of converted models (default converted_models/)")
    p.add_argument("--detectors", default=None, help="comma-separated detectors to load (default: all)")
    p.add_argument("--api-key", default=None, help="require this key in header X-API-Key "
                                                   "(prefer the DEEPFAKE_API_KEY variable: argv is visible)")
    p.add_argument("--max-upload-mb", type=float, default=None, help="largest upload in MiB (default 200)")
    p.add_argument("--max-pixels", type=int, default=None, help="largest image / video frame in pixels")
    p.add_argument("--max-video-seconds", type=float, default=None, help="longest video accepted")
    p.add_argument("--max-video-frames", type=int, default=None, help="most frames a video file may have")
    p.add_argument("--max-frames", type=int, default=None, help="most frames one analysis may sample")
    p.add_argument("--max-concurrent", type=int, default=None, help="analyses running at once (default 4)")
    p.add_argument("--max-waiting", type=int, default=None, help="requests queued for a slot before 429 (default 64)")
    p.add_argument("--queue-timeout", type=float, default=None, help="seconds a request waits for a slot (120)")
    p.add_argument("--batch-crops", type=int, default=None,
                   help="most face crops of concurrent requests scored in one pass per detector (64; 0: no merging)")
    p.add_argument("--max-jobs", type=int, default=None, help="jobs held in memory")
    p.add_argument("--job-ttl", type=float, default=None, help="seconds a finished job is kept")
    p.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run_serve)
    return p


def config_from_args(args: argparse.Namespace) -> ApiConfig:
    mb = getattr(args, "max_upload_mb", None)
    return ApiConfig.from_env(
        host=args.host, port=args.port, models_dir=args.models_dir, detectors=args.detectors,
        api_key=args.api_key, max_upload_bytes=int(mb * 1024 * 1024) if mb else None,
        max_pixels=args.max_pixels, max_video_seconds=args.max_video_seconds,
        max_video_frames=args.max_video_frames, max_frames=args.max_frames,
        max_concurrent=args.max_concurrent, max_waiting=args.max_waiting, queue_timeout_s=args.queue_timeout,
        batch_crops=getattr(args, "batch_crops", None),
        max_jobs=args.max_jobs, job_ttl_s=args.job_ttl, torch_threads=args.torch_threads)


def run_serve(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    if not _is_loopback(config.host) and not config.api_key:
        print(f"warning: listening on {config.host} without an API key: anyone who can reach it can use it",
              file=sys.stderr)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # One process: the models are loaded once and shared by the analysis threads.
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=args.log_level,
                workers=1, access_log=True, timeout_graceful_shutdown=10)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_subcommand("python -m api.cli", "serve", add_subcommand, argv)


if __name__ == "__main__":
    sys.exit(main())
