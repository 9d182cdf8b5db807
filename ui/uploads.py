"""Uploaded media on disk only while it is analysed: a private folder (mode 0700), removed afterwards, errors too."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = "deepfake-upload-"


@dataclass(frozen=True)
class MediaInput:
    """One file to analyse: uploaded bytes, or a path on the server (the sample photo, tests)."""
    name: str
    data: bytes | None = None
    path: str | None = None

    @classmethod
    def from_upload(cls, upload: Any) -> "MediaInput":
        return cls(name=str(upload.name), data=bytes(upload.getvalue()))

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None) -> "MediaInput":
        return cls(name=name or Path(path).name, path=str(path))

    @property
    def digest(self) -> str:
        """sha256 of the content (for uploads) or of the path and its mtime (for server files)."""
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        p = Path(self.path or "")
        stamp = f"{p.resolve()}:{p.stat().st_mtime_ns if p.exists() else 0}"
        return hashlib.sha256(stamp.encode()).hexdigest()


def safe_name(name: str) -> str:
    """A file name without directories or odd characters (the suffix is kept: some decoders look at it)."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return base[-120:]


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A fresh folder only this user can read (tempfile.mkdtemp, 0700), deleted on exit whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        os.chmod(folder, 0o700)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def materialized(item: MediaInput) -> Iterator[Path]:
    """A path to the item's content for the duration of the block; uploads are written into a private folder."""
    if item.data is None:
        yield Path(item.path or "")
        return
    with private_workdir() as folder:
        path = folder / safe_name(item.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(item.data)
        yield path
