"""CAT-Seg's cost aggregation (Cho et al., CVPR 2024, section 3): the cosine cost volume between
CLIP's dense image embeddings and each class's text embedding is embedded per class, refined
by spatial aggregation (two Swin blocks whose queries and keys also see the image's appearance
guidance) and class aggregation (linear attention across classes at every pixel, its queries
and keys also seeing text guidance), then upsampled to 4x the token grid by a small decoder
that concatenates higher-resolution CLIP features.

Module and parameter names are those of the authors' checkpoint (`sem_seg_head.predictor.
transformer.*`), so their released files load by a prefix rename. Layout inside: the cost
embedding is kept channel-last, (B, T, H, W, C) for B images and T classes.

Two computations are arranged differently from the authors' code with the same result:
class aggregation always attends over `pad_len` classes (learned padding tokens fill up a
smaller vocabulary); the padding tokens are the same at every pixel, so their keys and
values are computed once and added to each pixel's sums, and their outputs (discarded by the
authors) are never computed. The cost of class aggregation is thus proportional to the real
vocabulary, not to 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHIFT_MASK_VALUE = -100.0  # the authors' additive mask between tokens of different shifted regions
UNSELECTED_LOGIT = -100.0  # classes left out by the top-`pad_len` selection
LINEAR_ATTENTION_EPS = 1e-6


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, windows, window*window, C), windows in row-major order."""
    n, h, w, c = x.shape
    x = x.view(n, h // window, window, w // window, window, c).transpose(2, 3)
    return x.reshape(n, (h // window) * (w // window), window * window, c)


def window_merge(windows: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of window_partition: (N, windows, window*window, C) -> (N, H, W, C)."""
    n, _, area, c = windows.shape
    window = int(area**0.5)
    x = windows.view(n, h // window, w // window, window, window, c).transpose(2, 3)
    return x.reshape(n, h, w, c)


def shifted_window_mask(size: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """(windows, window^2, window^2) additive mask of the shifted block: after the cyclic shift a
    window may join tokens from up to four regions of the map, which must not attend to each other."""

    def bands(length: int) -> torch.Tensor:
        index = torch.arange(length)
        return (index >= length - window).long() + (index >= length - shift).long()

    region = bands(size[0])[:, None] * 3 + bands(size[1])[None, :]
    region = window_partition(region[None, :, :, None], window)[0, :, :, 0]
    different = region[:, None, :] != region[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, SHIFT_MASK_VALUE)


class Mlp(nn.Module):
    """Linear, GELU, linear (the Swin blocks' feed-forward)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class GuidedWindowAttention(nn.Module):
    """Window attention whose queries and keys read [cost, guidance] and whose values read the cost."""

    def __init__(self, dim: int, guidance_dim: int, heads: int):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (N, windows, tokens, dim + guidance_dim); mask: (windows, tokens, tokens) or None."""
        n, windows, tokens, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(n, windows, tokens, self.heads, -1).transpose(2, 3)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x[..., : self.dim]))
        mask = None if mask is None else mask[:, None].to(q.dtype)  # under autocast q is half precision
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(2, 3).reshape(n, windows, tokens, self.dim))


class SwinBlock(nn.Module):
    """A Swin block (Liu et al. 2021) without relative position bias, guided as above."""

    def __init__(self, dim: int, guidance_dim: int, heads: int, size: tuple[int, int], window: int, shift: int):
        super().__init__()
        self.size, self.window, self.shift = size, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GuidedWindowAttention(dim, guidance_dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        mask = shifted_window_mask(size, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """x: (N, H*W, C) cost embeddings; guidance: (N, H*W, G) normalised appearance guidance."""
        (h, w), n = self.size, x.shape[0]
        y = torch.cat([self.norm1(x), guidance], dim=-1).view(n, h, w, -1)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_merge(self.attn(window_partition(y, self.window), self.attn_mask), h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(n, h * w, -1)
        return x + self.mlp(self.norm2(x))


class SpatialAggregation(nn.Module):
    """Two Swin blocks (plain, then shifted by half a window) over each class's cost map."""

    def __init__(self, dim: int, guidance_dim: int, heads: int, size: tuple[int, int], window: int):
        super().__init__()
        self.block_1 = SwinBlock(dim, guidance_dim, heads, size, window, 0)
        self.block_2 = SwinBlock(dim, guidance_dim, heads, size, window, window // 2)
        self.guidance_norm = nn.LayerNorm(guidance_dim)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H, W, C); guidance: (B, G, H, W), shared by the image's T classes."""
        b, t, h, w, c = x.shape
        guidance = self.guidance_norm(guidance.flatten(2).transpose(1, 2)).repeat_interleave(t, dim=0)
        y = self.block_2(self.block_1(x.reshape(b * t, h * w, c), guidance), guidance)
        return y.view(b, t, h, w, c)


class GuidedLinearAttention(nn.Module):
    """Linear attention (Katharopoulos et al. 2020, feature map elu + 1) across classes."""

    def __init__(self, dim: int, guidance_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)

    def features(self, x: torch.Tensor, guidance: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Feature-mapped queries and keys and the values, (..., T, heads, D), of tokens x with
        their guidance (broadcast over x's leading dimensions)."""
        both = torch.cat([x, guidance.expand(*x.shape[:-1], guidance.shape[-1])], dim=-1)

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.unflatten(-1, (self.heads, -1))

        return F.elu(split(self.q(both))) + 1, F.elu(split(self.k(both))) + 1, split(self.v(x))

    def forward(self, x: torch.Tensor, guidance: torch.Tensor, padding: tuple[torch.Tensor, torch.Tensor] | None, length: int):
        """x: (P, T, C) tokens of P pixels; guidance: (T, G); padding: the keys' and values'
        sums over the padding tokens (or None); length: T plus the number of padding tokens."""
        q, k, v = self.features(x, guidance)
        kv = torch.einsum("pshd,pshv->phdv", k, v / length)
        k_sum = k.sum(dim=1)
        if padding is not None:
            kv, k_sum = kv + padding[0], k_sum + padding[1]
        z = 1 / (torch.einsum("plhd,phd->plh", q, k_sum) + LINEAR_ATTENTION_EPS)
        out = torch.einsum("plhd,phdv,plh->plhv", q, kv, z) * length
        return out.flatten(-2)

    def padding_sums(self, tokens: torch.Tensor, guidance: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys' and values' sums over padding tokens (M, C) with their guidance (M, G)."""
        _, k, v = self.features(tokens, guidance)
        return torch.einsum("shd,shv->hdv", k, v / length), k.sum(dim=0)


class ClassAggregation(nn.Module):
    """Attention across the classes at each pixel, padded to `pad_len` classes with learned tokens."""

    def __init__(self, dim: int, guidance_dim: int, heads: int, pad_len: int):
        super().__init__()
        self.attention = GuidedLinearAttention(dim, guidance_dim, heads)
        self.MLP = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.pad_len = pad_len
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, dim))
        self.padding_guidance = nn.Parameter(torch.zeros(1, 1, guidance_dim))

    def forward(self, x: torch.Tensor, text_guidance: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H, W, C); text_guidance: (B, T, G). Returns x plus the refined tokens, as
        the authors' layer does (its tokens already carry their own residual)."""
        _, t, h, w, c = x.shape
        length = max(t, self.pad_len)
        padding = None
        if t < self.pad_len:
            padded = self.norm1(self.padding_tokens[0]).expand(self.pad_len - t, c)
            padding = self.attention.padding_sums(padded, self.padding_guidance[0], length)
        refined = []
        for image, guidance in zip(x, text_guidance):
            tokens = image.permute(1, 2, 0, 3).reshape(h * w, t, c)
            tokens = tokens + self.attention(self.norm1(tokens), guidance, padding, length)
            tokens = tokens + self.MLP(self.norm2(tokens))
            refined.append(tokens.view(h, w, t, c).permute(2, 0, 1, 3))
        return x + torch.stack(refined)


class AggregatorLayer(nn.Module):
    def __init__(self, dim: int, text_guidance_dim: int, appearance_guidance_dim: int, heads: int, size, window: int, pad_len: int):
        super().__init__()
        self.swin_block = SpatialAggregation(dim, appearance_guidance_dim, heads, size, window)
        self.attention = ClassAggregation(dim, text_guidance_dim, heads, pad_len)

    def forward(self, x: torch.Tensor, appearance: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.attention(self.swin_block(x, appearance), text)


class DoubleConv(nn.Module):
    """(3x3 convolution, GroupNorm with 16 channels a group, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        groups = out_channels // 16
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class UpBlock(nn.Module):
    """2x transposed convolution, concatenated with projected CLIP guidance, then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, guidance_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """x: (B*T, C, H, W), T consecutive classes per image; guidance: (B, G, 2H, 2W)."""
        repeats = x.shape[0] // guidance.shape[0]
        return self.conv(torch.cat([self.up(x), guidance.repeat_interleave(repeats, dim=0)], dim=1))


class Aggregator(nn.Module):
    """Cost volume -> per-class logits at 4x the token grid (the authors' `Aggregator`)."""

    def __init__(self, config) -> None:
        super().__init__()
        a, embed = config.aggregator, config.clip["embed_dim"]
        grid = config.grid
        self.pad_len = a["pad_len"]
        self.layers = nn.ModuleList(
            AggregatorLayer(
                a["hidden_dim"], a["text_guidance_proj_dim"], a["appearance_guidance_proj_dim"],
                a["num_heads"], (grid, grid), a["window_size"], a["pad_len"],
            )
            for _ in range(a["num_layers"])
        )
        self.conv1 = nn.Conv2d(1, a["hidden_dim"], kernel_size=7, padding=3)  # one prompt template: one cost channel
        self.guidance_projection = nn.Sequential(nn.Conv2d(embed, a["appearance_guidance_proj_dim"], 3, padding=1), nn.ReLU())
        self.text_guidance_projection = nn.Sequential(nn.Linear(embed, a["text_guidance_proj_dim"]), nn.ReLU())
        self.decoder_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, p, 3, padding=1), nn.ReLU())
            for d, p in zip(a["decoder_guidance_dims"], a["decoder_guidance_proj_dims"])
        )
        (dim1, dim2), (guide1, guide2) = a["decoder_dims"], a["decoder_guidance_proj_dims"]
        self.decoder1 = UpBlock(a["hidden_dim"], dim1, guide1)
        self.decoder2 = UpBlock(dim1, dim2, guide2)
        self.head = nn.Conv2d(dim2, 1, 3, padding=1)

    def forward(self, image: torch.Tensor, text: torch.Tensor, guidance: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """image: (B, D, H, W) dense CLIP embeddings; text: (T, D) class embeddings;
        guidance: (image embeddings, upsampled tap 1, upsampled tap 2). Returns (B, T, 4H, 4W)."""
        image = F.normalize(image, dim=1)
        text = F.normalize(text, dim=-1).expand(image.shape[0], -1, -1)
        cost = torch.einsum("bchw,btc->bthw", image, text)
        classes = text.shape[1]
        selected = None
        if classes > self.pad_len:  # per image, the pad_len classes with the highest cosine anywhere
            selected = cost.flatten(2).amax(dim=-1).topk(self.pad_len, dim=-1).indices
            text = torch.gather(text, 1, selected[..., None].expand(-1, -1, text.shape[-1]))
            cost = torch.gather(cost, 1, selected[..., None, None].expand(-1, -1, *cost.shape[-2:]))
        b, t, h, w = cost.shape
        x = self.conv1(cost.reshape(b * t, 1, h, w)).view(b, t, -1, h, w).permute(0, 1, 3, 4, 2)
        appearance = self.guidance_projection(guidance[0])
        text_guidance = self.text_guidance_projection(text)
        for layer in self.layers:
            x = layer(x, appearance, text_guidance)
        x = x.permute(0, 1, 4, 2, 3).reshape(b * t, -1, h, w)
        for decoder, project, features in zip((self.decoder1, self.decoder2), self.decoder_guidance_projection, guidance[1:]):
            x = decoder(x, project(features))
        logits = self.head(x).view(b, t, *x.shape[-2:])
        if selected is None:
            return logits
        out = logits.new_full((b, classes, *logits.shape[-2:]), UNSELECTED_LOGIT)
        return out.scatter(1, selected[..., None, None].expand_as(logits), logits)
