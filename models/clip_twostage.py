"""Two-stage open-vocabulary segmentation: class-agnostic region proposals, then the CLIP image
encoder on every masked crop. This is the ZegFormer / OVSeg / SimBaseline design that GKC
argues against: one CLIP image forward per region, which is what makes it slow, so the
benchmark can show the cost next to the accuracy.

Proposals need no weights. Superpixels: SLIC's objective (k-means on colour and position, the
position measured in grid spacings and weighted by `compactness`, centres seeded on a regular
grid of about `proposals` cells; no local search window, so a superpixel may come in pieces)
on the frame shrunk to short side `proposal_size`; then adjacent superpixels whose mean colours
differ by less than `merge` are joined (connected components), so a flat region is one
proposal rather than a tile of superpixels. Proposals partition the frame; there are about
`proposals` of them or fewer.

Each crop is the square around the proposal's box, grown by `context` of its side on each side
(aspect kept; beyond the frame counts as outside the mask), pixels outside the mask painted
`background` (grey 128 as in GKC's teacher crops, or CLIP's mean colour), resized to the CLIP
input size and CLIP-normalised. Class probabilities: softmax over the classes of CLIP's logit
scale x cosine (max over name parts). Every pixel takes its proposal's probabilities, so the
scores come out at the proposal map's resolution.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from ovbench.models.clip_baseline import ClipArgs, ClipBaseline, class_scores
from ovbench.models.masked_crops import crop_regions, region_boxes

from ovbench.errors import ConfigError
from ovbench.registry import register_model

KMEANS_ITERATIONS = 10


@dataclasses.dataclass
class ClipTwoStageArgs(ClipArgs):
    clip: str = "ViT-B-16"  # the crop classifier of ZegFormer and SimBaseline
    # 100 proposals, as the 100 mask queries whose crops ZegFormer / SimBaseline classify
    proposals: int = 100  # about this many superpixels seeded per frame (a grid), before merging
    compactness: float = 0.1  # weight of one grid spacing of distance against RGB colour in 0..1
    merge: float = 0.05  # join adjacent superpixels whose mean RGB (0..1) differ by less; 0 = never
    proposal_size: int = 120  # short side of the proposal map in pixels (never above the frame's)
    context: float = 0.1  # crop margin on each side, as a fraction of the box side
    background: Literal["grey", "mean"] = "grey"
    crop_batch: int = 64  # crops per CLIP forward (memory only; results do not depend on it)

    def __post_init__(self) -> None:
        for key in ("proposals", "proposal_size", "crop_batch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model argument {key}={getattr(self, key)}: must be at least 1")
        for key in ("compactness", "merge", "context"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"model argument {key}={getattr(self, key)}: must be non-negative")


def superpixels(image: torch.Tensor, count: int, compactness: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in 0..1 (B, 3, h, w) -> labels (B, h, w) in 0..K-1 and mean colours (B, K, 3)."""
    batch, _, height, width = image.shape
    rows = min(height, max(1, round(math.sqrt(count * height / width))))
    cols = min(width, max(1, round(count / rows)))
    spacing = math.sqrt(height * width / (rows * cols))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=image.dtype),
        torch.arange(width, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    position = torch.stack([ys, xs], dim=-1).view(1, -1, 2) * (compactness / spacing)
    features = torch.cat([image.flatten(2).transpose(1, 2), position.expand(batch, -1, -1)], dim=-1)
    seed_y = ((torch.arange(rows, device=image.device) + 0.5) * height / rows).long()
    seed_x = ((torch.arange(cols, device=image.device) + 0.5) * width / cols).long()
    centres = features[:, (seed_y[:, None] * width + seed_x[None, :]).flatten()]
    for _ in range(KMEANS_ITERATIONS):
        assign = torch.cdist(features, centres).argmin(dim=-1)
        members = F.one_hot(assign, centres.shape[1]).to(features.dtype)
        sizes = members.sum(dim=1)[..., None]
        centres = torch.where(sizes > 0, members.transpose(1, 2) @ features / sizes.clamp(min=1), centres)
    return assign.view(batch, height, width), centres[..., :3]


def merge_similar(labels: torch.Tensor, colours: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Join adjacent superpixels with mean colours closer than `threshold`.

    Returns proposal ids (B, h, w), numbered 0..N-1 across the batch in frame order, and the
    frame of each proposal (N,)."""
    batch, count = colours.shape[:2]
    ids = labels + torch.arange(batch, device=labels.device).view(-1, 1, 1) * count
    pairs = torch.cat(
        [
            torch.stack([ids[:, :, :-1], ids[:, :, 1:]], dim=-1).view(-1, 2),
            torch.stack([ids[:, :-1, :], ids[:, 1:, :]], dim=-1).view(-1, 2),
        ]
    )
    pairs = torch.unique(pairs[pairs[:, 0] != pairs[:, 1]], dim=0)
    flat = colours.reshape(-1, 3)
    edges = pairs[(flat[pairs[:, 0]] - flat[pairs[:, 1]]).norm(dim=-1) < threshold]
    # Connected components by min-label propagation with pointer jumping: a root never
    # exceeds its own index, so it only decreases and settles on the component's smallest id.
    root = torch.arange(batch * count, device=labels.device)
    while True:
        step = root.scatter_reduce(0, edges[:, 0], root[edges[:, 1]], "amin")
        step = step.scatter_reduce(0, edges[:, 1], root[edges[:, 0]], "amin")
        step = step[step]
        if torch.equal(step, root):
            break
        root = step
    kept, proposal = torch.unique(root[ids], return_inverse=True)
    return proposal, kept // count


@register_model("clip-twostage")
class ClipTwoStage(ClipBaseline):
    """two-stage CLIP (superpixel proposals): superpixels, not a trained mask generator, each
    classified by CLIP on its masked crop; scores (B, C, h, w)."""

    Args = ClipTwoStageArgs
    sample_args = {"clip": "ovbench-tiny-rn", "pretrained": "none"}

    def __init__(self, args: ClipTwoStageArgs, device: torch.device):
        super().__init__(args, device)
        size = self.clip.visual.image_size
        self.crop_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self._fill = torch.full_like(self._mean, 128.0) if args.background == "grey" else self._mean

    def propose(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 frames (B, 3, H, W) -> proposal ids (B, h, w) numbered across the batch, and
        the frame of each proposal (N,)."""
        height, width = frames.shape[-2:]
        scale = min(1.0, self.args.proposal_size / min(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        with torch.autocast(frames.device.type, enabled=False):
            image = F.interpolate(frames.float(), size=size, mode="area") / 255
            labels, colours = superpixels(image, self.args.proposals, self.args.compactness)
            return merge_similar(labels, colours, self.args.merge)

    def crop_boxes(self, proposal: torch.Tensor, frame_of: torch.Tensor, frame_size: tuple[int, int]) -> torch.Tensor:
        """Square crop boxes (N, 5) = (frame, x0, y0, x1, y1) in frame pixels (continuous
        coordinates), the proposal's box grown by `context` on each side."""
        boxes = region_boxes(proposal, len(frame_of), frame_size, self.args.context)
        return torch.cat([frame_of.float().view(-1, 1), boxes], dim=1)

    def masked_crops(
        self, frames: torch.Tensor, proposal: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        """The CLIP inputs (n, 3, S, S) of the proposals `index`: box crops of the frames with
        the pixels outside each proposal painted `background`, CLIP-normalised."""
        chosen = boxes[index]
        crops = crop_regions(frames, proposal, index, chosen[:, 0], chosen[:, 1:], self.crop_size, self._fill)
        return self.normalize(crops)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        proposal, frame_of = self.propose(frames)
        boxes = self.crop_boxes(proposal, frame_of, frames.shape[-2:])
        embeddings = []
        for index in torch.arange(len(frame_of), device=frames.device).split(self.args.crop_batch):
            features = self.clip.encode_image(self.masked_crops(frames, proposal, boxes, index))
            embeddings.append(F.normalize(features.float(), dim=-1))
        logits = self.clip.logit_scale.exp().float() * class_scores(torch.cat(embeddings), text)
        return logits.softmax(dim=-1)[proposal].permute(0, 3, 1, 2)
