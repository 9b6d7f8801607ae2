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
from collections import Counter
from functools import cache
from importlib import resources

import numpy as np

from ovbench.constants import IGNORE, WIDE_IGNORE
from ovbench.data.kinds import KINDS, DataKind, background_names, class_names
from ovbench.errors import ConfigError
from ovbench.resolve import names_a_file, split_fragment, user_file
from ovbench.suggest import did_you_mean, refuse_unknown_keys

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
    dataset: str = "vspw"  # the data set kind (ovbench.data.kinds.KINDS) the split reads
    videos: str = "all"  # VIDEO_SELECTIONS
    explicit_seen: bool = False  # its file lists the seen classes (else: every class not unseen)
    # names the model is given after the vocabulary's, with no class id: no ground-truth pixel is
    # ever one of them (OV2VSS's "background"), so predicting one is simply wrong for that pixel
    extra_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """How many names the model scores: the vocabulary's classes, then `extra_names`."""
        return len(self.vocabulary) + len(self.extra_names)

    num_dataset_classes: int = 124  # classes of its data set kind (its converted ids are 0..this-1)
    # names a model is prompted with for the vocabulary's last class, its background, besides
    # that class's own name (PAS-20b); empty: the prompts are the class names
    background_prompts: tuple[str, ...] = ()

    @property
    def prompts(self) -> tuple[str, ...]:
        """The names a model is given: the class names, the background's replaced by its prompts."""
        return self.class_names[:-1] + self.background_prompts if self.background_prompts else self.class_names

    def prompt_lut(self) -> np.ndarray | None:
        """Prompt index -> vocabulary index (every background prompt -> the background class:
        CAT-Seg's VOCbEvaluator rule); None when the prompts are the class names."""
        if not self.background_prompts:
            return None
        last = len(self.vocabulary) - 1
        return np.minimum(np.arange(len(self.prompts)), last).astype(np.uint8 if last < IGNORE else np.uint16)

    @property
    def kind(self) -> DataKind:
        """The row of the data set kind the split reads (whether its samples are images, ...)."""
        return KINDS[self.dataset]

    @property
    def wide(self) -> bool:
        """Its data set's class ids exceed 255 (A-847, PC-459): 16-bit labels, ignore 65535."""
        return self.num_dataset_classes > IGNORE

    def gt_lut(self) -> np.ndarray:
        """Converted id -> vocabulary index; classes outside the vocabulary are ignored (256
        uint8 entries, 255 = not counted; 65536 uint16 entries, 65535 = not counted, for a
        data set of more than 255 classes)."""
        size, ignore, dtype = (65536, WIDE_IGNORE, np.uint16) if self.wide else (256, IGNORE, np.uint8)
        lut = np.full(size, ignore, dtype=dtype)
        lut[list(self.vocabulary)] = np.arange(len(self.vocabulary), dtype=dtype)
        return lut

    def to_global(self) -> np.ndarray:
        """Vocabulary index -> converted id; an extra name (no class) -> the ignore id (void)."""
        ignore, dtype = (WIDE_IGNORE, np.uint16) if self.wide else (IGNORE, np.uint8)
        return np.asarray([*self.vocabulary, *[ignore] * len(self.extra_names)], dtype=dtype)

    def seen_index(self) -> list[int]:
        seen = set(self.seen)
        return [i for i, c in enumerate(self.vocabulary) if c in seen]

    def unseen_index(self) -> list[int]:
        unseen = set(self.unseen)
        return [i for i, c in enumerate(self.vocabulary) if c in unseen]

    def summary(self) -> dict:
        """The record's view of the split (the prompts only where they are not the class names)."""
        prompts = {"prompts": len(self.prompts), "background_prompts": list(self.background_prompts)}
        return {
            "name": self.name,
            "protocol": self.protocol,
            "version": self.version,
            "hash": self.hash,
            "subset": self.subset,
            "vocabulary_size": self.num_classes,
            **(prompts if self.background_prompts else {}),
        }


