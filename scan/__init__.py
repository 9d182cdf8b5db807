"""Batch scanning: a folder tree or a CSV / JSON-lines list -> one JSON line per file, resumable,
on local worker processes (`scan.local`) or Ray Data (`scan.ray_engine`)."""
from .inputs import ScanItem, list_inputs
from .local import ScanOptions

__all__ = ["ScanItem", "ScanOptions", "list_inputs", "run_scan"]


def run_scan(*args, **kwargs):  # lazily: tqdm and the engines load only when a scan runs
    from .cli import run_scan as _run_scan
    return _run_scan(*args, **kwargs)
