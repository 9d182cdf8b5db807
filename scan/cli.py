"""`cli.py scan PATH_OR_LIST --out results.jsonl`: batch scanning, resumable, local processes or Ray.

One JSON line per file (the report of `cli.py analyze --json`, `path` = the file's absolute path, plus `meta`
from the list's other columns); files already in the output are skipped, so an interrupted scan resumes
where it stopped. A progress bar runs on stderr and a summary (FAKE / REAL / UNCERTAIN / no face / errors)
ends the run. Exit status: 0 when at least one file was analysed or nothing was left to do, 1 when every file
of this run failed or the engine could not start, 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from analysis import __version__
from analysis.report import utc_now
from cli_common import add_analysis_options, run_subcommand, settings_from_args, video_fields_from_args
from detectors.artifacts import default_models_dir

from .inputs import ScanItem, list_inputs, pending, read_results, repair_tail
from .local import ScanOptions, iter_local

log = logging.getLogger("scan")
ENGINES = ("local", "ray")
FORMATS = ("jsonl", "parquet")
VERDICTS = ("FAKE", "REAL", "UNCERTAIN")


@dataclass
class ScanSummary:
    out: str
    total: int = 0                     # files in the input list
    skipped: int = 0                   # already in the results
    analysed: int = 0                  # records written by this run
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)   # over every listed file's last record
    run_counts: dict[str, int] = field(default_factory=dict)  # over this run's records
    created: str = field(default_factory=utc_now)          # when the scan started (UTC)
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        def fmt(c: dict[str, int]) -> str:
            return ", ".join(f"{k} {c.get(k, 0)}" for k in (*VERDICTS, "no verdict", "errors"))
        rate = f" in {self.seconds:.1f} s" if self.analysed else ""
        return (f"{self.total} files listed, {self.skipped} already done, {self.analysed} analysed now{rate}\n"
                f"  this run: {fmt(self.run_counts)}\n  all results: {fmt(self.counts)}\n  results: {self.out}")


def outcome(record: dict[str, Any]) -> str:
    if record.get("error"):
        return "errors"
    verdict = record.get("verdict")
    return verdict if verdict in VERDICTS else "no verdict"


def count(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[str, int]:
    c = Counter(outcome(r) for r in records)
    return {k: c.get(k, 0) for k in (*VERDICTS, "no verdict", "errors")}


def run_scan(source: str | Path, out: str | Path, options: ScanOptions | None = None, *, engine: str = "local",
             fmt: str | None = None, workers: int | None = None, analyzer: Any = None, all_files: bool = False,
             retry_errors: bool = False, progress: bool = True, ray_address: str | None = None,
             ray_cpus: int | None = None, actors: int | None = None, ray_object_store_mb: int | None = None,
             ray_working_dir: str | None = None, items: list[ScanItem] | None = None) -> ScanSummary:
    """Scan `source` into `out`. Raises ValueError for bad arguments, RayUnavailable when Ray cannot start."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    out = Path(out)
    fmt = fmt or ("parquet" if out.suffix.lower() == ".parquet" else "jsonl")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and engine != "ray":
        raise ValueError("Parquet output is written by the Ray workers: use --engine ray (or a .jsonl output)")
    options = options or ScanOptions()
    items = list_inputs(source, all_files) if items is None else items
    meta = {i.path: i.meta for i in items}
    started = time.perf_counter()
    ray_kwargs = dict(address=ray_address, num_cpus=ray_cpus, actors=actors, object_store_mb=ray_object_store_mb,
                      working_dir=ray_working_dir)

    if fmt == "parquet":
        from .ray_engine import read_parquet_results, write_parquet
        done = read_parquet_results(out)
        todo = pending(items, done, retry_errors)
        write_parquet([i.path for i in todo], options, out, **ray_kwargs)
        final = read_parquet_results(out)
        summary = ScanSummary(out=str(out), total=len(items), skipped=len(items) - len(todo), analysed=len(todo),
                              counts=count([final[i.path] for i in items if i.path in final]),
                              run_counts=count([final[i.path] for i in todo if i.path in final]))
        summary.seconds = round(time.perf_counter() - started, 2)
        return summary

    out.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(out)
    done = read_results(out)
    todo = pending(items, done, retry_errors)
    paths = [i.path for i in todo]
    if engine == "ray":
        from .ray_engine import iter_ray
        records = iter_ray(paths, options, **ray_kwargs)
    else:
        records = iter_local(paths, options, workers, analyzer)

    from tqdm import tqdm

    run: list[dict[str, Any]] = []
    with out.open("a", encoding="utf-8") as fh, tqdm(total=len(items), initial=len(items) - len(todo),
                                                    unit="file", disable=not progress, file=sys.stderr,
                                                    dynamic_ncols=True, desc="scan") as bar:
        for record in records:
            if meta.get(record["path"]):
                record["meta"] = meta[record["path"]]
            fh.write(json.dumps(record, default=str, allow_nan=False) + "\n")
            fh.flush()  # line by line: a killed run loses at most the line being written
            run.append({"verdict": record.get("verdict"), "error": record.get("error")})
            done[record["path"]] = record
            c = count(run)
            bar.set_postfix(fake=c["FAKE"], real=c["REAL"], unc=c["UNCERTAIN"], err=c["errors"], refresh=False)
            bar.update(1)
    return ScanSummary(out=str(out), total=len(items), skipped=len(items) - len(todo), analysed=len(run),
                       seconds=round(time.perf_counter() - started, 2),
                       counts=count([done[i.path] for i in items if i.path in done]), run_counts=count(run))


