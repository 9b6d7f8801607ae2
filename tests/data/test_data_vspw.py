"""Reader and label conversion, checked against the VSPW definition written out by hand."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from ovbench.data.vspw import RAW_TO_CONVERTED, VSPW, load_class_names
from ovbench.errors import DataError


def converted_by_definition(raw: int) -> int:
    """0 = others -> ignore; 1..124 -> 0..123; 255 = void -> ignore; anything else is no label."""
    if 1 <= raw <= 124:
        return raw - 1
    return 255


@pytest.fixture(scope="module")
def root(vspw_small):
    return vspw_small


def test_lut_matches_definition_on_all_values():
    assert RAW_TO_CONVERTED.shape == (256,) and RAW_TO_CONVERTED.dtype == np.uint8
    assert [int(v) for v in RAW_TO_CONVERTED] == [converted_by_definition(v) for v in range(256)]


def test_conversion_table_on_any_shape():
    raw = np.random.default_rng(0).integers(0, 256, (3, 5, 7)).astype(np.uint8)
    out = RAW_TO_CONVERTED[raw]
    assert out.dtype == np.uint8 and out.shape == raw.shape
    assert out.ravel().tolist() == [converted_by_definition(int(v)) for v in raw.ravel()]


def test_class_names():
    names = load_class_names()
    assert len(names) == 124 and names[0] == "wall" and names[11] == "pillar" and names[-1] == "train"
    names.clear()  # a copy: callers cannot spoil it for others
    assert len(load_class_names()) == 124


def test_reader_on_synthetic(root):
    data = VSPW(root)
    val, train = data.videos("val"), data.videos("train")
    assert len(val) == 2 and len(train) == 2 and not set(val) & set(train)
    assert data.videos("test") == []
    for video in val + train:
        stems = data.frames(video)
        files = [p.stem for p in (root / "data" / video / "origin").iterdir()]
        assert stems == sorted(files) and stems
        for stem in (stems[0], stems[-1]):
            frame, mask = data.read_frame(video, stem), data.read_mask(video, stem)
            assert frame.dtype == np.uint8 and frame.shape == (24, 43, 3)
            assert mask.dtype == np.uint8 and mask.shape == (24, 43)
            with Image.open(data.mask_path(video, stem)) as im:
                raw = np.array(im)
            expected = np.vectorize(converted_by_definition)(raw)
            assert np.array_equal(mask, expected)
            assert set(np.unique(mask).tolist()) <= set(range(124)) | {255}
            assert np.all(mask[raw == 0] == 255) and np.all(mask[raw == 255] == 255)
            frame[0, 0] = 0  # writable arrays
            mask[0, 0] = 0


def test_frames_sorted_by_name_and_palette_mask(tmp_path):
    (tmp_path / "data" / "v" / "origin").mkdir(parents=True)
    (tmp_path / "data" / "v" / "mask").mkdir()
    for stem in ("00000010", "00000002", "00000005"):
        Image.new("RGB", (4, 3)).save(tmp_path / "data" / "v" / "origin" / f"{stem}.jpg")
    indices = np.array([[0, 1, 2, 124], [255, 125, 7, 3], [1, 1, 1, 1]], dtype=np.uint8)
    mask = Image.fromarray(indices).convert("P")
    mask.putpalette([c for i in range(256) for c in (i, 255 - i, i // 2)])
    mask.save(tmp_path / "data" / "v" / "mask" / "00000002.png")
    data = VSPW(tmp_path)
    assert data.frames("v") == ["00000002", "00000005", "00000010"]
    with Image.open(data.mask_path("v", "00000002")) as im:
        assert im.mode == "P"
    got = data.read_mask("v", "00000002")
    assert got.tolist() == [[converted_by_definition(int(v)) for v in row] for row in indices]


def test_duplicate_listing_kept_once(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "val.txt").write_text("a\n\nb\na\n  c  \n")
    assert VSPW(tmp_path).videos("val") == ["a", "b", "c"]


def test_errors_name_the_path(tmp_path, root):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nowhere"))):
        VSPW(tmp_path / "nowhere")
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + ".*no data/"):
        VSPW(tmp_path)
    data = VSPW(root)
    with pytest.raises(DataError, match=re.escape(str(root / "vall.txt")) + ".*did you mean val"):
        data.videos("vall")
    missing = re.escape(str(root / "data" / "1999_nope_0"))
    with pytest.raises(DataError, match=missing + ": video folder not found"):
        data.frames("1999_nope_0")
    video = data.videos("val")[0]
    with pytest.raises(DataError, match=re.escape(str(data.frame_path(video, "99999999")))):
        data.read_frame(video, "99999999")


def test_corrupt_jpg_and_rgb_mask(root, private_copy):
    data = VSPW(private_copy(root))
    video = data.videos("val")[0]
    jpg = data.frame_path(video, "00000001")
    jpg.write_bytes(jpg.read_bytes()[:200])
    with pytest.raises(DataError, match=re.escape(f"{jpg}: cannot read frame")):
        data.read_frame(video, "00000001")
    png = data.mask_path(video, "00000002")
    with Image.open(png) as im:
        im.convert("RGB").save(png)
    with pytest.raises(DataError, match=re.escape(f"{png}: mask must be single-channel") + ".*mode RGB"):
        data.read_mask(video, "00000002")


def test_a_batch_with_frames_of_two_sizes_names_them():
    from ovbench.data.loader import collate_frames

    def item(stem, height, width):
        return {"video": 0, "frame": int(stem), "stem": stem, "gt": torch.zeros(height, width, dtype=torch.uint8),
                "image": torch.zeros(3, height, width, dtype=torch.uint8)}

    batch = collate_frames([item("00000001", 4, 6), item("00000002", 4, 6), item("00000003", 5, 6)])
    assert batch["error"] == "frames of one video differ in size: 00000001 6x4, 00000002 6x4, 00000003 6x5"
    assert "image" not in batch
