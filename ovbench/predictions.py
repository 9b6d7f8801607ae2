"""Predictions on disk, in the two forms other tools read: VSPW-style PNGs
(`DIR/<video>/<frame>.png`, the data set's converted ids, as palette PNGs so they are viewable) or one pycocotools-RLE JSON per video
(`DIR/<video>.json`, about 20x smaller). `ovbench score` reads both back, so a saved run can be
rescored without the model. Where a split's data set has more than 255 classes (A-847,
PC-459) the PNGs are 16-bit grey (what the peers' A-847 label files are) and RLE class ids go
up to 65534; 65535 is "no class", as 255 is for 8-bit files."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ovbench.constants import IGNORE, WIDE_IGNORE
from ovbench.data.files import open_image
from ovbench.errors import ConfigError, DataError
from ovbench.fileio import write_json
from ovbench.palette import palette_image
from ovbench.split import Split

FORMATS = ("png", "rle")


class PredictionWriter:
    """Does nothing: the default, so the runner's loop has no branches for it."""

    @staticmethod
    def create(kind: str | None, directory: Path, split: Split) -> "PredictionWriter":
        if kind is None:
            return PredictionWriter()
        if kind not in FORMATS:
            raise ConfigError(f"--save-predictions {kind!r}: choose {' or '.join(FORMATS)}")
        return (PngWriter if kind == "png" else RleWriter)(directory, split)

    def begin_video(self, video: str) -> None: ...

    def write(self, video: str, stems: Sequence[str], labels: np.ndarray) -> None: ...

    def end_video(self) -> None: ...

    def abort_video(self) -> None:
        """Remove whatever this video wrote, even after end_video."""


class _GlobalIds(PredictionWriter):
    def __init__(self, directory: Path, split: Split):
        self.directory = directory
        self.to_global = split.to_global()
        self.video: str | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def begin_video(self, video: str) -> None:
        self.video = video

    def global_ids(self, labels: np.ndarray) -> np.ndarray:
        """(B,H,W) vocabulary indices -> converted VSPW ids."""
        return self.to_global[labels]


class PngWriter(_GlobalIds):
    def write(self, video: str, stems: Sequence[str], labels: np.ndarray) -> None:
        folder = self.directory / video
        folder.mkdir(exist_ok=True)
        for stem, frame in zip(stems, self.global_ids(labels)):
            image = Image.fromarray(frame) if frame.dtype == np.uint16 else palette_image(frame)
            image.save(folder / f"{stem}.png", optimize=False, compress_level=1)

    def abort_video(self) -> None:
        shutil.rmtree(self.directory / str(self.video), ignore_errors=True)


class RleWriter(_GlobalIds):
    def begin_video(self, video: str) -> None:
        super().begin_video(video)
        self.frames: dict[str, dict] = {}

    def write(self, video: str, stems: Sequence[str], labels: np.ndarray) -> None:
        for stem, frame in zip(stems, self.global_ids(labels)):
            encoded = {}
            for class_id in np.unique(frame).tolist():
                rle = mask_utils.encode(np.asfortranarray(frame == class_id, dtype=np.uint8))
                encoded[str(class_id)] = rle["counts"].decode("ascii")
            self.frames[stem] = {"size": list(frame.shape), "classes": encoded}

    def end_video(self) -> None:
        write_json(self.directory / f"{self.video}.json", {"video": self.video, "frames": self.frames})

    def abort_video(self) -> None:
        self.frames = {}
        (self.directory / f"{self.video}.json").unlink(missing_ok=True)


