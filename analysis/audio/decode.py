"""Decode an audio file or a video's sound track to 16 kHz mono float32 with PyAV, with bounded work.

Short tracks (at most `AudioLimits.max_full_seconds`) are decoded whole. Longer ones are read as at most
`max_windows` excerpts of one window each, spread evenly over the file by seeking, so a 3-hour file costs the
same as a few minutes. A container whose duration is missing or wrong (bogus headers) is decoded from the
start and stops after `max_full_seconds` of sound; a damaged stream keeps what decoded before the damage and
says so in `notes`. Every failure is a one-line `MediaError` (`NoAudioTrack` when there is no sound at all).
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from analysis.errors import MediaError

SAMPLE_RATE = 16_000
MAX_DAMAGED_PACKETS = 16   # per decoded range; more and the rest of the track is given up


class NoAudioTrack(MediaError):
    """The file has no audio stream (a silent video, an image): a note for videos, an error for audio files."""


@dataclass(frozen=True)
class AudioLimits:
    window_seconds: float = 4.0        # the detectors' window
    hop_seconds: float = 2.0           # 50 % overlap
    max_windows: int = 48              # the most windows scored per file (spread over the file when longer)
    max_full_seconds: float = 120.0    # tracks up to this long are decoded whole; longer ones as excerpts
    max_decode_wall_seconds: float = 30.0   # stop decoding after this long (a pathological file)

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_seconds <= 30 or not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError("audio windows: 0.5 <= window <= 30 s and 0 < hop <= window")
        if not 1 <= self.max_windows <= 10_000 or self.max_full_seconds < self.window_seconds:
            raise ValueError("audio limits: 1 <= max_windows <= 10000 and max_full_seconds >= the window")


@dataclass
class AudioSegment:
    start: float                       # seconds from the start of the track
    samples: np.ndarray                # float32 mono at SAMPLE_RATE, in [-1, 1]

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE


@dataclass
class AudioTrack:
    segments: list[AudioSegment]       # one whole segment, or excerpts spread over a long file
    duration: float | None             # of the whole track in seconds (container, else what decoded)
    source_rate: int | None
    channels: int | None
    codec: str | None
    excerpts: bool = False             # long file: only `segments` were decoded
    notes: list[str] = field(default_factory=list)

    @property
    def decoded_seconds(self) -> float:
        return sum(len(s.samples) for s in self.segments) / SAMPLE_RATE

    def metadata(self) -> dict[str, object]:
        return {"duration": None if self.duration is None else round(self.duration, 3),
                "sample_rate": self.source_rate, "channels": self.channels, "codec": self.codec,
                "decoded_seconds": round(self.decoded_seconds, 3), "excerpts": self.excerpts}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _stream_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return None
    return seconds if np.isfinite(seconds) and 0 < seconds < 1e7 else None


class _Reader:
    """Decodes frames of one audio stream into 16 kHz mono float32 (PyAV's resampler downmixes any layout)."""

    def __init__(self, stream: av.audio.stream.AudioStream) -> None:
        self.stream = stream
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def convert(self, frame: av.AudioFrame) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self.resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self.resampler.resample(None)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _decode_range(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                  start: float, seconds: float, deadline: float, notes: list[str]) -> AudioSegment | None:
    """Decode `seconds` of sound from `start` (seeking when start > 0); None when nothing decoded there."""
    reader = _Reader(stream)
    if start > 0:
        try:
            container.seek(int(start / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            notes.append(f"cannot seek in the sound track ({_one_line(exc)})")
            return None
    want = int(round(seconds * SAMPLE_RATE))
    chunks: list[np.ndarray] = []
    have = 0
    first_time: float | None = None
    damaged = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:   # a damaged packet (or one cut by a seek): skip it, up to a limit
            if start > 0 and first_time is None:
                continue   # the seek landed inside a frame: not damage
            damaged += 1
            if damaged > MAX_DAMAGED_PACKETS:
                notes.append(f"the sound track is damaged near {start + have / SAMPLE_RATE:.1f} s "
                             f"({_one_line(exc)}); the rest was not analysed")
                break
            continue
        for frame in frames:
            t = None if frame.pts is None or frame.time_base is None else float(frame.pts * frame.time_base)
            samples = reader.convert(frame)
            if first_time is None:
                first_time = t if t is not None else start
                if start > 0:
                    samples = samples[int(max(0.0, start - first_time) * SAMPLE_RATE):]
            chunks.append(samples)
            have += len(samples)
            if have >= want:
                break
        if have >= want or time.monotonic() > deadline:
            break
    if damaged:
        notes.append(f"{damaged} damaged audio packet{'s' if damaged > 1 else ''} skipped")
    if have < want:
        chunks.append(reader.flush())
    if not chunks:
        return None
    samples = np.concatenate(chunks)[:want]
    if not len(samples):
        return None
    samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return AudioSegment(start=start, samples=np.ascontiguousarray(samples, dtype=np.float32))


def _merged_notes(notes: list[str]) -> list[str]:
    """One "N damaged audio packets skipped" note for the whole track; others as they came, once each."""
    skipped = sum(int(n.split()[0]) for n in notes if n.endswith("skipped") and n.split()[0].isdigit())
    out = list(dict.fromkeys(n for n in notes if not (n.endswith("skipped") and n.split()[0].isdigit())))
    if skipped:
        out.append(f"{skipped} damaged audio packet{'s' if skipped > 1 else ''} skipped")
    return out


def load_audio(source: str | Path | bytes, limits: AudioLimits | None = None, *,
               label: str | None = None) -> AudioTrack:
    """The sound track of `source` (the path or the bytes of an audio file or a video) as 16 kHz mono; see the
    module doc."""
    limits = limits or AudioLimits()
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    name = label or ("the audio" if in_memory else Path(source).name)
    try:
        container = av.open(io.BytesIO(bytes(source)) if in_memory else str(source), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{name} cannot be read as audio or video ({_one_line(exc)})") from None
    try:
        streams = list(container.streams.audio)
        if not streams:
            raise NoAudioTrack(f"{name} has no audio track")
        stream = streams[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        channels = getattr(getattr(ctx, "layout", None), "nb_channels", None) or getattr(ctx, "channels", None)
        track = AudioTrack(segments=[], duration=_stream_duration(container, stream), source_rate=ctx.sample_rate
                           or None, channels=channels or None, codec=ctx.name if ctx else None)
        deadline = time.monotonic() + limits.max_decode_wall_seconds
        duration = track.duration
        if duration is not None and duration > limits.max_full_seconds:
            track.excerpts = True
            n = limits.max_windows
            span = max(0.0, duration - limits.window_seconds)
            starts = [span * i / max(1, n - 1) for i in range(n)] if n > 1 else [0.0]
            for start in starts:
                segment = _decode_range(container, stream, start, limits.window_seconds, deadline, track.notes)
                if segment is not None:
                    track.segments.append(segment)
                if time.monotonic() > deadline:
                    track.notes.append(f"decoding stopped after {limits.max_decode_wall_seconds:g} s")
                    break
            if not track.segments:   # seeking failed everywhere (bogus index): read the start instead
                track.excerpts = False
                container.seek(0)
            else:
                track.notes.append(f"long track ({duration / 60:.0f} min): {len(track.segments)} excerpts of "
                                   f"{limits.window_seconds:g} s spread over it were analysed")
        if not track.segments:
            segment = _decode_range(container, stream, 0.0, limits.max_full_seconds, deadline, track.notes)
            if segment is not None:
                track.segments.append(segment)
                decoded = segment.end
                if decoded >= limits.max_full_seconds - 1e-6:
                    track.notes.append(f"only the first {limits.max_full_seconds:g} s of the sound track were "
                                       "analysed")
                elif duration is not None and decoded < 0.9 * duration - 0.5 and not any(
                        "damaged" in n for n in track.notes):
                    track.notes.append(f"the sound track ends at {decoded:.1f} s although the file says "
                                       f"{duration:.1f} s (truncated?)")
                if duration is None or duration < decoded or decoded < limits.max_full_seconds:
                    track.duration = decoded
        track.notes = _merged_notes(track.notes)
        if not track.segments:
            raise MediaError(f"{name}: no sound could be decoded from its audio track"
                             + (f" ({track.notes[-1]})" if track.notes else ""))
        return track
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, RuntimeError) as exc:
        raise MediaError(f"{name}: cannot decode the audio track ({_one_line(exc)})") from None
    finally:
        container.close()


def only_sound(source: str | Path) -> bool:
    """True when a container (Matroska, WebM, MP4 ...) holds audio streams and no video stream: an audio file
    in a video wrapper. False when it has video, or cannot be opened (the video engine then says why)."""
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            return bool(container.streams.audio) and not any(
                s.frames != 1 or s.average_rate for s in container.streams.video)   # cover art is one frame
    except (av.error.FFmpegError, OSError, ValueError):
        return False
