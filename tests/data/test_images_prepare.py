"""`data prepare` on a synthetic raw release of each image kind gives exactly the labels of an
independent conversion written here from the reference facts (the formulas and id tables of
image_benchmarks.md §1-6 and §10, typed in as literals, never through ovbench's tables), and
keeps (or, for A-847, re-encodes as the peers do) the images."""

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as rle_mask
from scipy.io import loadmat

from ovbench.data.prepare import prepare
from ovbench.data.synthetic import images as synth

# Reference §3a: the 59 PASCAL-Context ids, sorted (class k = the k-th).
PC59_IDS = [2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113, 115, 144,
            158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326, 347, 349, 354,
            355, 360, 366, 368, 397, 415, 416, 420, 424, 427, 440, 445, 454, 458]
# Reference §5: labelId -> trainId of the 19 classes.
CITYSCAPES = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
              27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
# Reference §6: the 11 unused 0-based COCO-Stuff thing ids.
COCO_UNUSED = [11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90]


def pixels(path):
    return np.array(Image.open(path))


def prepared_labels(out):
    return {p.stem: pixels(p) for p in sorted((out / "labels" / "val").glob("*.png"))}


def check_same(out, expected: dict, images: dict):
    """Every prepared label equals the reference one; every image's bytes are as expected."""
    got = prepared_labels(out)
    assert sorted(got) == sorted(expected)
    for stem, label in expected.items():
        assert got[stem].dtype == label.dtype, stem
        np.testing.assert_array_equal(got[stem], label, err_msg=stem)
    for stem, data in images.items():
        found = next((out / "images" / "val").glob(f"{stem}.*")).read_bytes()
        assert found == data, stem


def test_ade150(tmp_path):
    raw = synth.write_ade_challenge(tmp_path / "raw") / "ADEChallengeData2016"
    expected, images = {}, {}
    for png in (raw / "annotations" / "validation").glob("*.png"):
        value = pixels(png).astype(np.int64)
        expected[png.stem] = np.where(value == 0, 255, value - 1).astype(np.uint8)
        assert set(np.unique(value).tolist()) == set(range(151))
        images[png.stem] = (raw / "images" / "validation" / f"{png.stem}.jpg").read_bytes()
    check_same(prepare("ade150", tmp_path / "raw", tmp_path / "out", progress=False), expected, images)


