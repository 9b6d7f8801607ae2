"""`ovbench score`: the official metrics for predictions written by any other codebase.

Predictions are VSPW-style PNGs (`PRED/<video>/<frame>.png`) holding the data set's converted ids (0..123 for VSPW)
(`--pred-ids global`, the default) or indices into the split's vocabulary (`--pred-ids vocab`,
what a model that only knew the split's names would write), or ovbench's RLE files. Every
problem is reported with the video and frame, before a number is produced from bad input.

Scoring is bound by PNG decoding, so it is arranged to cost little more than the decode: threads
decode (and map, with PIL's table lookup) the next frames while the main thread counts the
current one with the numpy metrics (torch is never imported: 2 s of start-up), and bad
prediction values are found by the metric's own fold at the end of each video; only then is the
video read again to name the frame.
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from ovbench.data.kinds import open_dataset
from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import ConfigError, DataError
from ovbench.metrics.accumulator import resolve_min_video_frames
from ovbench.metrics.confusion import LabelError
from ovbench.metrics.split_metrics import add_tc, compute_for_split, new_metrics, options_summary, why_no_metrics
from ovbench.predictions import PredictionReader
from ovbench.records.provenance import environment, usable_cores
from ovbench.records.write import new_record, record_stem
from ovbench.run.schedule import list_videos
from ovbench.run.temporal import TCRequest, tc_setup
from ovbench.split import Split

PRED_ID_KINDS = ("global", "vocab")
FRAMES_AHEAD = 8  # decoded frames waiting for the metric at most: memory independent of video length


@dataclass
class ScoreOptions:
    split: Split
    pred_dir: Path
    data_root: Path
    dataset_name: str
    name: str | None = None
    pred_ids: str = "global"
    min_video_frames: int | None = None  # None: the VC convention's own (0 official, 16 cffm)
    convention: str = "vspw"
    vc_convention: str = "official"
    limit_videos: int | None = None
    progress: bool = True
    tc: bool = False  # also TC, from the frames and the predictions (imports torch)
    tc_weights: str | None = None
    tc_subset: str = "all"


@dataclass(frozen=True)
class _Sources:
    """Where one frame's ground truth and prediction come from, and how prediction values map."""

    data: VideoDataset
    reader: PredictionReader
    lut: np.ndarray  # prediction value -> vocabulary index, its last entry = not a class of the split

    def read(self, video: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
        """(converted gt, prediction as vocabulary indices) of one frame, sizes checked."""
        gt = self.data.read_mask(video, stem)
        pred = self.reader.read(video, stem, self.lut)
        if pred.shape != gt.shape:
            raise DataError(f"video {video} frame {stem}: prediction is {pred.shape[1]}x{pred.shape[0]} "
                            f"but the ground truth is {gt.shape[1]}x{gt.shape[0]}")
        return gt, pred


def prediction_lut(split: Split, pred_ids: str) -> np.ndarray:
    """Prediction value -> vocabulary index; the last entry (255, or 65535 for a split of over
    255 classes) marks a value the split cannot have produced."""
    if pred_ids not in PRED_ID_KINDS:
        raise ConfigError(f"--pred-ids {pred_ids!r}: choose {' or '.join(PRED_ID_KINDS)}")
    lut = split.gt_lut()
    if pred_ids == "vocab":
        lut = np.full_like(lut, lut[-1])  # the last entry is the ignore value (255, or 65535 for 16-bit ids)
        lut[: split.num_classes] = np.arange(split.num_classes, dtype=lut.dtype)
    return lut


def _name_bad_frame(sources: _Sources, video: VideoFrames, split: Split, pred_ids: str) -> DataError | None:
    """The first frame of `video` with a prediction value outside the split's classes at a
    counted pixel (values at ignored pixels are free, as in the official script); None if
    the files no longer hold one."""
    gt_lut = split.gt_lut()
    none = gt_lut[-1]  # 255, or 65535 for over 255 classes
    for stem in video.frames:
        gt = sources.data.read_mask(video.name, stem)
        pred = sources.reader.read(video.name, stem)
        bad = (sources.lut[pred] == none) & (gt_lut[gt] != none)
        if bad.any():
            value, where = int(pred[bad][0]), f"video {video.name} frame {stem}"
            if pred_ids == "vocab":
                return DataError(f"{where}: prediction value {value} >= vocabulary size {split.num_classes} of {split.name}")
            return DataError(
                f"{where}: prediction value {value} is not a class of {split.name}'s vocabulary"
                " (values must be converted VSPW ids of the split's classes; use --pred-ids vocab for indices)"
            )
    return None


def read_ahead(read: Callable[[str, str], Any], videos: list[VideoFrames], threads: int) -> Iterator[Any]:
    """read(video, stem) of every frame, in order, decoded up to FRAMES_AHEAD frames ahead by
    `threads` threads (PIL and numpy release the GIL, so decoding overlaps the metric).
    An error is raised where its frame comes in the order."""
    frames = ((video.name, stem) for video in videos for stem in video.frames)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ovbench-decode")
    try:
        pending = deque(pool.submit(read, *frame) for frame in itertools.islice(frames, FRAMES_AHEAD))
        while pending:
            done = pending.popleft().result()
            pending.extend(pool.submit(read, *frame) for frame in itertools.islice(frames, 1))
            yield done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def decode_threads() -> int:
    """Decoding is about two thirds of the work per frame and its threads sleep (never spin)
    when FRAMES_AHEAD frames wait, so one more than the cores (at most 4) keeps every core fed
    (552 frames on 2 busy cores: 4.9 s with 1 thread, 3.9 s with 2, 3.1 s with 3). Cores this
    process may use (`usable_cores`), not the machine's."""
    return min(4, usable_cores() + 1)


def score(options: ScoreOptions) -> dict[str, Any]:
    split = options.split
    min_frames = resolve_min_video_frames(options.vc_convention, options.min_video_frames)
    request = TCRequest(options.tc, options.tc_weights, options.tc_subset)
    request.check()  # before the data is read
    data = open_dataset(split.dataset, options.data_root)
    sources = _Sources(data, PredictionReader(options.pred_dir, flat=split.kind.image, wide=split.wide),
                       prediction_lut(split, options.pred_ids))
    videos = list_videos(data, split, options.limit_videos)
    tc = tc_setup(request, [v.name for v in videos], "cpu")
    metrics = new_metrics(split, min_frames, options.vc_convention)
    flow = tc.new_state(split.num_classes) if tc is not None else None
    total, threads = sum(len(v.frames) for v in videos), decode_threads()
    with (closing(read_ahead(sources.read, videos, threads)) as frames,
          tqdm(total=total, unit="frame", disable=not options.progress, leave=False) as bar):
        for video in videos:
            _score_video(sources, video, frames, metrics, flow if tc is not None and video.name in tc.videos else None, bar,
                         options)
    computed = compute_for_split(metrics, split, options.convention)
    if "mIoU" not in computed["metrics"]:  # as `run`: no record without metrics
        raise DataError(why_no_metrics([len(v.frames) for v in videos], min_frames))
    if flow is not None:
        add_tc(computed, {name: {"tc": entry} for name, entry in flow.metrics.videos.items()}, split.num_classes)
    return new_record(
        kind="score",
        model=_model(options),
        split=split.summary(),
        dataset={
            "name": options.dataset_name,
            "root": str(options.data_root),
            "subset": split.subset,
            "videos": len(videos),
            "frames": total,
            "skipped": [],
        },
        options={**options_summary(options.convention, min_frames, options.vc_convention),
                 **({"tc": tc.describe()} if tc is not None else {})},
        computed=computed,
        timing=None,
        env=environment("cpu", "n/a", threads),
    )


def _score_video(sources: _Sources, video: VideoFrames, frames: Iterator, metrics, flow, bar, options: ScoreOptions) -> None:
    """Count one video's frames (and, with `flow`, its TC pairs, from the RGB frames read here)."""
    metrics.begin_video(video.name)
    if flow is not None:
        flow.begin_video(video.name)
    for stem, (gt, pred) in zip(video.frames, itertools.islice(frames, len(video.frames))):
        metrics.update(gt, pred)
        if flow is not None:
            flow.update(sources.data.read_frame(video.name, stem), pred)
        bar.update(1)
    try:
        metrics.end_video()
        if flow is not None:
            flow.end_video()
    except LabelError as err:
        frames.close()
        raise _name_bad_frame(sources, video, options.split, options.pred_ids) or err from None


def _model(options: ScoreOptions) -> dict[str, Any]:
    return {"id": options.name or options.pred_dir.resolve().name.removesuffix(".predictions"),
            "args": {"pred_dir": str(options.pred_dir), "pred_ids": options.pred_ids}}


def score_stem(record: dict[str, Any], pred_dir: Path) -> str:
    """A score record's file stem: named, like a run's, by a hash of everything that changes its
    numbers (predictions, split definition, data, videos and frame counts, metric options), so
    scoring the same predictions another way never silently replaces an earlier record."""
    identity = {
        "model": record["model"],
        "pred_dir": str(pred_dir.resolve()),
        "split": {"name": record["split"]["name"], "hash": record["split"]["hash"]},
        "dataset": {"name": record["dataset"]["name"], "subset": record["dataset"]["subset"]},
        "videos": {name: entry["frames"] for name, entry in record["per_video"].items()},
        "options": record["options"],
    }
    return record_stem(record["model"], record["split"]["name"], identity)
