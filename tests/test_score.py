"""`ovbench score` on predictions written the way other codebases write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.cli import main
from ovbench.data.synthetic import write_synthetic_vspw
from ovbench.data.vspw import VSPW
from ovbench.results import load_record
from ovbench.splits import load_split


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_synthetic_vspw(tmp_path_factory.mktemp("score") / "VSPW_480p", videos=4, height=24, width=43, seed=2)


def write_predictions(data_root: Path, out: Path, predict) -> Path:
    data = VSPW(data_root)
    for video in data.videos("val"):
        (out / video).mkdir(parents=True)
        for stem in data.frames(video):
            Image.fromarray(predict(data.read_mask(video, stem)).astype(np.uint8)).save(out / video / f"{stem}.png")
    return out


def score(data_root: Path, pred: Path, out: Path, split: str = "vspw_all", *extra: str) -> int:
    return main(["score", "--split", split, "--pred", str(pred), "--data-root", str(data_root), "--out", str(out), "--no-progress", *extra])


def test_perfect_predictions_score_100(data_root, tmp_path):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: gt)  # 255 stays at void: ignored
    assert score(data_root, pred, tmp_path / "out") == 0
    record = load_record(next((tmp_path / "out").glob("*.json")))
    assert record["metrics"]["mIoU"] == 1.0 and record["metrics"]["pAcc"] == 1.0 and record["metrics"]["VC8"] == 1.0
    assert record["kind"] == "score" and record["model"]["id"] == "pred" and record["dataset"]["name"].startswith("vspw-synthetic-")


def test_unseen_split_with_global_and_vocabulary_ids(data_root, tmp_path):
    split = load_split("vspw_unseen")
    lut = split.gt_lut()
    keep_unseen = lambda gt: np.where(lut[gt] != 255, gt, 255)  # noqa: E731 - seen pixels are ignored anyway
    as_vocab = lambda gt: lut[gt]  # noqa: E731
    glob = write_predictions(data_root, tmp_path / "global", keep_unseen)
    voc = write_predictions(data_root, tmp_path / "vocab", as_vocab)
    assert score(data_root, glob, tmp_path / "g", "vspw_unseen") == 0
    assert score(data_root, voc, tmp_path / "v", "vspw_unseen", "--pred-ids", "vocab") == 0
    a, b = (load_record(next((tmp_path / d).glob("*.json"))) for d in ("g", "v"))
    assert a["metrics"] == b["metrics"] and a["metrics"]["mIoU"] == 1.0


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda pred: next(pred.rglob("*.png")).unlink(), "no prediction for video"),
        (lambda pred: Image.new("L", (5, 5)).save(next(pred.rglob("*.png"))), "prediction is 5x5 but the ground truth is 43x24"),
        (lambda pred: Image.new("RGB", (43, 24)).save(next(pred.rglob("*.png"))), "must be single-channel"),
        (lambda pred: next(pred.rglob("*.png")).write_bytes(b"garbage"), "cannot read prediction"),
        (lambda pred: Image.new("L", (43, 24), 200).save(next(pred.rglob("*.png"))), "prediction value 200 is not a class"),
    ],
)
def test_bad_predictions_are_one_line_naming_the_frame(data_root, tmp_path, capsys, damage, message):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: gt)
    damage(pred)
    assert score(data_root, pred, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_value_beyond_vocabulary_with_vocab_ids(data_root, tmp_path, capsys):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: np.where(gt == 255, 255, 12))
    assert score(data_root, pred, tmp_path / "out", "vspw_unseen", "--pred-ids", "vocab") == 2
    assert "prediction value 12 >= vocabulary size 12" in capsys.readouterr().err
