"""Training samples for GKC from any data root (VSPW, VIPSeg, COCO): random scale, crop and flip of single frames, with
the ground truth mapped to the split's vocabulary (classes outside it, e.g. unseen ones, are
ignored) and split into one binary mask per class present.

The sample stream is a pure function of (seed, position): which frame comes at position k and
how it is augmented depend on nothing else, so a resumed run sees exactly the samples an
uninterrupted one would have, whatever the number of workers. The frame table is kept in numpy
arrays (no per-frame Python objects), so worker memory stays flat on VSPW's 250k frames.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ovbench.constants import IGNORE
from ovbench.data.kinds import open_dataset
from ovbench.data.videoclasses import videos_without
from ovbench.errors import DataError
from ovbench.resolve import cache_root


@dataclasses.dataclass(frozen=True)
class Augment:
    """Short side drawn uniformly in [short_min, short_max], then a crop window (height, width)
    (padded with `pad_rgb` and ignore where the frame is smaller), flipped with probability 1/2."""

    crop: tuple[int, int]
    short_min: int
    short_max: int
    pad_rgb: tuple[int, int, int]


def augment(image: np.ndarray, labels: np.ndarray, aug: Augment, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """image uint8 (H, W, 3), labels uint8 (H, W) vocabulary indices -> both of the crop's size."""
    height, width = labels.shape
    scale = rng.uniform(aug.short_min, aug.short_max) / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    labels = np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST))
    crop_h, crop_w = aug.crop
    pad_h, pad_w = max(0, crop_h - size[1]), max(0, crop_w - size[0])
    if pad_h or pad_w:
        image = np.stack([np.pad(image[..., c], ((0, pad_h), (0, pad_w)), constant_values=aug.pad_rgb[c]) for c in range(3)], -1)
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=IGNORE)
    top = int(rng.integers(0, labels.shape[0] - crop_h + 1))
    left = int(rng.integers(0, labels.shape[1] - crop_w + 1))
    image = image[top : top + crop_h, left : left + crop_w]
    labels = labels[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def segment_targets(labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes present (N,) int64, one bool mask per class (N, H, W)); ignore pixels are in none."""
    present = np.unique(labels)
    present = present[present != IGNORE]
    masks = labels[None] == present[:, None, None]
    return torch.from_numpy(present.astype(np.int64)), torch.from_numpy(masks)


class TrainFrames(Dataset):
    """Every frame of the split's videos; item (frame index, seed, position) -> one augmented sample."""

    def __init__(self, root: str | Path, split, aug: Augment):
        listing = open_dataset(split.dataset, root)  # its cached per-video lists are dropped with it: only numpy stays
        videos = listing.videos(split.subset)
        if split.videos == "without_unseen":  # GKC's base_delete
            videos = videos_without(listing, videos, split.unseen, cache_root())
            if not videos:
                raise DataError(f"{root}: every video of {split.subset}.txt has a pixel of an unseen class; "
                                f"{split.name} (videos without unseen classes) keeps none")
        stems = [listing.frames(video) for video in videos]
        self.data = open_dataset(split.dataset, root)
        self.aug = aug
        self.lut = split.gt_lut()
        self.videos = np.array(videos)
        self.frame_video = np.repeat(np.arange(len(videos), dtype=np.int32), [len(s) for s in stems])
        self.frame_stem = np.array([stem for group in stems for stem in group])
        if len(self.frame_stem) == 0:
            raise DataError(f"{self.data.root}: no frames in the videos of {split.subset}.txt (split {split.name})")

    def __len__(self) -> int:
        return len(self.frame_stem)

    def __getitem__(self, item: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        index, seed, position = item
        video, stem = str(self.videos[self.frame_video[index]]), str(self.frame_stem[index])
        image = self.data.read_frame(video, stem)
        labels = self.lut[self.data.read_mask(video, stem)]
        if image.shape[:2] != labels.shape:
            raise DataError(f"{self.data.mask_path(video, stem)}: mask size {labels.shape} differs from its frame's {image.shape[:2]}")
        image, labels = augment(image, labels, self.aug, np.random.default_rng([seed, position]))
        classes, masks = segment_targets(labels)
        return {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(), "labels": classes, "masks": masks}


class StreamSampler(Sampler):
    """Positions step*world*batch + rank*batch + j for steps from `start_step` on, forever; the
    frame at position k is a fixed random permutation per epoch (k // N) and its augmentation
    seed is (seed, k)."""

    def __init__(self, num_frames: int, batch_size: int, seed: int, start_step: int, rank: int, world: int):
        self.num_frames, self.batch_size, self.seed = num_frames, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_frames, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        step, epoch, order = self.start_step, -1, None
        while True:
            first = (step * self.world + self.rank) * self.batch_size
            for position in range(first, first + self.batch_size):
                if position // self.num_frames != epoch:
                    epoch = position // self.num_frames
                    order = self._permutation(epoch)
                yield int(order[position % self.num_frames]), self.seed, position
            step += 1


def collate(samples: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images stacked (B, 3, crop, crop) uint8; targets stay a list (a different count per image)."""
    images = torch.stack([s["image"] for s in samples])
    return images, [{"labels": s["labels"], "masks": s["masks"]} for s in samples]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding is per sample; threads would only oversubscribe the cores


def train_loader(
    dataset: TrainFrames, batch_size: int, seed: int, start_step: int, rank: int, world: int, workers: int, pin: bool
) -> DataLoader:
    sampler = StreamSampler(len(dataset), batch_size, seed, start_step, rank, world)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        worker_init_fn=_worker_init if workers else None,
    )
