"""CLIP weight files: damaged or pickled files get one line naming them; nothing is unpickled."""

import os
import pickle

import pytest
import torch
from ovbench.models.clip_loading import create_clip
from safetensors.torch import save_file

from ovbench.cli import main
from ovbench.errors import WeightsError
from ovbench.fileio import file_sha256

ARCH = "ovbench-tiny-vit"


class Trap:
    """A pickled object that, if ever loaded, leaves a marker file behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def state():
    model, _ = create_clip(ARCH, "none")
    return {k: v.clone().contiguous() for k, v in model.state_dict().items()}


def _write(path, kind, state, marker):
    if kind.endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save(state, path)
    if kind.startswith("truncated"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind.startswith("empty"):
        path.write_bytes(b"")
    elif kind == "trap.pt":
        path.write_bytes(pickle.dumps({"visual.proj": Trap(marker)}))
    elif kind == "object-in-zip.pt":
        torch.save({**state, "extra": Trap(marker)}, path)
    elif kind == "list.pt":
        torch.save([1, 2], path)
    elif kind == "empty-dict.pt":
        torch.save({}, path)
    elif kind == "other-arch.pt":
        other, _ = create_clip("ovbench-tiny-rn", "none")
        torch.save(other.state_dict(), path)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated.pt", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("truncated.safetensors", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("empty.pt", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("empty.safetensors", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("trap.pt", "holds pickled Python objects"),
        ("object-in-zip.pt", "holds pickled Python objects"),
        ("list.pt", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("empty-dict.pt", "cannot be loaded into ovbench-tiny-vit: damaged"),
        ("other-arch.pt", "made for another architecture"),
    ],
)
def test_a_bad_weights_file_is_one_line_naming_it(tmp_path, state, kind, message):
    path = tmp_path / f"w-{kind}"
    marker = tmp_path / "unpickled"
    _write(path, kind, state, marker)
    with pytest.raises(WeightsError, match=message) as caught:
        create_clip(ARCH, str(path))
    text = str(caught.value)
    assert str(path) in text and "\n" not in text and "weights_only" not in text
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_good_weights_file_loads_exactly(tmp_path, state, suffix):
    path = tmp_path / f"good{suffix}"
    _write(path, suffix, {k: v + 1 for k, v in state.items()}, None)
    model, info = create_clip(ARCH, str(path))
    assert all(torch.equal(v, state[k] + 1) for k, v in model.state_dict().items())
    assert info.source == str(path.resolve()) and not info.random_init and info.sha256 == file_sha256(path)


def test_a_pickled_weights_file_through_the_cli(tmp_path, state, capsys):
    path = tmp_path / "trap.pt"
    _write(path, "trap.pt", state, tmp_path / "unpickled")
    args = ["run", "--model", "clip-dense", "--split", "vspw_unseen", "--model-args", f"clip={ARCH},pretrained={path}", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ovbench: error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "weights_only" not in err and "Traceback" not in err
    assert not (tmp_path / "unpickled").exists()


def test_the_hash_follows_a_file_rewritten_in_place(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    path.write_bytes(b"a" * 100)
    first = file_sha256(path)
    stat = path.stat()
    path.write_bytes(b"b" * 100)  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_sha256(path) != first
    assert file_sha256(tmp_path / "." / "ckpt.safetensors") == file_sha256(path)
