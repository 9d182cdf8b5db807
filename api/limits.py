"""What may come in, and how much at once: API errors, the analysis slots (bounded concurrency and a bounded,
timed queue), streaming an upload into the private folder under a size limit, and checks of the media's
content (kind, pixels, video length) before any analysis starts."""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

CHUNK_OVERHEAD = 64 * 1024     # room for multipart headers and the small form fields around the file
MAX_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024


class ApiError(Exception):
    """An error answered as JSON `{"error": {"code", "message"}}` with this HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = " ".join(str(message).split())
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def busy(retry_after: int, message: str) -> ApiError:
    return ApiError(429, "busy", message, {"Retry-After": str(max(1, int(retry_after)))})


# ----------------------------------------------------------------------------------------------- concurrency
class AnalysisSlots:
    """At most `max_concurrent` analyses run at once, in a thread pool of that size.

    A request waits at most `timeout_s` for a slot and at most `max_waiting` requests wait; beyond either it
    gets 429. A slot is released when the analysis *thread* ends, not when the request ends, so a client that
    disconnects mid-analysis cannot let more analyses run than the limit (that is what keeps memory bounded).
    """

    def __init__(self, max_concurrent: int, max_waiting: int, timeout_s: float, retry_after_s: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._sem = asyncio.Semaphore(max_concurrent)
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="analysis")
        self._waiting = 0
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    async def _acquire(self, timeout: float | None, counted: bool) -> None:
        if counted:
            if self._sem.locked() and self._waiting >= self.max_waiting:
                raise busy(self.retry_after_s, f"server busy: {self._running} analyses running and "
                                               f"{self._waiting} waiting; retry later")
            self._waiting += 1
        try:
            if timeout is None:
                await self._sem.acquire()
            else:
                try:
                    async with asyncio.timeout(timeout):
                        await self._sem.acquire()
                except TimeoutError:
                    raise busy(self.retry_after_s,
                               f"server busy: no analysis slot free within {timeout:g} s; retry later") from None
        finally:
            if counted:
                self._waiting -= 1

    async def run(self, fn: Callable[[], Any], *, wait: float | None | str = "default", counted: bool = True,
                  not_started: Callable[[], None] | None = None) -> Any:
        """Run `fn` in the analysis pool once a slot is free; `wait` None waits without limit (jobs).

        `not_started` is called when `fn` will never run (429, cancelled while waiting): the caller's cleanup.
        Once submitted, `fn` owns its resources, even if the awaiting request goes away.
        """
        timeout = self.timeout_s if wait == "default" else wait
        try:
            await self._acquire(timeout, counted)  # type: ignore[arg-type]
        except BaseException:
            if not_started is not None:
                not_started()
            raise
        loop = asyncio.get_running_loop()

        def release(_: Any) -> None:
            with self._lock:
                self._running -= 1
            try:
                loop.call_soon_threadsafe(self._sem.release)
            except RuntimeError:  # the loop is closed: the server is shutting down
                pass

        with self._lock:
            self._running += 1
        try:
            future = self._executor.submit(fn)
        except BaseException:
            release(None)
            if not_started is not None:
                not_started()
            raise
        future.add_done_callback(release)
        return await asyncio.shield(asyncio.wrap_future(future))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------------- uploads
@dataclass
class Upload:
    """One uploaded file in the private folder; `discard()` deletes it and is safe to call twice."""
    path: Path
    filename: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def safe_label(filename: str | None) -> str:
    """The client's file name, used only as the report's label: base name, printable, at most 200 chars."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or "upload"


def _new_private_file(folder: Path) -> tuple[Path, int]:
    path = folder / f"upload-{secrets.token_hex(12)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return path, fd


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"upload larger than the limit of {_human_bytes(limit)}")


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


