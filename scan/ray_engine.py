"""The Ray engine: the same per-file analysis as the local engine, on Ray Data.

Files are read as a dataset (`read_binary_files`, path included); an actor pool (`map_batches` with a callable
class and `compute=ActorPoolStrategy(size=n)`, the Ray 2.60 spelling: `concurrency=` is deprecated there)
analyses them, each actor loading the models once. Records stream back to the driver, which appends them to
the JSON-lines results (resumable, progress bar); or, with `--format parquet`, the workers write Parquet
files themselves (`Dataset.write_parquet`).

Read tasks ask for 0 CPUs: on a 2-CPU machine, 2 one-CPU actors would otherwise hold every CPU while the read
task that feeds them waits for one (a deadlock seen with Ray 2.60).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .local import ScanOptions, analyze_file, error_record, set_torch_threads

log = logging.getLogger("scan")
REPO_ROOT = Path(__file__).resolve().parent.parent


class RayUnavailable(RuntimeError):
    """Ray could not start or connect (one-line message)."""


class ScanActor:
    """One per actor: models loaded once in __init__, then one record per file of each batch."""

    def __init__(self, options: dict[str, Any]) -> None:
        opts = ScanOptions(**options)
        set_torch_threads(opts.torch_threads or 1)
        self.analyzer = opts.load_analyzer()
        self.settings = opts.analysis_settings()
        self.video = opts.video_options()
        self.tmp = Path(tempfile.mkdtemp(prefix="deepfake-scan-"))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        paths, records = [], []
        for path, data in zip(batch["path"], batch["bytes"]):
            key = str(path)
            paths.append(key)
            records.append(json.dumps(self.analyze_bytes(key, bytes(data))))
        return {"path": paths, "record": records}

    def analyze_bytes(self, key: str, data: bytes) -> dict[str, Any]:
        # the analysis needs a file (video decoders read paths): a private copy with the original base name,
        # so messages that name the file read as they do with the local engine
        folder = Path(tempfile.mkdtemp(dir=self.tmp))
        local = folder / (Path(key).name or "file")
        try:
            local.write_bytes(data)
            return analyze_file(self.analyzer, local, key, self.settings, self.video)
        except OSError as exc:
            return error_record(key, f"cannot stage the file for analysis: {exc.strerror or exc}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "tmp", ""), ignore_errors=True)


def flatten_for_parquet(batch: dict[str, Any]) -> dict[str, list]:
    """path, kind, verdict, probability, error and the whole report as a JSON string."""
    out: dict[str, list] = {"path": [], "kind": [], "verdict": [], "probability": [], "error": [], "report": []}
    for text in batch["record"]:
        record = json.loads(text)
        out["path"].append(record.get("path"))
        out["kind"].append(record.get("kind"))
        out["verdict"].append(record.get("verdict"))
        prob = record.get("probability")
        out["probability"].append(float(prob) if isinstance(prob, (int, float)) else None)
        out["error"].append(record.get("error"))
        out["report"].append(text)
    return out


def start_ray(address: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None,
              working_dir: str | None = None) -> bool:
    """Connect to `address` or start a local Ray. True when this call started or joined it (caller shuts down)."""
    import ray
    if ray.is_initialized():
        return False
    runtime_env: dict[str, Any] = {}
    if working_dir:
        runtime_env["working_dir"] = working_dir
        runtime_env["excludes"] = [".venv", ".git", "**/__pycache__"]
    else:  # workers import the project from the same checkout (local Ray, or a cluster with the code at that path)
        runtime_env["env_vars"] = {"PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "runtime_env": runtime_env, "log_to_driver": True}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            if object_store_mb:
                kwargs["object_store_memory"] = int(object_store_mb) * 1024 * 1024
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any start failure is one line for the user
        raise RayUnavailable(f"ray could not start{' at ' + address if address else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return True


def for_workers(options: ScanOptions, working_dir: str | None) -> ScanOptions:
    """With a shipped working dir, a models folder inside it is given relative to it: the workers unpack the
    working dir elsewhere and run inside it. Any other models folder must exist at that path on every node."""
    if not working_dir or not options.models_dir:
        return options
    models, root = Path(options.models_dir).resolve(), Path(working_dir).resolve()
    if models.is_relative_to(root):
        return ScanOptions(**{**options.to_dict(), "models_dir": str(models.relative_to(root))})
    return options


def build_dataset(paths: list[str], options: ScanOptions, actors: int) -> Any:
    import ray.data

    ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0, ignore_missing_paths=True)
    return ds.map_batches(ScanActor, fn_constructor_kwargs={"options": options.to_dict()}, batch_size=1,
                          batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=max(1, actors)),
                          num_cpus=1)


def _actors_for(actors: int | None, n_files: int) -> int:
    import ray
    if actors:
        return max(1, min(actors, n_files))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(cpus, n_files))


def _readable_locally(paths: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Local paths that cannot be read become error records here (a missing file would fail the whole read)."""
    from .inputs import is_uri

    good, bad = [], []
    for p in paths:
        if is_uri(p):
            good.append(p)
        elif not os.path.exists(p):
            bad.append(error_record(p, f"file not found: {p}"))
        elif os.path.isdir(p):
            bad.append(error_record(p, f"is a folder, not a file: {p}"))
        elif not os.access(p, os.R_OK):
            bad.append(error_record(p, f"cannot read {p}: permission denied"))
        else:
            good.append(p)
    return good, bad


