"""Hungarian matching of queries to ground-truth segments, as in Mask2Former.

Costs are computed on the same K random points for every prediction and target instead of on
full masks: matching then costs O(Q x N x K) whatever the image size, and the point set is an
unbiased estimate of the full-mask cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

CLASS_COST, MASK_COST, DICE_COST = 2.0, 5.0, 5.0


def point_sample(masks: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of (N, H, W) masks at (N, K, 2) points in [0, 1]^2 (x, y) -> (N, K).

    Normalised coordinates make masks of any resolution comparable (predictions at H/4,
    targets at H)."""
    grid = 2.0 * coords.unsqueeze(1) - 1.0
    return F.grid_sample(masks.unsqueeze(1), grid.to(masks.dtype), align_corners=False).squeeze(1).squeeze(1)


def pairwise_sigmoid_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over points between every prediction (Q, K) and target (N, K) -> (Q, N)."""
    positive = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    negative = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (positive @ targets.T + negative @ (1 - targets).T) / logits.shape[1]


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss 1 - (2|p t| + 1) / (|p| + |t| + 1) between every prediction and target -> (Q, N)."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


@torch.no_grad()
def match_image(
    logits: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor, target_masks: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal one-to-one assignment for one image.

    logits (Q, C+1), masks (Q, h, w) mask logits, labels (N,), target_masks (N, H, W) in {0, 1}.
    Returns (query indices, target indices), both (min(Q, N),) int64 on the CPU.
    """
    if labels.numel() == 0:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    class_cost = -logits.float().softmax(-1)[:, labels]
    coords = torch.rand(1, num_points, 2, device=masks.device)
    pred_points = point_sample(masks.float(), coords.expand(masks.shape[0], -1, -1))
    target_points = point_sample(target_masks.float(), coords.expand(target_masks.shape[0], -1, -1))
    cost = (
        CLASS_COST * class_cost
        + MASK_COST * pairwise_sigmoid_ce(pred_points, target_points)
        + DICE_COST * pairwise_dice(pred_points, target_points)
    )
    queries, targets = linear_sum_assignment(cost.cpu().numpy())
    return torch.as_tensor(queries, dtype=torch.long), torch.as_tensor(targets, dtype=torch.long)


def match(
    pred_logits: torch.Tensor, pred_masks: torch.Tensor, targets: list[dict[str, torch.Tensor]], num_points: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-image assignments for a batch; targets[b] has "labels" (N,) and "masks" (N, H, W)."""
    return [
        match_image(pred_logits[b], pred_masks[b], t["labels"], t["masks"], num_points) for b, t in enumerate(targets)
    ]