# ------------------------------------------------------------------------------------------------------ CLI
def add_subcommand(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "scan", help="scan a folder tree or a CSV / JSON-lines list into JSON lines (resumable; local or Ray)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="PATH_OR_LIST",
                   help="a folder (walked for media files), a .csv list (column 'path'), a .jsonl list, or a file")
    p.add_argument("--out", required=True, help="results: JSON lines (resumable), or a folder for --format parquet")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default=None,
                   help="jsonl (default; parquet when --out ends in .parquet; parquet needs --engine ray)")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local worker processes (default) or Ray Data")
    p.add_argument("--workers", type=int, default=None, help="local engine: worker processes (default: CPU count)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch threads per worker / actor")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (e.g. ray://head:10001 or auto); "
                                                       "without it a local Ray starts")
    p.add_argument("--ray-cpus", type=int, default=None, help="local Ray: CPUs to use (default: all)")
    p.add_argument("--actors", type=int, default=None, help="Ray: actor pool size (default: the cluster's CPUs)")
    p.add_argument("--ray-object-store-mb", type=int, default=None, help="local Ray: object store size")
    p.add_argument("--ray-working-dir", default=None,
                   help="Ray: ship this folder (the project) to the workers as their working dir")
    p.add_argument("--all-files", action="store_true", help="folders: every file, not only media suffixes")
    p.add_argument("--retry-errors", action="store_true", help="analyse again the files whose last result is an error")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--summary-json", default=None, help="also write the summary as JSON to this file")
    add_analysis_options(p)  # the options `analyze` has, so both commands read alike
    p.set_defaults(func=run_cli)
    return p


def options_from_args(args: argparse.Namespace) -> ScanOptions:
    """ScanOptions from the analysis options; validated here so a typo fails before any worker starts.
    A threshold / band left out stays None: each worker's analyzer fills it from the models' operating point."""
    # AnalysisSettings validates strategy, threshold, band, margin and face size (ValueError, one line)
    settings = settings_from_args(args)
    video = video_fields_from_args(args)
    models_dir = default_models_dir() if args.models_dir is None else args.models_dir
    return ScanOptions(models_dir=str(Path(models_dir).resolve()), settings=settings.to_dict(), video=video,
                       torch_threads=args.torch_threads)


def run_cli(args: argparse.Namespace) -> int:
    from .ray_engine import RayUnavailable

    try:
        options = options_from_args(args)
        summary = run_scan(args.source, args.out, options, engine=args.engine, fmt=args.fmt, workers=args.workers,
                           all_files=args.all_files, retry_errors=args.retry_errors,
                           progress=not args.no_progress,
                           ray_address=args.ray_address, ray_cpus=args.ray_cpus, actors=args.actors,
                           ray_object_store_mb=args.ray_object_store_mb, ray_working_dir=args.ray_working_dir)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RayUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: the results so far are in {args.out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(summary.text(), file=sys.stderr)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    if summary.analysed and summary.run_counts.get("errors") == summary.analysed:
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_subcommand("python -m scan.cli", "scan", add_subcommand, argv)


if __name__ == "__main__":
    sys.exit(main())
