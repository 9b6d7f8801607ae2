"""clip-dense's advice on open_clip versions names the range pyproject.toml declares, read
from the installed metadata: the range is written once, and a missing metadata is said plainly."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import tomllib
import torch
from ovbench.models.clip_dense import block_layout, declared_open_clip

from ovbench.errors import ConfigError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pyproject_range() -> set[str]:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (declared,) = [d.replace("-", "_") for d in dependencies if d.replace("-", "_").startswith("open_clip_torch")]
    return {part.strip() for part in declared.removeprefix("open_clip_torch").split(",")}


def _advice() -> str:
    """The error clip-dense gives on ViT blocks it cannot read."""
    blocks = torch.nn.ModuleList([torch.nn.Module()])
    blocks[0].attn = torch.nn.Linear(8, 8)
    with pytest.raises(ConfigError) as caught:
        block_layout(blocks)
    return str(caught.value)


def test_the_advice_names_the_range_pyproject_declares():
    advice = _advice()
    named = advice.rpartition("install open_clip_torch ")[2]
    assert set(named.split(",")) == _pyproject_range(), advice


def test_the_range_comes_from_the_package_metadata(monkeypatch):
    real = importlib.metadata.requires
    monkeypatch.setattr(importlib.metadata, "requires",
                        lambda name: ["numpy>=1", "open-clip-torch <9,>=7.1 ; python_version >= '3'"] if name == "ovbench" else real(name))
    assert _advice().endswith("install open_clip_torch >=7.1,<9")


def test_without_metadata_the_advice_says_where_the_range_is(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", missing)
    assert declared_open_clip() == (
        "the open_clip_torch versions in ovbench's pyproject.toml (ovbench's package metadata is not installed here)"
    )
    assert "pyproject.toml" in _advice()
