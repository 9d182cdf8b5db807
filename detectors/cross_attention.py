"""Cross-attention between two views of one face: RGB content queries a frequency / noise-residual view.

Queries: tokens of the RGB image from an efficientnet_lite{0,1,2} trunk (stride 16).
Keys / values: two token sets of the *same* face computed by fixed, unlearned transforms and small conv stems:
  * noise residuals - three SRM high-pass filters (steganalysis rich models) on each colour channel, truncated, so
    the tokens see the camera / generator noise instead of the content;
  * the log-magnitude Fourier spectrum of the luminance - a spectral image whose tokens are frequency bands, where
    up-sampling and GAN artefacts show as peaks and grids.
Every RGB token asks "which residual regions / frequency bands are suspicious for what I show", through
nn.MultiheadAttention with query != key; the attended tokens are pooled into an MLP classifier.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed, trunc_normal_
from torch import nn

from detectors.contract import CamTarget, cam_target_at, tokens_to_nchw
from detectors.lite0 import LITE0_MEAN, LITE0_STD, LiteTrunk
from detectors.registry import DetectorSpec, img_size_kwargs, register

ARCH = "cross_attention_v1"

# The three classic SRM kernels (Fridrich & Kodovsky 2012, as used by Zhou et al. 2018); each sums to zero.
_SRM_KERNELS = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
_SRM_NORMS = (4.0, 12.0, 2.0)


class SRMResidual(nn.Module):
    """Fixed SRM high-pass filters on each RGB channel -> 9 truncated noise-residual maps in [-1, 1].

    Inputs are normalised images; `pixel_scale` (255 * std) turns residuals back into grey levels so the classic
    truncation threshold applies.
    """

    def __init__(self, pixel_scale: float = 255.0 * LITE0_STD[0], truncation: float = 3.0) -> None:
        super().__init__()
        kernels = torch.tensor(_SRM_KERNELS, dtype=torch.float32) / torch.tensor(_SRM_NORMS).view(3, 1, 1)
        # (9, 1, 5, 5) grouped per input channel: output 3*c + k is kernel k on channel c
        self.register_buffer("weight", kernels.repeat(3, 1, 1).unsqueeze(1), persistent=False)
        self.pixel_scale = pixel_scale
        self.truncation = truncation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reflect padding: zero padding would put a strong fake "residual" on every image border
        padded = F.pad(x * self.pixel_scale, (2, 2, 2, 2), mode="reflect")
        residual = F.conv2d(padded, self.weight, groups=3)
        return torch.clamp(residual, -self.truncation, self.truncation) / self.truncation


class LogSpectrum(nn.Module):
    """Centred log-magnitude 2-D Fourier spectrum of the luminance: (B, 3, S, S) -> (B, 1, S, S)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.float().mean(dim=1)
        spectrum = torch.fft.fftshift(torch.fft.fft2(gray, norm="ortho"), dim=(-2, -1))
        power = spectrum.real.square() + spectrum.imag.square()
        return 0.5 * torch.log(power + 1e-6).unsqueeze(1)  # smooth at zero power, unlike log(abs())


def conv_stem(in_channels: int, dim: int) -> nn.Sequential:
    """Four stride-2 conv-BN-GELU stages: stride 16, grid ceil(S / 16) like the SAME-padded RGB trunk."""
    widths = (in_channels, 32, 64, 128, dim)
    layers: list[nn.Module] = []
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
    return nn.Sequential(*layers)


def _grid_pos_embed(pos: torch.Tensor, grid: int, h: int, w: int) -> torch.Tensor:
    if (h, w) == (grid, grid):
        return pos
    return resample_abs_pos_embed(pos, [h, w], old_size=[grid, grid], num_prefix_tokens=0)


class FrequencyTokens(nn.Module):
    """Noise-residual tokens followed by spectrum tokens, each with its own learned position embedding."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.srm = SRMResidual()
        self.spectrum = LogSpectrum()
        self.spectrum_norm = nn.BatchNorm2d(1)  # the log spectrum's scale depends on the data; learn it
        self.residual_stem = conv_stem(9, dim)
        self.spectrum_stem = conv_stem(1, dim)
        self.residual_pos = nn.Parameter(torch.zeros(1, grid * grid, dim))
        self.spectrum_pos = nn.Parameter(torch.zeros(1, grid * grid, dim))
        trunc_normal_(self.residual_pos, std=0.02)
        trunc_normal_(self.spectrum_pos, std=0.02)

    def _tokens(self, fmap: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        _, _, h, w = fmap.shape
        return fmap.flatten(2).transpose(1, 2) + _grid_pos_embed(pos, self.grid, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self._tokens(self.residual_stem(self.srm(x)), self.residual_pos)
        spectrum = self._tokens(self.spectrum_stem(self.spectrum_norm(self.spectrum(x))), self.spectrum_pos)
        return torch.cat([residual, spectrum], dim=1)


class CrossAttentionBlock(nn.Module):
    """Pre-norm block: queries attend to a separate memory (keys = values), then an MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.1) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=drop, batch_first=True)
        self.drop = nn.Dropout(drop)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim),
                                 nn.Dropout(drop))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(memory)
        attended, _ = self.attn(self.norm_q(queries), kv, kv, need_weights=False)
        x = queries + self.drop(attended)
        return x + self.mlp(self.norm_mlp(x))


