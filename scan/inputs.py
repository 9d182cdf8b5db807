"""What a scan reads and what it has already done.

Inputs: a folder tree (media files by suffix, hidden ones skipped, sorted), a CSV list (a header with a `path`
column; other columns travel into each result line as `meta`), a JSON-lines list (each line a path string or
an object with `path`), or one media file. Relative paths in a list are relative to the list's folder.

Every file is keyed by its absolute path (URIs such as s3://... are kept as they are); the results file is
JSON lines with that key in `path`, which is what makes a scan resumable.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

PATH_COLUMNS = ("path", "file", "filepath", "filename")
LIST_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass
class ScanItem:
    path: str                                       # the key: absolute local path or a URI
    meta: dict[str, Any] = field(default_factory=dict)


def is_uri(path: str) -> bool:
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isalnum() and len(head) > 1


def normalize(path: str, base: Path | None = None) -> str:
    if is_uri(path):
        return path
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base is not None:
        p = base / p
    return os.path.abspath(p)


def list_inputs(source: str | Path, all_files: bool = False) -> list[ScanItem]:
    """The files to scan, in a stable order, without duplicates. Raises ValueError with a one-line reason."""
    src = Path(source)
    if not is_uri(str(source)) and src.is_dir():
        items = walk_folder(src, all_files)
    elif is_uri(str(source)):
        items = [ScanItem(str(source))]
    elif not src.exists():
        raise ValueError(f"no such file or folder: {source}")
    else:
        kind = LIST_SUFFIXES.get(src.suffix.lower())
        if kind == "csv":
            items = read_csv_list(src)
        elif kind == "jsonl":
            items = read_jsonl_list(src)
        else:
            items = [ScanItem(normalize(str(src)))]
    return _unique(items)


def walk_folder(root: Path, all_files: bool = False) -> list[ScanItem]:
    from analysis.media import MEDIA_SUFFIXES

    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not (all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES):
                continue
            found.append(os.path.abspath(os.path.join(dirpath, name)))
    return [ScanItem(p) for p in sorted(found)]


def read_csv_list(path: Path) -> list[ScanItem]:
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
    base = path.parent
    items: list[ScanItem] = []
    if column is None:  # no header: the first column is the path
        return [ScanItem(normalize(r[0].strip(), base)) for r in rows if r[0].strip()]
    names = [h.strip() for h in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if column >= len(row) or not row[column].strip():
            raise ValueError(f"{path.name} line {line}: no value in column {names[column]!r}")
        meta = {names[i]: row[i] for i in range(min(len(names), len(row))) if i != column and names[i]}
        items.append(ScanItem(normalize(row[column].strip(), base), meta))
    return items


def read_jsonl_list(path: Path) -> list[ScanItem]:
    base = path.parent
    items: list[ScanItem] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path.name} line {line_no}: not valid JSON") from None
            if isinstance(value, str):
                items.append(ScanItem(normalize(value, base)))
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{path.name} line {line_no}: expected a path string or an object with 'path'")
            key = next((c for c in PATH_COLUMNS if isinstance(value.get(c), str) and value[c].strip()), None)
            if key is None:
                raise ValueError(f"{path.name} line {line_no}: the object has no 'path'")
            meta = {k: v for k, v in value.items() if k != key}
            items.append(ScanItem(normalize(value[key].strip(), base), meta))
    return items


def _unique(items: Iterable[ScanItem]) -> list[ScanItem]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.path not in seen:
            seen.add(item.path)
            out.append(item)
    return out


# ------------------------------------------------------------------------------------------ results file
def repair_tail(out: Path) -> None:
    """Cut a partial last line (a run killed while writing), so appending starts on a fresh line."""
    if not out.exists() or out.stat().st_size == 0:
        return
    with out.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        size = fh.seek(0, os.SEEK_END)
        step = 1 << 16
        pos = size
        while pos > 0:
            pos = max(0, pos - step)
            fh.seek(pos)
            chunk = fh.read(min(step, size - pos))
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                fh.truncate(pos + cut + 1)
                return
        fh.truncate(0)


def read_results(out: Path) -> dict[str, dict[str, Any]]:
    """The last complete record per path of a JSON-lines results file (unparsable lines are skipped)."""
    records: dict[str, dict[str, Any]] = {}
    if not out.exists():
        return records
    with out.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                records[record["path"]] = record
    return records


def pending(items: list[ScanItem], done: dict[str, dict[str, Any]], retry_errors: bool = False) -> list[ScanItem]:
    """The items still to analyse: not in the results, or (with retry_errors) last recorded as an error."""
    return [i for i in items if i.path not in done or (retry_errors and done[i.path].get("error"))]
