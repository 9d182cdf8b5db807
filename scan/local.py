"""The scan's unit of work (one file -> one result record), shared by both engines, and the local engine:
worker processes on this machine, each loading the models once."""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from analysis.report import json_safe, report_stamp

log = logging.getLogger("scan")


@dataclass
class ScanOptions:
    """Everything a worker needs to analyse files like every other worker: plain data, so it pickles."""
    models_dir: str | None = None
    detectors: list[str] | None = None                     # models to load (None: all)
    settings: dict[str, Any] = field(default_factory=dict)  # AnalysisSettings fields
    video: dict[str, Any] = field(default_factory=dict)     # VideoOptions fields
    torch_threads: int | None = None                        # per worker; None: cores / workers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def analysis_settings(self) -> Any:
        from analysis.settings import AnalysisSettings
        return AnalysisSettings.from_dict(self.settings)

    def video_options(self) -> Any:
        from video.sampling import VideoOptions
        return VideoOptions(**{"keep_thumbnails": False, **self.video}).validate()

    def load_analyzer(self) -> Any:
        from analysis.analyzer import Analyzer
        return Analyzer(self.models_dir, self.detectors)


def error_record(path: str, message: str) -> dict[str, Any]:
    return {"path": path, "kind": "unknown", "verdict": None, "probability": None,
            "error": " ".join(str(message).split())[:300] or "error", **report_stamp()}


def analyze_file(analyzer: Any, path: str | Path, key: str, settings: Any, video_options: Any) -> dict[str, Any]:
    """One result record: the report of `cli.py analyze --json`, with `path` set to the scan key. Never raises."""
    from pipeline.dispatch import analyze_path

    try:
        report = analyze_path(path, analyzer, settings, video_options, name=key).to_dict()
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a batch
        log.debug("analysis of %s failed", key, exc_info=True)
        return error_record(key, f"internal error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    record = json_safe(report)
    record["path"] = key
    if str(path) != key:  # a staged copy (Ray): messages name the file as the local engine would
        for field_name in ("error", "message"):
            if isinstance(record.get(field_name), str):
                record[field_name] = record[field_name].replace(str(path), key)
    return record


def set_torch_threads(n: int | None) -> None:
    if n:
        import torch
        torch.set_num_threads(int(n))


# -------------------------------------------------------------------------------------------- local engine
_WORKER: dict[str, Any] = {}


def _init_worker(options: dict[str, Any]) -> None:
    opts = ScanOptions(**options)
    set_torch_threads(opts.torch_threads)
    _WORKER["analyzer"] = opts.load_analyzer()
    _WORKER["settings"] = opts.analysis_settings()
    _WORKER["video"] = opts.video_options()


def _work(path: str) -> dict[str, Any]:
    return analyze_file(_WORKER["analyzer"], path, path, _WORKER["settings"], _WORKER["video"])


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def iter_local(paths: list[str], options: ScanOptions, workers: int | None = None,
               analyzer: Any = None) -> Iterator[dict[str, Any]]:
    """Records in completion order. `workers` 1 (or a ready `analyzer`) runs in this process; more use a
    spawn-started process pool (fork after torch threads started can deadlock), each loading the models once."""
    if not paths:
        return
    workers = max(1, int(workers or default_workers()))
    workers = min(workers, len(paths))
    if options.torch_threads is None:
        options = ScanOptions(**{**options.to_dict(), "torch_threads": max(1, (os.cpu_count() or 1) // workers)})
    if workers == 1 or analyzer is not None:
        if analyzer is None:
            set_torch_threads(options.torch_threads)
            analyzer = options.load_analyzer()
        settings, video = options.analysis_settings(), options.video_options()
        for path in paths:
            yield analyze_file(analyzer, path, path, settings, video)
        return
    ctx = multiprocessing.get_context("spawn")
    in_flight_max = workers * 2  # bounded submission: a million-file list never becomes a million futures
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(options.to_dict(),)) as pool:
        queue = iter(paths)
        running: dict[Future, str] = {}

        def fill() -> None:
            for path in queue:
                running[pool.submit(_work, path)] = path
                if len(running) >= in_flight_max:
                    break

        fill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                path = running.pop(fut)
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker is that file's error
                    yield error_record(path, f"worker failed: {exc}")
            fill()