class CrossAttentionDetector(nn.Module):
    def __init__(self, img_size: int = 224, embed_dim: int = 256, depth: int = 2, num_heads: int = 8,
                 mlp_ratio: float = 4.0, drop_rate: float = 0.1, trunk_variant: int = 0,
                 pretrained: bool = False) -> None:
        super().__init__()
        self.img_size = img_size
        self.grid = math.ceil(img_size / 16)
        self.rgb = LiteTrunk(stride=16, pretrained=pretrained, variant=trunk_variant)
        self.rgb_proj = nn.Sequential(nn.Conv2d(self.rgb.out_channels, embed_dim, 1, bias=False),
                                      nn.BatchNorm2d(embed_dim))
        self.rgb_pos = nn.Parameter(torch.zeros(1, self.grid * self.grid, embed_dim))
        self.freq = FrequencyTokens(embed_dim, self.grid)
        self.blocks = nn.ModuleList(CrossAttentionBlock(embed_dim, num_heads, mlp_ratio, drop_rate)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.Dropout(drop_rate),
                                  nn.Linear(embed_dim, 1))
        trunc_normal_(self.rgb_pos, std=0.02)
        for module in self.head:
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    # the tokens need the pixels as well as the RGB trunk's output (the frequency view): see tokens_from_trunk
    TOKENS_NEED_PIXELS = True

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, H*W, C) RGB tokens after attending to the frequency view (no class token)."""
        return self.tokens_from_trunk(self.rgb(x), x)

    def tokens_from_trunk(self, trunk: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The RGB trunk's (B, C, H, W) output and the (B, 3, S, S) input -> attended RGB tokens."""
        fmap = self.rgb_proj(trunk)
        _, _, h, w = fmap.shape
        queries = fmap.flatten(2).transpose(1, 2) + _grid_pos_embed(self.rgb_pos, self.grid, h, w)
        memory = self.freq(x)
        for block in self.blocks:
            queries = block(queries, memory)
        return queries

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.norm(tokens).mean(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two fixed views ("freq.srm" residuals, "freq.spectrum"), a middle and the last RGB trunk stage
        ("rgb.blocks.K") and the last cross-attention block's tokens ("blocks.K") as maps."""
        out = {"freq.srm": self.freq.srm(x), "freq.spectrum": self.freq.spectrum(x)}
        middle, last = len(self.rgb.blocks) // 2, len(self.rgb.blocks) - 1
        fmap = self.rgb.bn1(self.rgb.conv_stem(x))
        for k, stage in enumerate(self.rgb.blocks):
            fmap = stage(fmap)
            if k in (middle, last):
                out[f"rgb.blocks.{k}"] = fmap
        out[f"blocks.{len(self.blocks) - 1}"] = tokens_to_nchw(self.tokens_from_trunk(fmap, x))
        return out

    def cam_target(self) -> CamTarget:
        # the attended RGB tokens: all of them feed the pooled head
        return cam_target_at(self, f"blocks.{len(self.blocks) - 1}", reshape=tokens_to_nchw)


def build_cross_attention(pretrained: bool = False, **kwargs) -> CrossAttentionDetector:
    """With `pretrained`, the RGB trunk starts from the offline ImageNet efficientnet_lite{trunk_variant} weights."""
    return CrossAttentionDetector(pretrained=pretrained, **kwargs)


register(DetectorSpec(
    name="cross_attention",
    architecture=ARCH,
    builder=build_cross_attention,
    input_size=224,
    mean=LITE0_MEAN, std=LITE0_STD,
    family="transformer",
    train_defaults={"lr": 3e-4, "batch_size": 32, "epochs": 20, "train_size": 128},
    size_kwargs=img_size_kwargs,
    offline_start=True,
))
