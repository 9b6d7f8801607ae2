"""The image benchmarks' split files (`splits/images/`, outside the folder `builtin_splits`
loads until the kinds table knows these kinds): each names its kind, uses only the keys the
split loader accepts, covers the kind's whole vocabulary, and has the pinned hash that
`ovbench.splits` will give it (the same canonical rule, written out here)."""

import hashlib
import json
from pathlib import Path

import pytest

from ovbench.data.images import IMAGE_KINDS
from ovbench.split import PROTOCOL_KEYS, SPLIT_KEYS, builtin_splits

FOLDER = Path(__file__).resolve().parents[2] / "splits" / "images"
PINNED_HASHES = {
    "ade150_val": "sha256:3b961ab13f3c5db739df705d20b1764be1cb0bb5b355498a42211b4bcf2bbe09",
    "ade847_val": "sha256:e25ee88e82c137cc6d9c21835c465ba2d2ed16232bdbd4e995c8f9268d38467d",
    "cityscapes_val": "sha256:cdc35d4cf11d9a5da3cc6e3883c62f30658536ada11261a13f5d43ce2aacc928",
    "cocostuff171_train": "sha256:1eec70b8c586e877bb2d56de0443eb9ae66a7513ebf5c34afdec15eb6da3f96f",
    "cocostuff171_val": "sha256:aaac3be28835e21d3d30a845614b2d4b68abb23b9c86c690131163e793ccbd53",
    "pc459_val": "sha256:5da30945b9773e01dfc16c71b5bdafd0a8363163b71d2ca01c4d3979ea2d5528",
    "pc59_val": "sha256:aecfc8564cca27e85c3bc1fa31092440b127ee2d48b50de489c37340a05d2546",
    "voc20_val": "sha256:1f365bac4aec1d2416f1e0034b404c6887a53fdbf75571b6621c62c577a4463c",
    "voc20b_val": "sha256:d908eb660c0a575e2ddf95472a25747e1757fbbb5ec9226c5f1f8ed9476dcb7e",
    "voc21_val": "sha256:5e258dcaacc97bee49c0fc451ac9eeed5a611f155aef896be53922a5a623b611",
}


def files():
    return sorted(FOLDER.glob("*.json"))


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
        assert "sha256:" + hashlib.sha256(text.encode()).hexdigest() == PINNED_HASHES[name]


def test_the_built_in_splits_still_load():
    assert "coco_val" in builtin_splits() and "ade150_val" not in builtin_splits()
