"""Damaged files a user can hand ovbench (a record, RLE predictions, COCO categories, the
video-class cache) are one-line errors naming the file, or are computed again: never a
traceback."""

from __future__ import annotations

import pytest

from ovbench.data.verify.coco import _check_coco_categories
from ovbench.data.verify.report import VerifyReport
from ovbench.data.videoclasses import _load
from ovbench.errors import DataError
from ovbench.predictions import PredictionReader
from ovbench.records.read import load_record

NOT_UTF8 = b"\xff\xfe\x00garbage"


def test_a_record_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(DataError, match=f"{path}: not valid JSON"):
        load_record(path)


@pytest.mark.parametrize("content", [NOT_UTF8, b"[1, 2]", b'{"frames": [1]}'])
def test_rle_predictions_of_the_wrong_shape_are_named(tmp_path, content):
    (tmp_path / "video.json").write_bytes(content)
    with pytest.raises(DataError, match=f"{tmp_path / 'video.json'}: unreadable RLE predictions"):
        PredictionReader(tmp_path).read("video", "00000000")


def test_a_coco_category_that_is_not_an_object_is_a_problem_line(tmp_path):
    report = VerifyReport(tmp_path)
    _check_coco_categories(tmp_path / "panoptic_val2017.json", [7, {"id": 1, "name": "person"}], report)
    assert report.problems == [f"{tmp_path / 'panoptic_val2017.json'}: category entry 7 is not an object"]


@pytest.mark.parametrize("content", [b"[]", b'"text"', NOT_UTF8])
def test_a_damaged_video_class_cache_is_computed_again(tmp_path, content):
    path = tmp_path / "cache.json"
    path.write_bytes(content)
    assert _load(path) == {}
