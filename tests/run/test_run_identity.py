"""A rerun never returns a stale result: the run's fingerprint covers the adapter's code, the
split's content, the data's identity (not its path) and ovbench's own commit; a finished run
with the same fingerprint is reused, and says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ovbench.cli import main
from ovbench.records.provenance import git_info
from ovbench.records.read import load_record
from ovbench.run.record import merge_runs

PLUGIN = textwrap.dedent("""
    from ovbench.registry import register_model
    import toy_adapters

    @register_model("edited-plugin")
    class Edited(toy_adapters.ToyColour):
        def predict(self, frames, text):
            return super().predict(frames, text) * SIGN
""")


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


def run_words(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--split", "vspw_all", "--data-root", str(data_root), "--out", str(out), "--workers", "0",
            "--device", "cpu", "--no-progress", *extra]


def records(folder: Path) -> list[dict]:
    return [load_record(path) for path in sorted(folder.glob("*.json"))]


def test_an_edited_plugin_is_a_new_run_and_a_finished_run_is_reused(data_root, tmp_path, capsys):
    plugin = tmp_path / "edited_plugin.py"
    argv = run_words(data_root, tmp_path / "runs", "--plugin", str(plugin), "--model", "edited-plugin")
    plugin.write_text(PLUGIN.replace("SIGN", "1"))
    assert main(argv) == 0
    (first,) = records(tmp_path / "runs")
    plugin.write_text(PLUGIN.replace("SIGN", "-1"))  # the same command, another predict
    assert main(argv) == 0
    both = records(tmp_path / "runs")
    assert len(both) == 2
    second = next(r for r in both if r["run"] != first["run"])
    assert second["per_video"] != first["per_video"]  # the new predict ran
    assert second["model"]["source_sha256"] != first["model"]["source_sha256"]
    capsys.readouterr()
    assert main(argv) == 0  # unchanged: the finished run is reused, in one line
    err = capsys.readouterr().err
    assert "reusing " in err and f"finished {second['created']}; --overwrite to recompute" in err
    assert len(records(tmp_path / "runs")) == 2
    assert main(argv + ["--overwrite"]) == 0  # recomputed from scratch, into the same files
    assert "reusing " not in capsys.readouterr().err
    again = [r for r in records(tmp_path / "runs") if r["run"]["fingerprint_sha256"] == second["run"]["fingerprint_sha256"]]
    assert len(again) == 1 and again[0]["per_video"] == second["per_video"]


def test_a_moved_data_set_is_the_same_run_and_changed_bytes_are_another(data_root, private_copy, tmp_path, capsys):
    moved = private_copy(data_root, tmp_path / "a" / "VSPW_480p")
    argv = ["--plugin", "toy_adapters", "--model", "toy-colour"]
    assert main(run_words(moved, tmp_path / "runs", *argv)) == 0
    moved.rename(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(run_words(tmp_path / "elsewhere", tmp_path / "runs", *argv)) == 0
    assert "reusing " in capsys.readouterr().err
    video = sorted((tmp_path / "elsewhere" / "val.txt").read_text().split())[0]
    frame = sorted((tmp_path / "elsewhere" / "data" / video / "origin").iterdir())[0]
    Image.open(frame).save(frame, quality=20)  # re-encoded: same names and counts, other bytes
    assert main(run_words(tmp_path / "elsewhere", tmp_path / "runs", *argv)) == 0
    assert "reusing " not in capsys.readouterr().err
    assert len(records(tmp_path / "runs")) == 2


def test_a_split_file_is_named_by_path_and_content_and_kept_in_the_state(data_root, tmp_path, monkeypatch, capsys):
    mine = tmp_path / "work" / "mine.json"
    mine.parent.mkdir()
    mine.write_text(json.dumps({"protocol": "mine", "version": 1, "unseen": [3, 5, 7],
                                "splits": {"x": {"subset": "val", "vocabulary": "all"}}}))
    monkeypatch.chdir(mine.parent)
    out = tmp_path / "runs"
    words = ["--plugin", "toy_adapters", "--model", "toy-colour", "--shard", "0/1"]
    words_for = lambda split: [w if w != "vspw_all" else split for w in run_words(data_root, out, *words)]  # noqa: E731
    assert main(words_for("./mine.json#x")) == 0
    capsys.readouterr()
    assert main(words_for("mine.json#x")) == 0  # the same file, spelled another way: the same run
    assert "reusing " in capsys.readouterr().err
    (state,) = out.glob("*.state")
    (record_path,) = out.glob("*.json")
    record = load_record(record_path)
    mine.unlink()  # the user's file is gone, and the merge runs from another folder
    monkeypatch.chdir(tmp_path)
    merged, _ = merge_runs([state], tmp_path / "merged")
    assert merged["metrics"] == record["metrics"] and merged["split"] == record["split"]
    assert merged["split"]["hash"] == record["split"]["hash"]


def _repo(folder: Path, name: str) -> Path:
    (folder / "pkg").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    (folder / "pkg" / "mod.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(folder)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return folder / "pkg"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_read_from_ovbench_own_repository_only(tmp_path):
    assert git_info(_repo(tmp_path / "other", "someone-elses-project")) is None  # a venv inside another repo
    package = _repo(tmp_path / "ovbench", "ovbench")
    info = git_info(package)
    assert len(info["commit"]) == 40 and info["dirty"] is False
    (package / "mod.py").write_text("x = 2\n")
    git_info.cache_clear()
    assert git_info(package)["dirty"] is True


def test_a_file_named_like_a_builtin_split_does_not_change_its_identity(tmp_path, monkeypatch):
    from ovbench.run.fingerprint import split_identity
    from ovbench.split import load_split

    monkeypatch.chdir(tmp_path)
    (tmp_path / "vspw_all").write_text("not a split")
    assert split_identity(load_split("vspw_all"))["source"] == "vspw_all"
    (tmp_path / "mine.json").write_bytes((Path(__file__).parents[2] / "splits" / "vspw.json").read_bytes())
    assert split_identity(load_split("./mine.json#vspw_all")) == split_identity(load_split("mine.json#vspw_all"))
    assert split_identity(load_split("mine.json#vspw_all"))["source"] == f"{tmp_path.resolve() / 'mine.json'}#vspw_all"


def test_an_edited_annotation_file_is_another_run(coco_images, private_copy, tmp_path, capsys):
    """Issue 23.7a: a COCO category changed in place (same images, same masks) is not answered
    with the record of the data before the edit."""
    root = private_copy(coco_images)
    words = ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "coco_val", "--data-root", str(root),
             "--out", str(tmp_path / "runs"), "--device", "cpu", "--workers", "0", "--no-progress"]
    assert main(words) == 0
    path = root / "annotations" / "panoptic_val2017.json"
    annotations = json.loads(path.read_text())
    segment = annotations["annotations"][0]["segments_info"][0]
    segment["category_id"] = next(c["id"] for c in annotations["categories"] if c["id"] != segment["category_id"])
    path.write_text(json.dumps(annotations))
    capsys.readouterr()
    assert main(words) == 0
    assert "reusing" not in capsys.readouterr().err
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
