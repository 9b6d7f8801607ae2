"""Masked crops for CLIP: the one way ovbench shows CLIP's image encoder a region, used by GKC's
distillation teacher and synonym filter and by the two-stage baseline.

A region is an id in a region map (B, h, w) (-1: no region), at the frames' resolution or
coarser. Its crop box is the region's bounding box in frame pixels, either tight (GKC's
teacher: "crop to the box") or the square around it grown by `context` of its side on each
side (the two-stage methods' crops; aspect kept). The box is resampled to the output size by
one batched RoIAlign (bilinear samples averaged over each output pixel's footprint, so a large
box shrinks without aliasing; a box of exactly the output size is copied unchanged), then every
output pixel whose centre lies outside the region, or outside the frame, is painted `fill`.
"""

from __future__ import annotations

import torch
from torchvision.ops import roi_align


def region_boxes(regions: torch.Tensor, count: int, frame_size: tuple[int, int], context: float | None = None) -> torch.Tensor:
    """Boxes (count, 4) = (x0, y0, x1, y1) in frame pixels (continuous coordinates, pixel i
    covering [i, i+1)) of regions 0..count-1 of the map (every one present). context=None:
    the tight box; else the square around it, grown by `context` of its side on each side."""
    flat = regions.flatten()
    present = flat >= 0
    batch, height, width = regions.shape
    ys = torch.arange(height, device=flat.device).view(1, -1, 1).expand_as(regions).flatten()[present]
    xs = torch.arange(width, device=flat.device).view(1, 1, -1).expand_as(regions).flatten()[present]
    ids = flat[present]

    def extent(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = coords.new_full((count,), 1 << 30).scatter_reduce(0, ids, coords, "amin")
        high = coords.new_full((count,), -1).scatter_reduce(0, ids, coords, "amax") + 1
        return low.float(), high.float()

    scale_y, scale_x = frame_size[0] / height, frame_size[1] / width
    top, bottom = (v * scale_y for v in extent(ys))
    left, right = (v * scale_x for v in extent(xs))
    if context is None:
        return torch.stack([left, top, right, bottom], dim=1)
    half = torch.maximum(bottom - top, right - left) * (0.5 + context)
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    return torch.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], dim=1)


def crop_regions(
    frames: torch.Tensor,
    regions: torch.Tensor,
    ids: torch.Tensor,
    frame_of: torch.Tensor,
    boxes: torch.Tensor,
    size: tuple[int, int],
    fill: torch.Tensor,
) -> torch.Tensor:
    """Crops (n, 3, *size) in the frames' value range of regions `ids` (n,), each in frame
    `frame_of` (n,) with its box (n, 4) from region_boxes; frames (B, 3, H, W), region map
    (B, h, w); pixels outside the region painted `fill` (3,)."""
    height, width = frames.shape[-2:]
    map_h, map_w = regions.shape[-2:]
    rois = torch.cat([frame_of.to(boxes).view(-1, 1), boxes], dim=1)
    crops = roi_align(frames.float(), rois, output_size=size, aligned=True)
    # the region each output pixel's centre falls in
    steps = [(torch.arange(n, device=boxes.device) + 0.5) / n for n in size]
    y = boxes[:, 1:2] + steps[0] * (boxes[:, 3:4] - boxes[:, 1:2])
    x = boxes[:, 0:1] + steps[1] * (boxes[:, 2:3] - boxes[:, 0:1])
    inside = ((y >= 0) & (y < height))[:, :, None] & ((x >= 0) & (x < width))[:, None, :]
    row = (y * map_h / height).long().clamp(0, map_h - 1)
    col = (x * map_w / width).long().clamp(0, map_w - 1)
    owner = regions[frame_of.long()[:, None, None], row[:, :, None], col[:, None, :]]
    keep = inside & (owner == ids.view(-1, 1, 1))
    return torch.where(keep[:, None], crops, fill.to(crops).view(1, 3, 1, 1))
