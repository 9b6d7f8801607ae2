"""The GKC network: Mask2Former with its closed-set class head replaced by a projection into the
CLIP text space, so any vocabulary can be scored by cosine similarity with frozen CLIP text
embeddings, and no CLIP image encoder runs at inference (the paper's speed argument)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from ovbench.models.clip_loading import max_over_parts
from ovbench.models.gkc.backbone import build_backbone
from ovbench.models.gkc.config import GKCConfig
from ovbench.models.gkc.pixel_decoder import MSDeformAttnPixelDecoder
from ovbench.models.gkc.transformer_decoder import MaskedAttentionDecoder
from torch import nn

SIZE_DIVISIBILITY = 32
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp of exp(logit_scale)


@functools.cache
def _pixel_statistics(device: torch.device, mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    # made once per device: a host-to-device copy per frame would synchronise the GPU
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255, torch.tensor(std, device=device).view(1, 3, 1, 1) * 255)


def normalize_pixels(
    pixels: torch.Tensor, statistics: tuple[tuple[float, ...], tuple[float, ...]] = (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)
) -> torch.Tensor:
    """RGB (B, 3, H, W) in 0..255 (uint8 or float) -> float32 normalised with `statistics`
    ((mean, std) in 0..1): those the backbone's pretrained weights expect, CLIP's by default
    (every CLIP ResNet uses OpenAI's; GKCConfig.pixel_statistics says which)."""
    mean, std = _pixel_statistics(pixels.device, tuple(statistics[0]), tuple(statistics[1]))
    return (pixels.float() - mean) / std


class GKCNetwork(nn.Module):
    """The backbone starts from pretrained weights when given: `clip_model`'s visual trunk
    (the CLIP backbone) or torchvision's ImageNet weights in `backbone_file` (the ResNet-101
    variant, default file: torch's hub cache); leave both out when a checkpoint will supply
    every weight. The CLIP model itself is not kept: its frozen text tower is not part of this
    network."""

    def __init__(self, config: GKCConfig, clip_model: nn.Module | None = None, backbone_file: Path | None = None):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        if clip_model is not None or backbone_file is not None:
            self.backbone.load_pretrained(clip_model, backbone_file)
        dim = config.hidden_dim
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            self.backbone.channels, dim, config.mask_dim, config.encoder_layers, config.encoder_ffn_dim,
            config.deform_heads, config.deform_points,
        )
        self.decoder = MaskedAttentionDecoder(
            dim, config.decoder_heads, config.decoder_ffn_dim, config.decoder_layers, config.num_queries, config.mask_dim
        )
        self.class_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, config.text_dim))
        self.kd_embed = nn.Linear(dim, config.text_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.no_object_embed = nn.Parameter(torch.randn(1, config.text_dim) * config.text_dim**-0.5)

    def classify(self, pred_embed: torch.Tensor, text: torch.Tensor, owner: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Logits (B, Q, C+1) of L2-normalised query embeddings against per-part text
        embeddings (P, D) owned by classes (`owner` (P,)): a class scores the max over its
        parts; the last column is the learned "no object" class."""
        scale = self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        classes = torch.cat([text.to(pred_embed.dtype), F.normalize(self.no_object_embed, dim=-1).to(pred_embed.dtype)])
        logits = scale * pred_embed @ classes.t()
        per_class = max_over_parts(logits[..., :-1], owner, num_classes, dim=-1)
        return torch.cat([per_class, logits[..., -1:]], dim=-1)

    def _heads(self, embedding: torch.Tensor, masks: torch.Tensor, text: torch.Tensor, owner: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
        pred_embed = F.normalize(self.class_embed(embedding), dim=-1)
        return {
            "pred_logits": self.classify(pred_embed, text, owner, num_classes),
            "pred_masks": masks,
            "pred_embed": pred_embed,
            "kd_embed": F.normalize(self.kd_embed(embedding), dim=-1),
        }

    @staticmethod
    def semantic_inference(
        pred_logits: torch.Tensor, pred_masks: torch.Tensor, image_size: tuple[int, int], output_size: tuple[int, int]
    ) -> torch.Tensor:
        """Per-pixel class scores (B, C, *output_size), exactly as Mask2Former's inference with
        sem_seg_postprocess before semantic_inference: the mask logits are upsampled to the
        padded canvas, cropped to the image area (`image_size`, the network's input), resized
        to `output_size` (the frame), and only then turned into probabilities and summed over
        queries weighted by P(class | query) (softmax, "no object" dropped). Cropping the
        stride-4 grid instead would squeeze the padding into the frame and shift every
        boundary; a sigmoid before resizing would blur them. In fp32 whatever the autocast:
        a sum of 100 bf16 products would tie classes. One frame at a time, so memory holds Q
        full-size maps once, not per frame of the batch."""
        canvas = (pred_masks.shape[-2] * 4, pred_masks.shape[-1] * 4)
        height, width = image_size
        with torch.autocast(pred_masks.device.type, enabled=False):
            probs = pred_logits.float().softmax(-1)[..., :-1]
            scores = probs.new_empty(len(probs), probs.shape[-1], *output_size)  # filled in place: no stacked copy
            for out, frame_probs, masks in zip(scores, probs, pred_masks.float()):
                masks = F.interpolate(masks[None], canvas, mode="bilinear", align_corners=False)[..., :height, :width]
                if (height, width) != tuple(output_size):
                    masks = F.interpolate(masks, output_size, mode="bilinear", align_corners=False)
                out.copy_(torch.einsum("qc,qhw->chw", frame_probs, masks[0].sigmoid()))
        return scores

    def forward(
        self, images: torch.Tensor, text: torch.Tensor, owner: torch.Tensor, num_classes: int, aux: bool = True
    ) -> dict:
        """images (B, 3, H, W) CLIP-normalised, any size; text (P, D) L2-normalised embeddings
        of name parts, `owner` (P,) their class indices in 0..num_classes-1.

        Returns pred_logits (B, Q, C+1), pred_masks (B, Q, H'/4, W'/4) logits on the padded
        canvas (H', W' the input padded to multiples of 32, as Mask2Former's: its padding
        is cropped at full resolution, see semantic_inference, and the targets are padded
        alike in training),
        pred_embed and kd_embed (B, Q, D) L2-normalised, and aux_outputs: the same dicts for
        the initial queries and every decoder layer but the last (deep supervision); with
        aux=False (inference) that list is empty and the heads run on the last layer only."""
        height, width = images.shape[-2:]
        pad_h = -height % SIZE_DIVISIBILITY
        pad_w = -width % SIZE_DIVISIBILITY
        # zero padding in normalised space (the mean colour), as Mask2Former's padded batches
        padded = F.pad(images, (0, pad_w, 0, pad_h))
        mask_features, multi_scale = self.pixel_decoder(self.backbone(padded))
        predictions = self.decoder(multi_scale, mask_features)
        outputs = [
            self._heads(embedding, masks, text, owner, num_classes)
            for embedding, masks in (predictions if aux else predictions[-1:])
        ]
        final = outputs.pop()
        final["aux_outputs"] = outputs
        return final

