"""`ovbench predict`: a model on the user's own footage, with any vocabulary, and outputs a
person can look at: palette label PNGs, colour overlays with a legend, an overlay video, and
the share of the picture each class covers in each frame.

Model building, device, precision, the text cache and the scores-to-labels step are the
runner's, so a model predicts here exactly as it does in `ovbench run`.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ovbench.errors import ConfigError, unwritable
from ovbench.fileio import write_json
from ovbench.footage import FrameBatch, VideoWriter, open_input
from ovbench.locks import this_process, try_lock
from ovbench.modelargs import args_to_dict
from ovbench.palette import blend, hex_colour, legend_panel, legend_width, palette_image
from ovbench.records.provenance import now
from ovbench.run.distributed import resolve_device
from ovbench.run.model_io import ModelCall, autocast_for, build_model
from ovbench.run.progress import Progress
from ovbench.run.textcache import TextCache

MAX_CLASSES = 255  # a palette PNG holds values 0..255, and 255 is "no class" (drawn black)
OUTPUTS = ("labels", "overlays", "overlay.mp4", "summary.json", "shares.csv")
LOCK_FILE = ".ovbench-predict.lock"  # held while a predict writes into --out


@dataclass
class PredictOptions:
    input: Path
    model: str
    names: list[str]
    out: Path
    model_args: str = ""
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 4
    fps: float | None = None  # the overlay video's frame rate; default: the input video's
    overwrite: bool = False
    progress: bool = True


def parse_classes(text: str) -> list[str]:
    """"dog, person,grass" -> ["dog", "person", "grass"], refusing what a palette PNG cannot hold."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--classes is empty: give comma-separated class names, e.g. --classes 'dog,person,grass'")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"--classes names {', '.join(repeated)} more than once")
    if len(names) > MAX_CLASSES:
        raise ConfigError(f"--classes has {len(names)} names; a palette PNG holds at most {MAX_CLASSES} classes")
    return names


def vocabulary_names(vocabulary: str) -> list[str]:
    """The class names of a data set's vocabulary in the order of its ids (VIPSeg uses VSPW's
    124 names; COCO Panoptic's 133 in id order)."""
    from ovbench.data.kinds import class_names

    return class_names(vocabulary)  # an unknown kind is a ConfigError naming the kinds


def predict(options: PredictOptions, log: Callable[[str], None] = print) -> dict:
    """Segment every frame of the input; returns the summary also written to summary.json. One
    process at a time on an --out (a second one is refused in one line naming the first), so
    labels/ never holds the frames of two inputs."""
    lock = _lock_out(options.out)
    try:
        return _predict(options, log)
    finally:
        lock.close()


def _lock_out(out: Path):
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    try:
        handle, holder = try_lock(out / LOCK_FILE, this_process(since=now()))
    except OSError as err:
        raise ConfigError(f"--out {out} cannot be written: {err.strerror or err}") from None
    if handle is None:
        raise ConfigError(f"--out {out} is in use by {holder} (another ovbench predict); wait for it or choose another --out")
    return handle