class PredictionReader:
    """Reads one video's predictions from a PNG folder or an RLE file, whichever exists.

    `flat`: image data sets (COCO) name predictions `DIR/<image stem>.png`, as other codebases
    write them; `DIR/<video>/<stem>.png` (what `ovbench run` writes) is read too. `wide`: the
    split has more than 255 classes (values are uint16, 65535 = no class; luts have 65536 entries)."""

    def __init__(self, directory: Path, flat: bool = False, wide: bool = False):
        if not directory.is_dir():
            raise DataError(f"prediction folder {directory} does not exist")
        self.directory = directory
        self.flat = flat
        self.top, self.dtype = (WIDE_IGNORE, np.uint16) if wide else (IGNORE, np.uint8)
        self._rle: dict[str, dict] = {}  # the last two videos' RLE files, parsed once each
        self._rle_lock = threading.Lock()  # decoding threads share this reader

    def has(self, video: str) -> bool:
        """Whether the folder holds predictions of `video`, in any of the layouts `read` reads."""
        folder = self.directory
        return ((folder / video).is_dir() or (folder / f"{video}.json").is_file()
                or (self.flat and (folder / f"{video}.png").is_file()))

    def read(self, video: str, stem: str, lut: np.ndarray | None = None) -> np.ndarray:
        """Raw prediction values of one frame, or lut[value] for a `lut` of every value (256
        entries, 65536 where wide)."""
        png = self.directory / video / f"{stem}.png"
        if self.flat and not png.is_file():
            png = self.directory / f"{stem}.png"
        if png.is_file():
            return read_prediction_png(png, self.top, lut)
        frames = self._rle_frames(video)
        if frames is None or stem not in frames:
            raise DataError(f"no prediction for video {video} frame {stem} (expected {png} or {self.directory / video}.json)")
        where = f"{self.directory / video}.json: video {video} frame {stem}"
        try:
            height, width = frames[stem]["size"]
            out = np.full((height, width), self.top if lut is None else lut[self.top], dtype=self.dtype)
            for class_id, counts in frames[stem]["classes"].items():
                value = int(class_id)
                if not 0 <= value <= self.top:
                    raise DataError(f"{where}: class id {value} is outside 0..{self.top}")
                pixels = mask_utils.decode({"size": [height, width], "counts": counts.encode("ascii")}).astype(bool)
                out[pixels] = value if lut is None else lut[value]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{where}: malformed RLE entry ({err})") from None
        return out

    def _rle_frames(self, video: str) -> dict | None:
        """A video's RLE file, parsed once: threads reading ahead across a video change would
        otherwise evict and parse it again and again."""
        with self._rle_lock:
            if video in self._rle:
                return self._rle[video]
            path = self.directory / f"{video}.json"
            if not path.is_file():
                return None
            try:
                frames = json.loads(path.read_text())["frames"]
                if not isinstance(frames, dict):
                    raise TypeError(f"'frames' is a {type(frames).__name__}, not an object")
            except (OSError, ValueError, KeyError, TypeError) as err:  # ValueError: not JSON, or not UTF-8
                raise DataError(f"{path}: unreadable RLE predictions ({type(err).__name__}: {err})") from None
            self._rle = {**dict(list(self._rle.items())[-1:]), video: frames}
            return frames


def read_prediction_png(path: Path, top: int, lut: np.ndarray | None = None) -> np.ndarray:
    """A prediction PNG's values (8-bit L/P, or 16-bit grey where `top` is 65535), or
    lut[value]; a value above `top` or a file of another mode is one DataError naming it.
    8-bit files go through PIL's table lookup (several times faster than numpy's indexing)."""
    with open_image(path, "prediction") as img:
        if img.mode in ("L", "P") and top == IGNORE:
            return np.array(img if lut is None else img.point(lut.tolist()))
        if img.mode not in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
            raise DataError(f"{path}: prediction must be single-channel {'8' if top == IGNORE else '8- or 16'}-bit "
                            f"(mode L, P{'' if top == IGNORE else ' or I;16'}), got mode {img.mode}")
        values = np.array(img)
    if values.size and (int(values.min()) < 0 or int(values.max()) > top):
        raise DataError(f"{path}: prediction value {int(values.max())} is outside 0..{top}"
                        f"{' (a 16-bit prediction of a split of at most 255 classes)' if top == IGNORE else ''}")
    values = values.astype(np.uint16 if top == WIDE_IGNORE else np.uint8, copy=False)
    return values if lut is None else lut[values]
