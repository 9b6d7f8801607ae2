"""The FC-CLIP network at inference (Yu et al., NeurIPS 2023): one frozen CLIP whose image
tower is both the Mask2Former backbone and, pooled inside each predicted mask, a second
classifier for classes the head never saw in training.

Per frame: CLIP stage maps -> Mask2Former pixel decoder and masked-attention decoder (ovbench's,
shared with GKC) -> per query a mask and an in-vocabulary class embedding (the query embedding
plus its mask-pooled pixel features, through an MLP); the out-of-vocabulary embedding is CLIP's
own embedding of the mask. Both are scored against the text (max over a class's synonyms; a
learned void class for the head), blended geometrically with weight alpha for classes in the
COCO training vocabulary and beta for the others, the void probability kept aside, and turned
into per-pixel scores as Mask2Former's semantic inference does."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from ovbench.models.clip_loading import max_over_parts
from ovbench.models.fc_clip.clip_taps import ClipTaps, mask_pool
from ovbench.models.fc_clip.config import FCCLIPConfig
from ovbench.models.gkc.pixel_decoder import MSDeformAttnPixelDecoder
from ovbench.models.gkc.transformer_decoder import MLP, MaskedAttentionDecoder
from torch import nn

SIZE_DIVISIBILITY = 32
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp of exp(logit_scale)
MASK_STRIDE = 4
QUERY_CHUNK = 32  # queries upsampled to the canvas at once in semantic inference (memory, not numbers)


class FCCLIPNetwork(nn.Module):
    """`clip` is the open_clip model (both towers); everything else is the trained head."""

    def __init__(self, config: FCCLIPConfig, clip: nn.Module):
        super().__init__()
        self.config = config
        self.taps = ClipTaps(clip, config.is_convnext)
        dim = config.hidden_dim
        embed_dim = int(clip.text_projection.shape[-1])
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            self.taps.channels, dim, config.mask_dim, config.encoder_layers, config.encoder_ffn_dim,
            config.deform_heads, config.deform_points,
        )
        self.decoder = MaskedAttentionDecoder(
            dim, config.decoder_heads, config.decoder_ffn_dim, config.decoder_layers, config.num_queries, config.mask_dim
        )
        self.mask_pooling_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.class_embed = MLP(dim, dim, embed_dim, 3)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.void_embedding = nn.Embedding(1, embed_dim)

    @property
    def clip(self) -> nn.Module:
        return self.taps.clip

    def queries(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded CLIP-normalised images -> (in-vocabulary class embeddings (B, Q, D), mask
        logits (B, Q, H/4, W/4), CLIP mask embeddings (B, Q, D), which masks are non-empty at
        the CLIP map's size (B, Q))."""
        stages, dense = self.taps(images)
        mask_features, multi_scale = self.pixel_decoder(stages)
        embedding, masks = self.decoder(multi_scale, mask_features)[-1]
        pooled = self.mask_pooling_proj(mask_pool(mask_features, masks))
        class_embedding = self.class_embed(pooled + embedding)
        clip_masks = F.interpolate(masks, size=dense.shape[-2:], mode="bilinear", align_corners=False)
        valid = (clip_masks > 0).flatten(2).any(dim=-1)
        return class_embedding, masks, self.taps.mask_embeddings(dense, clip_masks), valid

    def forward(self, images: torch.Tensor, text: torch.Tensor, owner: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, H, W) CLIP-normalised, any size (zero-padded here to multiples of
        32, as detectron2 pads); text (P, D) L2-normalised synonym embeddings owned by
        classes (`owner` (P,)); seen (C,) bool. Returns (class log-probabilities (B, Q, C+1),
        void last; mask logits (B, Q, H'/4, W'/4) on the padded canvas)."""
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, -width % SIZE_DIVISIBILITY, 0, -height % SIZE_DIVISIBILITY))
        class_embedding, masks, clip_embedding, valid = self.queries(padded)
        classes = len(seen)
        void = F.normalize(self.void_embedding.weight, dim=-1)
        classifier = torch.cat([text, void]).float()
        # probabilities in float32 whatever the autocast: the ensemble's powers need the precision
        in_vocab = classify(class_embedding.float(), classifier, self.logit_scale, owner, classes)
        out_vocab = classify(clip_embedding.float(), classifier, self.clip.logit_scale, owner, classes)[..., :-1]
        weights = torch.where(seen, self.config.ensemble_alpha, self.config.ensemble_beta).to(in_vocab.dtype)
        if self.config.ensemble_on_valid_mask:
            weights = weights * valid[..., None].to(weights.dtype)
        return ensemble(in_vocab, out_vocab, weights), masks


def classify(embedding: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, owner: torch.Tensor, classes: int) -> torch.Tensor:
    """Scaled cosine logits (B, Q, C+1) against synonym embeddings plus a last (void) row:
    a class scores the max over its synonyms."""
    scale = logit_scale.float().exp().clamp(max=MAX_LOGIT_SCALE)
    with torch.autocast(embedding.device.type, enabled=False):
        logits = scale * F.normalize(embedding, dim=-1) @ text.t()
    return torch.cat([max_over_parts(logits[..., :-1], owner, classes, dim=-1), logits[..., -1:]], dim=-1)


def ensemble(in_vocab: torch.Tensor, out_vocab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """FC-CLIP's geometric ensemble: p_in^(1-w) * p_out^w per class (w = alpha for seen,
    beta for unseen, 0 where the CLIP branch is off), renormalised, scaled by the head's
    non-void probability, the void probability appended; returned as log(p + 1e-8) like
    the authors' code, which semantic inference softmaxes again."""
    p_in = in_vocab[..., :-1].softmax(-1)
    p_out = out_vocab.softmax(-1)
    blended = (p_in ** (1 - weights) * p_out**weights).log()
    void = in_vocab.softmax(-1)[..., -1:]
    return torch.log(torch.cat([blended.softmax(-1) * (1 - void), void], dim=-1) + 1e-8)


def semantic_inference(log_probs: torch.Tensor, masks: torch.Tensor, image_size: tuple[int, int], frame_size: tuple[int, int]) -> torch.Tensor:
    """Per-pixel class scores (B, C, *frame_size) in the order of FC-CLIP's semantic-only eval
    configs (A-847, PC-59, PC-459, PAS): mask logits upsampled to the padded canvas, sigmoid,
    summed over queries weighted by softmax(log_probs) without void, then the canvas cropped
    to the resized image (`image_size`) and resized bilinearly to the frame. Queries are
    upsampled a chunk at a time: the full (Q, H, W) stack of a 1333-pixel canvas is 1 GB."""
    probs = log_probs.float().softmax(-1)[..., :-1]
    canvas = (masks.shape[-2] * MASK_STRIDE, masks.shape[-1] * MASK_STRIDE)
    out = []
    for frame_probs, frame_masks in zip(probs, masks.float()):
        scores = frame_probs.new_zeros(frame_probs.shape[-1], *canvas)
        for start in range(0, len(frame_masks), QUERY_CHUNK):
            chunk = F.interpolate(frame_masks[None, start : start + QUERY_CHUNK], canvas, mode="bilinear", align_corners=False)
            scores += torch.einsum("qc,qhw->chw", frame_probs[start : start + QUERY_CHUNK], chunk[0].sigmoid())
        scores = scores[None, :, : image_size[0], : image_size[1]]
        out.append(F.interpolate(scores, size=frame_size, mode="bilinear", align_corners=False)[0])
    return torch.stack(out)
