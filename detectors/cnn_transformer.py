"""Hybrid CNN + Transformer: efficientnet_lite{0,1,2} features (stride 16) as tokens for a small Transformer encoder.

Like ViT-hybrid: the CNN sees local texture, self-attention relates the regions of the face to one another (blending
boundaries, mismatched halves); the class token carries the decision.
"""
from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from torch import nn

from detectors.contract import CamTarget, cam_target_at, drop_class_token
from detectors.lite0 import LITE0_MEAN, LITE0_STD, LiteTrunk
from detectors.registry import DetectorSpec, img_size_kwargs, register

ARCH = "cnn_transformer_v1"


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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1 + H*W, C) encoded tokens, class token first."""
        return self.tokens_from_trunk(self.backbone(x))

    def _embed(self, trunk: torch.Tensor) -> torch.Tensor:
        """The CNN trunk's (B, C, H, W) output -> (B, 1 + H*W, C) tokens entering the encoder."""
        fmap = self.proj(trunk)
        b, _, h, w = fmap.shape
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), fmap.flatten(2).transpose(1, 2)], dim=1)
        return self.pos_drop(tokens + self._pos_embed(h, w))

    def tokens_from_trunk(self, trunk: torch.Tensor) -> torch.Tensor:
        """The CNN trunk's (B, C, H, W) output -> (B, 1 + H*W, C) encoded tokens (training on cached trunks)."""
        return self.norm(self.encoder(self._embed(trunk)))

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        cls = self.head_drop(tokens[:, 0])
        return cls if pre_logits else self.head(cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _shown_stages(self) -> tuple[list[int], list[int]]:
        """Trunk stages (two early ones and the last) and encoder layers (the middle and the last) shown."""
        last_stage, last_layer = len(self.backbone.blocks) - 1, len(self.encoder.layers) - 1
        return sorted({1, 2, last_stage}), sorted({last_layer // 2, last_layer})

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Trunk stages ("backbone.blocks.K") and encoder layers ("encoder.layers.K", class token dropped)."""
        stages_shown, layers_shown = self._shown_stages()
        trunk = self.backbone
        fmap = trunk.bn1(trunk.conv_stem(x))
        out: dict[str, torch.Tensor] = {}
        for k, stage in enumerate(trunk.blocks):
            fmap = stage(fmap)
            if k in stages_shown:
                out[f"backbone.blocks.{k}"] = fmap
        tokens = self._embed(fmap)
        for k, layer in enumerate(self.encoder.layers):
            tokens = layer(tokens)
            if k in layers_shown:
                out[f"encoder.layers.{k}"] = drop_class_token(tokens)
        return out

    def cam_target(self) -> CamTarget:
        # the input of the last encoder layer: its spatial tokens still reach the class token through attention
        # (the last layer's own spatial outputs do not, so their gradients are zero); with one layer, the
        # projected CNN map that becomes its tokens
        depth = len(self.encoder.layers)
        if depth == 1:
            return cam_target_at(self, "proj")
        return cam_target_at(self, f"encoder.layers.{depth - 2}", reshape=drop_class_token)


def build_cnn_transformer(pretrained: bool = False, **kwargs) -> CnnTransformerDetector:
    """With `pretrained`, the CNN starts from the offline ImageNet efficientnet_lite{trunk_variant} weights."""
    return CnnTransformerDetector(pretrained=pretrained, **kwargs)


register(DetectorSpec(
    name="cnn_transformer",
    architecture=ARCH,
    builder=build_cnn_transformer,
    input_size=224,
    mean=LITE0_MEAN, std=LITE0_STD,
    family="transformer",
    train_defaults={"lr": 3e-4, "batch_size": 32, "epochs": 20, "train_size": 128},
    size_kwargs=img_size_kwargs,
    offline_start=True,
))
