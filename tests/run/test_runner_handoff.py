"""The runner counts each batch a few batches after scoring it (on a GPU its labels are then on
the host without a wait): every check still applies to the batch it belongs to, however the
batches fall, and the last batches of a video are counted before the video is committed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from toy_adapters import ToyColour

from ovbench.cli import main
from ovbench.records.read import load_record
from ovbench.registry import register_model
from ovbench.run.model_io import to_host


@register_model("test-labels-fresh")
class FreshLabels(ToyColour):
    """Returns uint8 labels at the frame's size, a new tensor each batch."""

    def predict(self, frames, text):
        scores = super().predict(frames, text)
        return F.interpolate(scores, frames.shape[-2:], mode="bilinear", align_corners=False).argmax(1).to(torch.uint8)


@register_model("test-labels-reused")
class ReusedLabels(FreshLabels):
    """The same labels, returned in one buffer the adapter overwrites at every batch (as a model
    with a preallocated output might): the contract allows it."""

    buffer = None

    def predict(self, frames, text):
        labels = super().predict(frames, text)
        if self.buffer is None or self.buffer.shape != labels.shape:
            self.buffer = torch.empty_like(labels)
        return self.buffer.copy_(labels)


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


@pytest.fixture(scope="module")
def clean(data_root, tmp_path_factory) -> dict:
    """The toy model's record, one frame per batch."""
    return run(data_root, tmp_path_factory.mktemp("clean"), "--batch-size", "1")


def run(data_root: Path, out: Path, *extra: str, model: str = "toy-colour") -> dict:
    code = main(["run", "--plugin", "toy_adapters", "--model", model, "--split", "vspw_all", "--data-root",
                 str(data_root), "--out", str(out), "--device", "cpu", "--workers", "0", "--no-progress", *extra])
    assert code in (0, 3)
    return load_record(next(out.glob("*.json")))


@pytest.mark.parametrize("batch", [1, 2, 3, 8])
def test_late_counting_keeps_every_batch_with_its_video(data_root, clean, tmp_path, batch):
    """Every batch size: a NaN video is skipped and named, every other video's numbers are those
    of a clean run (on CUDA, batch 2 with 3-frame videos leaves both of a video's batches pending
    at its end, so its NaN is found only by the count that closes it)."""
    names = sorted(clean["per_video"])
    failing = names[2]
    got = run(data_root, tmp_path / "nan", "--batch-size", str(batch), "--model-args", f"fail_video={failing},fail_with=nan")
    (skipped,) = got["dataset"]["skipped"]
    assert skipped["video"] == failing and "NaN or infinite scores" in skipped["error"]
    assert got["per_video"] == {name: entry for name, entry in clean["per_video"].items() if name != failing}


def test_labels_in_a_buffer_the_adapter_reuses_are_counted_before_it_is_overwritten(data_root, tmp_path):
    fresh = run(data_root, tmp_path / "fresh", "--batch-size", "1", model="test-labels-fresh")
    reused = run(data_root, tmp_path / "reused", "--batch-size", "1", model="test-labels-reused")
    assert reused["metrics"] == fresh["metrics"] and reused["per_video"] == fresh["per_video"]


def test_a_device_fault_while_resizing_stops_the_run_in_one_line(data_root, tmp_path, monkeypatch, capsys):
    import ovbench.run.model_io as runner_module

    original, calls = runner_module.upsampled_labels, []

    def fault_in_the_second_video(scores, size):
        calls.append(1)
        if len(calls) == 4:  # 3-frame videos, batch 1: the second video's first frame
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return original(scores, size)

    monkeypatch.setattr(runner_module, "upsampled_labels", fault_in_the_second_video)
    code = main(["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root",
                 str(data_root), "--out", str(tmp_path), "--device", "cpu", "--workers", "0", "--no-progress", "--batch-size", "1"])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("ovbench: error: ") and "an accelerator error: stopping" in error and "frames" in error


def test_to_host_on_the_cpu_is_the_tensors_themselves():
    labels, finite = torch.zeros(2, 3, 4, dtype=torch.uint8), torch.tensor(True)
    host_labels, host_finite, copied = to_host(labels, finite)
    assert host_labels is labels and host_finite is finite and copied is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_host_from_cuda_is_complete_after_its_event():
    labels = torch.randint(0, 124, (4, 480, 853), dtype=torch.uint8, device="cuda")
    finite = torch.isfinite(torch.randn(8, device="cuda")).all()
    host_labels, host_finite, copied = to_host(labels, finite)
    copied.synchronize()
    assert host_labels.device.type == "cpu" and host_labels.is_pinned()
    assert torch.equal(host_labels, labels.cpu()) and bool(host_finite)


@pytest.mark.parametrize("size", [(7, 9), (13, 17)])
def test_upsampled_labels_is_the_plain_argmax_and_catches_every_score_that_could_decide(size):
    """Labels equal `interpolate` + `argmax`; a NaN in any class, or +inf, makes the batch bad
    (a NaN or +inf wins the max). A -inf that loses changes no label and is allowed at the
    frame's size; resized, it is bad (bilinear weights of 0 times -inf are NaN)."""
    from ovbench.run.model_io import upsampled_labels

    scores = torch.randn(2, 5, 7, 9, generator=torch.Generator().manual_seed(3))
    plain = F.interpolate(scores, size, mode="bilinear", align_corners=False).argmax(1)
    labels, finite = upsampled_labels(scores, size)
    assert torch.equal(labels, plain) and bool(finite)
    for value, bad in ((float("nan"), True), (float("inf"), True), (float("-inf"), size != (7, 9))):
        spoiled = scores.clone()
        loser = int(scores[1, :, 4, 5].argmin())
        spoiled[1, loser, 4, 5] = value
        labels, finite = upsampled_labels(spoiled, size)
        assert bool(finite) is not bad, value
        if not bad:
            assert torch.equal(labels, plain)
