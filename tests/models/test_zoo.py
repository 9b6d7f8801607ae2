"""The zoo's integration: every zoo adapter lists its variants through the one `variants()` hook
(`ovbench ls models -v`), records say how many parameters a run's model has, and the zoo-video
layout tabulates runs of the tiny variants on synthetic VSPW and VIPSeg."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
import torch
from ovbench.leaderboard.layouts import load_layout
from ovbench.leaderboard.table import parameter_count
from ovbench.models.zoo import ZOO

import ovbench
from ovbench.api import ModelVariant, SegmentationModel, parse_model_args
from ovbench.cli import main
from ovbench.data.synthetic.panoptic import write_synthetic_vipseg
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.registry import get_model_class


def build(model_id: str, args: str, device: str) -> SegmentationModel:
    cls = get_model_class(model_id)
    return cls(parse_model_args(cls.Args, args), torch.device(device))


def ls_models_verbose() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["ls", "models", "-v"]) == 0
    return out.getvalue()


def test_ls_models_lists_each_zoo_variant_with_file_host_licences_and_numbers():
    listing = ls_models_verbose()
    for entry in ZOO:
        variants = get_model_class(entry.id).variants()
        published = [variant for variant in variants if variant.checkpoint_file]
        assert len(published) >= 2 and any(not variant.checkpoint_file for variant in variants), entry.id  # full sizes + tiny
        for variant in variants:
            assert f"    {variant.describe()}\n" in listing
        for variant in published:
            line = variant.describe()
            assert f"{variant.checkpoint_file} from {variant.checkpoint_host}" in line
            assert variant.code_licence and variant.weights_licence and variant.published_source
            assert f"code {variant.code_licence}, weights {variant.weights_licence}" in line
            assert "published mIoU: " in line and "A-150 " in line
    assert "san_vit_large_14.pth from huggingface.co/Mendel192/san" in listing
    assert "model_large.pth from huggingface.co/spaces/hamacojr/CAT-Seg-weights" in listing


def test_models_without_variants_print_none():
    """The hook's default is no variants, and ls prints no variants header for such a model."""
    assert SegmentationModel.variants() == () and get_model_class("clip-dense").variants() == ()
    listing = ls_models_verbose()
    block = listing.split("\nclip-dense ", 1)[1].split("\nclip-twostage ", 1)[0]
    assert "variants" not in block


def test_records_without_a_count_show_it_missing():
    assert parameter_count(None) == "-" and parameter_count(154_289_378) == "154.3 M"


def test_variant_line_without_a_checkpoint():
    line = ModelVariant(id="tiny", description="test").describe()
    assert line == "tiny: no published checkpoint (random init: checkpoint=none); code -, weights -; no published numbers"


class _Holder(SegmentationModel):
    def encode_text(self, names):
        return torch.zeros(len(names), 1)

    def predict(self, frames, text):
        return torch.zeros(frames.shape[0], text.shape[0], 1, 1)


def test_parameters_count_the_held_modules_once():
    model = _Holder(None, torch.device("cpu"))
    assert model.parameters() is None  # nothing to count: records keep no parameters key
    shared = torch.nn.Linear(3, 4)  # 16 parameters
    model.encoder, model.same, model.head = shared, shared, torch.nn.Sequential(shared, torch.nn.Linear(4, 2))  # + 10
    assert model.parameters() == 26


def test_full_size_parameter_counts_match_the_measured_ones():
    """The adapters' own counts (what a record says) against model_zoo.md's counts of the official
    models, random init on the CPU (a few seconds each)."""
    for entry in ZOO:
        assert abs(build(entry.id, entry.full_args, "cpu").parameters() - entry.full_parameters) < 0.01e6, entry.id


@pytest.fixture(scope="module")
def zoo_records(tmp_path_factory):
    """Runs of each tiny zoo variant on the validation video of a synthetic VSPW and VIPSeg set
    (9 frames: VC8 needs more than 8, VC16 more than 16), at test size 384 (CAT-Seg's one crop plus the global
    view: its 640 default costs seconds a frame here even for the tiny variant)."""
    tmp = tmp_path_factory.mktemp("zoo")
    roots = {"vspw_all": write_synthetic_vspw(tmp / "vspw", videos=2, frames=9, height=48, width=64),
             "vipseg_all": write_synthetic_vipseg(tmp / "vipseg", videos=2, frames=9, height=48, width=64)}
    records = {}
    for entry in ZOO:
        for split, root in roots.items():
            records[entry.id, split] = ovbench.evaluate(entry.id, split, root, model_args=entry.args_at(entry.tiny_args, 384),
                                                        out_dir=tmp / "runs" / split, log=lambda *a: None, workers=0)
    return tmp / "runs", records


def test_records_carry_the_parameter_count(zoo_records):
    _, records = zoo_records
    for entry in ZOO:
        expected = build(entry.id, entry.tiny_args, "cpu").parameters()
        assert records[entry.id, "vspw_all"]["model"]["parameters"] == records[entry.id, "vipseg_all"]["model"]["parameters"] == expected > 100_000


@pytest.mark.parametrize("split", ["vspw_all", "vipseg_all"])
def test_zoo_video_layout_renders_the_tiny_runs(zoo_records, split):
    runs, records = zoo_records
    out = subprocess.run([sys.executable, "-m", "ovbench", "leaderboard", "--results", str(runs / split), "--table", "zoo-video"],
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["Method", "Backbone", "Parameters", "Seen", "Unseen", "hIoU", "VC8", "VC16", "Frames/s per process"]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    labels = {spec.match["model.id"][0]: f"{spec.label}§" for spec in load_layout("zoo-video").rows}  # § marks random weights
    assert set(rows) == {labels[entry.id] for entry in ZOO}
    for entry in ZOO:
        label, record = labels[entry.id], records[entry.id, split]
        assert rows[label][2] == f"{record['model']['parameters'] / 1e6:.1f} M"
        assert rows[label][7] == "-" and "VC16" not in record["metrics"]  # 9-frame videos
        for column, metric in ((3, "mIoU_seen"), (4, "mIoU_unseen"), (5, "hIoU"), (6, "VC8")):
            assert rows[label][column].strip("*") == f"{100 * record['metrics'][metric]:.1f}", (label, metric)  # ** marks the best
