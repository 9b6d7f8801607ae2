"""VIPSeg_720P: the official conversion against a plain per-pixel reference, the reader, the
dataset-kind checks, `data verify` with planted defects, and run + score end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import toy_adapters  # noqa: F401  (registers the toy models)
from PIL import Image

from ovbench.cli import main
from ovbench.data.kinds import detect_kind, open_dataset
from ovbench.data.roots import dataset_name
from ovbench.data.verify import verify_dataset
from ovbench.data.vipseg import THING_IDS, convert_panomask
from ovbench.errors import DataError
from ovbench.split import load_split

THINGS_FROM_REFERENCE = [2, 4, 8, 10, 41, 43, 44, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 60, 61, 62, 63, 64, 65, 72, 74,
                         76, 77, 78, 79, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 95, 96, 97, 99, 100, 101, 102, 106,
                         107, 108, 109, 114, 115, 116, 117, 118, 122, 123]


def reference_category(v: int) -> int:
    """create_panoptic_video_labels.py, one pixel: 0 is void; else (v if v < 125 else v // 100) - 1."""
    if v == 0:
        return 255
    category = (v if v < 125 else v // 100) - 1
    return category if category < 124 else 255


@pytest.fixture(scope="module")
def vipseg(vipseg_videos) -> Path:
    return vipseg_videos


def test_conversion_matches_the_plain_reference_on_every_kind_of_value():
    rng = np.random.default_rng(0)
    stuff = rng.integers(1, 125, 200)
    things = (rng.choice(THINGS_FROM_REFERENCE, 200) + 1) * 100 + rng.integers(0, 100, 200)
    special = np.array([0, 200, 124, 125, 199, 12400, 12499, 12500, 65535])
    values = np.concatenate([stuff, things, special, rng.integers(0, 65536, 400)]).astype(np.uint16)
    expected = np.array([reference_category(int(v)) for v in values], dtype=np.uint8)
    assert np.array_equal(convert_panomask(values), expected)
    assert convert_panomask(np.array([200]))[0] == 1  # the stray value: class 1, as officially converted
    assert convert_panomask(np.array([6100, 6107]))[0] == 60  # person instances
    assert sorted(THING_IDS) == THINGS_FROM_REFERENCE


def test_reader_reads_16_bit_masks_with_instances(vipseg):
    data = open_dataset("vipseg", vipseg)
    video = data.videos("val")[0]
    stem = data.frames(video)[0]
    raw = np.array(Image.open(data.mask_path(video, stem))).astype(np.int64)
    assert raw.max() > 255  # thing instances need 16 bits
    assert np.array_equal(data.read_mask(video, stem), np.vectorize(reference_category)(raw).astype(np.uint8))
    assert data.read_frame(video, stem).shape == raw.shape + (3,)
    assert (raw == 200).sum() == 9  # the planted stray value


def test_kinds_are_recognised_and_a_wrong_root_is_one_line(vipseg, vspw_uniform, tmp_path, capsys):
    vspw = vspw_uniform
    assert detect_kind(vipseg) == "vipseg" and detect_kind(vspw) == "vspw" and detect_kind(tmp_path) is None
    with pytest.raises(DataError, match="is a VSPW_480p root, but this split needs VIPSeg_720P"):
        open_dataset("vipseg", vspw)
    assert dataset_name(vipseg).startswith("vipseg-synthetic-")
    out = tmp_path / "runs"
    code = main(["run", "--model", "toy-colour", "--split", "vipseg_all", "--data-root", str(vspw), "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a VSPW_480p root, but this split needs VIPSeg_720P data" in err
    assert main(["run", "--model", "toy-colour", "--split", "vipseg_all", "--out", str(out), "--no-progress"]) == 2
    assert "data synth --dataset vipseg" in capsys.readouterr().err  # no built-in VIPSeg sample


def test_splits_follow_gkc_and_keep_vspw_hashes():
    gkc_novel = [11, 32, 34, 57, 76, 78, 80, 94, 102, 112, 116, 122]
    assert load_split("vipseg_unseen").vocabulary == tuple(gkc_novel)
    assert len(load_split("vipseg_seen").vocabulary) == 112
    every = load_split("vipseg_all")
    assert every.dataset == "vipseg" and len(every.seen_index()) == 112 and len(every.unseen_index()) == 12
    delete = load_split("vipseg_train_seen_delete")
    assert delete.videos == "without_unseen" and delete.hash != load_split("vipseg_train_seen").hash
    assert load_split("vspw_all").hash == "sha256:4ce432be" + load_split("vspw_all").hash[15:]  # unchanged


def test_base_delete_drops_videos_with_a_banned_pixel(vipseg, tmp_path):
    from ovbench.data.videoclasses import video_classes, videos_without

    data = open_dataset("vipseg", vipseg)
    videos = data.videos("train") + data.videos("val")
    present = {v: set().union(*(np.unique(data.read_mask(v, s)).tolist() for s in data.frames(v))) - {255} for v in videos}
    assert video_classes(data, videos[0]) == sorted(present[videos[0]])
    banned = [min(present[videos[0]] - set.intersection(*present.values()))]  # in some videos, not in all
    kept = videos_without(data, videos, banned, tmp_path)
    assert kept == [v for v in videos if not present[v] & set(banned)] and 0 < len(kept) < len(videos)
    assert videos_without(open_dataset("vipseg", vipseg), videos, banned, tmp_path) == kept  # from the cache
    assert videos_without(data, videos, load_split("vipseg_unseen").vocabulary, None) == [
        v for v in videos if not present[v] & set(load_split("vipseg_unseen").vocabulary)]


def test_verify_clean_set_notes_the_stray_value(vipseg):
    report = verify_dataset(vipseg, progress=False)
    assert report.ok and report.kind == "vipseg" and report.videos_ok == 4
    assert len(report.notes) == 1 and "9 pixel(s) hold the stray value 200" in report.notes[0]


@pytest.mark.parametrize("defect", ["missing_mask", "wrong_size", "bad_value", "categories"])
def test_verify_catches_planted_defects(vipseg, private_copy, defect):
    root = private_copy(vipseg)
    video = (root / "val.txt").read_text().split()[1]
    mask = root / "panomasks" / video / "00000002.png"
    if defect == "missing_mask":
        mask.unlink()
        expected = f"{root / 'images' / video / '00000002.jpg'}: frame without mask (00000002.png missing)"
    elif defect == "wrong_size":
        Image.fromarray(np.zeros((10, 10), np.uint16)).save(mask)
        expected = f"{mask}: mask is 10x10 but the frame is 60x40 (width x height)"
    elif defect == "bad_value":
        values = np.array(Image.open(mask)).astype(np.uint16)
        values[0, 0] = 12600
        Image.fromarray(values).save(mask)
        expected = (f"{mask}: mask values 12600 are no VIPSeg category"
                    " (category + 1 for stuff, (category + 1) * 100 + instance for things)")
    else:
        path = root / "panoVIPSeg_categories.json"
        categories = json.loads(path.read_text())
        categories[60]["isthing"] = 0
        path.write_text(json.dumps(categories))
        expected = "differs from VIPSeg's 124 categories"
    report = verify_dataset(root, progress=False)
    if defect == "categories":
        assert len(report.problems) == 1 and expected in report.problems[0], report.problems
    else:
        assert report.problems == [expected] and report.videos_ok == 3


def test_run_and_score_end_to_end(vipseg, tmp_path):
    out = tmp_path / "runs"
    args = ["--split", "vipseg_all", "--data-root", str(vipseg), "--no-progress"]
    assert main(["run", "--model", "toy-colour", *args, "--out", str(out), "--workers", "0", "--save-predictions", "png"]) == 0
    (record_path,) = out.glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["dataset"]["name"].startswith("vipseg-synthetic-") and record["split"]["name"] == "vipseg_all"
    assert {"mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "VC8", "VC16"} <= set(record["metrics"])
    (pred,) = out.glob("*.predictions")
    assert main(["score", "--pred", str(pred), *args, "--out", str(tmp_path / "score")]) == 0
    (scored,) = (tmp_path / "score").glob("*.json")
    scored_metrics = json.loads(scored.read_text())["metrics"]
    for key in ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "VC8", "VC16"):
        assert scored_metrics[key] == pytest.approx(record["metrics"][key])


@pytest.mark.parametrize("kind", ["vipseg", "coco"])
def test_synth_then_verify_from_the_command_line(tmp_path, capsys, kind):
    root = tmp_path / kind
    assert main(["data", "synth", "--dataset", kind, "--out", str(root), "--videos", "2", "--height", "24", "--width", "32"]) == 0
    assert detect_kind(root) == kind
    assert main(["data", "verify", "--data-root", str(root), "--workers", "1"]) == 0
    assert "OK" in capsys.readouterr().out
    if kind == "coco":
        assert main(["data", "synth", "--dataset", kind, "--out", str(tmp_path / "x"), "--frames", "3"]) == 2


@pytest.mark.parametrize("change, word", [({"dataset": "kitti"}, "'dataset' must be one of vspw, vipseg, coco"),
                                          ({"videos": "some"}, "'videos' must be one of all, without_unseen"),
                                          ({"dataset": "coco", "unseen": [133]}, r"\[133\] outside 0..132")])
def test_a_users_split_file_with_a_bad_kind_is_one_config_error(tmp_path, change, word):
    from ovbench.errors import ConfigError

    protocol = {"protocol": "mine", "version": 1, "unseen": [0], "splits": {"mine": {"subset": "val", "vocabulary": "all"}}}
    if "videos" in change:
        protocol["splits"]["mine"]["videos"] = change["videos"]
    else:
        protocol.update(change)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(protocol))
    with pytest.raises(ConfigError, match=word):
        load_split(str(path))


def test_an_8_bit_panomask_and_a_root_of_another_layout_are_refused(vipseg, coco_images, private_copy, capsys):
    """Issue 23.10a: a panomask re-saved as 8-bit (thing values lost) is a problem, and
    `--dataset vipseg` on a COCO root is one line, exit 2, not a report."""
    root = private_copy(vipseg)
    video = (root / "val.txt").read_text().split()[0]
    mask = root / "panomasks" / video / "00000001.png"
    values = np.array(Image.open(mask))
    Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).save(mask)
    problems = verify_dataset(root, progress=False).problems
    assert any(p.startswith(f"{mask}: an 8-bit png; VIPSeg panomasks are 16-bit") for p in problems), problems
    assert main(["data", "verify", "--data-root", str(coco_images), "--dataset", "vipseg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a COCO Panoptic root, not VIPSeg_720P" in err[0]