def _canonical_hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _build(name: str, spec: dict, protocol: dict, source: str) -> Split:
    dataset = protocol.get("dataset", "vspw")
    names = class_names(dataset)
    where = f"{source}: split {name!r}"
    unseen = sorted(protocol["unseen"])
    explicit_seen = "seen" in protocol
    seen = sorted(protocol["seen"]) if explicit_seen else [c for c in range(len(names)) if c not in set(unseen)]
    everything = sorted(seen + unseen) if explicit_seen else list(range(len(names)))
    vocabulary = {"seen": seen, "unseen": unseen, "all": everything}[spec["vocabulary"]]
    if not vocabulary:
        raise ConfigError(f"{where}: its {spec['vocabulary']!r} vocabulary is empty")
    videos = spec.get("videos", "all")
    extra = tuple(spec.get("extra_names", ()))
    clash = sorted(set(extra) & {names[c] for c in vocabulary}) or sorted(n for n, k in Counter(extra).items() if k > 1)
    if clash:
        raise ConfigError(f"{where}: extra name(s) {clash} repeat a name of the vocabulary")
    defining = {
        "name": name,
        "protocol": protocol["protocol"],
        "version": protocol["version"],
        "subset": spec["subset"],
        "vocabulary": vocabulary,
        "unseen": unseen,
    }
    if explicit_seen:  # only then, so that the shipped splits keep the hashes their records carry
        defining["seen"] = seen
    # likewise only what differs from the defaults, so that the hashes of VSPW splits stay as they were
    defining.update({k: v for k, v in (("dataset", dataset), ("videos", videos), ("extra_names", list(extra)))
                     if v != Split.__dataclass_fields__[k].default and v != []})
    return Split(
        name=name,
        protocol=protocol["protocol"],
        version=protocol["version"],
        hash=_canonical_hash(defining),
        provenance=protocol.get("provenance", ""),
        subset=spec["subset"],
        vocabulary=tuple(vocabulary),
        seen=tuple(seen),
        unseen=tuple(unseen),
        class_names=tuple(names[c] for c in vocabulary) + extra,
        dataset=dataset,
        extra_names=extra,
        videos=videos,
        explicit_seen=explicit_seen,
        num_dataset_classes=len(names),
        background_prompts=tuple(background_names(dataset)) if vocabulary[-1] == len(names) - 1 else (),
    )


def protocol_file(split: Split) -> dict:
    """The contents of a split file that defines exactly `split` (loaded back: the same hash),
    so a run can keep its split beside its state and need neither the user's file nor its path."""
    kind = "unseen" if split.vocabulary == split.unseen else "seen" if split.vocabulary == split.seen else "all"
    entry = {"subset": split.subset, "vocabulary": kind}
    if split.videos != Split.videos:
        entry["videos"] = split.videos
    if split.extra_names:
        entry["extra_names"] = list(split.extra_names)
    protocol = {"protocol": split.protocol, "version": split.version, "provenance": split.provenance, "unseen": list(split.unseen)}
    if split.explicit_seen:
        protocol["seen"] = list(split.seen)
    if split.dataset != Split.dataset:
        protocol["dataset"] = split.dataset
    return {**protocol, "splits": {split.name: entry}}


def _is_id_list(value) -> bool:
    return isinstance(value, list) and all(type(c) is int for c in value)


# key -> (required, check, what the value must be). A new key is one line here.
PROTOCOL_KEYS = {
    "protocol": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "version": (True, lambda v: type(v) is int, "an integer"),
    "title": (False, lambda v: isinstance(v, str), "a string"),
    "provenance": (False, lambda v: isinstance(v, str), "a string"),
    "dataset": (False, lambda v: v in KINDS, f"one of {', '.join(KINDS)} (the data set kind; vspw if absent)"),
    "unseen": (True, _is_id_list, "a list of class ids (integers)"),
    "seen": (False, _is_id_list, "a list of class ids (integers); without it, every class not unseen"),
    "splits": (True, lambda v: isinstance(v, dict) and bool(v), 'an object mapping each split name to {"subset": ..., "vocabulary": ...}'),
}
SPLIT_KEYS = {
    "subset": (True, lambda v: v in SUBSETS, f"one of {', '.join(SUBSETS)}"),
    "vocabulary": (True, lambda v: v in VOCABULARIES, f"one of {', '.join(VOCABULARIES)}"),
    "videos": (False, lambda v: v in VIDEO_SELECTIONS, f"one of {', '.join(VIDEO_SELECTIONS)} (all if absent)"),
    "extra_names": (False, lambda v: isinstance(v, list) and all(isinstance(n, str) and n for n in v),
                    "a list of names given to the model after the vocabulary's, of no class (no ground truth)"),
}


