"""SAN's side adapter network: a small ViT on the full-resolution image whose patch tokens get
CLIP's layer tokens added (the fusion map), and whose query tokens are decoded into mask logits
and into the attention bias that tells CLIP's recognition blocks where each mask looks.

Module names follow the authors' state dict under `side_adapter_network.` (timm's ViT block
names inside `vit`), so their checkpoint loads by renaming one prefix."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ovbench.models.gkc.transformer_decoder import MLP
from ovbench.models.san.config import SANConfig
from torch import nn

SIDE_NORM_EPS = 1e-6  # timm's ViT LayerNorm
FUSION_NORM_EPS = 1e-6  # the authors' channel LayerNorm (ConvNeXt's)


def resize_grid_embedding(embedding: torch.Tensor, source: tuple[int, int], target: tuple[int, int]) -> torch.Tensor:
    """Position embeddings (1, h*w, C) of a `source` grid resized bicubically to `target`."""
    if tuple(source) == tuple(target):
        return embedding
    grid = embedding.reshape(1, *source, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=target, mode="bicubic", align_corners=False)
    return grid.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, length, width))


class Mlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width * 4)
        self.fc2 = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm ViT block (timm's, without layer scale or drop path)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=SIDE_NORM_EPS)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=SIDE_NORM_EPS)
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)


class SideViT(nn.Module):
    """The side network's trunk: patch embedding, a position-embedding grid and plain blocks."""

    def __init__(self, config: SANConfig):
        super().__init__()
        self.grid = (config.side_image_size // config.side_patch,) * 2
        self.patch_embed = PatchEmbed(config.side_patch, config.side_width)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], config.side_width))
        self.blocks = nn.ModuleList(Block(config.side_width, config.side_heads) for _ in range(config.side_depth))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class AddFusion(nn.Module):
    """CLIP tokens -> channel norm, 1x1 projection to the side width, bilinear to the side grid."""

    def __init__(self, clip_width: int, side_width: int):
        super().__init__()
        self.input_proj = nn.Sequential(ChannelNorm(clip_width, eps=FUSION_NORM_EPS), nn.Conv2d(clip_width, side_width, 1))

    def forward(self, clip_map: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        fused = F.interpolate(self.input_proj(clip_map), size=grid, mode="bilinear", align_corners=False)
        return fused.flatten(2).transpose(1, 2)


class MaskDecoder(nn.Module):
    """Query and pixel embeddings -> mask logits (B, Q, h, w); attention-bias embeddings ->
    the bias (B, heads, Q, h, w), rescaled by a learned affine map."""

    def __init__(self, config: SANConfig):
        super().__init__()
        width, embed, hidden, layers = config.side_width, config.mask_embed_dim, config.mask_mlp_dim, config.mask_mlp_layers
        self.heads = config.attn_bias_heads
        self.query_mlp = MLP(width, hidden, embed, layers)
        self.pix_mlp = MLP(width, hidden, embed, layers, dense=True)
        self.attn_mlp = MLP(width, hidden, embed * self.heads, layers, dense=True)
        self.bias_scaling = nn.Linear(1, 1)

    def forward(self, query: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        query = self.query_mlp(query)
        masks = torch.einsum("bqc,bchw->bqhw", query, self.pix_mlp(pixels))
        batch, _, height, width = pixels.shape
        attn = self.attn_mlp(pixels).reshape(batch, self.heads, -1, height, width)
        bias = torch.einsum("bqc,bnchw->bnqhw", query, attn)
        return masks, self.bias_scaling(bias[..., None]).squeeze(-1)


class SideAdapter(nn.Module):
    """Queries and patches through the side ViT with CLIP fused in; the position embedding is
    added again after every block but the last, as the authors do."""

    def __init__(self, config: SANConfig, clip_width: int):
        super().__init__()
        self.vit = SideViT(config)
        self.query_embed = nn.Parameter(torch.zeros(1, config.num_queries, config.side_width))
        self.query_pos_embed = nn.Parameter(torch.zeros(1, config.num_queries, config.side_width))
        nn.init.normal_(self.query_embed, std=0.02)
        nn.init.normal_(self.query_pos_embed, std=0.02)
        self.fusion_map = {int(block): layer for block, layer in config.fusion_map.items()}
        self.fusion_layers = nn.ModuleDict({f"layer_{block}": AddFusion(clip_width, config.side_width) for block in self.fusion_map})
        self.mask_decoder = MaskDecoder(config)

    def forward(self, image: torch.Tensor, clip_maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """image: normalised, padded (B, 3, H, W); clip_maps[i]: CLIP layer i's patch tokens
        (B, C, h, w). Returns mask logits and attention bias on the side grid (stride 16)."""
        patches = self.vit.patch_embed.proj(image)
        grid = tuple(patches.shape[-2:])
        patches = patches.flatten(2).transpose(1, 2)
        queries = self.query_embed.shape[1]
        position = torch.cat([self.query_pos_embed, resize_grid_embedding(self.vit.pos_embed, self.vit.grid, grid)], dim=1)
        x = torch.cat([self.query_embed.expand(patches.shape[0], -1, -1), patches], dim=1) + position
        x = self._fuse(0, x, clip_maps, grid)
        for index, block in enumerate(self.vit.blocks, start=1):
            x = self._fuse(index, block(x), clip_maps, grid)
            if index < len(self.vit.blocks):
                x = x + position
        pixels = x[:, queries:].transpose(1, 2).reshape(x.shape[0], -1, *grid)
        return self.mask_decoder(x[:, :queries], pixels)

    def _fuse(self, block: int, x: torch.Tensor, clip_maps: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        if block not in self.fusion_map:
            return x
        queries = self.query_embed.shape[1]
        fused = self.fusion_layers[f"layer_{block}"](clip_maps[self.fusion_map[block]], grid)
        return torch.cat([x[:, :queries], x[:, queries:] + fused], dim=1)
