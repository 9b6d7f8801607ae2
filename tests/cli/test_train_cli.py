"""`ovbench train` from the command line, then `ovbench run` with what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovbench.cli import main
from ovbench.records.read import load_record
from ovbench.split import load_split

pytestmark = pytest.mark.slow  # trains, then evaluates, through the CLI

TRAIN = ["--model", "gkc", "--model-args", "config=gkc-tiny,clip_pretrained=none",
         "--train-args", "iterations=3,batch_size=2,crop=48,short_min=40,short_max=64,num_points=256,workers=0,log_every=1"]


@pytest.fixture(scope="module")
def data_root(vspw_train) -> Path:
    return vspw_train


def test_train_then_evaluate_the_checkpoint(data_root, tmp_path):
    out = tmp_path / "gkc"
    assert main(["train", *TRAIN, "--split", "vspw_train_seen", "--data-root", str(data_root), "--out", str(out)]) == 0
    final = out / "final.safetensors"
    assert final.is_file()
    runs = tmp_path / "runs"
    assert main(["run", "--model", "gkc", "--model-args", f"checkpoint={final}", "--split", "vspw_unseen",
                 "--data-root", str(data_root), "--out", str(runs), "--workers", "0", "--no-progress"]) == 0
    record = load_record(next(runs.glob("*.json")))
    assert record["model"]["weights"] == str(final) and len(record["model"]["weights_sha256"]) == 64
    # the record says what the number is: no image stage, which data, which schedule
    init, video = record["model"]["training"]
    assert init == {"stage": "init", "backbone": "CLIP ovbench-tiny-rn visual trunk", "weights": "none", "random_init": True}
    assert video["stage"] == "video frames" and video["data"].startswith("vspw-synthetic-")  # the data set trained on
    assert video["data"].endswith(f" vspw_train_seen ({load_split('vspw_train_seen').hash})")
    assert video["iterations"] == 3 and video["batch"] == 2 and video["schedule"] == "poly"
    # a second stage started from that checkpoint continues the list
    again = tmp_path / "again"
    assert main(["train", *TRAIN, "--split", "vspw_train_seen", "--data-root", str(data_root), "--out", str(again),
                 "--init", str(final)]) == 0
    from ovbench.models.gkc.checkpoint import load_checkpoint

    stages = load_checkpoint(again / "final.safetensors").training_stages
    assert stages[:2] == [init, video] and len(stages) == 3


def test_training_on_an_evaluation_split_is_refused(data_root, tmp_path, capsys):
    assert main(["train", *TRAIN, "--split", "vspw_unseen", "--data-root", str(data_root), "--out", str(tmp_path)]) == 2
    assert "evaluation split" in capsys.readouterr().err


def test_a_model_that_cannot_train_says_so(data_root, tmp_path, capsys):
    assert main(["train", "--model", "clip-dense", "--split", "vspw_train_seen", "--data-root", str(data_root), "--out", str(tmp_path)]) == 2
    assert "cannot be trained" in capsys.readouterr().err
