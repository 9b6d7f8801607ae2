"""Mask2Former's pixel decoder: a multi-scale deformable-attention encoder (Deformable DETR) over
the stride 8/16/32 features, then an FPN step to the stride-4 per-pixel embedding the masks are
read from.

Deformable attention is written with `F.grid_sample` instead of the usual compiled CUDA kernel,
so the network runs anywhere torch does (CPU, any GPU, no build step); the formulation is the
standard one (sampling offsets, attention softmaxed over levels x points, per-level reference
points)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from ovbench.models.gkc.config import GROUP_NORM_GROUPS
from torch import nn


def sine_position_encoding(height: int, width: int, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """DETR's normalised sine encoding (temperature 10000, scale 2*pi) of an unpadded map:
    (1, channels, height, width), y features first then x features."""
    feats = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    dim_t = torch.arange(feats, device=device, dtype=torch.float32)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / feats)

    def encode(coord: torch.Tensor) -> torch.Tensor:
        pos = coord[:, None] / dim_t
        return torch.stack((pos[:, 0::2].sin(), pos[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, feats)
    pos_x = encode(x)[None, :, :].expand(height, width, feats)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1).unsqueeze(0).to(dtype)


def deformable_sampling(
    value: torch.Tensor,
    shapes: list[tuple[int, int]],
    reference: torch.Tensor,
    offsets: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """The core of multi-scale deformable attention.

    value (N, S, M, D) for all levels flattened; reference (N, Lq, L, 2) as (x, y) in [0, 1];
    offsets (N, Lq, M, L, P, 2) in pixels of each level; weights (N, Lq, M, L, P). Returns
    (N, Lq, M*D): per head, the weighted sum of the values bilinearly sampled at reference +
    offset (zero outside the map). Runs in float32 whatever the autocast state: sampling
    positions need the precision. Level sizes enter as Python numbers: a tensor of them would
    be a host-to-device copy, which synchronises the GPU on every call."""
    n, _, heads, dim = value.shape
    queries = offsets.shape[1]
    with torch.autocast(value.device.type, enabled=False):
        value = value.float()
        offsets = offsets.float().transpose(1, 2).flatten(0, 1)  # (N*M, Lq, L, P, 2)
        reference = reference.float().repeat_interleave(heads, dim=0)  # (N*M, Lq, L, 2)
        w = weights.float().transpose(1, 2).flatten(0, 1).unsqueeze(1)  # (N*M, 1, Lq, L, P)
        out = value.new_zeros(n * heads, dim, queries)
        start = 0
        for level, (height, width) in enumerate(shapes):
            level_value = value[:, start : start + height * width].permute(0, 2, 3, 1).reshape(n * heads, dim, height, width)
            start += height * width
            step = offsets[:, :, level]
            grid_x = 2 * (reference[:, :, level, None, 0] + step[..., 0] / width) - 1
            grid_y = 2 * (reference[:, :, level, None, 1] + step[..., 1] / height) - 1
            grid = torch.stack((grid_x, grid_y), dim=-1)  # (N*M, Lq, P, 2)
            sampled = F.grid_sample(level_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out += (sampled * w[:, :, :, level]).sum(-1)  # accumulate per level: no (.., L*P) stack
    return out.view(n, heads * dim, queries).transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR, eq. 3), initialised as in the paper:
    offsets start on a ring of `heads` directions growing with the point index."""

    def __init__(self, dim: int, levels: int, heads: int, points: int):
        super().__init__()
        self.levels, self.heads, self.points = levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self, query: torch.Tensor, reference: torch.Tensor, value: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        """query (N, Lq, C); reference (N, Lq, L, 2) as (x, y) in [0, 1]; value (N, S, C)."""
        n, queries, _ = query.shape
        value = self.value_proj(value).view(n, value.shape[1], self.heads, -1)
        offsets = self.sampling_offsets(query).view(n, queries, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(n, queries, self.heads, self.levels * self.points)
        weights = weights.float().softmax(-1).view(n, queries, self.heads, self.levels, self.points)
        return self.output_proj(deformable_sampling(value, shapes, reference, offsets, weights))


class EncoderLayer(nn.Module):
    """Post-norm deformable self-attention + FFN (Mask2Former uses dropout 0, so none here)."""

    def __init__(self, dim: int, ffn_dim: int, levels: int, heads: int, points: int):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, levels, heads, points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, reference: torch.Tensor, shapes: list[tuple[int, int]]) -> torch.Tensor:
        src = self.norm1(src + self.self_attn(src + pos, reference, src, shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


def reference_points(shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """Pixel centres of every level as (x, y) in [0, 1], shared by all levels: (S, L, 2).
    (Deformable DETR rescales by per-level valid ratios; without padding masks they are 1.)"""
    points = []
    for height, width in shapes:
        y, x = torch.meshgrid(
            (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height,
            (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width,
            indexing="ij",
        )
        points.append(torch.stack((x.flatten(), y.flatten()), -1))
    return torch.cat(points)[:, None, :].expand(-1, len(shapes), -1)


def conv_gn(in_channels: int, out_channels: int, kernel: int, relu: bool) -> nn.Sequential:
    """detectron2's Conv2d(norm=GroupNorm(32)) with c2_xavier_fill init."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    nn.init.kaiming_uniform_(conv.weight, a=1)
    layers: list[nn.Module] = [conv, nn.GroupNorm(GROUP_NORM_GROUPS, out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MSDeformAttnPixelDecoder(nn.Module):
    """Backbone maps (strides 4, 8, 16, 32) -> (mask_features at stride 4, the encoded stride
    32/16/8 maps in that order for the transformer decoder)."""

    def __init__(
        self, in_channels: list[int], dim: int, mask_dim: int, layers: int, ffn_dim: int, heads: int, points: int
    ):
        super().__init__()
        levels = 3
        self.input_proj = nn.ModuleList()
        for channels in reversed(in_channels[1:]):  # stride 32 first, as Mask2Former orders them
            conv = nn.Conv2d(channels, dim, kernel_size=1)
            nn.init.xavier_uniform_(conv.weight, gain=1)
            nn.init.zeros_(conv.bias)
            self.input_proj.append(nn.Sequential(conv, nn.GroupNorm(GROUP_NORM_GROUPS, dim)))
        self.level_embed = nn.Parameter(torch.empty(levels, dim).normal_())
        self.encoder = nn.ModuleList(EncoderLayer(dim, ffn_dim, levels, heads, points) for _ in range(layers))
        self.lateral_conv = conv_gn(in_channels[0], dim, 1, relu=False)
        self.output_conv = conv_gn(dim, dim, 3, relu=True)
        self.mask_features = nn.Conv2d(dim, mask_dim, kernel_size=1)
        nn.init.kaiming_uniform_(self.mask_features.weight, a=1)
        nn.init.zeros_(self.mask_features.bias)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        srcs, pos, shapes = [], [], []
        for level, (proj, feature) in enumerate(zip(self.input_proj, reversed(features[1:]))):
            src = proj(feature)
            n, c, height, width = src.shape
            shapes.append((height, width))
            srcs.append(src.flatten(2).transpose(1, 2))
            level_pos = sine_position_encoding(height, width, c, src.device, src.dtype) + self.level_embed[level].view(1, c, 1, 1)
            pos.append(level_pos.flatten(2).transpose(1, 2))
        src = torch.cat(srcs, 1)
        pos_all = torch.cat(pos, 1)
        reference = reference_points(shapes, src.device).unsqueeze(0).expand(src.shape[0], -1, -1, -1)
        for layer in self.encoder:
            src = layer(src, pos_all, reference, shapes)
        encoded, start = [], 0
        for height, width in shapes:
            encoded.append(src[:, start : start + height * width].transpose(1, 2).reshape(src.shape[0], -1, height, width))
            start += height * width
        fine = self.lateral_conv(features[0])
        fine = fine + F.interpolate(encoded[-1], size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.mask_features(self.output_conv(fine)), encoded
