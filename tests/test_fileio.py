"""One atomic write for every file ovbench makes: all or nothing, and shared as the umask says."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from helpers import minimal_record

from ovbench.fileio import write_atomic, write_bytes, write_json, write_text
from ovbench.records.write import write_record
from ovbench.run.textcache import TextCache


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    write_bytes(tmp_path / "a.bin", b"x")
    write_text(tmp_path / "b.txt", "x")
    write_json(tmp_path / "c.json", {"a": 1})
    record = write_record(minimal_record(), tmp_path / "runs", "r")
    for path in (tmp_path / "a.bin", tmp_path / "b.txt", tmp_path / "c.json", record):
        assert mode(path) == expected, path


def test_text_cache_entries_follow_the_umask(tmp_path, umask, monkeypatch):
    import toy_adapters

    umask(0o002)
    cache = TextCache(tmp_path / "cache")
    model = toy_adapters.ToyColour(toy_adapters.ToyArgs(), torch.device("cpu"))
    first, _ = cache.embed(model, ["wall", "sky"])
    (entry,) = (tmp_path / "cache" / "text").glob("*.safetensors")
    assert mode(entry) == 0o664
    again, _ = cache.embed(model, ["wall", "sky"])
    assert torch.equal(first, again)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    write_json(target, {"done": 1})

    def fail_half_way(out):
        out.write(b"{\"do")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, fail_half_way)
    with pytest.raises(ValueError):
        write_json(target, {"x": float("nan")})
    assert target.read_text() == '{\n "done": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_content_round_trips_and_folders_are_made(tmp_path):
    write_text(tmp_path / "deep" / "er" / "t.txt", "héllo\n")
    assert (tmp_path / "deep" / "er" / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    write_atomic(tmp_path / "t.pt", lambda out: torch.save({"a": torch.arange(3)}, out))
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["a"], torch.arange(3))
