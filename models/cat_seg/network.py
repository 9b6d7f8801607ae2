"""The CAT-Seg network at inference: CLIP (OpenAI layout, QuickGELU, both towers fine-tuned by
the authors and stored in their checkpoint) gives dense image embeddings through a modified
last block, two earlier blocks give decoder guidance, and the aggregator turns the cost volume
into per-class logits.

The modified last block (the authors' `forward_dense`): the block's value projection, passed
through the attention's output projection, plus the *class token* of the block's input (not
each token's own residual), then the block's MLP with its residual. Positional embeddings are
resized bicubically when the token grid differs from CLIP's training grid (ViT-B/16: 14x14 at
224 -> 24x24 at 384).

Names follow the authors' checkpoint after `checkpoint.map_keys`: `clip.*` (open_clip's CLIP,
q/k/v packed into `in_proj_weight`), `upsample1/2.*`, `aggregator.*`.
"""

from __future__ import annotations

import open_clip
import torch
import torch.nn.functional as F
from ovbench.models.cat_seg.aggregator import Aggregator
from ovbench.models.cat_seg.config import CATSegConfig
from ovbench.models.clip_dense import block_layout
from torch import nn


def build_clip(config: CATSegConfig) -> nn.Module:
    """open_clip's CLIP with the variant's sizes and QuickGELU (OpenAI's activation)."""
    return open_clip.model.CLIP(
        embed_dim=config.clip["embed_dim"],
        vision_cfg=dict(config.clip["vision_cfg"]),
        text_cfg=dict(config.clip["text_cfg"]),
        quick_gelu=True,
    )


def resized_positions(positions: torch.Tensor, grid: int) -> torch.Tensor:
    """(1 + g*g, D) class and patch positions -> (1 + grid*grid, D), patches resized bicubically."""
    side = round((positions.shape[0] - 1) ** 0.5)
    if side == grid:
        return positions
    patches = positions[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([positions[:1], patches[0].flatten(1).T])


def dense_last_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """CAT-Seg's modified last block on batch-first tokens (N, L, D)."""
    attn, width = block.attn, x.shape[-1]
    value = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :])
    y = attn.out_proj(value) + x[:, :1]
    return y + block.mlp(block.ln_2(y))


class CATSegNetwork(nn.Module):
    def __init__(self, config: CATSegConfig):
        super().__init__()
        self.config = config
        self.clip = build_clip(config)
        width = config.clip["vision_cfg"]["width"]
        guide1, guide2 = config.aggregator["decoder_guidance_dims"]
        self.upsample1 = nn.ConvTranspose2d(width, guide1, kernel_size=2, stride=2)
        self.upsample2 = nn.ConvTranspose2d(width, guide2, kernel_size=4, stride=4)
        self.aggregator = Aggregator(config)
        self.batch_first = block_layout(self.clip.visual.transformer.resblocks)

    def dense_features(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normalised views (N, 3, R, R) -> dense embeddings (N, D, g, g) and the guidance
        blocks' patch tokens (N, width, g, g)."""
        visual, grid = self.clip.visual, self.config.grid
        x = visual.conv1(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
        x = visual.ln_pre(x + resized_positions(visual.positional_embedding, grid).to(x.dtype))
        blocks, taps = visual.transformer.resblocks, []
        for index, block in enumerate(blocks[:-1]):
            x = block(x) if self.batch_first else block(x.transpose(0, 1)).transpose(0, 1)
            if index in self.config.guidance_layers:
                taps.append(x[:, 1:])
        x = visual.ln_post(dense_last_block(blocks[-1], x)) @ visual.proj

        def as_map(tokens: torch.Tensor) -> torch.Tensor:
            return tokens.transpose(1, 2).unflatten(2, (grid, grid))

        return as_map(x[:, 1:]), [as_map(tap) for tap in taps]

    def forward(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Normalised views (N, 3, R, R) and class embeddings (T, D) -> logits (N, T, 4g, 4g)."""
        image, (tap1, tap2) = self.dense_features(pixels)
        return self.aggregator(image, text, (image, self.upsample1(tap1), self.upsample2(tap2)))
