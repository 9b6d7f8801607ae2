"""Split definitions: the published class lists, vocabularies, ignore rules and hashes."""

import json

import numpy as np
import pytest

from ovbench.data.vspw import load_class_names
from ovbench.errors import ConfigError
from ovbench.splits import list_splits, load_split

GKC_UNSEEN = ["pillar", "ice", "grandstand", "tyre", "box", "basket", "trash_can", "bathtub", "fan", "blackboard", "printer", "instrument"]


def test_every_protocol_has_its_four_splits():
    names = {s.name for s in list_splits()}
    for protocol in ("vspw", "ov2vss"):
        assert {f"{protocol}_{kind}" for kind in ("seen", "unseen", "all", "train_seen")} <= names


def test_gkc_split_is_the_published_one():
    unseen = load_split("vspw_unseen")
    assert list(unseen.class_names) == GKC_UNSEEN
    seen = load_split("vspw_seen")
    assert len(seen.vocabulary) == 112 and not set(seen.vocabulary) & set(unseen.vocabulary)
    assert load_split("vspw_train_seen").subset == "train"


def test_ov2vss_is_first_80_and_last_44():
    seen, unseen = load_split("ov2vss_seen"), load_split("ov2vss_unseen")
    assert seen.vocabulary == tuple(range(80)) and unseen.vocabulary == tuple(range(80, 124))
    names = load_class_names()
    assert (names[79], names[80], names[123]) == ("bag_or_package", "trash_can", "train")


def test_lut_maps_vocabulary_and_ignores_the_rest():
    split = load_split("vspw_unseen")
    lut = split.gt_lut()
    assert lut[11] == 0 and lut[122] == 11 and lut[0] == 255 and lut[255] == 255
    assert (lut != 255).sum() == 12
    everything = load_split("vspw_all")
    assert np.array_equal(everything.gt_lut()[:124], np.arange(124))
    assert everything.seen_index() == list(split.seen) and everything.unseen_index() == list(split.unseen)


def test_hashes_differ_between_splits_and_are_stable():
    hashes = [s.hash for s in list_splits()]
    assert len(set(hashes)) == len(hashes)
    assert load_split("vspw_all").hash == load_split("vspw_all").hash


def test_user_split_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"protocol": "mine", "version": 2, "unseen": [0, 1], "splits": {"mine_unseen": {"subset": "val", "vocabulary": "unseen"}, "mine_all": {"subset": "val", "vocabulary": "all"}}}))
    split = load_split(f"{path}#mine_unseen")
    assert split.class_names == ("wall", "ceiling") and split.version == 2 and split.source == f"{path}#mine_unseen"
    with pytest.raises(ConfigError, match="defines 2 splits"):
        load_split(str(path))
    with pytest.raises(ConfigError, match="did you mean mine_all"):
        load_split(f"{path}#mine_al")


def test_unknown_split_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean vspw_unseen"):
        load_split("vspw_unsen")
