"""`ovbench visualize`: paper figures of saved predictions. One row per shown frame; columns
frame | ground truth | one per run; every label in the fixed palette, with a legend of the
classes that appear. Without chosen videos, the ones where the runs disagree most are shown
(with one run: where it disagrees most with the ground truth), which is where a reader learns
the most about the difference.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ovbench.constants import IGNORE
from ovbench.data.kinds import class_names, open_dataset
from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.data.roots import dataset_name
from ovbench.errors import ConfigError, DataError
from ovbench.fileio import write_bytes
from ovbench.palette import PALETTE
from ovbench.predictions import PredictionReader
from ovbench.run.schedule import list_videos
from ovbench.run.state import FINGERPRINT
from ovbench.split import Split

SCORED_FRAMES = 8  # frames per video compared when picking videos automatically
PANEL_INCHES = 1.9


@dataclass
class RunPredictions:
    name: str  # the column title
    reader: PredictionReader

    def read(self, video: str, stem: str, shape: tuple[int, ...]) -> np.ndarray:
        """The prediction for a frame whose ground truth has `shape`."""
        labels = self.reader.read(video, stem)
        if labels.shape != shape:
            raise DataError(f"run {self.name}: prediction for video {video} frame {stem} is {labels.shape[1]}x{labels.shape[0]},"
                            f" the ground truth {shape[1]}x{shape[0]}")
        return labels


def parse_run(spec: str, flat: bool = False) -> RunPredictions:
    """"NAME=DIR" or "DIR"; DIR is a predictions folder or the run record next to it. `flat`:
    an image data set's predictions may be `DIR/<stem>.png` (see PredictionReader)."""
    name, _, where = spec.rpartition("=")
    path = Path(where)
    if path.suffix == ".json" and path.is_file():
        try:
            record_model = json.loads(path.read_text())["model"]["id"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a run record ({type(err).__name__}: {err})") from None
        name, path = name or record_model, path.with_suffix(".predictions")
    return RunPredictions(name or path.name.removesuffix(".predictions"), PredictionReader(path, flat=flat))


@dataclass
class Figure:
    panels: int  # axes holding an image
    paths: list[Path]
    videos: list[str]


def visualize(runs: list[RunPredictions], split: Split, data_root: Path, out: Path,
              videos: list[str] | None = None, num_videos: int = 3, frames: int = 3) -> Figure:
    if out.suffix.lower() not in (".png", ".pdf"):
        raise ConfigError(f"--out {out}: name a .png or .pdf figure (both are written)")
    if split.wide:  # the palette has a colour for each of 255 ids
        raise ConfigError(f"visualize: {split.name} has {split.num_dataset_classes} classes; figures are drawn "
                          f"for data sets of at most 255 (score and the leaderboard handle it)")
    data = open_dataset(split.dataset, data_root)
    for run in runs:
        _check_made_on(run, split, dataset_name(data_root))
    to_shown = _display_lut(split)
    available = [v for v in list_videos(data, split) if v.frames and all(run.reader.has(v.name) for run in runs)]
    if not available:
        raise DataError(f"no video of {split.name} has predictions in every run ({', '.join(str(r.reader.directory) for r in runs)})")
    chosen = _named(available, videos) if videos else _most_disagreeing(data, runs, available, to_shown, num_videos)
    rows = [(video.name, stem) for video in chosen for stem in _spaced(video.frames, frames)]
    figure = _draw(data, split, runs, rows, to_shown)
    paths = [out.with_suffix(".png"), out.with_suffix(".pdf")]
    for path in paths:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=path.suffix[1:], dpi=200, bbox_inches="tight")
        write_bytes(path, buffer.getvalue())
    return Figure(panels=sum(1 for ax in figure.axes if ax.images), paths=paths, videos=[video.name for video in chosen])


