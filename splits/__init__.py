"""Seen/unseen split definitions, loaded from data files and identified by a content hash.

A protocol file (ovbench/splits/<protocol>.json, or a user's file) lists the unseen classes
and the splits built from them; the seen classes are the other classes of the file's data set
(`"dataset"`: vspw by default, vipseg or coco). Every record carries the split's version and
hash, so two numbers are only compared when they were measured on the same definition.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..data.datasets import KINDS, class_names
from ..data.vspw import IGNORE
from ..errors import ConfigError
from ..suggest import did_you_mean

VOCABULARIES = ("seen", "unseen", "all")
SUBSETS = ("train", "val", "test")
# "videos" of a training split: every video (novel pixels ignored: GKC's base_ignore), or only
# the videos without a pixel of an unseen class (base_delete).
VIDEO_SELECTIONS = ("all", "without_unseen")


@dataclasses.dataclass(frozen=True)
class Split:
    name: str
    protocol: str
    version: int
    hash: str
    provenance: str
    subset: str
    vocabulary: tuple[int, ...]
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    class_names: tuple[str, ...]
    source: str = ""  # what load_split was given (a name, or path.json#name), to load it again
    dataset: str = "vspw"  # the data set kind (ovbench.data.datasets.KINDS) the split reads
    videos: str = "all"  # VIDEO_SELECTIONS

    def gt_lut(self) -> np.ndarray:
        """Converted VSPW id -> vocabulary index; classes outside the vocabulary are ignored."""
        lut = np.full(256, IGNORE, dtype=np.uint8)
        lut[list(self.vocabulary)] = np.arange(len(self.vocabulary), dtype=np.uint8)
        return lut

    def seen_index(self) -> list[int]:
        seen = set(self.seen)
        return [i for i, c in enumerate(self.vocabulary) if c in seen]

    def unseen_index(self) -> list[int]:
        unseen = set(self.unseen)
        return [i for i, c in enumerate(self.vocabulary) if c in unseen]

    def summary(self) -> dict:
        """The record's view of the split."""
        return {
            "name": self.name,
            "protocol": self.protocol,
            "version": self.version,
            "hash": self.hash,
            "subset": self.subset,
            "vocabulary_size": len(self.vocabulary),
        }


def _canonical_hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _build(name: str, spec: dict, protocol: dict, source: str) -> Split:
    dataset = protocol.get("dataset", "vspw")
    names = class_names(dataset)
    unseen = sorted(set(protocol["unseen"]))
    if any(not (0 <= c < len(names)) for c in unseen):
        raise ConfigError(f"{source}: unseen ids must be converted {dataset} ids 0..{len(names) - 1}")
    seen = [c for c in range(len(names)) if c not in set(unseen)]
    vocabulary_kind = spec.get("vocabulary")
    subset = spec.get("subset")
    if vocabulary_kind not in VOCABULARIES:
        raise ConfigError(f"{source}: split {name!r} needs vocabulary one of {', '.join(VOCABULARIES)}")
    if subset not in SUBSETS:
        raise ConfigError(f"{source}: split {name!r} needs subset one of {', '.join(SUBSETS)}")
    videos = spec.get("videos", "all")
    if videos not in VIDEO_SELECTIONS:
        raise ConfigError(f"{source}: split {name!r}: videos must be one of {', '.join(VIDEO_SELECTIONS)}")
    vocabulary = {"seen": seen, "unseen": unseen, "all": list(range(len(names)))}[vocabulary_kind]
    defining = {
        "name": name,
        "protocol": protocol["protocol"],
        "version": protocol["version"],
        "subset": subset,
        "vocabulary": vocabulary,
        "unseen": unseen,
    }
    # only what differs from the defaults, so that the hashes of VSPW splits stay as they were
    defining.update({k: v for k, v in (("dataset", dataset), ("videos", videos))
                     if v != Split.__dataclass_fields__[k].default})
    return Split(
        name=name,
        protocol=protocol["protocol"],
        version=int(protocol["version"]),
        hash=_canonical_hash(defining),
        provenance=protocol.get("provenance", ""),
        subset=subset,
        vocabulary=tuple(vocabulary),
        seen=tuple(seen),
        unseen=tuple(unseen),
        class_names=tuple(names[c] for c in vocabulary),
        dataset=dataset,
        videos=videos,
    )


def _read_protocol(text: str, source: str) -> dict:
    try:
        protocol = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err})") from None
    for key in ("protocol", "version", "unseen", "splits"):
        if key not in protocol:
            raise ConfigError(f"{source}: split file lacks {key!r}")
    if not isinstance(protocol["version"], int) or not isinstance(protocol["protocol"], str):
        raise ConfigError(f"{source}: 'protocol' must be a string and 'version' an integer")
    if protocol.get("dataset", "vspw") not in KINDS:
        raise ConfigError(f"{source}: 'dataset' must be one of {', '.join(KINDS)}")
    if not isinstance(protocol["unseen"], list) or not all(type(c) is int for c in protocol["unseen"]):
        raise ConfigError(f"{source}: 'unseen' must be a list of converted VSPW ids (integers)")
    if not isinstance(protocol["splits"], dict) or not all(isinstance(v, dict) for v in protocol["splits"].values()):
        raise ConfigError(f"{source}: 'splits' must map each split name to {{\"subset\": ..., \"vocabulary\": ...}}")
    return protocol


def _splits_of(protocol: dict, source: str) -> dict[str, Split]:
    return {name: _build(name, spec, protocol, source) for name, spec in protocol["splits"].items()}


@cache
def builtin_splits() -> dict[str, Split]:
    found: dict[str, Split] = {}
    for entry in sorted(resources.files("ovbench.splits").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            source = f"ovbench/splits/{entry.name}"
            found.update(_splits_of(_read_protocol(entry.read_text(), source), source))
    return found


def list_splits() -> list[Split]:
    return list(builtin_splits().values())


def load_split(name_or_path: str) -> Split:
    """A built-in split by name, or a user's protocol file: `path.json` (one split) or
    `path.json#split_name`."""
    return dataclasses.replace(_find_split(name_or_path), source=name_or_path)


def _find_split(name_or_path: str) -> Split:
    path_part, _, wanted = name_or_path.partition("#")
    if path_part.endswith(".json") or Path(path_part).is_file():
        path = Path(path_part).expanduser()
        if not path.is_file():
            raise ConfigError(f"split file {path} does not exist")
        splits = _splits_of(_read_protocol(path.read_text(), str(path)), str(path))
        if not wanted:
            if len(splits) != 1:
                raise ConfigError(f"{path} defines {len(splits)} splits; pick one with {path}#NAME ({', '.join(splits)})")
            return next(iter(splits.values()))
        if wanted not in splits:
            raise ConfigError(f"{path} has no split {wanted!r}{did_you_mean(wanted, splits)}")
        return splits[wanted]
    splits = builtin_splits()
    if name_or_path not in splits:
        raise ConfigError(f"unknown split {name_or_path!r}{did_you_mean(name_or_path, splits)}; see `ovbench ls splits`")
    return splits[name_or_path]