def _predict(options: PredictOptions, log: Callable[[str], None]) -> dict:
    device = resolve_device(options.device)
    autocast_for(options.precision, device)  # a bad --precision is refused before anything loads
    source = open_input(options.input)
    earlier = _earlier_outputs(options.out, options.overwrite)
    model = build_model(options.model, options.model_args, device, on_sample=False, log=log)
    weights = model.weights()
    if weights.random_init:
        log(f"*** {options.model} has RANDOM weights ({weights.source}): its predictions mean nothing ***")
    elif weights.random_parts:
        log(f"*** {options.model}'s {', '.join(weights.random_parts)} has random weights ({weights.source}) ***")
    if weights.caveat:
        log(f"*** {weights.source}: {weights.caveat} ***")
    text, _ = TextCache().embed(model, options.names, report=log)
    call = ModelCall(model, options.model, text, device, options.precision)
    _replace_outputs(options.out, earlier)  # only now: a model that fails to load leaves --out as it was
    call.begin_video(options.input.stem)
    outputs = Outputs(options.out, options.names, options.fps or source.fps)
    progress = Progress(source.count, options.progress)
    try:
        for batch in source.batches(options.batch_size):
            frames = torch.from_numpy(batch.pixels).permute(0, 3, 1, 2).contiguous()
            where = f"{options.input} frames {batch.stems[0]}..{batch.stems[-1]}"
            outputs.write(batch, call.labels(frames, where).numpy())
            progress.step(len(batch.stems), options.input.name)
    finally:
        progress.close()
        outputs.close()
    summary = outputs.summary()
    summary.update(input=str(options.input), model={"id": options.model, "args": args_to_dict(model.args),
                                                   "weights": weights.source, "random_init": weights.random_init,
                                                   "random_parts": weights.random_parts or [], "caveat": weights.caveat})
    write_json(options.out / "summary.json", summary)
    return summary


def _earlier_outputs(out: Path, overwrite: bool) -> list[Path]:
    """What an earlier prediction left in `out`; refused unless `overwrite`, since this input's
    frames must never mix with another's."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    earlier = [out / name for name in OUTPUTS if (out / name).exists()]
    if earlier and not overwrite:
        raise ConfigError(f"--out {out} already holds a prediction ({earlier[0].name}); pass --overwrite to replace it")
    return earlier


def _replace_outputs(out: Path, earlier: list[Path]) -> None:
    try:
        for path in earlier:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for folder in ("labels", "overlays"):
            (out / folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable(out, err) from None


class Outputs:
    """Writes each frame's label PNG, overlay (with a legend of the classes in that frame) and
    video frame, and its class shares to shares.csv, as the frames come; keeps only per-class
    totals, so memory does not grow with the video."""

    def __init__(self, out: Path, names: list[str], fps: float):
        self.out, self.names = out, names
        self.legend_width = legend_width(names)
        self.video = VideoWriter(out / "overlay.mp4", fps)
        self.csv_file = open(out / "shares.csv", "w", newline="")
        self.csv = csv.writer(self.csv_file)
        self.csv.writerow(["frame", "class_index", "class", "share"])
        self.share_sums = np.zeros(len(names))
        self.frames_with = np.zeros(len(names), dtype=np.int64)
        self.frames = 0

    def write(self, batch: FrameBatch, labels: np.ndarray) -> None:
        for stem, frame, label in zip(batch.stems, batch.pixels, labels):
            palette_image(label).save(self.out / "labels" / f"{stem}.png", compress_level=1)
            shares = np.bincount(label.ravel(), minlength=len(self.names)) / label.size
            present = [int(i) for i in np.argsort(-shares, kind="stable") if shares[i] > 0]
            self.csv.writerows([stem, i, self.names[i], f"{shares[i]:.6f}"] for i in present)
            legend = legend_panel([(i, self.names[i]) for i in present], label.shape[0], self.legend_width)
            overlay = np.concatenate([blend(frame, label), legend], axis=1)
            Image.fromarray(overlay).save(self.out / "overlays" / f"{stem}.jpg", quality=90)
            self.video.write(overlay)
            self.share_sums += shares
            self.frames_with += shares > 0
            self.frames += 1

    def close(self) -> None:
        self.video.close()
        self.csv_file.close()

    def summary(self) -> dict:
        """The classes found, largest average share first."""
        found = [
            {"index": i, "name": self.names[i], "colour": hex_colour(i), "frames": int(self.frames_with[i]),
             "mean_share": round(float(self.share_sums[i] / self.frames), 6)}
            for i in np.argsort(-self.share_sums, kind="stable").tolist() if self.frames_with[i]
        ]
        return {"frames": self.frames, "fps": self.video.fps, "vocabulary": self.names, "classes_found": found}
