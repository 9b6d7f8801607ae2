"""COCO Panoptic: RGB segment ids, semantic and instance targets against plain per-pixel
references, `data verify` with planted defects, and run + score (flat predictions) on coco_val."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import toy_adapters  # noqa: F401  (registers the toy models)
from PIL import Image

from ovbench.cli import main
from ovbench.data.coco import id2rgb, load_categories, rgb2id
from ovbench.data.kinds import detect_kind, open_dataset
from ovbench.data.verify import verify_dataset
from ovbench.data.verify.report import format_report
from ovbench.errors import DataError
from ovbench.split import load_split


@pytest.fixture(scope="module")
def coco(coco_images) -> Path:
    return coco_images


def annotation(root: Path, subset: str, stem: str) -> dict:
    data = json.loads((root / "annotations" / f"panoptic_{subset}2017.json").read_text())
    return next(a for a in data["annotations"] if a["file_name"] == f"{stem}.png")


def reference_semantic(png: Path, ann: dict) -> np.ndarray:
    """Pixel by pixel: id = R + 256 G + 65536 B; 0 unlabeled (255); else the index of the
    segment's category in the id-sorted list, crowd or not."""
    rgb = np.array(Image.open(png)).astype(np.int64)
    order = sorted(c["id"] for c in load_categories())
    category_of = {s["id"]: s["category_id"] for s in ann["segments_info"]}
    out = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for y in range(rgb.shape[0]):
        for x in range(rgb.shape[1]):
            r, g, b = rgb[y, x]
            segment = int(r) + 256 * int(g) + 256 * 256 * int(b)
            if segment:
                out[y, x] = order.index(category_of[segment])
    return out


def test_categories_are_panopticapis_133():
    categories = load_categories()
    assert len(categories) == 133 and sum(c["isthing"] for c in categories) == 80
    assert [c["id"] for c in categories] == sorted(c["id"] for c in categories)
    assert categories[0]["name"] == "person" and categories[79]["id"] == 90 and categories[80]["id"] == 92
    assert categories[-1] == {"id": 200, "name": "rug-merged", "isthing": 0}
    assert len(load_split("coco_val").class_names) == 133 and load_split("coco_train").subset == "train"


def test_rgb_ids_round_trip_and_use_every_channel():
    rng = np.random.default_rng(0)
    ids = np.concatenate([rng.integers(0, 1 << 24, 500), [0, 1, 255, 256, 65535, 65536, (1 << 24) - 1]])
    rgb = id2rgb(ids)
    assert [int(r) + 256 * int(g) + 65536 * int(b) for r, g, b in rgb] == ids.tolist()
    assert np.array_equal(rgb2id(rgb), ids)


def test_semantic_targets_match_the_reference_with_crowd_and_unlabeled(coco):
    data = open_dataset("coco", coco)
    checked_crowd = checked_unlabeled = False
    for subset in ("val", "train"):
        for stem in data.videos(subset):
            ann = annotation(coco, subset, stem)
            png = coco / "annotations" / f"panoptic_{subset}2017" / f"{stem}.png"
            expected = reference_semantic(png, ann)
            assert np.array_equal(data.read_mask(stem, stem), expected)
            checked_crowd |= any(s["iscrowd"] for s in ann["segments_info"])
            checked_unlabeled |= bool((expected == 255).any())
    assert checked_crowd and checked_unlabeled


def test_a_coco_root_is_recognised_and_refused_for_vspw(coco):
    assert detect_kind(coco) == "coco"
    with pytest.raises(DataError, match="is a COCO Panoptic root"):
        open_dataset("vspw", coco)


def test_verify_clean_set(coco):
    report = verify_dataset(coco, progress=False)
    assert report.ok and report.kind == "coco" and report.frames_ok == report.frames_total == 6
    assert "COCO Panoptic check" in format_report(report)


def _plant(root: Path, defect: str) -> str:
    stem = "000000001001"
    png = root / "annotations" / "panoptic_val2017" / f"{stem}.png"
    json_path = root / "annotations" / "panoptic_val2017.json"
    data = json.loads(json_path.read_text())
    ann = next(a for a in data["annotations"] if a["file_name"] == f"{stem}.png")
    if defect == "missing_mask":
        png.unlink()
        return f"{png}: panoptic png not found"
    if defect == "wrong_size":
        rgb = np.array(Image.open(png))
        Image.fromarray(np.pad(rgb, ((0, 5), (0, 0), (0, 0)))).save(png)  # every segment still there
        return "png is 60x45 but the image is 60x40"
    if defect == "segment_without_category":
        del ann["segments_info"][0]["category_id"]
        json_path.write_text(json.dumps(data))
        return "malformed annotation (KeyError: 'category_id')"
    if defect == "segment_not_in_json":
        dropped = ann["segments_info"].pop()
        json_path.write_text(json.dumps(data))
        return f"segment id {dropped['id']} is in the png but not in the JSON"
    ann["segments_info"][0]["category_id"] = 12  # a gap in COCO's ids
    json_path.write_text(json.dumps(data))
    return "has category id 12, not one of the 133"


@pytest.mark.parametrize("defect", ["missing_mask", "wrong_size", "segment_not_in_json", "unknown_category", "segment_without_category"])
def test_verify_catches_planted_defects(coco, private_copy, defect):
    root = private_copy(coco)
    expected = _plant(root, defect)
    report = verify_dataset(root, progress=False)
    assert len(report.problems) == 1 and expected in report.problems[0], report.problems
    assert "000000001001" in report.problems[0] and report.frames_ok == 5
    if defect == "unknown_category":  # workers are handed each image's annotation: same report
        assert verify_dataset(root, workers=2, progress=False) == report


def test_run_then_score_flat_predictions(coco, tmp_path):
    out = tmp_path / "runs"
    args = ["--split", "coco_val", "--data-root", str(coco), "--no-progress"]
    assert main(["run", "--model", "toy-colour", *args, "--out", str(out), "--workers", "0", "--save-predictions", "png"]) == 0
    record = json.loads(next(out.glob("*.json")).read_text())
    assert "VC8" not in record["metrics"] and record["dataset"]["frames"] == 3
    flat = tmp_path / "flat"
    flat.mkdir()
    for png in next(out.glob("*.predictions")).glob("*/*.png"):
        shutil.copy(png, flat / png.name)  # DIR/<image stem>.png, ids 0..132
    assert main(["score", "--pred", str(flat), *args, "--out", str(tmp_path / "score")]) == 0
    scored = json.loads(next((tmp_path / "score").glob("*.json")).read_text())
    assert scored["metrics"]["mIoU"] == pytest.approx(record["metrics"]["mIoU"])
    assert scored["metrics"]["pAcc"] == pytest.approx(record["metrics"]["pAcc"])
