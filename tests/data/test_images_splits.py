"""The image benchmarks' split files (`splits/<kind>.json`, built-in splits): each names its
kind, uses only the keys the split loader accepts, covers the kind's whole vocabulary, and has
the hash `ovbench.splits` gives it by the canonical rule, written out here (tests/test_splits.py pins them)."""

import hashlib
import json
from pathlib import Path

import pytest

from ovbench.data.images import IMAGE_KINDS
from ovbench.split import PROTOCOL_KEYS, SPLIT_KEYS, builtin_splits

FOLDER = Path(__file__).resolve().parents[2] / "splits"


def files():
    return sorted(p for p in FOLDER.glob("*.json") if p.stem in IMAGE_KINDS)


def test_one_file_per_kind():
    assert [p.stem for p in files()] == sorted(IMAGE_KINDS)


@pytest.mark.parametrize("path", files(), ids=lambda p: p.stem)
def test_a_split_file_is_well_formed(path):
    protocol = json.loads(path.read_text())
    assert set(protocol) <= set(PROTOCOL_KEYS) and protocol["dataset"] == path.stem
    kind = IMAGE_KINDS[protocol["dataset"]]
    assert protocol["unseen"] == [] and isinstance(protocol["version"], int)
    for name, spec in protocol["splits"].items():
        assert set(spec) <= set(SPLIT_KEYS) and spec["subset"] in kind.subsets and spec["vocabulary"] == "all"
        defining = {"name": name, "protocol": protocol["protocol"], "version": protocol["version"],
                    "subset": spec["subset"], "vocabulary": list(range(kind.num_classes)), "unseen": [],
                    "dataset": kind.name}
        text = json.dumps(defining, sort_keys=True, separators=(",", ":"))
        assert "sha256:" + hashlib.sha256(text.encode()).hexdigest() == builtin_splits()[name].hash


def test_they_are_the_built_in_splits_of_the_image_kinds():
    found = {split.dataset for split in builtin_splits().values()}
    assert set(IMAGE_KINDS) <= found and "coco_val" in builtin_splits()
