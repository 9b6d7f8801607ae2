"""Split definitions: the published class lists, vocabularies, ignore rules and hashes."""

import json

import numpy as np
import pytest

from ovbench.data.vspw import load_class_names
from ovbench.errors import ConfigError
from ovbench.split import list_splits, load_split

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


def test_ov2vss_paper_vocabularies_add_a_background_name():
    """OV2VSS's class-name files: 80 + "background" seen, 44 + "background" unseen
    (shared/reference/field.md 1.1); background is no class, so no ground truth maps to it."""
    for name, classes, first in (("ov2vss_seen_paper", 80, "wall"), ("ov2vss_unseen_paper", 44, "trash_can")):
        paper, plain = load_split(name), load_split(name.removesuffix("_paper"))
        assert paper.num_classes == classes + 1 and len(paper.vocabulary) == classes
        assert paper.class_names == (*plain.class_names, "background") and paper.class_names[0] == first
        assert paper.vocabulary == plain.vocabulary and paper.hash != plain.hash
        assert classes not in set(paper.gt_lut().tolist())  # no converted id maps to the background index
        assert paper.to_global()[classes] == 255 and paper.summary()["vocabulary_size"] == classes + 1


def test_extra_names_must_not_repeat_a_class(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"protocol": "mine", "version": 1, "unseen": [0, 1],
                                "splits": {"mine_unseen": {"subset": "val", "vocabulary": "unseen", "extra_names": ["wall"]}}}))
    with pytest.raises(ConfigError, match=r"extra name\(s\) \['wall'\] repeat a name of the vocabulary"):
        load_split(str(path))


def test_lut_maps_vocabulary_and_ignores_the_rest():
    split = load_split("vspw_unseen")
    lut = split.gt_lut()
    assert lut[11] == 0 and lut[122] == 11 and lut[0] == 255 and lut[255] == 255
    assert (lut != 255).sum() == 12
    everything = load_split("vspw_all")
    assert np.array_equal(everything.gt_lut()[:124], np.arange(124))
    assert everything.seen_index() == list(split.seen) and everything.unseen_index() == list(split.unseen)


def test_a_split_of_more_than_255_classes_has_a_16_bit_lut():
    wide, narrow = load_split("ade847_val"), load_split("ade150_val")
    lut = wide.gt_lut()
    assert lut.shape == (65536,) and lut.dtype == np.uint16 and wide.wide and not narrow.wide
    assert np.array_equal(lut[:847], np.arange(847)) and (lut[847:] == 65535).all()
    assert load_split("pc459_val").gt_lut().shape == (65536,)
    assert narrow.gt_lut().shape == (256,) and narrow.gt_lut()[150] == 255


