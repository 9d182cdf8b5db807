"""Opening a video, verifying what its container claims, and decoding only the frames asked for.

The container's frame count and rate are hints, not facts. `probe_video` demuxes every packet (no decoding,
~10 ms per MB) to count the frames, read their real presentation times (variable frame rate included) and find
the keyframes. Readers then decode sampled frames by index: skipped frames are only grabbed (decoded, never
converted to RGB), and the reader seeks when a keyframe lies far enough ahead, which skips decoding altogether.
PyAV demuxes and decodes.
"""
from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np

from analysis.errors import MediaError
from detectors.checksums import file_sha256

DEFAULT_FPS = 25.0            # assumed only when neither timestamps nor metadata give a rate
MAX_SANE_FPS = 1000.0
# Seeking costs about this many decoded frames (demuxer reset, decoder flush); below it grabbing is cheaper.
SEEK_OVERHEAD_FRAMES = 12


class StreamBroken(MediaError):
    """The stream stopped decoding before the frame asked for (truncated or corrupt file)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass
class VideoInfo:
    path: str
    backend: str                       # what decodes the frames: "pyav"
    width: int
    height: int
    fps: float                         # verified: measured from the frames' timestamps when there are any
    fps_reported: float | None         # what the container said
    frame_count: int                   # verified: packets counted (or frames decoded)
    frame_count_reported: int | None
    duration: float                    # seconds, first frame to the end of the last one
    codec: str | None
    bitrate: int | None                # bits per second: container's figure, else file size * 8 / duration
    size_bytes: int
    bitrate_estimate: int | None = None  # file size * 8 / duration (what the container's figure should be near)
    vfr: bool = False                  # frame intervals vary
    timestamps: str = "pts"            # "pts" (real) or "assumed" (index / fps)
    notes: list[str] = field(default_factory=list)
    damaged: str | None = None         # why the file is known to be incomplete: frames it declares are missing
    sha256: str | None = None
    times: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)   # (frame_count,) seconds
    pts: np.ndarray | None = field(default=None, repr=False)                    # raw pts in presentation order
    time_base: float | None = None
    keyframes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def metadata(self) -> dict[str, Any]:
        """JSON-safe facts for the input-quality panel."""
        return {
            "width": self.width, "height": self.height, "fps": round(self.fps, 4),
            "fps_reported": None if self.fps_reported is None else round(self.fps_reported, 4),
            "frame_count": self.frame_count, "frame_count_reported": self.frame_count_reported,
            "duration": round(self.duration, 4), "codec": self.codec, "bitrate": self.bitrate,
            "bitrate_estimate": self.bitrate_estimate,
            "size_bytes": self.size_bytes, "vfr": self.vfr, "timestamps": self.timestamps,
            "keyframes": int(len(self.keyframes)), "backend": self.backend, "notes": list(self.notes),
            "damaged": self.damaged,
        }


@dataclass
class DecodedFrame:
    index: int          # presentation order, 0-based
    time: float         # seconds from the first frame
    rgb: np.ndarray     # HxWx3 uint8


# ---------------------------------------------------------------------------------------------------------------
# probing

def _one_line(exc: BaseException) -> str:
    """FFmpeg's reason without errno and file name: "[Errno 1094995529] Invalid data ...: '/x.mp4'" -> "Invalid data ..."."""
    text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return re.sub(r":\s*'[^']*'\s*$", "", text).strip() or type(exc).__name__


