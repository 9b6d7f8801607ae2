"""`ovbench score`: the official metrics for predictions written by any other codebase.

Predictions are VSPW-style PNGs (`PRED/<video>/<frame>.png`) holding converted VSPW ids 0..123
(`--pred-ids global`, the default) or indices into the split's vocabulary (`--pred-ids vocab`,
what a model that only knew the split's names would write), or ovbench's RLE files. Every
problem is reported with the video and frame, before a number is produced from bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import results
from .data.datasets import open_dataset
from .errors import ConfigError, DataError
from .evaluation import compute_for_split, list_videos, new_metrics, options_summary
from .predictions import PredictionReader
from .splits import Split

PRED_ID_KINDS = ("global", "vocab")


@dataclass
class ScoreOptions:
    split: Split
    pred_dir: Path
    data_root: Path
    dataset_name: str
    name: str | None = None
    pred_ids: str = "global"
    min_video_frames: int = 0
    convention: str = "vspw"
    limit_videos: int | None = None
    progress: bool = True


def prediction_lut(split: Split, pred_ids: str) -> np.ndarray:
    """Prediction value -> vocabulary index; 255 marks a value the split cannot have produced."""
    if pred_ids not in PRED_ID_KINDS:
        raise ConfigError(f"--pred-ids {pred_ids!r}: choose {' or '.join(PRED_ID_KINDS)}")
    if pred_ids == "global":
        return split.gt_lut()
    lut = np.full(256, 255, dtype=np.uint8)
    lut[: len(split.vocabulary)] = np.arange(len(split.vocabulary), dtype=np.uint8)
    return lut


def _check_prediction(pred: np.ndarray, mapped: np.ndarray, gt: np.ndarray, gt_lut: np.ndarray, split: Split, pred_ids: str, where: str) -> None:
    """Values at pixels the metric ignores (void, or classes outside the split) are free, as
    in the official script; every counted pixel must hold a class of the vocabulary."""
    if pred.shape != gt.shape:
        raise DataError(f"{where}: prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth is {gt.shape[1]}x{gt.shape[0]}")
    bad = (mapped == 255) & (gt_lut[gt] != 255)
    if bad.any():
        value = int(pred[bad][0])
        if pred_ids == "vocab":
            raise DataError(f"{where}: prediction value {value} >= vocabulary size {len(split.vocabulary)} of {split.name}")
        raise DataError(
            f"{where}: prediction value {value} is not a class of {split.name}'s vocabulary"
            " (values must be converted VSPW ids of the split's classes; use --pred-ids vocab for indices)"
        )


def score(options: ScoreOptions) -> dict[str, Any]:
    data = open_dataset(options.split.dataset, options.data_root)
    split = options.split
    reader = PredictionReader(options.pred_dir, flat=split.dataset == "coco")
    lut = prediction_lut(split, options.pred_ids)
    gt_lut = split.gt_lut()
    videos = list_videos(data, split, options.limit_videos)
    metrics = new_metrics(split, "cpu", options.min_video_frames)
    total = sum(len(v.frames) for v in videos)
    with tqdm(total=total, unit="frame", disable=not options.progress, leave=False) as bar:
        for video in videos:
            metrics.begin_video(video.name)
            for stem in video.frames:
                gt = data.read_mask(video.name, stem)
                pred = reader.read(video.name, stem)
                mapped = lut[pred]
                _check_prediction(pred, mapped, gt, gt_lut, split, options.pred_ids, f"video {video.name} frame {stem}")
                metrics.update(gt, mapped)
                bar.update(1)
            metrics.end_video()
    computed = compute_for_split(metrics, split, options.convention)
    record = results.new_record(
        kind="score",
        model={"id": options.name or options.pred_dir.resolve().name.removesuffix(".predictions"), "args": {"pred_dir": str(options.pred_dir), "pred_ids": options.pred_ids}},
        split=split.summary(),
        dataset={
            "name": options.dataset_name,
            "root": str(options.data_root),
            "subset": split.subset,
            "videos": len(videos),
            "frames": total,
            "skipped": [],
        },
        options=options_summary(options.convention, options.min_video_frames),
        computed=computed,
        timing=None,
        env=results.environment("cpu", "n/a"),
    )
    return record
