"""GKC's training losses: Mask2Former's set prediction losses (class cross-entropy with a
down-weighted "no object" class, point-sampled mask BCE and dice after Hungarian matching),
plus the two terms that make GKC generalise to unseen names: a second cross-entropy against
a vocabulary rebuilt with drawn synonyms (text diversification) and text-guided knowledge
distillation (TGKD) from the frozen CLIP image encoder, both applied on every decoder layer.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
import torch.nn.functional as F
from ovbench.models.gkc.matcher import match, point_sample
from ovbench.models.masked_crops import crop_regions, region_boxes
from torch import nn

IGNORE_INDEX = -100  # F.cross_entropy's: a dropped region takes no part in the loss
GREY = 128  # TGKD paints pixels outside the segment this grey before CLIP sees the crop
Classify = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclasses.dataclass
class LossConfig:
    """Weights of the terms (0 switches a term off and skips its computation) and the
    sampling settings; defaults are the authors' run script and Mask2Former's."""

    ce_weight: float = 2.0
    syn_weight: float = 2.0
    kd_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    region_dropout: float = 0.5
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_ratio: float = 0.75


@dataclasses.dataclass
class KDRegions:
    """The distilled segments of one image: target indices (n,) on the CPU, teacher embeddings
    R (n, D) and the text embeddings T (n, D) of their (synonym-replaced) class names."""

    targets: torch.Tensor
    teacher: torch.Tensor
    text: torch.Tensor


@dataclasses.dataclass
class StepTargets:
    """What every decoder layer's losses share within one step: the ground truth (per image
    "labels" (N,) and "masks" (N, H, W)), the mask normaliser (segments in the whole batch,
    averaged over ranks), each image's synonym vocabulary (text, owner) and its KD regions."""

    targets: list[dict[str, torch.Tensor]]
    num_masks: float
    syn_vocab: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    kd: list[KDRegions] | None = None


def uncertain_point_coords(
    mask_logits: torch.Tensor, num_points: int, oversample_ratio: float, importance_ratio: float
) -> torch.Tensor:
    """Mask2Former's importance sampling: of `num_points` per mask, `importance_ratio` are the
    most uncertain (|logit| smallest) among `oversample_ratio` x as many random points, the
    rest uniform. Spends the points where the mask is undecided, i.e. on its boundary."""
    count = mask_logits.shape[0]
    candidates = torch.rand(count, int(num_points * oversample_ratio), 2, device=mask_logits.device)
    uncertainty = -point_sample(mask_logits.float(), candidates).abs()
    num_uncertain = int(importance_ratio * num_points)
    chosen = uncertainty.topk(num_uncertain, dim=1).indices
    uncertain = torch.gather(candidates, 1, chosen[..., None].expand(-1, -1, 2))
    uniform = torch.rand(count, num_points - num_uncertain, 2, device=mask_logits.device)
    return torch.cat([uncertain, uniform], dim=1)


