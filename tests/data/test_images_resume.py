"""An interrupted `data prepare` continues where it stopped and ends with the same files as an
uninterrupted one; bad input is one DataError naming the file; a finished root is kept."""

import json
import shutil

import numpy as np
import pytest

from ovbench.data import prepare as driver
from ovbench.data.images import CHECKSUMS, MANIFEST
from ovbench.data.synthetic.images import write_ade_challenge, write_voc2012
from ovbench.errors import DataError


def tree(root):
    """Relative path -> bytes of every file under root (the manifest's raw path aside)."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    manifest = json.loads(files.pop(MANIFEST))
    manifest["source"].pop("path")
    return files, manifest


def test_resume_after_interruption_gives_the_same_files(tmp_path, monkeypatch):
    raw = write_ade_challenge(tmp_path / "raw", images=6)
    whole = driver.prepare("ade150", raw, tmp_path / "whole", progress=False)
    convert = driver.release("ade150").convert
    calls = []

    def stop_at_the_fourth(kind, item):
        calls.append(item.stem)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return convert(kind, item)

    monkeypatch.setattr(driver.release("ade150"), "convert", stop_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        driver.prepare("ade150", raw, tmp_path / "half", progress=False)
    assert not (tmp_path / "half" / MANIFEST).exists()
    with open(tmp_path / "half" / driver.PROGRESS, "a") as log:
        log.write("0123456789abcdef")  # a line cut short by the interruption
    resumed = []
    monkeypatch.setattr(driver.release("ade150"), "convert", lambda k, i: resumed.append(i.stem) or convert(k, i))
    half = driver.prepare("ade150", raw, tmp_path / "half", progress=False)
    assert len(resumed) == 3 and set(resumed).isdisjoint(calls[:3])  # the finished three are not redone
    assert tree(half) == tree(whole)
    assert not (half / driver.PROGRESS).exists()


def test_parallel_workers_give_the_same_files(tmp_path):
    raw = write_voc2012(tmp_path / "raw", images=5)
    one = driver.prepare("voc20", raw, tmp_path / "one", progress=False)
    two = driver.prepare("voc20", raw, tmp_path / "two", workers=2, progress=False)
    assert tree(one) == tree(two)
    assert len((two / CHECKSUMS).read_text().splitlines()) == 10


def test_a_finished_root_is_kept_and_another_kind_refused(tmp_path):
    raw = write_voc2012(tmp_path / "raw", images=2)
    out = driver.prepare("voc20", raw, tmp_path / "out", progress=False)
    before = tree(out)
    assert driver.prepare("voc20", raw, out, progress=False) == out
    assert tree(out) == before
    with pytest.raises(DataError, match="already a prepared voc20 root"):
        driver.prepare("voc21", raw, out, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        driver.prepare("voc20", raw, tmp_path / "other", progress=False)


@pytest.mark.parametrize("damage,message", [
    ("missing_folder", "ADEChallengeData2016 annotations folder missing"),
    ("missing_label", "ADE_val_00000002.png: ADE20K annotation missing"),
    ("truncated_label", "ADE_val_00000002.png: cannot read ADE20K annotation"),
    ("bad_value", "ADE_val_00000002.png: ADE20K annotation value 200 is not one of the release's values"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, damage, message):
    raw = write_ade_challenge(tmp_path / "raw", images=3)
    annotations = raw / "ADEChallengeData2016" / "annotations" / "validation"
    target = annotations / "ADE_val_00000002.png"
    if damage == "missing_folder":
        shutil.rmtree(annotations)
    elif damage == "missing_label":
        target.unlink()
    elif damage == "truncated_label":
        target.write_bytes(target.read_bytes()[:60])
    else:
        from PIL import Image

        Image.fromarray(np.full((4, 4), 200, dtype=np.uint8)).save(target)
    with pytest.raises(DataError, match=message) as caught:
        driver.prepare("ade150", raw, tmp_path / "out", progress=False)
    assert "\n" not in str(caught.value)


def test_missing_release_files_of_pascal_context(tmp_path):
    from ovbench.data.synthetic.images import write_pascal_context

    raw = write_pascal_context(tmp_path / "raw", images=2)
    voc = raw / "VOCdevkit" / "VOC2010"
    shutil.rmtree(voc / "trainval")
    with pytest.raises(DataError, match="PASCAL-Context trainval folder"):
        driver.prepare("pc459", raw, tmp_path / "a", progress=False)
    (voc / "trainval_merged.json").write_text("{")
    with pytest.raises(DataError, match="trainval_merged.json: cannot read the Detail annotations"):
        driver.prepare("pc59", raw, tmp_path / "b", progress=False)


def test_a_release_archive_prepares_like_its_folder(tmp_path):
    raw = write_ade_challenge(tmp_path / "raw", images=3)
    archive = shutil.make_archive(str(tmp_path / "ADEChallengeData2016"), "zip", raw)
    from_folder = driver.prepare("ade150", raw, tmp_path / "a", progress=False)
    from_archive = driver.prepare("ade150", archive, tmp_path / "b", progress=False)
    assert tree(from_archive) == tree(from_folder)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="damaged.zip: cannot unpack the release archive"):
        driver.prepare("ade150", damaged, tmp_path / "c", progress=False)