def ade847_reference(seg_path, jpg_path, table):
    """The peers' recipe, step by step: class = R // 10 * 256 + G, short side to 512 (cv2
    nearest / bilinear), the 847-entry table, 65535 elsewhere, image re-saved by PIL."""
    import cv2

    seg = pixels(seg_path).astype(np.int64)
    classes = (seg[:, :, 0] // 10 * 256 + seg[:, :, 1]).astype(np.int32)
    image = np.asarray(Image.open(jpg_path))
    h, w = classes.shape
    if min(h, w) > 512:
        size = (512, round(w / h * 512)) if h <= w else (round(h / w * 512), 512)
        image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        classes = cv2.resize(classes, size[::-1], interpolation=cv2.INTER_NEAREST)
    label = np.full(classes.shape, 65535, dtype=np.uint16)
    for value in np.unique(classes):
        if int(value) in table:
            label[classes == value] = table[int(value)]
    encoded = io.BytesIO()
    Image.fromarray(image).save(encoded, format="JPEG", quality=75)
    return label, encoded.getvalue()


@pytest.mark.parametrize("height,width", [(48, 64), (514, 530)])
def test_ade847(tmp_path, height, width):
    """Small images kept at their size, and ones above 512 on the short side resized."""
    from ovbench.data.images import class_file

    synth.write_ade_full(tmp_path / "raw", images=3, height=height, width=width)
    table = {ade: train for train, ade in enumerate(class_file("ade847")["ade_ids"])}
    expected, images = {}, {}
    for seg in (tmp_path / "raw").rglob("*_seg.png"):
        stem = seg.name[: -len("_seg.png")]
        expected[stem], images[stem] = ade847_reference(seg, seg.with_name(f"{stem}.jpg"), table)
    out = prepare("ade847", tmp_path / "raw", tmp_path / "out", progress=False)
    check_same(out, expected, images)
    if height > 512:
        assert all(min(label.shape) == 512 for label in expected.values())
    assert any((label != 65535).any() and (label == 65535).any() for label in expected.values())


def test_ade847_table_is_the_published_one():
    """The id table and names hash to the reference's checksums (§2): one wrong entry fails."""
    from ovbench.data.images import class_file

    found = class_file("ade847")
    lines = "\n".join(f"{ade}:{train}" for train, ade in enumerate(found["ade_ids"]))
    assert hashlib.sha256(lines.encode()).hexdigest().startswith("03e29a72")
    assert hashlib.sha256(lines.encode()).hexdigest().endswith("ea0655")
    assert hashlib.sha256(json.dumps(found["names"]).encode()).hexdigest().startswith("eefd744c")


def test_pc59(tmp_path):
    voc = synth.write_pascal_context(tmp_path / "raw") / "VOCdevkit" / "VOC2010"
    merged = json.loads((voc / "trainval_merged.json").read_text())
    expected, images = {}, {}
    for entry in merged["images"]:
        if entry["phase"] != "val":
            continue
        canvas = np.zeros((entry["height"], entry["width"]), dtype=np.int64)
        for ann in merged["annos_segmentation"]:
            if ann["image_id"] == entry["image_id"]:
                canvas[rle_mask.decode(ann["segmentation"]) != 0] = ann["category_id"]
        label = np.full(canvas.shape, 255, dtype=np.uint8)
        for k, context_id in enumerate(PC59_IDS):
            label[canvas == context_id] = k
        stem = entry["file_name"][:-4]
        expected[stem], images[stem] = label, (voc / "JPEGImages" / entry["file_name"]).read_bytes()
    assert len(expected) == 4  # the train image is left out
    shown = set().union(*(np.unique(label).tolist() for label in expected.values()))
    assert shown == set(range(59)) | {255}  # every table entry is exercised
    check_same(prepare("pc59", tmp_path / "raw", tmp_path / "out", progress=False), expected, images)


def test_pc459(tmp_path):
    voc = synth.write_pascal_context(tmp_path / "raw") / "VOCdevkit" / "VOC2010"
    merged = json.loads((voc / "trainval_merged.json").read_text())
    expected = {}
    for entry in merged["images"]:
        if entry["phase"] == "val":
            stem = entry["file_name"][:-4]
            value = loadmat(voc / "trainval" / f"{stem}.mat")["LabelMap"].astype(np.int64)
            expected[stem] = np.where(value == 0, 65535, value - 1).astype(np.uint16)
    assert any((label == 65535).any() for label in expected.values())
    check_same(prepare("pc459", tmp_path / "raw", tmp_path / "out", progress=False), expected, {})


@pytest.mark.parametrize("kind", ["voc20", "voc21", "voc20b"])
def test_voc(tmp_path, kind):
    voc = synth.write_voc2012(tmp_path / "raw") / "VOCdevkit" / "VOC2012"
    background = {"voc20": 255, "voc21": 0, "voc20b": 20}[kind]
    shift = 0 if kind == "voc21" else 1
    expected = {}
    for stem in (voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split():
        value = pixels(voc / "SegmentationClass" / f"{stem}.png").astype(np.int64)
        label = np.where(value == 0, background, np.where(value == 255, 255, value - shift))
        expected[stem] = label.astype(np.uint8)
    check_same(prepare(kind, tmp_path / "raw", tmp_path / "out", progress=False), expected, {})


def test_cityscapes(tmp_path):
    raw = synth.write_cityscapes(tmp_path / "raw")
    expected, images = {}, {}
    for png in (raw / "gtFine" / "val").rglob("*_gtFine_labelIds.png"):
        stem = png.name[: -len("_gtFine_labelIds.png")]
        value = pixels(png)
        label = np.full(value.shape, 255, dtype=np.uint8)
        for y in range(value.shape[0]):
            for x in range(value.shape[1]):
                label[y, x] = CITYSCAPES.get(int(value[y, x]), 255)
        expected[stem] = label
        assert set(np.unique(value).tolist()) == set(range(34))  # every labelId is exercised
        images[stem] = (raw / "leftImg8bit" / "val" / png.parent.name / f"{stem}_leftImg8bit.png").read_bytes()
    check_same(prepare("cityscapes", raw, tmp_path / "out", progress=False), expected, images)


def test_cocostuff171(tmp_path):
    raw = synth.write_cocostuff(tmp_path / "raw")
    expected = {}
    for png in (raw / "annotations" / "val2017").glob("*.png"):
        value = pixels(png).astype(np.int64)
        below = np.searchsorted(COCO_UNUSED, value)  # unused ids below a value shift it down
        label = np.where(np.isin(value, COCO_UNUSED) | (value == 255), 255, value - below)
        expected[png.stem] = label.astype(np.uint8)
    assert set().union(*(np.unique(label).tolist() for label in expected.values())) == set(range(171)) | {255}
    check_same(prepare("cocostuff171", raw, tmp_path / "out", progress=False), expected, {})