def sigmoid_ce_points(logits: torch.Tensor, labels: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Mean BCE over the points of each mask, summed over masks, divided by `num_masks`."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1).sum() / num_masks


def dice_points(logits: torch.Tensor, labels: torch.Tensor, num_masks: float) -> torch.Tensor:
    """1 - (2 |p t| + 1) / (|p| + |t| + 1) per mask on its points, summed, divided by `num_masks`."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * labels).sum(-1)
    denominator = probs.sum(-1) + labels.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def mask_losses(
    pred_masks: torch.Tensor, indices: list[tuple[torch.Tensor, torch.Tensor]], step: StepTargets, cfg: LossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE, dice) of the matched predicted masks against their targets on importance-sampled points."""
    src = torch.cat([pred_masks[b, q.to(pred_masks.device)] for b, (q, _) in enumerate(indices)])
    if src.shape[0] == 0:
        zero = pred_masks.sum() * 0  # keeps every parameter in the graph (DDP) when no segment exists
        return zero, zero
    tgt = torch.cat([t["masks"][i.to(t["masks"].device)] for t, (_, i) in zip(step.targets, indices)])
    src = src.float()
    with torch.no_grad():
        coords = uncertain_point_coords(src, cfg.num_points, cfg.oversample_ratio, cfg.importance_ratio)
        labels = point_sample(tgt.float(), coords)
    logits = point_sample(src, coords)
    return sigmoid_ce_points(logits, labels, step.num_masks), dice_points(logits, labels, step.num_masks)


def region_dropout(counts: list[int], ratio: float) -> list[torch.Tensor]:
    """Drop flags for the matched regions of each image: exactly floor(ratio x total) of the
    batch's matched regions, chosen uniformly, are removed from the classification losses, so
    the classifier cannot lean on every region of an image at once."""
    total = sum(counts)
    dropped = torch.zeros(total, dtype=torch.bool)
    dropped[torch.randperm(total)[: int(total * ratio)]] = True
    return list(dropped.split(counts))


def classification_loss(
    logits: torch.Tensor,
    indices: list[tuple[torch.Tensor, torch.Tensor]],
    labels: list[torch.Tensor],
    dropped: list[torch.Tensor],
    no_object_weight: float,
) -> torch.Tensor:
    """Cross-entropy over C+1 classes for every query: matched queries target their segment's
    class (unless dropped), the others "no object" (weight `no_object_weight`)."""
    batch, queries, classes = logits.shape
    target = torch.full((batch, queries), classes - 1, dtype=torch.long, device=logits.device)
    for b, ((q, i), drop) in enumerate(zip(indices, dropped)):
        matched = labels[b][i.to(labels[b].device)].to(logits.device).clone()
        matched[drop.to(logits.device)] = IGNORE_INDEX
        target[b, q.to(logits.device)] = matched
    weight = torch.ones(classes, device=logits.device)
    weight[-1] = no_object_weight
    return F.cross_entropy(logits.float().transpose(1, 2), target, weight, ignore_index=IGNORE_INDEX)


def tgkd_loss(student: torch.Tensor, teacher: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """TGKD for one image with n regions: mean over all pairs (i, j) of
    (s <T_i, T_j> - <V_i, R_j>)^2 plus mean over i of ||V_i - R_i||^2.

    The pairwise term asks the student's similarity to other regions' CLIP features to follow
    the similarity of their class texts (structure CLIP's text space has), the second pulls
    each region onto its own CLIP feature."""
    student, teacher, text = student.float(), teacher.float(), text.float()
    pairwise = (scale * text @ text.T - student @ teacher.T).pow(2).mean()
    own = (student - teacher).pow(2).sum(-1).mean()
    return pairwise + own


def masked_crops(
    image: torch.Tensor, masks: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """TGKD's teacher input (ovbench.models.masked_crops, GKC's rule): per mask, the image
    cropped to the mask's bounding box, resized to size x size, pixels outside the mask painted
    grey 128, CLIP-normalised.

    image uint8 (3, H, W), masks bool (n, H, W) non-empty and disjoint (segments of one image)
    -> float (n, 3, size, size)."""
    count = len(masks)
    regions = torch.where(masks.any(0), masks.int().argmax(0), -1)[None]
    boxes = region_boxes(regions, count, tuple(masks.shape[-2:]))
    zeros = torch.zeros(count, dtype=torch.long, device=masks.device)
    ids = torch.arange(count, device=masks.device)
    crops = crop_regions(image[None], regions, ids, zeros, boxes, (size, size), torch.full((3,), float(GREY))) / 255.0
    return (crops - mean.view(1, 3, 1, 1).to(crops)) / std.view(1, 3, 1, 1).to(crops)


def select_regions(counts: list[int], limit: int) -> list[torch.Tensor]:
    """Which segments of each image are distilled: all of them, or `limit` drawn uniformly from
    the whole batch when it holds more (the teacher's cost per step stays bounded)."""
    total = sum(counts)
    chosen = torch.zeros(total, dtype=torch.bool)
    chosen[torch.randperm(total)[:limit]] = True
    return [flags.nonzero().flatten() for flags in chosen.split(counts)]


def pad_targets_to_canvas(targets: list[dict[str, torch.Tensor]], canvas: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
    """Target masks zero-padded at the bottom and right to the padded canvas the predicted
    masks cover (Mask2Former's prepare_targets), so that the normalised point coordinates of
    the matcher and the mask losses fall on the same pixel in both."""
    padded = []
    for target in targets:
        height, width = target["masks"].shape[-2:]
        if (height, width) == tuple(canvas):  # crops are multiples of 32 by default: no copy
            padded.append(target)
            continue
        masks = F.pad(target["masks"], (0, canvas[1] - width, 0, canvas[0] - height))
        padded.append({**target, "masks": masks})
    return padded


class GKCCriterion(nn.Module):
    """All losses on the final prediction and on every intermediate decoder layer, each layer
    with its own Hungarian matching (and its own region dropout, shared by the plain and the
    synonym cross-entropy). Holds TGKD's learned text-similarity scale s (init 1)."""

    def __init__(self, cfg: LossConfig):
        super().__init__()
        self.cfg = cfg
        self.kd_scale = nn.Parameter(torch.ones(()))

    def forward(self, outputs: dict, step: StepTargets, classify: Classify, num_classes: int) -> dict[str, torch.Tensor]:
        """Weighted terms summed over layers ({"ce", "syn", "mask", "dice", "kd"} as switched on)
        and their sum under "loss"."""
        layers = [outputs, *outputs["aux_outputs"]]
        canvas = (outputs["pred_masks"].shape[-2] * 4, outputs["pred_masks"].shape[-1] * 4)
        step = dataclasses.replace(step, targets=pad_targets_to_canvas(step.targets, canvas))
        syn_logits = self._synonym_logits(layers, step, classify, num_classes) if self.cfg.syn_weight else [None] * len(layers)
        totals: dict[str, torch.Tensor] = {}
        for layer, syn in zip(layers, syn_logits):
            for name, value in self._layer(layer, syn, step).items():
                totals[name] = totals.get(name, 0) + value
        totals["loss"] = sum(totals.values())
        return totals

    @staticmethod
    def _synonym_logits(layers: list[dict], step: StepTargets, classify: Classify, num_classes: int) -> list[torch.Tensor]:
        """Per layer (B, Q, C+1) logits against each image's synonym vocabulary: one classifier
        call per image for all layers at once."""
        per_image = [
            classify(torch.stack([layer["pred_embed"][b] for layer in layers]), text, owner, num_classes)
            for b, (text, owner) in enumerate(step.syn_vocab)
        ]
        return list(torch.stack(per_image, dim=1).unbind(0))

    def _layer(self, layer: dict, syn_logits: torch.Tensor | None, step: StepTargets) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        indices = match(layer["pred_logits"], layer["pred_masks"], step.targets, cfg.num_points)
        labels = [t["labels"] for t in step.targets]
        bce, dice = mask_losses(layer["pred_masks"], indices, step, cfg)
        terms = {"mask": cfg.mask_weight * bce, "dice": cfg.dice_weight * dice}
        dropped = region_dropout([len(q) for q, _ in indices], cfg.region_dropout)
        if cfg.ce_weight:
            ce = classification_loss(layer["pred_logits"], indices, labels, dropped, cfg.no_object_weight)
            terms["ce"] = cfg.ce_weight * ce
        if syn_logits is not None:
            terms["syn"] = cfg.syn_weight * classification_loss(syn_logits, indices, labels, dropped, cfg.no_object_weight)
        if cfg.kd_weight:
            terms["kd"] = cfg.kd_weight * self._distill(layer["kd_embed"], indices, step)
        return terms

    def _distill(self, kd_embed: torch.Tensor, indices: list[tuple[torch.Tensor, torch.Tensor]], step: StepTargets) -> torch.Tensor:
        per_image = []
        for b, ((q, i), regions) in enumerate(zip(indices, step.kd)):
            query_of = torch.full((len(step.targets[b]["labels"]),), -1, dtype=torch.long)
            query_of[i] = q
            queries = query_of[regions.targets]
            matched = queries >= 0  # a segment beyond the number of queries has no student
            if matched.any():
                student = kd_embed[b, queries[matched].to(kd_embed.device)]
                keep = matched.to(regions.teacher.device)
                per_image.append(tgkd_loss(student, regions.teacher[keep], regions.text[keep], self.kd_scale))
        if not per_image:
            return kd_embed.sum() * 0 + self.kd_scale * 0
        return torch.stack(per_image).mean()
