"""Waveform augmentation for the audio detector, aimed at generalisation (what changes between the training
speech and speech met in the wild): codec round trips (MP3, AAC, Opus at several bit rates, through PyAV),
resampling to a lower rate and back, additive noise, gain, band limits (telephone-like to wide band) and a short
synthetic reverberation. `augment(x, rng)` applies a random chain; every step keeps 16 kHz mono float32."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from analysis.audio.decode import SAMPLE_RATE, load_audio
from analysis.audio.encode import encode_audio
from analysis.errors import MediaError

CODECS: tuple[tuple[str, int, int, str | None], ...] = (   # (codec, bit rate, encoder rate, container)
    ("libmp3lame", 32_000, 16_000, None), ("libmp3lame", 64_000, 22_050, None),
    ("libmp3lame", 128_000, 44_100, None), ("aac", 48_000, 16_000, None), ("aac", 96_000, 44_100, None),
    ("libopus", 16_000, 48_000, None), ("libopus", 32_000, 48_000, None))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    g = np.gcd(src, dst)
    return signal.resample_poly(x, dst // g, src // g).astype(np.float32)


def round_trip(x: np.ndarray, codec: str, bitrate: int, rate: int = SAMPLE_RATE,
               container: str | None = None) -> np.ndarray:
    """`x` encoded with `codec` at `bitrate` (at `rate` Hz) and decoded back to 16 kHz, aligned, same length."""
    try:
        data = encode_audio(_resample(x, SAMPLE_RATE, rate), rate, codec, bitrate=bitrate, container=container)
        y = np.concatenate([s.samples for s in load_audio(data).segments])
    except (MediaError, ValueError):
        return x
    # encoders add a start delay (priming); find it so the round trip stays aligned with the label's windows
    lag = int(np.argmax(np.correlate(y[:4000], x[:2000], mode="valid"))) if len(y) >= 4000 and len(x) >= 2000 else 0
    return _fit(y[lag:], len(x))


def codec_round_trip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    codec, bitrate, rate, container = CODECS[rng.integers(len(CODECS))]
    return round_trip(x, codec, bitrate, rate, container)


def resample_round_trip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rate = int(rng.choice([8_000, 11_025, 12_000]))
    return _fit(_resample(_resample(x, SAMPLE_RATE, rate), rate, SAMPLE_RATE), len(x))


def add_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    snr = rng.uniform(10, 40)
    power = float(np.mean(x ** 2)) + 1e-10
    noise = rng.standard_normal(len(x)).astype(np.float32)
    if rng.random() < 0.5:   # pink-ish: integrate white noise a little
        noise = signal.lfilter([1.0], [1.0, -0.9], noise).astype(np.float32)
        noise /= noise.std() + 1e-8
    return x + noise * np.sqrt(power / 10 ** (snr / 10))


def gain(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x * np.float32(10 ** (rng.uniform(-12, 6) / 20))


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = rng.uniform(50, 300), rng.uniform(3_400, 7_600)
    sos = signal.butter(4, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, x).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rt60 = rng.uniform(0.08, 0.4)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)
    ir /= np.sqrt(np.sum(ir ** 2))
    return _fit(signal.fftconvolve(x, ir.astype(np.float32))[:len(x)], len(x))


# (step, probability in a chain): order is the path sound takes (room, device, channel, codec)
STEPS: tuple[tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], float], ...] = (
    (reverb, 0.25), (band_limit, 0.3), (add_noise, 0.35), (resample_round_trip, 0.25), (gain, 0.5),
    (codec_round_trip, 0.5))


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random chain of the steps above; the result is clipped to [-1, 1]."""
    y = np.asarray(x, dtype=np.float32)
    for step, p in STEPS:
        if rng.random() < p:
            y = step(y, rng)
    return np.clip(np.nan_to_num(y), -1.0, 1.0).astype(np.float32)
