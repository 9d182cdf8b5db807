"""Windows over a decoded track, and the voice-activity test that decides which windows are scored.

Windows of `AudioLimits.window_seconds` with `hop_seconds` overlap cover each decoded segment (a tail the hop
leaves uncovered gets one more window ending at the segment's end; a segment shorter than a window is one
zero-padded window); at most `max_windows` are kept, spread evenly.
The voice-activity test is deliberately simple and documented here, in one place:
  * frames of 25 ms (10 ms hop); a frame is *active* when its level is above `SILENCE_DBFS` and within
    `DYNAMIC_RANGE_DB` of the loudest frame of the window;
  * a window holds speech when at least `MIN_ACTIVE_SHARE` of its frames are active, the active frames are not
    flat noise (median spectral flatness below `MAX_FLATNESS`) and the level moves like syllables (the standard
    deviation of the active frames' level in dB at least `MIN_LEVEL_SPREAD_DB`): steady tones, hum and most
    sustained music fail the last test.
Windows without speech are kept in reports with their reason, but not scored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.audio.decode import SAMPLE_RATE, AudioLimits, AudioTrack

SILENCE_DBFS = -50.0
DYNAMIC_RANGE_DB = 35.0
MIN_ACTIVE_SHARE = 0.2
MAX_FLATNESS = 0.45
MIN_LEVEL_SPREAD_DB = 3.0
FRAME, FRAME_HOP = 400, 160          # 25 ms / 10 ms at 16 kHz


@dataclass
class AudioWindow:
    start: float                     # seconds in the track
    end: float
    samples: np.ndarray              # float32, exactly one window long (zero-padded tail)
    speech: bool = False
    reason: str | None = None        # why it is not scored ("silence", "no speech-like level changes", ...)
    level_dbfs: float | None = None  # RMS level of the window


def _frames(x: np.ndarray) -> np.ndarray:
    n = 1 + max(0, (len(x) - FRAME) // FRAME_HOP)
    idx = np.arange(FRAME)[None, :] + FRAME_HOP * np.arange(n)[:, None]
    return np.pad(x, (0, max(0, FRAME - len(x))))[idx]


def voice_activity(samples: np.ndarray) -> tuple[bool, str | None, float]:
    """(speech?, reason when not, RMS level in dBFS) of one window; see the module doc for the test."""
    x = np.asarray(samples, dtype=np.float64)
    level = 10 * np.log10(np.mean(x * x) + 1e-12)
    frames = _frames(x)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    active = (db > SILENCE_DBFS) & (db > db.max() - DYNAMIC_RANGE_DB)
    share = float(active.mean()) if len(active) else 0.0
    if level < SILENCE_DBFS or not active.any():
        return False, "silence", float(level)
    if share < MIN_ACTIVE_SHARE:
        return False, f"mostly silence ({share:.0%} active)", float(level)
    spectrum = np.abs(np.fft.rfft(frames[active] * np.hanning(FRAME), axis=1)) + 1e-10
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    if float(np.median(flatness)) > MAX_FLATNESS:
        return False, "noise, not speech", float(level)
    if float(np.std(db[active])) < MIN_LEVEL_SPREAD_DB:
        return False, "steady sound (tone, hum or music), not speech", float(level)
    return True, None, float(level)


def make_windows(track: AudioTrack, limits: AudioLimits | None = None) -> list[AudioWindow]:
    """Overlapping windows over the track's segments, at most `limits.max_windows` (spread evenly), each with
    its voice-activity decision."""
    limits = limits or AudioLimits()
    size = int(round(limits.window_seconds * SAMPLE_RATE))
    hop = int(round(limits.hop_seconds * SAMPLE_RATE))
    spans: list[tuple[float, np.ndarray]] = []
    for segment in track.segments:
        x = segment.samples
        starts = list(range(0, max(1, len(x) - size + 1), hop))
        last = starts[-1] + size if starts else 0
        if len(x) > size and len(x) - last >= SAMPLE_RATE // 4:
            starts.append(len(x) - size)            # an uncovered tail: a full window ending at the segment's end
        for s in starts:
            chunk = x[s:s + size]
            if len(chunk) < size // 4:
                continue
            spans.append((segment.start + s / SAMPLE_RATE, chunk))
    if len(spans) > limits.max_windows:
        keep = np.unique(np.linspace(0, len(spans) - 1, limits.max_windows).round().astype(int))
        spans = [spans[i] for i in keep]
    windows = []
    for start, chunk in spans:
        padded = np.pad(chunk, (0, size - len(chunk))).astype(np.float32, copy=False)
        speech, reason, level = voice_activity(chunk)
        windows.append(AudioWindow(start=round(start, 3), end=round(start + len(chunk) / SAMPLE_RATE, 3),
                                   samples=padded, speech=speech, reason=reason, level_dbfs=round(level, 1)))
    return windows