def _check_keys(given, table: dict, where: str) -> None:
    """Refuse what is not an object, an unknown key (a typo would silently change nothing), a
    missing key, or a value of the wrong kind, naming the key."""
    if not isinstance(given, dict):
        raise ConfigError(f"{where} must be a JSON object, not {type(given).__name__}")
    refuse_unknown_keys(given, table, where)
    for key, (required, valid, expected) in table.items():
        if key not in given:
            if required:
                raise ConfigError(f"{where} lacks {key!r} ({expected})")
        elif not valid(given[key]):
            raise ConfigError(f"{where}: {key!r} must be {expected}, not {json.dumps(given[key])[:60]}")


def _check_ids(protocol: dict, source: str) -> None:
    count = len(class_names(protocol.get("dataset", "vspw")))
    for key in ("unseen", "seen"):
        ids = protocol.get(key, [])
        repeated = sorted(c for c, n in Counter(ids).items() if n > 1)
        if repeated:
            raise ConfigError(f"{source}: {key!r} lists class id(s) {repeated} more than once")
        outside = sorted(c for c in ids if not 0 <= c < count)
        if outside:
            raise ConfigError(f"{source}: {key!r} has class id(s) {outside} outside 0..{count - 1}")
    both = sorted(set(protocol.get("seen", [])) & set(protocol["unseen"]))
    if both:
        raise ConfigError(f"{source}: class id(s) {both} are both seen and unseen")


class _DuplicateKey(Exception):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """json's default keeps the last of two equal keys: a split defined twice would silently
    lose its first definition."""
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _read_protocol(data: bytes, source: str) -> dict:
    try:
        protocol = json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err})") from None
    except _DuplicateKey as err:
        raise ConfigError(f"{source}: {str(err)!r} is defined twice") from None
    _check_keys(protocol, PROTOCOL_KEYS, source)
    for name, spec in protocol["splits"].items():
        if not name.strip() or "#" in name:
            raise ConfigError(f"{source}: split name {name!r} must be non-empty and without '#'")
        _check_keys(spec, SPLIT_KEYS, f"{source}: split {name!r}")
    _check_ids(protocol, source)
    return protocol


def _splits_of(protocol: dict, source: str) -> dict[str, Split]:
    return {name: _build(name, spec, protocol, source) for name, spec in protocol["splits"].items()}


@cache
def builtin_splits() -> dict[str, Split]:
    found: dict[str, Split] = {}
    for entry in sorted(resources.files("ovbench.splits").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            source = f"ovbench/splits/{entry.name}"
            for name, split in _splits_of(_read_protocol(entry.read_bytes(), source), source).items():
                if name in found:
                    raise ConfigError(f"{source}: split {name!r} is already defined by protocol {found[name].protocol!r}")
                found[name] = split
    return found


def list_splits() -> list[Split]:
    return list(builtin_splits().values())


def load_split(name_or_path: str) -> Split:
    """A built-in split by name, or a user's protocol file: `path.json` (one split) or
    `path.json#split_name`. A file's split remembers its absolute path, so the same file named
    from another folder (or as ./mine.json) is the same split."""
    path_part, wanted = split_fragment(name_or_path)
    if not names_a_file(path_part, builtin_splits()):
        if name_or_path not in builtin_splits():
            raise ConfigError(
                f"unknown split {name_or_path!r}{did_you_mean(name_or_path, builtin_splits())}; see `ovbench ls splits`"
            )
        return dataclasses.replace(builtin_splits()[name_or_path], source=name_or_path)
    path = user_file(path_part, "split file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"split file {path}: cannot read ({err.strerror})") from None
    splits = _splits_of(_read_protocol(data, str(path)), str(path))
    if not wanted:
        if len(splits) != 1:
            raise ConfigError(f"{path} defines {len(splits)} splits; pick one with {path}#NAME ({', '.join(splits)})")
        wanted = next(iter(splits))
    if wanted not in splits:
        raise ConfigError(f"{path} has no split {wanted!r}{did_you_mean(wanted, splits)}")
    return dataclasses.replace(splits[wanted], source=f"{path}#{wanted}")