def _check_made_on(run: RunPredictions, split: Split, dataset: str) -> None:
    """Predictions saved by `ovbench run` sit beside their run's state, which names the split
    and the data they were made on: drawn over another split's ground truth (another
    vocabulary) or another data set's frames, a figure would show what no run predicted."""
    fingerprint = run.reader.directory.with_suffix(".state") / FINGERPRINT
    try:
        made = json.loads(fingerprint.read_text())
    except (OSError, ValueError):
        return  # predictions from elsewhere (`ovbench score` input): nothing to check against
    made_split, made_data = (made.get("split") or {}).get("hash"), (made.get("dataset") or {}).get("name")
    if made_split != split.hash:
        raise ConfigError(f"run {run.name}: its predictions were made on split {made['split'].get('name')} ({made_split}),"
                          f" not on --split {split.name} ({split.hash}); pass the run's split")
    if made_data != dataset:
        raise ConfigError(f"run {run.name}: its predictions were made on data {made_data}, but --data-root holds {dataset}")


def _display_lut(split: Split) -> np.ndarray:
    """Converted id -> the id shown: the same id inside the split's vocabulary, IGNORE outside
    it (the ground truth there is not scored, so it is not drawn either)."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[list(split.vocabulary)] = list(split.vocabulary)
    return lut


def _named(available: list[VideoFrames], names: list[str]) -> list[VideoFrames]:
    by_name = {video.name: video for video in available}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DataError(f"--videos {', '.join(missing)}: not in the split with predictions in every run")
    return [by_name[name] for name in names]


def _spaced(stems: tuple[str, ...], count: int) -> list[str]:
    """`count` frames spread evenly from the first to the last."""
    picks = np.linspace(0, len(stems) - 1, min(count, len(stems))).round().astype(int)
    return [stems[i] for i in sorted(set(picks.tolist()))]


def _most_disagreeing(data: VideoDataset, runs: list[RunPredictions], available: list[VideoFrames],
                      to_shown: np.ndarray, count: int) -> list[VideoFrames]:
    """The `count` videos with the largest share of labelled pixels where the runs do not all
    agree (a single run: where it differs from the ground truth); ties in split order."""
    def disagreement(video: VideoFrames) -> float:
        differing = labelled = 0
        for stem in _spaced(video.frames, SCORED_FRAMES):
            truth = to_shown[data.read_mask(video.name, stem)]
            predictions = [run.read(video.name, stem, truth.shape) for run in runs]
            reference = predictions[0] if len(runs) > 1 else truth
            valid = truth != IGNORE
            differing += int((np.any([p != reference for p in predictions], axis=0) & valid).sum())
            labelled += int(valid.sum())
        return differing / max(labelled, 1)

    scores = [disagreement(video) for video in available]
    order = sorted(range(len(available)), key=lambda i: (-scores[i], i))[:count]
    return [available[i] for i in sorted(order)]


def _draw(data: VideoDataset, split: Split, runs: list[RunPredictions], rows: list[tuple[str, str]], to_shown: np.ndarray):
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.patches import Patch

    columns = ["frame", "ground truth", *(run.name for run in runs)]
    figure = MplFigure(figsize=(PANEL_INCHES * len(columns), PANEL_INCHES * 0.75 * len(rows) + 0.3))
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    present: set[int] = set()
    for row, (video, stem) in enumerate(rows):
        truth = to_shown[data.read_mask(video, stem)]
        labels = [truth, *(run.read(video, stem, truth.shape) for run in runs)]
        present.update(np.unique(np.concatenate([label.ravel() for label in labels])).tolist())
        axes[row, 0].imshow(data.read_frame(video, stem))
        axes[row, 0].set_ylabel(f"{video}\n{stem}", fontsize=6)
        for column, label in enumerate(labels, start=1):
            axes[row, column].imshow(PALETTE[label], interpolation="nearest")
    for column, title in enumerate(columns):
        axes[0, column].set_title(title, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    names = class_names(split.dataset)
    handles = [Patch(facecolor=PALETTE[i] / 255, edgecolor="black", linewidth=0.3, label=names[i])
               for i in sorted(present - {IGNORE}) if i < len(names)]
    # below the panels, outside the figure: saving with bbox_inches="tight" grows the page to hold
    # it, however many classes it lists
    figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(6, max(1, len(handles))),
                  fontsize=6, frameon=False)
    figure.subplots_adjust(left=0.02, right=0.98, top=0.95, bottom=0.01, wspace=0.03, hspace=0.05)
    return figure
