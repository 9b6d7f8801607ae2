"""Label PNGs are palette PNGs: viewable, and read back as exactly the values written."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ovbench.cli import main
from ovbench.constants import IGNORE
from ovbench.data.files import read_raw_mask
from ovbench.palette import PALETTE, blend, palette_image
from ovbench.records.read import load_record


def test_every_value_round_trips_and_has_its_own_colour(tmp_path):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "labels.png"
    palette_image(values).save(path)
    with Image.open(path) as image:
        assert image.mode == "P"
    assert np.array_equal(read_raw_mask(path), values)
    assert len({tuple(colour) for colour in PALETTE.tolist()}) == 256
    assert PALETTE[IGNORE].tolist() == [0, 0, 0] and PALETTE[:IGNORE].max(axis=1).min() > 0


def test_blend_leaves_ignored_pixels_alone():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, (5, 7), dtype=np.uint8)
    labels[0] = IGNORE
    mixed = blend(frame, labels, alpha=0.25)
    expected = np.rint(0.75 * frame + 0.25 * PALETTE[labels].astype(float))
    expected[0] = frame[0]
    assert np.array_equal(mixed, expected.astype(np.uint8))


def test_saved_png_predictions_are_palette_images_that_rescore_identically(vspw_small, tmp_path):
    data_root = vspw_small
    common = ["--split", "vspw_all", "--data-root", str(data_root), "--no-progress"]
    run = ["run", "--model", "toy-colour", "--plugin", "toy_adapters", "--device", "cpu", "--workers", "0"]
    assert main([*run, *common, "--out", str(tmp_path / "runs"), "--save-predictions", "png"]) == 0
    record_path = next((tmp_path / "runs").glob("*.json"))
    pngs = sorted(record_path.with_suffix(".predictions").glob("*/*.png"))
    assert pngs
    for path in pngs:
        with Image.open(path) as image:
            assert image.mode == "P"
            assert np.array_equal(np.asarray(image.getpalette(), dtype=np.uint8).reshape(-1, 3), PALETTE)
    pred = str(record_path.with_suffix(".predictions"))
    assert main(["score", *common, "--pred", pred, "--out", str(tmp_path / "scored")]) == 0
    run_record, scored = load_record(record_path), load_record(next((tmp_path / "scored").glob("*.json")))
    assert scored["metrics"] == run_record["metrics"] and scored["per_class"] == run_record["per_class"]
