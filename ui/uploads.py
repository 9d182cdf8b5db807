"""Uploaded media on disk only while it is analysed: a private folder (mode 0700), removed afterwards, errors too."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = "deepfake-upload-"


@dataclass(frozen=True)
class MediaInput:
    """One file to analyse: an upload (read only when written to disk), bytes, or a path on the server."""
    name: str
    data: bytes | None = None
    path: str | None = None
    upload: Any = field(default=None, compare=False, repr=False)   # streamlit UploadedFile
    upload_id: str | None = None

    @classmethod
    def from_upload(cls, upload: Any) -> "MediaInput":
        file_id = getattr(upload, "file_id", None)
        if not file_id:
            return cls(name=str(upload.name), data=bytes(upload.getvalue()))
        return cls(name=str(upload.name), upload=upload, upload_id=f"{file_id}:{getattr(upload, 'size', '')}")

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None) -> "MediaInput":
        return cls(name=name or Path(path).name, path=str(path))

    @property
    def is_server_file(self) -> bool:
        return self.data is None and self.upload is None

    @property
    def digest(self) -> str:
        """Identifies the content cheaply on every rerun: the upload's id (no re-hashing of a large video), the
        bytes' sha256, or the path and its modification time. The reports carry the real sha256."""
        if self.upload_id:
            return hashlib.sha256(f"upload:{self.upload_id}".encode()).hexdigest()
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        p = Path(self.path or "")
        stamp = f"{p.resolve()}:{p.stat().st_mtime_ns if p.exists() else 0}"
        return hashlib.sha256(stamp.encode()).hexdigest()

    def write(self, fh: Any) -> None:
        fh.write(self.data if self.data is not None else self.upload.getbuffer())


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
    if item.is_server_file:
        yield Path(item.path or "")
        return
    with private_workdir() as folder:
        path = folder / safe_name(item.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            item.write(fh)
        yield path