def iter_ray(paths: list[str], options: ScanOptions, *, address: str | None = None, num_cpus: int | None = None,
             actors: int | None = None, object_store_mb: int | None = None,
             working_dir: str | None = None) -> Iterator[dict[str, Any]]:
    """Records as the actors finish them (any order)."""
    if not paths:
        return
    good, bad = _readable_locally(paths)
    yield from bad
    if not good:
        return
    started = start_ray(address, num_cpus, object_store_mb, working_dir)
    try:
        import ray.data
        ray.data.DataContext.get_current().enable_progress_bars = False  # the scan has its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = build_dataset(good, for_workers(options, working_dir), _actors_for(actors, len(good)))
        seen: set[str] = set()
        for row in ds.iter_rows():
            record = json.loads(row["record"])
            seen.add(record["path"])
            yield record
        for p in good:
            if p not in seen:  # vanished between the check and the read
                yield error_record(p, f"file not found: {p}")
    finally:
        if started:
            import ray
            ray.shutdown()


def write_parquet(paths: list[str], options: ScanOptions, out_dir: Path, *, address: str | None = None,
                  num_cpus: int | None = None, actors: int | None = None, object_store_mb: int | None = None,
                  working_dir: str | None = None) -> int:
    """Analyse and write Parquet files into `out_dir` from the workers; returns the number of files written
    by this run (unreadable local paths are written by the driver as error rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    good, bad = _readable_locally(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    if bad:
        rows = flatten_for_parquet({"record": [json.dumps(r) for r in bad]})
        pq.write_table(pa.table(rows), out_dir / f"errors-{os.getpid()}-{len(os.listdir(out_dir))}.parquet")
    if not good:
        return len(bad)
    started = start_ray(address, num_cpus, object_store_mb, working_dir)
    try:
        ds = build_dataset(good, for_workers(options, working_dir), _actors_for(actors, len(good)))
        ds.map_batches(flatten_for_parquet, batch_format="numpy", num_cpus=0).write_parquet(str(out_dir))
    finally:
        if started:
            import ray
            ray.shutdown()
    return len(paths)


def read_parquet_results(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The last record per path of a Parquet results folder (its `report` column)."""
    import pyarrow.parquet as pq

    records: dict[str, dict[str, Any]] = {}
    if not out_dir.is_dir():
        return records
    for f in sorted(out_dir.glob("*.parquet"), key=lambda p: p.stat().st_mtime):
        try:
            table = pq.read_table(f, columns=["path", "report"])
        except Exception:  # noqa: BLE001 - a half-written file from a killed run: its files are redone
            continue
        for path, report in zip(table.column("path").to_pylist(), table.column("report").to_pylist()):
            if isinstance(path, str) and report:
                records[path] = json.loads(report)
    return records
