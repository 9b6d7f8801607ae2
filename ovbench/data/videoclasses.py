"""Which classes each video contains: what GKC's base_delete training set is built from.

`vipseg_train_seen_delete` drops every training video with a pixel of an unseen class. The list
is computed from the masks rather than shipped as data, so it follows the user's copy of the
data (VIPSeg's annotations were refined after release) and works for any split file. Reading
every training mask once costs minutes on the full set, so the classes per video are cached in
`<cache>/video_classes/`, keyed by the data set's root; a video whose frame count changed is
read again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import numpy as np

from ovbench.constants import IGNORE
from ovbench.data.reader import VideoDataset
from ovbench.fileio import write_json


def video_classes(data: VideoDataset, video: str) -> list[int]:
    """Sorted converted ids present in any frame of `video` (void excluded)."""
    present = np.zeros(256, dtype=bool)
    for stem in data.frames(video):
        present[np.unique(data.read_mask(video, stem))] = True
    present[IGNORE] = False
    return np.flatnonzero(present).tolist()


def _cache_file(cache_dir: Path, data: VideoDataset) -> Path:
    key = hashlib.sha256(f"{type(data).__name__}:{Path(data.root).resolve()}".encode()).hexdigest()[:16]
    return cache_dir / "video_classes" / f"{key}.json"


def _load(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}  # a damaged cache is computed again


def videos_without(data: VideoDataset, videos: Iterable[str], classes: Iterable[int],
                   cache_dir: Path | None) -> list[str]:
    """The videos (in their order) with no pixel of `classes`."""
    banned = set(classes)
    path = _cache_file(cache_dir, data) if cache_dir is not None else None
    table = _load(path) if path is not None else {}
    changed = False
    kept = []
    for video in videos:
        frames = len(data.frames(video))
        entry = table.get(video)
        if not entry or entry.get("frames") != frames:
            entry = table[video] = {"frames": frames, "classes": video_classes(data, video)}
            changed = True
        if not banned.intersection(entry["classes"]):
            kept.append(video)
    if changed and path is not None:
        write_json(path, table)  # atomic: concurrent trainers never read half a file
    return kept
