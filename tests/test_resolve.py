"""One rule decides whether an option's value is a built-in name or a user's file."""

import pytest
from ovbench.leaderboard.layouts import load_layout
from ovbench.models.gkc.checkpoint import resolve_checkpoint
from ovbench.models.gkc.config import load_config

from ovbench.errors import ConfigError, WeightsError
from ovbench.resolve import names_a_file, resolve, user_file


@pytest.mark.parametrize(
    "value, is_file",
    [("gkc-r50", False), ("vspw_unseen", False), ("mine.json", True), ("./mine", True), ("~/w.pt", True),
     ("sub/x", True), ("w.safetensors", True), ("W.PT", True), ("plugin.py", True), ("my.module", False)],
)
def test_the_rule(value, is_file):
    assert names_a_file(value) is is_file


def test_an_existing_bare_file_counts_only_when_no_builtin_has_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").write_text("{}")
    (tmp_path / "gkc-r50").write_text("{}")
    assert names_a_file("mine", ["gkc-r50"]) and not names_a_file("gkc-r50", ["gkc-r50"])
    assert not names_a_file("mine")  # without the built-in names, only the spelling decides


def test_paths_are_absolute_and_the_same_however_written(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "a.json")
    monkeypatch.chdir(tmp_path)
    assert user_file("a.json", "x") == user_file("./a.json", "x") == user_file(str(tmp_path / "sub" / ".." / "a.json"), "x") == user_file("link.json", "x") == (tmp_path / "a.json").resolve()
    with pytest.raises(WeightsError, match=r"^weights file .*b.pt does not exist$"):
        user_file("b.pt", "weights file", WeightsError)


def test_builtin_names_get_suggestions(tmp_path):
    (tmp_path / "alpha.json").write_text("{}")
    assert resolve("alpha", tmp_path, ".json", "thing") == tmp_path / "alpha.json"
    with pytest.raises(ConfigError, match=r"unknown thing 'alpa' \(did you mean alpha\?\); built-in: alpha"):
        resolve("alpa", tmp_path, ".json", "thing")


def test_every_place_uses_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spelled in ("missing.json", "./missing.json"):
        with pytest.raises(ConfigError, match=f"GKC config file {tmp_path}/missing.json does not exist"):
            load_config(spelled)
        with pytest.raises(ConfigError, match=f"--table layout file {tmp_path}/missing.json does not exist"):
            load_layout(spelled)
    with pytest.raises(WeightsError, match=f"GKC checkpoint {tmp_path}/c.safetensors does not exist"):
        resolve_checkpoint("c.safetensors")
    (tmp_path / "gkc-r50").write_text("not json")  # a built-in id wins over a stray file of that name
    assert load_config("gkc-r50").id == "gkc-r50"