async def receive_upload(request: Request, folder: Path, max_bytes: int) -> Upload:
    """Stream the request body into a new 0600 file in `folder`, never holding it in memory.

    Accepts `multipart/form-data` with one file part named `file` (other parts are small text fields), or a
    raw body of any other content type. Raises ApiError 400 / 413; the partial file is deleted on any failure.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + CHUNK_OVERHEAD:
        raise _too_large(max_bytes)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype == b"application/x-www-form-urlencoded":
        raise ApiError(400, "bad_request", "send the media as multipart/form-data field 'file', or as the raw body")
    path, fd = _new_private_file(folder)
    upload = Upload(path=path, filename="upload")
    try:
        with os.fdopen(fd, "wb") as out:
            if ctype == b"multipart/form-data":
                await _receive_multipart(request, params, out, upload, max_bytes)
            else:
                await _receive_raw(request, out, upload, max_bytes)
    except BaseException as exc:
        upload.discard()
        if isinstance(exc, ClientDisconnect):
            raise ApiError(400, "bad_request", "the client closed the connection during the upload") from None
        raise
    if upload.size == 0:
        upload.discard()
        raise ApiError(400, "empty_upload", "the uploaded file is empty (0 bytes)")
    return upload


async def _receive_raw(request: Request, out: Any, upload: Upload, max_bytes: int) -> None:
    upload.filename = safe_label(request.query_params.get("filename"))
    async for chunk in request.stream():
        upload.size += len(chunk)
        if upload.size > max_bytes:
            raise _too_large(max_bytes)
        out.write(chunk)  # local page-cache writes of small chunks: cheaper inline than a thread hop


async def _receive_multipart(request: Request, params: dict[bytes, bytes], out: Any, upload: Upload,
                             max_bytes: int) -> None:
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "multipart body without a boundary")
    state: dict[str, Any] = {"headers": [], "name": b"", "value": b"", "is_file": False, "field": None,
                             "data": bytearray(), "files": 0, "total": 0}

    def on_part_begin() -> None:
        state.update(headers=[], is_file=False, field=None, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"].append((state["name"].lower(), state["value"]))
        state["name"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = dict(state["headers"]).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if name != "file" or state["files"]:
                raise ApiError(400, "bad_request", "send exactly one file, in the form field named 'file'")
            state["files"] += 1
            state["is_file"] = True
            upload.filename = safe_label(options[b"filename"].decode("utf-8", "replace"))
        else:
            if len(upload.fields) >= MAX_FIELDS:
                raise ApiError(400, "bad_request", f"too many form fields (at most {MAX_FIELDS})")
            state["field"] = name

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["is_file"]:
            upload.size += end - start
            if upload.size > max_bytes:
                raise _too_large(max_bytes)
            out.write(data[start:end])
        else:
            state["data"] += data[start:end]
            if len(state["data"]) > MAX_FIELD_BYTES:
                raise ApiError(400, "bad_request", f"form field {state['field']!r} is too long")

    def on_part_end() -> None:
        if not state["is_file"] and state["field"]:
            if state["field"] in upload.fields:
                raise ApiError(422, "invalid_parameter", f"form field {state['field']!r} is given more than once")
            upload.fields[state["field"]] = bytes(state["data"]).decode("utf-8", "replace")

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished})
    try:
        async for chunk in request.stream():
            state["total"] += len(chunk)
            if state["total"] > max_bytes + CHUNK_OVERHEAD:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise ApiError(400, "bad_request", "malformed multipart body") from None
    if not state["files"]:
        raise ApiError(400, "bad_request", "no file: send the media as multipart form field 'file'")


# --------------------------------------------------------------------------------------- content checks
@dataclass
class MediaFacts:
    kind: str                       # "image", "video" or "audio"
    width: int | None = None
    height: int | None = None
    frames: int | None = None       # video: frames in the file (container's count)
    seconds: float | None = None    # video: duration


def check_media(path: Path, max_pixels: int, max_video_seconds: float, max_video_frames: int) -> MediaFacts:
    """Sniff the content (never the file name) and refuse what is over a limit, before analysing anything.

    Blocking (reads the header, opens the video container); call it from a thread.
    """
    from analysis.errors import MediaError
    from analysis.media import sniff_kind

    try:
        kind = sniff_kind(path)
    except MediaError as exc:
        raise ApiError(422, "invalid_media", str(exc)) from None
    if kind not in ("image", "video", "audio"):
        raise ApiError(415, "unsupported_media_type", "not an image, a video or an audio file this service can "
                                                      "read (the content is not a known media format)")
    if kind == "video":
        from analysis.audio.decode import only_sound
        kind = "audio" if only_sound(path) else kind
    if kind == "audio":   # no length limit: the audio analysis reads at most AudioLimits.max_windows windows
        return MediaFacts("audio")
    facts = _image_facts(path) if kind == "image" else _video_facts(path)
    if facts.width and facts.height and facts.width * facts.height > max_pixels:
        raise ApiError(413, "too_many_pixels", f"{facts.width}x{facts.height} is {facts.width * facts.height:,} "
                                               f"pixels; the limit is {max_pixels:,}")
    if kind == "video":
        if facts.seconds is not None and facts.seconds > max_video_seconds:
            raise ApiError(413, "video_too_long", f"video lasts {facts.seconds:.1f} s; the limit is "
                                                  f"{max_video_seconds:g} s")
        if facts.frames is not None and facts.frames > max_video_frames:
            raise ApiError(413, "video_too_long", f"video has {facts.frames:,} frames; the limit is "
                                                  f"{max_video_frames:,}")
    return facts


def _image_facts(path: Path) -> MediaFacts:
    from PIL import Image

    try:  # the header only: no pixel is decoded here, so a bomb is measured, not expanded
        with Image.open(path) as im:
            return MediaFacts("image", width=int(im.width), height=int(im.height))
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f" ({int(found.group(1)):,} pixels)" if found else ""
        raise ApiError(413, "too_many_pixels", f"image too large to decode safely{pixels}") from None
    except Exception:  # noqa: BLE001 - unreadable headers are reported by the decoder with a better message
        return MediaFacts("image")


def _video_facts(path: Path) -> MediaFacts:
    from analysis.errors import MediaError
    from video.decode import probe_video

    try:  # demuxes packets (no decoding) to count frames and read verified timestamps
        info = probe_video(path, hash_file=False)
    except MediaError as exc:
        raise ApiError(422, "invalid_media", str(exc)) from None
    return MediaFacts("video", width=info.width or None, height=info.height or None,
                      frames=info.frame_count or None, seconds=info.duration or None)
