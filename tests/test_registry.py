"""The registry: plugins cannot take another adapter's id, and one bad installed package cannot
break every command."""

import importlib.metadata
import textwrap

import pytest

from ovbench import registry
from ovbench.cli import main
from ovbench.errors import ConfigError

PLUGIN = textwrap.dedent("""
    from ovbench.registry import register_model
    import toy_adapters

    @register_model({name!r})
    class {cls}(toy_adapters.ToyColour):
        pass
""")


def _plugin(folder, file, name, cls="Model"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(PLUGIN.format(name=name, cls=cls))
    return str(path)


def test_a_plugin_cannot_take_a_builtin_id(tmp_path, capsys):
    dup = _plugin(tmp_path, "dup.py", "gkc", cls="Other")
    code = main(["run", "--plugin", dup, "--model", "gkc", "--split", "vspw_unseen", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "ovbench.models.gkc:GKC" in err and ":Other" in err and dup in err
    assert registry.get_model_class("gkc").__module__.startswith("ovbench.models.gkc")


def test_two_plugin_classes_of_one_name_do_not_replace_each_other(tmp_path):
    first = _plugin(tmp_path / "a", "first.py", "same-id")
    registry.load_plugin(first)
    kept = registry.get_model_class("same-id")
    with pytest.raises(ConfigError, match=r"'same-id' is registered twice: .*:Model \(.*first.py\) and .*:Model \(.*second.py\)"):
        registry.load_plugin(_plugin(tmp_path / "b", "second.py", "same-id"))
    assert registry.get_model_class("same-id") is kept
    registry.load_plugin(first)  # the same file given twice is the same class


def test_plugin_files_of_one_name_in_two_folders_stay_apart(tmp_path):
    registry.load_plugin(_plugin(tmp_path / "a", "model.py", "folder-a"))
    registry.load_plugin(_plugin(tmp_path / "b", "model.py", "folder-b"))
    a, b = registry.get_model_class("folder-a"), registry.get_model_class("folder-b")
    assert a is not b and a.model_id == "folder-a" and b.model_id == "folder-b"
    assert a.__module__ != b.__module__  # neither module replaces the other in sys.modules


@pytest.fixture
def installed(monkeypatch):
    """Entry points as if third-party packages were installed beside ovbench."""
    real = list(importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP))
    extra: list = []

    def entry_points(group):
        return real + extra if group == registry.ENTRY_POINT_GROUP else importlib.metadata.entry_points(group=group)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    for name, fresh in (("_classes", dict(registry._classes)), ("_lazy", {}), ("_conflicts", {}), ("_entry_points_loaded", False)):
        monkeypatch.setattr(registry, name, fresh)

    def install(name, target):
        extra.append(importlib.metadata.EntryPoint(name=name, value=target, group=registry.ENTRY_POINT_GROUP))

    return install


def test_conflicting_entry_points_are_named_and_the_rest_works(installed, capsys):
    installed("gkc", "evil.adapter:FakeGKC")
    installed("third", "first_pkg.mod:A")
    installed("third", "second_pkg.mod:B")
    installed("toy-colour-ep", "toy_adapters:ToyColour")
    installed("toy-colour-ep", "toy_adapters:ToyColour")  # one package found twice: no conflict
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    assert "clip-dense" in out and "toy-colour-ep    toy_adapters:ToyColour" in out
    assert "first_pkg.mod:A and second_pkg.mod:B" in out
    assert "note: built-in model id 'gkc' is also claimed by evil.adapter:FakeGKC: ignored" in out
    assert registry.get_model_class("gkc").__qualname__ == "GKC"
    with pytest.raises(ConfigError, match="'third' is claimed by first_pkg.mod:A and second_pkg.mod:B; uninstall all but one"):
        registry.get_model_class("third")


def test_two_third_party_claims_on_a_builtin_id_keep_the_builtin(installed):
    installed("clip-dense", "one.mod:X")
    installed("clip-dense", "two.mod:Y")
    assert registry.get_model_class("clip-dense").__qualname__ == "ClipDense"
    assert registry.registry_notes() == ["built-in model id 'clip-dense' is also claimed by one.mod:X, two.mod:Y: ignored"]
