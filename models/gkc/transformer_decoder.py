"""Mask2Former's masked-attention transformer decoder, class-agnostic: it turns learnable
queries into per-query embeddings and masks; the open-vocabulary heads that read the embeddings
live in network.py.

Each layer attends only inside the mask the previous layer predicted (masked attention), cycling
over the stride 32/16/8 maps, and every layer's prediction is returned for deep supervision."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ovbench.models.gkc.pixel_decoder import sine_position_encoding
from torch import nn


def masked_attention_mask(mask_logits: torch.Tensor, size: tuple[int, int], heads: int) -> torch.Tensor:
    """Boolean attention mask (B*heads, Q, h*w) from mask logits (B, Q, H, W): True = may not
    attend (predicted probability < 0.5 after resizing to the attended map). A query whose mask
    would block every position attends everywhere instead, as Mask2Former does."""
    resized = F.interpolate(mask_logits.detach().float(), size=size, mode="bilinear", align_corners=False)
    blocked = (resized.sigmoid().flatten(2) < 0.5).unsqueeze(1).expand(-1, heads, -1, -1).flatten(0, 1)
    return blocked & ~blocked.all(dim=-1, keepdim=True)


class CrossAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        out = self.attn(tgt + query_pos, memory + pos, memory, attn_mask=mask, need_weights=False)[0]
        return self.norm(tgt + out)


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        return self.norm(tgt + self.attn(q, q, tgt, need_weights=False)[0])


class FFNLayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    """Linear layers with ReLU between them (DETR's box/mask-embedding head); `dense` makes
    them 1x1 convolutions over a (B, C, H, W) map (SAN's pixel branches)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int, dense: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        affine = (lambda a, b: nn.Conv2d(a, b, kernel_size=1)) if dense else nn.Linear
        self.layers = nn.ModuleList(affine(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MaskedAttentionDecoder(nn.Module):
    """Returns one (query embedding (B, Q, C) after the final LayerNorm, mask logits (B, Q, H, W)
    at the mask-feature resolution) per prediction: the initial queries' and every layer's."""

    levels = 3

    def __init__(self, dim: int, heads: int, ffn_dim: int, layers: int, queries: int, mask_dim: int):
        super().__init__()
        self.heads = heads
        self.level_embed = nn.Embedding(self.levels, dim)
        self.query_feat = nn.Embedding(queries, dim)
        self.query_embed = nn.Embedding(queries, dim)
        self.cross = nn.ModuleList(CrossAttentionLayer(dim, heads) for _ in range(layers))
        self.self_attn = nn.ModuleList(SelfAttentionLayer(dim, heads) for _ in range(layers))
        self.ffn = nn.ModuleList(FFNLayer(dim, ffn_dim) for _ in range(layers))
        for module in (*self.cross, *self.self_attn, *self.ffn):
            for param in module.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
        self.decoder_norm = nn.LayerNorm(dim)
        self.mask_embed = MLP(dim, dim, mask_dim, 3)

    def predict(self, output: torch.Tensor, mask_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.decoder_norm(output)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(embedding), mask_features)
        return embedding, masks

    def forward(self, features: list[torch.Tensor], mask_features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """features: the stride 32, 16, 8 maps (B, C, h, w) in that order."""
        batch = mask_features.shape[0]
        sizes, memory, pos = [], [], []
        for level, feature in enumerate(features):
            height, width = feature.shape[-2:]
            sizes.append((height, width))
            encoding = sine_position_encoding(height, width, feature.shape[1], feature.device, feature.dtype)
            pos.append(encoding.flatten(2).transpose(1, 2))
            memory.append(feature.flatten(2).transpose(1, 2) + self.level_embed.weight[level])
        output = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        predictions = [self.predict(output, mask_features)]
        for index in range(len(self.cross)):
            level = index % self.levels
            mask = masked_attention_mask(predictions[-1][1], sizes[level], self.heads)
            output = self.cross[index](output, memory[level], mask, pos[level], query_pos)
            output = self.self_attn[index](output, query_pos)
            output = self.ffn[index](output)
            predictions.append(self.predict(output, mask_features))
        return predictions
