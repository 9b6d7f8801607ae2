"""Frames in from a user's footage (a video file, a folder of frames or one image) and an
overlay video out, a batch at a time: memory holds one batch, however long the video.

Videos are decoded with decord and encoded with PyAV, which ships its own ffmpeg: nothing has
to be installed on the system.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from ovbench.data.files import read_rgb
from ovbench.errors import DataError, first_line

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FPS = 10.0  # for frame folders and images, which carry no frame rate


@dataclass
class FrameBatch:
    stems: list[str]  # output file names, in temporal order
    pixels: np.ndarray  # uint8 (B, H, W, 3) RGB, one frame size


class FrameSource(abc.ABC):
    """Frames of one input, in order; `count` and `fps` are known before decoding."""

    path: Path
    count: int
    fps: float

    @abc.abstractmethod
    def batches(self, batch_size: int) -> Iterator[FrameBatch]:
        """Consecutive frames, at most `batch_size` and one frame size per batch."""


def open_input(path: Path) -> FrameSource:
    if path.is_dir():
        return ImageFiles(path, sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural))
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles(path, [path])
    if suffix in VIDEO_SUFFIXES:
        return DecordVideo(path)
    raise DataError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image ({', '.join(IMAGE_SUFFIXES)}) or a folder of images")


def _natural(path: Path) -> list:
    """frame_2 before frame_10, as a person numbers frames."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


class DecordVideo(FrameSource):
    def __init__(self, path: Path):
        import decord

        self.path = path
        try:
            with _native_stderr_muted():
                self.reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
            self.count = len(self.reader)
            self.fps = float(self.reader.get_avg_fps() or DEFAULT_FPS)
        except Exception as err:  # decord raises its own error types for every kind of bad file
            raise DataError(f"{path}: cannot read this video: {_why_unreadable(path, err)}") from None
        if self.count == 0:
            raise DataError(f"{path}: cannot read this video: it has no frames")
        self.digits = max(6, len(str(self.count - 1)))

    def batches(self, batch_size: int) -> Iterator[FrameBatch]:
        for start in range(0, self.count, batch_size):
            indices = list(range(start, min(start + batch_size, self.count)))
            try:
                pixels = self.reader.get_batch(indices).asnumpy()
            except Exception as err:
                raise DataError(f"{self.path}: cannot decode frames {indices[0]}..{indices[-1]} ({first_line(err, typed=True)})") from None
            yield FrameBatch([f"{i:0{self.digits}d}" for i in indices], pixels)


class ImageFiles(FrameSource):
    """A folder of frames (natural name order) or a single image; consecutive frames of the
    same size are batched together."""

    def __init__(self, path: Path, files: Sequence[Path]):
        if not files:
            raise DataError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        stems = [file.stem for file in files]
        clashing = sorted({file.name for file in files if stems.count(file.stem) > 1})
        if clashing:  # their label PNGs would overwrite each other
            raise DataError(f"{path}: frames {', '.join(clashing[:4])} share a name; rename them")
        self.path, self.files, self.count, self.fps = path, list(files), len(files), DEFAULT_FPS

    def batches(self, batch_size: int) -> Iterator[FrameBatch]:
        stems: list[str] = []
        pixels: list[np.ndarray] = []
        for file in self.files:
            image = read_rgb(file)
            if pixels and (len(pixels) == batch_size or image.shape != pixels[0].shape):
                yield FrameBatch(stems, np.stack(pixels))
                stems, pixels = [], []
            stems.append(file.stem)
            pixels.append(image)
        yield FrameBatch(stems, np.stack(pixels))


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """decord's C++ side logs a failure straight to file descriptor 2, around the exception that
    becomes our one line; silence it while a file is opened."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _why_unreadable(path: Path, err: Exception) -> str:
    """A reason a person can act on, from a second look with PyAV (decord's own messages name
    its source files)."""
    import av

    try:
        with _native_stderr_muted(), av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream (an empty or audio-only file?)"
            if next(container.decode(video=0), None) is None:
                return "it has no frames"
    except Exception:
        return "not a video, or damaged"
    return f"decord cannot decode it ({first_line(err, typed=True)})"


class VideoWriter:
    """H.264 mp4 written frame by frame. The first frame fixes the size (padded to even sides, as
    yuv420p requires); later frames of another size are resized to it."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.container = None
        self.stream = None

    def write(self, rgb: np.ndarray) -> None:
        import av

        if self.container is None:
            self.container = av.open(str(self.path), "w")
            self.stream = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.height, self.stream.width = (side + side % 2 for side in rgb.shape[:2])
            self.stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(self._fit(rgb), format="rgb24")
        self.container.mux(self.stream.encode(frame))

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        height, width = self.stream.height, self.stream.width
        if rgb.shape[:2] == (height, width):
            return np.ascontiguousarray(rgb)
        if rgb.shape[0] in (height, height - 1) and rgb.shape[1] in (width, width - 1):
            return np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)), mode="edge")
        return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))

    def close(self) -> None:
        if self.container is not None:
            self.container.mux(self.stream.encode())  # flush the encoder's delayed frames
            self.container.close()
            self.container = None
