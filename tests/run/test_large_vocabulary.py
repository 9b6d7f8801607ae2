"""847 classes end to end (A-847 on a synthetic prepared root, toy-colour): the run's labels
go above 255, its PNG predictions are 16-bit and its RLE ids reach past 255, `score` of either
gives the run's numbers, and those numbers equal a plain numpy confusion matrix of the
prediction files against the label files (mean IoU over the classes present in the ground
truth, ovbench's default rule)."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_toy
from PIL import Image

from ovbench.cli import main
from ovbench.data.synthetic.prepared import write_prepared


@pytest.fixture(scope="module")
def ade847(tmp_path_factory):
    base = tmp_path_factory.mktemp("ade847")
    root = write_prepared("ade847", base / "data", images=3, height=60, width=106)
    runs = {form: run_toy(root, base / form, split="ade847_val", save_predictions=form)[0] for form in ("png", "rle")}
    return root, base, runs


def plain_miou(root: Path, predictions: dict[str, np.ndarray]) -> float:
    confusion = np.zeros((848, 848), dtype=np.int64)
    for stem, pred in predictions.items():
        gt = np.array(Image.open(root / "labels" / "val" / f"{stem}.png")).astype(np.int64)
        counted = gt != 65535
        np.add.at(confusion, (gt[counted], pred.astype(np.int64)[counted]), 1)
    confusion = confusion[:847, :847]
    union, present = confusion.sum(0) + confusion.sum(1) - np.diag(confusion), confusion.sum(1) > 0
    return float(np.mean(np.diag(confusion)[present] / union[present]))


def test_png_predictions_are_16_bit_with_ids_above_255(ade847):
    root, base, runs = ade847
    files = sorted(base.glob("png/*.predictions/*/*.png"))
    assert len(files) == 3
    values = {f.stem: np.array(Image.open(f)) for f in files}
    assert all(Image.open(f).mode.startswith("I;16") for f in files)
    assert max(int(v.max()) for v in values.values()) > 255
    assert runs["png"]["metrics"]["mIoU"] == pytest.approx(plain_miou(root, values), abs=1e-12)


def test_rle_predictions_hold_ids_above_255_and_give_the_same_numbers(ade847):
    _, base, runs = ade847
    ids = {int(c) for f in base.glob("rle/*.predictions/*.json")
           for frame in json.loads(f.read_text())["frames"].values() for c in frame["classes"]}
    assert max(ids) > 255
    assert runs["rle"]["metrics"] == runs["png"]["metrics"]


@pytest.mark.parametrize("form", ["png", "rle"])
def test_score_of_the_saved_predictions_gives_the_run_numbers(ade847, form, tmp_path):
    root, base, runs = ade847
    pred = next(base.glob(f"{form}/*.predictions"))
    words = ["score", "--split", "ade847_val", "--pred", str(pred), "--data-root", str(root), "--out", str(tmp_path),
             "--no-progress"]
    assert main(words) == 0
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["metrics"] == runs[form]["metrics"] and record["per_class"] == runs[form]["per_class"]


def test_a_16_bit_prediction_of_a_split_of_at_most_255_classes_is_one_line(tmp_path):
    from ovbench.errors import DataError
    from ovbench.predictions import read_prediction_png

    path = tmp_path / "frame.png"
    Image.fromarray(np.array([[3, 300]], dtype=np.uint16)).save(path)
    assert read_prediction_png(path, 65535).tolist() == [[3, 300]]
    with pytest.raises(DataError, match="frame.png: prediction value 300 is outside 0..255"):
        read_prediction_png(path, 255)


def test_visualize_refuses_an_847_class_split_in_one_line(ade847, tmp_path):
    from ovbench.errors import ConfigError
    from ovbench.split import load_split
    from ovbench.visualize import parse_run, visualize

    root, base, _ = ade847
    run = parse_run(str(next(base.glob("png/*.predictions"))), flat=True)
    with pytest.raises(ConfigError, match="ade847_val has 847 classes; figures are drawn for data sets of at most 255"):
        visualize([run], load_split("ade847_val"), root, tmp_path / "figure.png")


def test_the_text_cache_keeps_the_847_names(tmp_path):
    import torch
    from toy_adapters import CALLS, ToyArgs, ToyColour

    from ovbench.data.kinds import class_names
    from ovbench.run.textcache import TextCache

    names, model = class_names("ade847"), ToyColour(ToyArgs(), torch.device("cpu"))
    cache, before = TextCache(tmp_path), CALLS["encode_text"]
    first, _ = cache.embed(model, names)
    again, _ = cache.embed(model, names)
    assert first.shape == (847, 8) and torch.equal(first, again) and CALLS["encode_text"] == before + 1
    assert [entry.classes for entry in cache.entries()] == [847]