def _sane_fps(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and 0.1 <= value <= MAX_SANE_FPS


@dataclass
class _Packets:
    pts: np.ndarray            # raw presentation timestamps, sorted
    keyframes: np.ndarray      # presentation indices of keyframes
    time_base: float
    rate: float | None
    codec: str | None
    width: int
    height: int
    bitrate: int | None
    beyond_eof: int            # packets whose data lies past the end of the file
    error: str | None          # demuxing stopped early with this error
    declared: int              # the container's own frame count (exact in MP4 and AVI indexes), 0 if none


def _demux(path: Path, size: int) -> _Packets:
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        rate = None
        for attr in ("average_rate", "base_rate", "guessed_rate"):
            value = getattr(stream, attr, None)
            if value and float(value) > 0:
                rate = float(value)
                break
        time_base = float(stream.time_base) if stream.time_base else 0.0
        stamps: list[int] = []
        keys: list[bool] = []
        beyond, error, no_pts, counter = 0, None, 0, 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:      # flush packet at the end
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    no_pts += 1
                    stamp = counter
                counter += 1
                stamps.append(int(stamp))
                keys.append(bool(packet.is_keyframe))
                if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size:
                    beyond += 1
        except (av.error.FFmpegError, OSError) as exc:
            error = _one_line(exc)
        ctx = stream.codec_context
        bitrate = container.bit_rate or stream.bit_rate or None
        pts = np.asarray(stamps, dtype=np.int64)
        if no_pts == len(stamps):        # no timestamps at all: packets are numbered instead
            time_base = 0.0
        order = np.argsort(pts, kind="stable")
        pts_sorted = pts[order]
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        keyframes = np.sort(rank[np.asarray(keys, dtype=bool)]) if keys else np.zeros(0, dtype=np.int64)
        return _Packets(pts=pts_sorted, keyframes=keyframes.astype(np.int64), time_base=time_base, rate=rate,
                        codec=ctx.name if ctx is not None else None, width=int(ctx.width or 0),
                        height=int(ctx.height or 0), bitrate=int(bitrate) if bitrate else None,
                        beyond_eof=beyond, error=error, declared=int(stream.frames or 0))


def _first_frame(path: Path) -> tuple[int, int] | None:
    """The size of the first decodable frame; None when no frame decodes."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return frame.width, frame.height
    except (av.error.FFmpegError, OSError, IndexError, StopIteration):
        return None
    return None


def probe_video(path: str | Path, *, hash_file: bool = True) -> VideoInfo:
    """Verified facts about a video, or MediaError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path.name}")
    if path.is_dir():
        raise MediaError(f"is a folder, not a video: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    notes: list[str] = []

    packets: _Packets | None = None
    demux_error = None
    try:
        packets = _demux(path, size)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any FFmpeg/PyAV failure means "not a readable container"
        demux_error = _one_line(exc)

    first = _first_frame(path) if packets is not None else None
    if packets is None or first is None:
        if packets is not None and len(packets.pts) == 0:
            raise MediaError("the video has no frames")
        if packets is not None and packets.beyond_eof:
            raise MediaError("the video is truncated: no frame could be decoded")
        reason = demux_error or (packets.error if packets else None)
        raise MediaError("not a readable video" + (f" ({reason})" if reason else "")
                         + (": the file may be truncated or not a video at all" if not reason or
                            "invalid data" in reason.lower() else ""))
    width, height = first[0] or packets.width, first[1] or packets.height
    reported_fps = packets.rate
    reported_count = packets.declared or None
    fps_hint = reported_fps if _sane_fps(reported_fps) else None
    if reported_fps is not None and not _sane_fps(reported_fps):
        notes.append(f"metadata frame rate is {reported_fps:g}: measured from the frames instead")

    timestamps = "pts"
    times: np.ndarray
    raw_pts = None
    time_base = None
    keyframes = packets.keyframes
    if len(packets.pts) > 0 and packets.time_base > 0:
        raw_pts = packets.pts
        time_base = packets.time_base
        times = (raw_pts - raw_pts[0]).astype(np.float64) * packets.time_base
        if packets.error:
            notes.append(f"container damaged after {len(raw_pts)} frames ({packets.error})")
    else:   # no packet timestamps: the packets are counted, their times assumed from the rate
        times = np.arange(len(packets.pts), dtype=np.float64)
        timestamps = "assumed"

    count = int(len(times))
    if count == 0:
        raise MediaError("the video has no frames")
    if reported_count is not None and (reported_count < 0 or reported_count > 100 * count + 1000):
        notes.append(f"metadata frame count {reported_count} is absurd: counted {count}")
    elif reported_count and abs(reported_count - count) > max(2, 0.01 * count):
        notes.append(f"metadata says {reported_count} frames, counted {count}")

    # frame rate from the timestamps; fall back to metadata, then to an assumption
    fps, vfr = None, False
    if count >= 2 and timestamps != "assumed":
        deltas = np.diff(times)
        span = float(times[-1] - times[0])
        if span > 0 and np.all(deltas >= 0):
            fps = (count - 1) / span
            positive = deltas[deltas > 0]
            median = float(np.median(positive)) if len(positive) else 0.0
            if median > 0:
                vfr = bool(np.mean(np.abs(deltas - median) > 0.1 * median) > 0.01)
            if not _sane_fps(fps):
                fps = None
    if fps is None:
        fps = fps_hint or DEFAULT_FPS
        if fps_hint is None and count > 1:
            notes.append(f"no usable frame timing: times assume {DEFAULT_FPS:g} fps")
        if timestamps != "pts" or count < 2 or float(times[-1] - times[0]) <= 0:
            times = np.arange(count, dtype=np.float64) / fps
            timestamps = "assumed" if count > 1 else timestamps
    elif _sane_fps(reported_fps) and abs(fps - reported_fps) > 0.02 * reported_fps and not vfr:
        notes.append(f"metadata frame rate {reported_fps:g} differs from the measured {fps:.3f}")
    if vfr:
        notes.append(f"variable frame rate (mean {fps:.2f} fps): real timestamps are used")

    frame_time = 1.0 / fps
    if count >= 2 and timestamps != "assumed":
        frame_time = float(np.median(np.diff(times))) or frame_time
    duration = float(times[-1] - times[0]) + frame_time
    bitrate = packets.bitrate
    estimate = int(size * 8 / duration) if duration > 0 else None
    if bitrate is None or bitrate <= 0:
        bitrate = estimate
    damaged = None
    if packets.declared > count + max(2, 0.01 * count):
        damaged = (f"the file is truncated or damaged: {count} of the {packets.declared} frames it declares "
                   f"can be read")
    elif packets.beyond_eof:
        damaged = f"the file is truncated: the data of {packets.beyond_eof} frames is missing"
    if len(keyframes) == 0:
        keyframes = np.zeros(1, dtype=np.int64)  # the first frame always starts decoding
    return VideoInfo(
        path=str(path), backend="pyav", width=width, height=height, fps=float(fps), fps_reported=reported_fps,
        frame_count=count, frame_count_reported=reported_count, duration=duration, codec=packets.codec,
        bitrate=bitrate, size_bytes=size, bitrate_estimate=estimate, vfr=vfr, timestamps=timestamps, notes=notes, damaged=damaged,
        sha256=file_sha256(path) if hash_file else None, times=times, pts=raw_pts, time_base=time_base,
        keyframes=keyframes,
    )


# ---------------------------------------------------------------------------------------------------------------
# reading sampled frames

def _seek_target(keyframes: np.ndarray, pos: int, index: int) -> int | None:
    """The keyframe to seek to before `index` when that skips enough decoding, else None (grab forward)."""
    k = int(np.searchsorted(keyframes, index, side="right")) - 1
    if k < 0:
        return None
    key = int(keyframes[k])
    return key if key - pos > SEEK_OVERHEAD_FRAMES else None


class PyAVReader:
    """Decodes frames `indices` (sorted) with PyAV; frames are matched by pts, so variable frame rate is exact."""

    def __init__(self, info: VideoInfo, *, seek: bool = True) -> None:
        self.info = info
        self.seek = seek and info.pts is not None
        self.seeks = 0
        self.grabs = 0

    def frames(self, indices: list[int], stop: threading.Event | None = None) -> Iterator[DecodedFrame]:
        info = self.info
        index_of = {int(p): i for i, p in enumerate(info.pts)} if info.pts is not None else {}
        wanted = list(indices)
        pos = 0
        try:
            with av.open(info.path, metadata_errors="ignore") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                decoder = container.decode(stream)
                w = 0
                while w < len(wanted):
                    if stop is not None and stop.is_set():
                        return
                    index = wanted[w]
                    key = _seek_target(info.keyframes, pos, index) if self.seek else None
                    if key is not None:
                        container.seek(int(info.pts[key]), stream=stream, backward=True, any_frame=False)
                        decoder = container.decode(stream)
                        self.seeks += 1
                        pos = key
                    try:
                        frame = next(decoder)
                    except StopIteration:
                        raise StreamBroken(f"the video stream ended at frame {pos} of {info.frame_count}: "
                                           f"the file is truncated or corrupt", pos) from None
                    i = index_of.get(int(frame.pts), pos) if frame.pts is not None else pos
                    pos = i + 1
                    if i < index:
                        self.grabs += 1
                        continue
                    # i >= index: the wanted frame, or the first one after it when the stream skips it
                    while w < len(wanted) and wanted[w] <= i:
                        w += 1
                    time = float(info.times[i]) if i < len(info.times) else float(frame.time or 0.0)
                    yield DecodedFrame(index=i, time=time, rgb=frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise StreamBroken(f"the video stream broke at frame {pos} ({_one_line(exc)})", pos) from None


def open_reader(info: VideoInfo, *, seek: bool = True) -> PyAVReader:
    return PyAVReader(info, seek=seek)
