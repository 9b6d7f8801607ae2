"""The text-embedding cache: damaged entries are re-encoded, never unpickled, and a bad cache
location gets one line."""

import pickle

import pytest
import torch
from safetensors.torch import save_file
from toy_adapters import CALLS, ToyArgs, ToyColour

from ovbench.cli import main
from ovbench.errors import ConfigError
from ovbench.resolve import cache_root
from ovbench.run.textcache import TextCache

NAMES = ["wall", "sky", "tree"]


class Trap:
    """A pickle that, if ever loaded, leaves a marker file behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _model():
    return ToyColour(ToyArgs(), torch.device("cpu"))


def _entry(cache, model):
    return cache.root / f"{cache.key(model, NAMES)}.safetensors"


def _damage(path, kind, tmp_path):
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"text": Trap(tmp_path / "unpickled")}))
    elif kind == "torch-save":
        torch.save({"text": torch.zeros(3, 8)}, path)
    elif kind == "wrong-rows":
        save_file({"text": torch.zeros(2, 8)}, str(path))
    elif kind == "wrong-key":
        save_file({"other": torch.zeros(3, 8)}, str(path))
    elif kind == "integers":
        save_file({"text": torch.zeros(3, 8, dtype=torch.int64)}, str(path))


@pytest.mark.parametrize("kind", ["truncated", "empty", "pickle", "torch-save", "wrong-rows", "wrong-key", "integers"])
def test_a_damaged_entry_is_encoded_again_with_a_note(tmp_path, kind):
    notes = []
    cache, model = TextCache(tmp_path, note=notes.append), _model()
    expected, _ = cache.embed(model, NAMES)
    path = _entry(cache, model)
    _damage(path, kind, tmp_path)
    before = CALLS["encode_text"]
    text, _ = cache.embed(model, NAMES)
    assert torch.equal(text, expected) and CALLS["encode_text"] == before + 1
    assert len(notes) == 1 and str(path) in notes[0] and "damaged" in notes[0]
    assert not (tmp_path / "unpickled").exists()
    cache.embed(model, NAMES)  # repaired: read from the cache, no new note
    assert CALLS["encode_text"] == before + 1 and len(notes) == 1


def test_a_cache_that_cannot_be_written_costs_time_not_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    notes = []
    text, _ = TextCache(blocker, note=notes.append).embed(_model(), NAMES)
    assert text.shape == (3, 8) and len(notes) == 1 and "cannot write the text cache" in notes[0]


def test_ovbench_cache_naming_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    target = tmp_path / "cache.txt"
    target.write_text("")
    monkeypatch.setenv("OVBENCH_CACHE", str(target))
    with pytest.raises(ConfigError, match="OVBENCH_CACHE=.*cache.txt is a file"):
        cache_root()
    assert main(["cache", "ls"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err


def test_cache_ls_lists_damaged_entries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OVBENCH_CACHE", str(tmp_path))
    cache, model = TextCache(), _model()
    cache.embed(model, NAMES)
    cache.embed(model, NAMES[:2])
    _damage(_entry(cache, model), "truncated", tmp_path)
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert out.count("  damaged (") == 1 and "2 entries" in out and "toy-colour/dim=8" in out
    damaged = [e for e in cache.entries() if e.damaged]
    assert [e.path for e in damaged] == [_entry(cache, model)]


PROMPT_PLUGIN = '''
import dataclasses, hashlib, torch
from ovbench.api import ModelArgs, SegmentationModel
from ovbench.registry import register_model

TEMPLATE = "a photo of a {}."

@register_model("prompted")
class Prompted(SegmentationModel):
    """Embeds each name through its prompt: a new template gives other embeddings."""
    def encode_text(self, names):
        rows = []
        for name in names:
            seed = int.from_bytes(hashlib.sha256(TEMPLATE.format(name).encode()).digest()[:8], "little")
            rows.append(torch.randn(3, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows)

    def text_cache_key(self):
        return "prompted-v1"  # the author forgot to name the template here

    def predict(self, frames, text):
        return torch.einsum("bchw,kc->bkhw", frames.float() / 255, text.to(torch.float32))
'''


def test_an_edited_plugin_prompt_is_encoded_again_and_changes_the_predictions(vspw_small, tmp_path, capsys):
    """Issue 23.1: the cache key covers the adapter's source, not only its text_cache_key()."""
    plugin = tmp_path / "prompted.py"
    runs = []
    for template in ("a photo of a {}.", "a blurry photo of a {}."):
        plugin.write_text(PROMPT_PLUGIN.replace('"a photo of a {}."', repr(template)))
        out = tmp_path / template.split()[1]
        assert main(["run", "--plugin", str(plugin), "--model", "prompted", "--split", "vspw_all", "--data-root", str(vspw_small),
                     "--out", str(out), "--device", "cpu", "--workers", "0", "--no-progress"]) == 0
        runs.append((capsys.readouterr().err, next(out.glob("*.json")).read_text()))
    assert "cache miss" in runs[0][0] and "cache miss" in runs[1][0]
    first, second = (__import__("json").loads(record) for _, record in runs)
    assert first["per_video"] != second["per_video"]
