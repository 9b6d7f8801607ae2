"""What every data set reader offers: the videos of a subset, their frames, images and masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ovbench.data.files import header_size, read_rgb, read_video_list
from ovbench.errors import DataError


@dataclass(frozen=True)
class VideoFrames:
    """One video of a split and the frames to evaluate."""

    name: str
    frames: tuple[str, ...]
    problem: str = ""  # why it has no frames to evaluate, when known (a missing folder)


class VideoDataset(Protocol):
    """What the runner, `score`, `data verify` and training read; a frame is (video, stem)."""

    root: Path

    def videos(self, subset: str) -> list[str]: ...
    def frames(self, video: str) -> list[str]: ...
    def frame_dir(self, video: str) -> Path: ...
    def frame_path(self, video: str, stem: str) -> Path: ...
    def mask_path(self, video: str, stem: str) -> Path: ...
    def read_frame(self, video: str, stem: str) -> np.ndarray: ...
    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None: ...
    def read_mask(self, video: str, stem: str) -> np.ndarray: ...
    def label_files(self, subset: str) -> list[Path]: ...  # small files besides the masks that decide labels or videos


class ListedVideoFolders:
    """The part VSPW and VIPSeg share: videos listed in `<root>/<subset>.txt` (in file order,
    each once: a name listed twice would weigh double), one folder of JPEG frames per video, both
    lists read once per reader. A layout says where a video's frames are (`frame_dir`) and what
    a missing folder is called (`_missing_folder`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._videos: dict[str, list[str]] = {}
        self._frames: dict[str, list[str]] = {}

    def frame_dir(self, video: str) -> Path:
        raise NotImplementedError

    def _missing_folder(self, video: str) -> str | None:
        """Why `video` has no frame folder, or None when it has one."""
        folder = self.frame_dir(video)
        return None if folder.is_dir() else f"{folder}: video folder not found"

    def label_files(self, subset: str) -> list[Path]:
        """The subset's video list decides which videos it has."""
        return [self.root / f"{subset}.txt"]

    def videos(self, subset: str) -> list[str]:
        if subset not in self._videos:
            self._videos[subset] = read_video_list(self.root, subset)
        return list(self._videos[subset])

    def frames(self, video: str) -> list[str]:
        """Sorted stems of the video's `*.jpg` frames (masks share the stem)."""
        if video not in self._frames:
            problem = self._missing_folder(video)
            if problem:
                raise DataError(problem)
            self._frames[video] = sorted(p.stem for p in self.frame_dir(video).glob("*.jpg"))
        return list(self._frames[video])

    def frame_path(self, video: str, stem: str) -> Path:
        return self.frame_dir(video) / f"{stem}.jpg"

    def read_frame(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W, 3) RGB."""
        return read_rgb(self.frame_path(video, stem))

    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None:
        """(H, W) from the frame's header alone, or None (see `header_size`)."""
        return header_size(self.frame_path(video, stem))
