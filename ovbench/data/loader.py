"""Frames and ground truth streamed through a torch DataLoader: workers decode JPEG/PNG while
the model runs, batches never straddle two videos, and a frame that cannot be read travels as
an error item instead of killing the loader (the runner then drops that video only)."""

from __future__ import annotations

import bisect
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import OvbenchError


class FrameDataset(Dataset):
    """Item i = one frame of one video, addressed through cumulative frame counts so that
    memory holds frame names, never pixels."""

    def __init__(self, data: VideoDataset, videos: Sequence[VideoFrames]):
        self.data = data
        self.videos = list(videos)
        self.starts = np.cumsum([0] + [len(v.frames) for v in self.videos]).tolist()

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, index: int) -> tuple[int, int]:
        video = bisect.bisect_right(self.starts, index) - 1
        return video, index - self.starts[video]

    def __getitem__(self, index: int) -> dict:
        video, frame = self.locate(index)
        name, stem = self.videos[video].name, self.videos[video].frames[frame]
        item = {"video": video, "frame": frame, "stem": stem}
        try:
            gt = self.data.read_mask(name, stem)
            image = self.data.read_frame(name, stem)
            if image.shape[:2] != gt.shape:
                raise OvbenchError(
                    f"video {name} frame {stem}: mask is {gt.shape[1]}x{gt.shape[0]} but the frame is"
                    f" {image.shape[1]}x{image.shape[0]}"
                )
            item["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            item["gt"] = torch.from_numpy(gt)
        except (OvbenchError, OSError, ValueError) as err:
            item["error"] = str(err) if name in str(err) else f"video {name} frame {stem}: {err}"
        return item


class VideoBatchSampler(Sampler[list[int]]):
    """Consecutive frames in temporal order, at most `batch_size` per batch, never across videos."""

    def __init__(self, dataset: FrameDataset, batch_size: int):
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for start, end in zip(self.dataset.starts[:-1], self.dataset.starts[1:]):
            for first in range(start, end, self.batch_size):
                yield list(range(first, min(first + self.batch_size, end)))

    def __len__(self) -> int:
        return sum(-(-len(v.frames) // self.batch_size) for v in self.dataset.videos)


def collate_frames(items: list[dict]) -> dict:
    batch = {"video": items[0]["video"], "frames": [item["frame"] for item in items]}
    errors = [item["error"] for item in items if "error" in item]
    if errors:
        batch["error"] = errors[0]
        return batch
    if len({tuple(item["gt"].shape) for item in items}) > 1:
        sizes = ", ".join(f"{item['stem']} {item['gt'].shape[1]}x{item['gt'].shape[0]}" for item in items)
        batch["error"] = f"frames of one video differ in size: {sizes}"
        return batch
    batch["gt"] = torch.stack([item["gt"] for item in items])
    batch["image"] = torch.stack([item["image"] for item in items])
    return batch


def frame_loader(
    data: VideoDataset, videos: Sequence[VideoFrames], *, batch_size: int, workers: int, pin_memory: bool
) -> DataLoader:
    dataset = FrameDataset(data, videos)
    return DataLoader(
        dataset,
        batch_sampler=VideoBatchSampler(dataset, batch_size),
        num_workers=workers,
        collate_fn=collate_frames,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
