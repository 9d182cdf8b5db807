"""Real audio files for the tests, written with PyAV (analysis.audio.encode): speech-like signals, silence,
many channels, high sample rates, truncated and very long files, and a video with a sound track."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

from analysis.audio.encode import encode_audio

RATE = 16_000


def speech_like(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A voiced source (harmonics of a gliding 100-220 Hz pitch, formant-like emphasis) cut into syllables of
    ~0.2 s with short pauses: what the voice-activity test should call speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t) + 20 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) * (1.0 / k) * (1.6 if 3 <= k <= 6 else 1.0) for k in range(1, 16))
    envelope = np.zeros(n)
    pos = 0
    while pos < n:
        syllable, pause = int(rng.uniform(0.12, 0.3) * rate), int(rng.uniform(0.03, 0.2) * rate)
        envelope[pos:pos + syllable] = np.hanning(syllable)[: max(0, min(syllable, n - pos))]
        pos += syllable + pause
    x = voice * envelope + 0.002 * rng.standard_normal(n)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int = RATE, codec: str = "pcm_s16le", **kwargs) -> Path:
    path.write_bytes(encode_audio(samples, rate, codec, **kwargs))
    return path


def long_mp3(path: Path, hours: float = 3.0) -> Path:
    """An MP3 of `hours` made by repeating a 10 s MP3 (MPEG audio frames concatenate): seconds to write, ~30 MB."""
    piece = encode_audio(speech_like(10.0, 8_000), 8_000, "libmp3lame", bitrate=8_000)
    path.write_bytes(piece * int(hours * 360))
    return path


def bogus_duration_wav(path: Path, seconds: float = 5.0) -> Path:
    """A WAV whose header claims ~18 hours of sound (data size 0x7ffffff0) while holding `seconds`."""
    data = bytearray(encode_audio(speech_like(seconds), RATE, "pcm_s16le"))
    i = data.find(b"data")
    data[i + 4:i + 8] = struct.pack("<I", 0x7FFFFFF0)
    data[4:8] = struct.pack("<I", 0x7FFFFFF8)
    path.write_bytes(bytes(data))
    return path


def video_with_sound(path: Path, frames: list[np.ndarray], fps: int = 25, sound: np.ndarray | None = None) -> Path:
    """An MP4 (MPEG-4 video, AAC sound) whose sound track is `sound` (16 kHz mono), or none when None."""
    import av
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=RATE) if sound is not None else None
        if audio is not None:
            audio.layout = "mono"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            for i in range(0, len(sound), 1024):
                chunk = np.ascontiguousarray(sound[None, i:i + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE, i, Fraction(1, RATE)
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return path


def add_audio_detector(folder: Path, aucs: dict[str, float] | None = None) -> Path:
    """Write a random-init audio_cnn artifact into `folder` (passing the gate unless `aucs` say otherwise)."""
    import torch

    from detectors.audio_artifacts import save_audio_artifact
    from detectors.audio_registry import build_audio_model
    torch.manual_seed(0)
    return save_audio_artifact(build_audio_model("audio_cnn"), "audio_cnn", folder, temperature=1.2,
                               metrics={"val_auc_by_source": aucs or {"Exp.1": 0.9, "Exp.2": 0.95}}, run_id="test")