# Records are compared only when their split hashes match: a change to any of these changes
# which numbers count as comparable, so it must be deliberate (a new version of the protocol).
PINNED_HASHES = {
    "ov2vss_seen": "sha256:d2d2fa643a9639c5fef4c03d7e77f987bed9729ee9830294af98d30cfb28a7f0",
    "ov2vss_unseen": "sha256:ba967193193fe8b20bd93ab8b8a4935a1bfc36a63f7c35523c83ede42fd7623c",
    "ov2vss_all": "sha256:6716fc7898f093694ed1834fc2918a7870f83457590a3d29e97563ff0351a2c2",
    "ov2vss_train_seen": "sha256:519ebac7dd0138aeaff3e3ad9e2544000afa25761e231c46812a581fe47c05f2",
    "ov2vss_seen_paper": "sha256:4d49149cb9bd55113ebe29c086cbfad6998b0c7ad0a0079b89579ffe14297a8f",
    "ov2vss_unseen_paper": "sha256:0dc6c8a42b2a2d87d457a0d5ed74104359a19938a8fbaf0684b551394e3490a3",
    "vspw_seen": "sha256:b30ba0dd07d6c3740b35683aff956370d40abefd9258cd865c8d36b9fb4677b9",
    "vspw_unseen": "sha256:cf34f11db04620bdc457012acc61fc72ad889e6dbfe309c327d59a3ec0448480",
    "vspw_all": "sha256:4ce432beb1b232c05102d87917aa8ca202cda624124aaf4401f24ee47f93c0e3",
    "vspw_train_seen": "sha256:0b91ad7564bbe8d194b86e4a94ebdf8fe5ba4a728fe8663c87a6b0bc7296bd1a",
    "vipseg_seen": "sha256:14ca8d7d5665cede4c750401221a6152f0fd2f4b42899a12737a5e460e0bef5b",
    "vipseg_unseen": "sha256:d830524cfe4352be22c64d9761cc99242e87006277bf3ea79c2b4f3321829405",
    "vipseg_all": "sha256:4b6b82a4ce8ab4af72ba7514cde09c4df41e2e14e39d0ef7839212c75436f791",
    "vipseg_train_seen": "sha256:90571c1b8a235035c32e53370c47bbbd8be756a2104856a75bba5482d5c8c342",
    "vipseg_train_seen_delete": "sha256:541966710f6a82f8644c16fe57339bcf2330beeaf09fb7979ecaaf797968df32",
    "coco_train": "sha256:8a42335ee543d8d21958b4cd2f7d6f0b19ea63c201ff68f811284ee921aef020",
    "coco_val": "sha256:6588458f2beaed937524d6ad4777bbf9c39809b6628b8797feaae53209b9591d",
    # the image benchmarks (issue 21)
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


def test_every_shipped_split_has_its_pinned_hash():
    assert {s.name: s.hash for s in list_splits()} == PINNED_HASHES


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


def _protocol(**changes):
    base = {"protocol": "mine", "version": 1, "unseen": [0, 1], "splits": {"mine_unseen": {"subset": "val", "vocabulary": "unseen"}}}
    base.update(changes)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    "content, message",
    [
        (_protocol(seen=[1, 2, 3]), r"class id\(s\) \[1\] are both seen and unseen"),
        (_protocol(unseen=[3, 4, 3]), r"'unseen' lists class id\(s\) \[3\] more than once"),
        (_protocol(unseen=[0, 124]), r"'unseen' has class id\(s\) \[124\] outside 0..123"),
        (_protocol(unseen=[-1]), r"outside 0..123"),
        (_protocol(unseen=[True]), "'unseen' must be a list of class ids"),
        (_protocol(unseen=[]), "split 'mine_unseen': its 'unseen' vocabulary is empty"),
        (_protocol(seen=[], splits={"s": {"subset": "val", "vocabulary": "seen"}}), "split 's': its 'seen' vocabulary is empty"),
        (_protocol(unseen=list(range(124)), splits={"s": {"subset": "val", "vocabulary": "seen"}}), "vocabulary is empty"),
        (_protocol(unsen=[1]), "unknown key 'unsen' \\(did you mean unseen"),
        (_protocol(splits={"s": {"subset": "val", "vocabulary": "all", "subsett": "x"}}), "split 's': unknown key 'subsett'"),
        (_protocol(splits={"s": {"subset": "dev", "vocabulary": "all"}}), "split 's': 'subset' must be one of train, val, test"),
        (_protocol(splits={"s": {"vocabulary": "all"}}), "split 's' lacks 'subset'"),
        (_protocol(splits={"s": ["val", "all"]}), "split 's' must be a JSON object, not list"),
        (_protocol(splits={}), "'splits' must be an object"),
        (_protocol(splits={"a#b": {"subset": "val", "vocabulary": "all"}}), "without '#'"),
        (_protocol(version=True), "'version' must be an integer"),
        (_protocol(version="1"), "'version' must be an integer"),
        (_protocol(protocol=""), "'protocol' must be a non-empty string"),
        (_protocol(dataset=3), "'dataset' must be one of vspw, vipseg, coco"),
        (b'{"protocol": "mine", "version": 1, "unseen": [0], "splits": {"s": {"subset": "val", "vocabulary": "all"}, "s": {"subset": "train", "vocabulary": "seen"}}}', "'s' is defined twice"),
        (b'{"protocol": "mine", "protocol": "other", "version": 1, "unseen": [0], "splits": {"s": {"subset": "val", "vocabulary": "all"}}}', "'protocol' is defined twice"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"vspw_unseen"', "must be a JSON object, not str"),
        (b"{}", "lacks 'protocol'"),
        (b'{"protocol": "caf\xe9"}', "not UTF-8 text"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"", "not valid JSON"),
        (b'{"protocol": ', "not valid JSON"),
    ],
    ids=['seen-unseen-overlap', 'duplicate-id', 'id-too-large', 'negative-id', 'bool-id', 'empty-unseen', 'empty-seen', 'everything-unseen', 'unknown-key', 'unknown-split-key', 'bad-subset', 'missing-subset', 'split-not-object', 'no-splits', 'hash-in-name', 'bool-version', 'string-version', 'empty-protocol', 'dataset-not-a-kind', 'split-defined-twice', 'key-defined-twice', 'top-level-list', 'top-level-string', 'empty-object', 'latin1-bytes', 'utf16-bom', 'empty-file', 'truncated'],
)
def test_bad_split_files_get_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_split(f"{path}#mine_unseen")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_bad_split_file_through_the_cli_exits_2(tmp_path, capsys):
    from ovbench.cli import main

    path = tmp_path / "bad.json"
    path.write_bytes(_protocol(seen=[1]))
    assert main(["run", "--model", "clip-dense", "--split", f"{path}#mine_unseen", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "both seen and unseen" in err


def test_explicit_seen_list_defines_the_seen_and_all_vocabularies(tmp_path):
    path = tmp_path / "mine.json"
    path.write_bytes(_protocol(seen=[5, 3], dataset="vspw", splits={"s": {"subset": "val", "vocabulary": "seen"}, "a": {"subset": "val", "vocabulary": "all"}}))
    seen, everything = load_split(f"{path}#s"), load_split(f"{path}#a")
    assert seen.vocabulary == (3, 5) and everything.vocabulary == (0, 1, 3, 5)
    assert everything.seen_index() == [2, 3] and everything.unseen_index() == [0, 1]


def test_a_file_is_the_same_split_from_any_folder(tmp_path, monkeypatch):
    path = tmp_path / "mine.json"
    path.write_bytes(_protocol())
    monkeypatch.chdir(tmp_path)
    plain, dotted = load_split("mine.json#mine_unseen"), load_split("./mine.json#mine_unseen")
    assert plain == dotted and plain.source == f"{path}#mine_unseen"
    monkeypatch.chdir(tmp_path.parent)
    assert load_split(plain.source) == plain
    assert load_split(f"{tmp_path.name}/mine.json").source == plain.source


def test_a_builtin_name_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vspw_unseen").write_text("not a split")
    assert load_split("vspw_unseen").hash == PINNED_HASHES["vspw_unseen"]
    with pytest.raises(ConfigError, match="split file .*missing.json does not exist"):
        load_split("missing.json#x")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_split("folder.json")


def test_a_split_name_shipped_by_two_protocol_files_is_refused(tmp_path, monkeypatch):
    import ovbench.split as splits

    for protocol in ("one", "two"):
        (tmp_path / f"{protocol}.json").write_bytes(_protocol(protocol=protocol, splits={"same": {"subset": "val", "vocabulary": "all"}}))
    monkeypatch.setattr(splits.resources, "files", lambda package: tmp_path)
    splits.builtin_splits.cache_clear()
    try:
        with pytest.raises(ConfigError, match="two.json: split 'same' is already defined by protocol 'one'"):
            splits.builtin_splits()
    finally:
        monkeypatch.undo()
        splits.builtin_splits.cache_clear()


def test_a_split_written_back_as_a_file_has_the_same_hash(tmp_path):
    """What a run keeps beside its state: every shipped split, and a user's with its own seen list."""
    from ovbench.split import protocol_file

    mine = tmp_path / "mine.json"
    mine.write_bytes(_protocol(seen=[5, 3], dataset="vipseg", splits={"s": {"subset": "train", "vocabulary": "seen", "videos": "without_unseen"}}))
    for split in [*list_splits(), load_split(f"{mine}#s")]:
        copy = tmp_path / f"copy-{split.name}.json"
        copy.write_text(json.dumps(protocol_file(split)))
        again = load_split(f"{copy}#{split.name}")
        assert (again.hash, again.vocabulary, again.dataset, again.videos) == (split.hash, split.vocabulary, split.dataset, split.videos)
