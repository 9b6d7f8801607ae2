"""The SAN network at inference: QuickGELU CLIP ViT (its first blocks on a downscaled copy of
the image; its remaining blocks as the recognition head), the side adapter, and the
attention-bias recognition of each mask with SOS tokens.

Recognition: the side adapter's attention bias (B, heads, Q, h, w) is max-pooled to CLIP's grid
and placed in a (Q+1+L)^2 additive mask over [SOS_1..SOS_Q, CLS, patches]: an SOS row sees
itself (0), no other SOS and not CLS (-100), and the patches through its bias; CLS and patch rows
see CLS and the patches (0) but no SOS (-100). Each SOS token starts as a copy of the CLS token
of the split layer; its output through ln_post and the projection is the mask's embedding."""

from __future__ import annotations

import open_clip
import torch
import torch.nn.functional as F
from ovbench.models.san.config import SANConfig
from ovbench.models.san.side_adapter import SideAdapter, resize_grid_embedding
from torch import nn

MASKED = -100.0  # the authors' "cannot attend" value (not -inf: rows stay finite)


def recognition_mask(bias: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Side bias (B, n, Q, h, w), n = 1 or the CLIP heads -> the additive attention mask
    (B*heads, Q+1+L, Q+1+L) over CLIP's L = grid cells (heads from the caller's repeat)."""
    batch, heads, queries = bias.shape[:3]
    pooled = F.adaptive_max_pool2d(bias.flatten(1, 2), grid).reshape(batch * heads, queries, -1)
    cells = pooled.shape[-1]
    size = queries + 1 + cells
    mask = bias.new_zeros(size, size)
    mask[:, :queries] = MASKED
    mask[torch.arange(queries), torch.arange(queries)] = 0
    mask[:queries, queries] = MASKED
    mask = mask.expand(batch * heads, size, size).clone()
    mask[:, :queries, -cells:] = pooled
    return mask


class SANNetwork(nn.Module):
    """`clip` is an open_clip CLIP (both towers), `side_adapter` the side network, `bg_embed`
    the learned background class embedding."""

    def __init__(self, config: SANConfig, clip: nn.Module):
        super().__init__()
        self.config = config
        self.clip = clip
        width = clip.visual.conv1.out_channels
        self.side_adapter = SideAdapter(config, width)
        self.bg_embed = nn.Parameter(torch.randn(1, clip.text_projection.shape[1]) * clip.text_projection.shape[1] ** -0.5)

    def clip_layers(self, image: torch.Tensor) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """CLIP tokens (B, 1+L, C) after ln_pre (layer 0) and after each of the first
        `feature_last_layer` blocks, with the position embedding resized to the image's grid."""
        visual = self.clip.visual
        patches = visual.conv1(image)
        grid = tuple(patches.shape[-2:])
        patches = patches.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        position = visual.positional_embedding.to(patches.dtype)[None]
        position = torch.cat([position[:, :1], resize_grid_embedding(position[:, 1:], visual.grid_size, grid)], dim=1)
        x = visual.ln_pre(torch.cat([cls, patches], dim=1) + position)
        layers = [x]
        for block in visual.transformer.resblocks[: self.config.feature_last_layer]:
            x = block(x)
            layers.append(x)
        return layers, grid

    def recognize(self, tokens: torch.Tensor, bias: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Split-layer tokens (B, 1+L, C) and side bias -> L2-normalised mask embeddings (B, Q, D)."""
        visual = self.clip.visual
        blocks = visual.transformer.resblocks[self.config.feature_last_layer :]
        heads = blocks[0].attn.num_heads
        if bias.shape[1] == 1:
            bias = bias.expand(-1, heads, -1, -1, -1)
        queries = bias.shape[2]
        mask = recognition_mask(bias, grid)
        x = torch.cat([tokens[:, :1].expand(-1, queries, -1), tokens], dim=1)
        for block in blocks:
            x = block(x, attn_mask=mask)
        return F.normalize(visual.ln_post(x[:, :queries]) @ visual.proj, dim=-1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised, padded image (B, 3, H, W) -> mask logits (B, Q, H/16, W/16) and mask
        embeddings (B, Q, D). CLIP sees the image bilinearly scaled by `clip_resolution`
        (by scale factor, as the authors call interpolate)."""
        clip_input = F.interpolate(image, scale_factor=self.config.clip_resolution, mode="bilinear")
        layers, grid = self.clip_layers(clip_input)
        clip_maps = [x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, *grid) for x in layers]
        masks, bias = self.side_adapter(image, clip_maps)
        return masks, self.recognize(layers[-1], bias, grid)

    def classifier(self, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Class text embeddings (C, D) -> the classifier (C+1, D): the background embedding
        appended, rows L2-normalised, times CLIP's logit scale."""
        rows = torch.cat([class_embeddings, self.bg_embed.to(class_embeddings)], dim=0)
        return self.clip.logit_scale.exp() * F.normalize(rows, dim=-1)


def semantic_scores(masks: torch.Tensor, classes: torch.Tensor, padded: tuple[int, int], resized: tuple[int, int],
                    output: tuple[int, int]) -> torch.Tensor:
    """SAN's semantic inference at the output size: mask logits upsampled to the padded input,
    cropped to the resized frame and resized to `output` before the sigmoid; class logits
    (B, Q, C+1) softmaxed with the background dropped; summed over queries -> (B, C, *output)."""
    masks = F.interpolate(masks, size=padded, mode="bilinear", align_corners=False)
    masks = F.interpolate(masks[..., : resized[0], : resized[1]], size=output, mode="bilinear", align_corners=False)
    probabilities = classes.softmax(dim=-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probabilities, masks.sigmoid())


def meta_network(config: SANConfig) -> SANNetwork:
    """The network with shapes and no data: its keys, shapes and parameter count, built in
    milliseconds even for ViT-L."""
    with torch.device("meta"):
        return SANNetwork(config, open_clip.create_model(config.clip_arch, device="meta", force_quick_gelu=True))
