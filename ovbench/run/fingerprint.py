"""What makes a run this run: the fingerprint that names its record and state, and decides
whether a finished record can be reused, a state resumed or states merged. It covers everything
that can change a number (the adapter's code, ovbench's commit, model arguments and weights, the
split's content, the data's identity, the options that change metrics) and nothing that cannot
(the data's root path, the batch size), so a moved data set resumes and an edited plugin does not."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

from ovbench import __version__
from ovbench.api import SegmentationModel
from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import DataError
from ovbench.fileio import file_sha256
from ovbench.modelargs import args_to_dict
from ovbench.records.provenance import git_info
from ovbench.records.read import load_record
from ovbench.records.write import content_sha256
from ovbench.split import Split


def describe_model(model_id: str, model: SegmentationModel) -> dict[str, Any]:
    """The record's (and the fingerprint's) view of a model: what it is, down to its code, and
    its parameter count where the adapter has one (a model without torch modules, like the golden
    test's toy, has none: its record stays as it was)."""
    weights = model.weights()
    parameters = model.parameters()
    return {
        "id": model_id,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "source_sha256": adapter_source_sha256(type(model)),
        "args": args_to_dict(model.args),
        "weights": weights.source,
        "weights_sha256": weights.sha256,
        "random_init": weights.random_init,
        "backbone": weights.backbone,
        **({"text_encoder": weights.text_encoder} if weights.text_encoder is not None else {}),
        **({"training": weights.training} if weights.training is not None else {}),
        **({"random_parts": weights.random_parts} if weights.random_parts else {}),
        **({"parameters": parameters} if parameters is not None else {}),
    }


def adapter_source_sha256(cls: type) -> str | None:
    """sha256 over the source files of the adapter class and of every adapter class it
    inherits from (a `--plugin` file, the module of a built-in): an edited `predict` is another
    run. By module and class name, not path, so a moved checkout or venv still resumes.
    None when a class has no source file (defined in an interactive session)."""
    digest = hashlib.sha256()
    for klass in cls.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, SegmentationModel)) or klass.__module__ == SegmentationModel.__module__:
            continue
        try:
            source = Path(inspect.getsourcefile(klass) or "").read_bytes()
        except (OSError, TypeError):
            return None
        digest.update(f"{klass.__module__}.{klass.__qualname__}\n".encode())
        digest.update(hashlib.sha256(source).digest())
    return digest.hexdigest()


def split_identity(split: Split) -> dict[str, Any]:
    """A split file by resolved path and content, a built-in split by name: `load_split` already
    gave a file's split its absolute `path.json#name` (so `./mine.json#x` and `mine.json#x` are
    the same run) and a built-in one its name. The content is `hash` (and a copy in the run state)."""
    return {"name": split.name, "hash": split.hash, "source": split.source or split.name}


def run_fingerprint(model_info: dict[str, Any], split: Split, dataset_name: str, data: VideoDataset, videos: list[VideoFrames],
                    options: dict[str, Any]) -> dict[str, Any]:
    """Everything that changes the numbers (`options`: the run options that do); a resume or
    merge must match it exactly, and a finished run with the same fingerprint is reused
    instead of recomputed."""
    return {
        "model": model_info,
        "ovbench": {"version": __version__, "git": git_info()},
        "split": split_identity(split),
        "dataset": {"name": dataset_name},
        "videos": data_identity(data, videos, split.subset),
        "options": options,
    }


def finished_record(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a finished run with this fingerprint, if `path` holds one (a damaged or
    foreign file there is recomputed and replaced). A record that skipped videos (a broken video,
    a `merge --partial`) is never reused: the rerun resumes and retries what is missing."""
    if not path.is_file():
        return None
    try:
        record = load_record(path)
    except DataError:
        return None
    if (record.get("dataset") or {}).get("skipped"):
        return None
    made_by = record.get("run") if isinstance(record.get("run"), dict) else {}
    return record if made_by.get("fingerprint_sha256") == content_sha256(fingerprint) else None


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # a missing or unreadable file: its video is skipped, and named, later
        return 0


def data_identity(data: VideoDataset, videos: list[VideoFrames], subset: str) -> dict[str, Any]:
    """What the data is, not where: video names, frame counts and the bytes of their frames and
    masks, and the content of the small files that decide a label or a subset's videos (a COCO
    annotation file, a video list: `label_files`), so a re-encoded, re-converted or re-annotated
    data set is another run while a moved one (another root path, another node's mount) still
    resumes and merges. Asked through the reader's paths, so it holds for every data set kind."""
    lines = []
    for video in videos:
        size = sum(_file_bytes(data.frame_path(video.name, f)) + _file_bytes(data.mask_path(video.name, f)) for f in video.frames)
        lines.append(f"{video.name}:{len(video.frames)}:{size}")
    for path in data.label_files(subset):
        lines.append(f"{path.name}:{file_sha256(path) if path.is_file() else 'absent'}")
    return {"sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(), "names": [v.name for v in videos]}
