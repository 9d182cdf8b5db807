"""Hybrid CNN + Transformer: efficientnet_lite{0,1,2} features (stride 16) as tokens for a small Transformer encoder.

Like ViT-hybrid: the CNN sees local texture, self-attention relates the regions of the face to one another (blending
boundaries, mismatched halves); the class token carries the decision.
"""
from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from torch import nn

from detectors.lite0 import LiteTrunk

ARCH = "cnn_transformer_v1"


def tokens_to_map(x: torch.Tensor, prefix_tokens: int = 0) -> torch.Tensor:
    """(B, prefix + H*W, C) tokens -> (B, C, H, W), dropping `prefix_tokens` leading tokens (a class token);
    4-D inputs (the CNN part of a hybrid) pass through."""
    if x.ndim == 4:
        return x
    if x.ndim != 3:
        raise ValueError(f"expected (B, N, C) tokens or a (B, C, H, W) map, got shape {tuple(x.shape)}")
    x = x[:, prefix_tokens:]
    side = int(round(x.shape[1] ** 0.5))
    if side * side != x.shape[1]:
        raise ValueError(f"{x.shape[1]} tokens (after {prefix_tokens} prefix tokens) do not form a square grid")
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)


def drop_class_token(x: torch.Tensor) -> torch.Tensor:
    return tokens_to_map(x, prefix_tokens=1)


class CnnTransformerDetector(nn.Module):
    def __init__(self, img_size: int = 224, embed_dim: int = 256, depth: int = 4, num_heads: int = 8,
                 mlp_ratio: float = 4.0, drop_rate: float = 0.1, backbone_stride: int = 16,
                 trunk_variant: int = 0, pretrained: bool = False) -> None:
        super().__init__()
        self.img_size = img_size
        self.grid = -(-img_size // backbone_stride)  # TF-"SAME" padding: ceil(S / stride) tokens per side
        self.backbone = LiteTrunk(stride=backbone_stride, pretrained=pretrained, variant=trunk_variant)
        self.proj = nn.Sequential(nn.Conv2d(self.backbone.out_channels, embed_dim, 1, bias=False),
                                  nn.BatchNorm2d(embed_dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout=drop_rate,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, 1)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        if (h, w) == (self.grid, self.grid):
            return self.pos_embed
        return resample_abs_pos_embed(self.pos_embed, [h, w], old_size=[self.grid, self.grid], num_prefix_tokens=1)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1 + H*W, C) encoded tokens, class token first."""
        return self.tokens_from_trunk(self.backbone(x))

    def tokens_from_trunk(self, trunk: torch.Tensor) -> torch.Tensor:
        """The CNN trunk's (B, C, H, W) output -> (B, 1 + H*W, C) encoded tokens (training on cached trunks)."""
        fmap = self.proj(trunk)
        b, _, h, w = fmap.shape
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), fmap.flatten(2).transpose(1, 2)], dim=1)
        tokens = self.pos_drop(tokens + self._pos_embed(h, w))
        return self.norm(self.encoder(tokens))

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        cls = self.head_drop(tokens[:, 0])
        return cls if pre_logits else self.head(cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_tokens(x))


def build_cnn_transformer(pretrained: bool = False, **kwargs) -> CnnTransformerDetector:
    """With `pretrained`, the CNN starts from the offline ImageNet efficientnet_lite{trunk_variant} weights."""
    return CnnTransformerDetector(pretrained=pretrained, **kwargs)
