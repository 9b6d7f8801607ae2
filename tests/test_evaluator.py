"""`ovbench.evaluate`: the Python entry point gives what `ovbench run` gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import toy_adapters

import ovbench
from ovbench.cli import main
from ovbench.errors import ConfigError
from ovbench.records.read import load_record


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


def test_an_adapter_instance_gives_the_cli_run_numbers(data_root, tmp_path):
    assert main(["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root", str(data_root),
                 "--out", str(tmp_path / "cli"), "--device", "cpu", "--workers", "0", "--no-progress"]) == 0
    cli = load_record(next((tmp_path / "cli").glob("*.json")))
    instance = toy_adapters.ToyColour(toy_adapters.ToyArgs(), torch.device("cpu"))
    record = ovbench.evaluate(instance, "vspw_all", data_root, out_dir=tmp_path / "api", workers=0)
    by_id = ovbench.evaluate("toy-colour", "vspw_all", data_root, out_dir=tmp_path / "id", workers=0, device="cpu")
    for made in (record, by_id):
        assert made["metrics"] == cli["metrics"] and made["per_video"] == cli["per_video"]
        assert made["model"]["id"] == "toy-colour"
    assert load_record(next((tmp_path / "api").glob("*.json"))) == record
    with pytest.raises(ConfigError, match="unknown option 'batchsize'.*did you mean batch_size"):
        ovbench.evaluate(instance, "vspw_all", data_root, out_dir=tmp_path / "api", batchsize=2)


@pytest.mark.slow
def test_import_ovbench_stays_light():
    code = "import sys, ovbench; assert 'torch' not in sys.modules, 'torch imported'; assert callable(ovbench.evaluate)"
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'evaluat'"):
        ovbench.evaluat  # noqa: B018


def test_options_are_named_as_the_cli_names_them_and_checked(data_root, tmp_path):
    """Issue 23.9 and 23.10g: model_args as a mapping, miou_convention (the CLI's name; the old
    `convention` still works), and bad values refused by name, not as raw ValueErrors."""
    common = dict(device="cpu", workers=0, progress=False, log=lambda message: None)
    by_mapping = ovbench.evaluate("toy-colour", "vspw_all", data_root, out_dir=tmp_path / "a", model_args={"dim": 4},
                                  miou_convention="mmseg", **common)
    by_words = ovbench.evaluate("toy-colour", "vspw_all", data_root, out_dir=tmp_path / "b", model_args="dim=4",
                                convention="mmseg", **common)
    assert by_mapping["metrics"] == by_words["metrics"] and by_mapping["options"]["miou_convention"] == "mmseg"
    assert by_mapping["model"]["args"]["dim"] == 4
    for bad, message in ((dict(batch_size=0), "batch_size=0: must be an integer >= 1"),
                         (dict(workers=-1), "workers=-1: must be an integer >= 0")):
        with pytest.raises(ConfigError, match=message):
            ovbench.evaluate("toy-colour", "vspw_all", data_root, out_dir=tmp_path / "c", **{**common, **bad})


def test_a_split_the_sample_cannot_serve_is_one_line_in_python_words(tmp_path):
    """Issue 19: without a data root a VIPSeg split is refused naming `data_root=`, not --data-root."""
    with pytest.raises(ConfigError, match="pass its root with data_root="):
        ovbench.evaluate("toy-colour", "vipseg_all", out_dir=tmp_path, device="cpu", log=lambda message: None)
