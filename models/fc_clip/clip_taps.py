"""What FC-CLIP reads from its frozen CLIP image tower: the four stage maps (strides 4-32) that
feed the Mask2Former head, the dense stride-32 map, and one CLIP embedding per predicted mask
(the out-of-vocabulary branch). ConvNeXt CLIPs (open_clip's timm trunk) pool the dense map
inside each mask and run it through the trunk's head and CLIP's projection; ResNet CLIPs run
CLIP's attention pool with each mask as the attention mask, its query the frame's mean
feature, as FC-CLIP does."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mask_pool(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Average of features (B, C, H, W) over each binarised mask (B, Q, H, W) (logit > 0) ->
    (B, Q, C); an empty mask pools to zeros."""
    binary = (masks > 0).to(features.dtype)
    binary = binary / (binary.sum(dim=(-1, -2), keepdim=True) + 1e-8)
    return torch.einsum("bchw,bqhw->bqc", features, binary)


class ClipTaps(nn.Module):
    """Frozen feature taps on an open_clip model's image tower (kept as `clip`, with its text
    tower, so the weights keep open_clip's names)."""

    def __init__(self, clip: nn.Module, convnext: bool):
        super().__init__()
        self.clip = clip
        self.convnext = convnext
        visual = clip.visual
        if convnext:
            self.channels = [int(info["num_chs"]) for info in visual.trunk.feature_info][-4:]
        else:
            self.channels = [getattr(visual, f"layer{i}")[-1].conv3.out_channels for i in range(1, 5)]

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """CLIP-normalised images -> (stride 4/8/16/32 maps, the dense map the CLIP branch pools)."""
        visual = self.clip.visual
        stages = []
        if self.convnext:
            x = visual.trunk.stem(images)
            for stage in visual.trunk.stages:
                x = stage(x)
                stages.append(x)
            return stages, visual.trunk.norm_pre(x)
        x = visual.act1(visual.bn1(visual.conv1(images)))
        x = visual.act2(visual.bn2(visual.conv2(x)))
        x = visual.avgpool(visual.act3(visual.bn3(visual.conv3(x))))
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = layer(x)
            stages.append(x)
        return stages, x

    def mask_embeddings(self, dense: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """CLIP embeddings (B, Q, D), unnormalised, of each mask (B, Q, h, w) at the dense map's size."""
        if self.convnext:
            pooled = mask_pool(dense, masks)
            batch, queries, channels = pooled.shape
            x = self.clip.visual.trunk.head(pooled.reshape(batch * queries, channels, 1, 1))
            return self.clip.visual.head(x).view(batch, queries, -1)
        return self._masked_attention_pool(dense, masks)

    def _masked_attention_pool(self, dense: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """CLIP's attention pool with one query per mask (the frame's mean feature plus the
        class position embedding) attending only inside the mask; its spatial position
        embedding resized bilinearly to the map. An empty mask attends everywhere (FC-CLIP
        drops the CLIP branch for it; see network.ensemble)."""
        pool = self.clip.visual.attnpool
        batch, channels, height, width = dense.shape
        positions = pool.positional_embedding.to(dense.dtype)
        side = int((positions.shape[0] - 1) ** 0.5)
        spatial = positions[1:].t().reshape(1, channels, side, side)
        spatial = F.interpolate(spatial, size=(height, width), mode="bilinear", align_corners=False)
        tokens = dense.flatten(2).transpose(1, 2)  # (B, HW, C)
        keys = tokens + spatial.flatten(2).transpose(1, 2)
        query = (tokens.mean(dim=1, keepdim=True) + positions[:1]).expand(-1, masks.shape[1], -1)
        allowed = (masks > 0).flatten(2)
        allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
        heads = pool.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, x.shape[1], heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(pool.q_proj(query)), split(pool.k_proj(keys)), split(pool.v_proj(keys)), attn_mask=allowed[:, None]
        )
        return pool.c_proj(out.transpose(1, 2).reshape(batch, masks.shape[1], channels))
