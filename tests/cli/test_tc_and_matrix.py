"""TC, and evaluation matrices, through the commands.

TC: `--tc --tc-weights none` runs offline on the synthetic sample (a seeded random raft_small,
recorded random_init), its per-video entries are saved with the video (so a merge pools the
same TC), and a missing weights file is one line, exit 2. The pooled TC is checked against the
torch-free state fed the saved entries. Matrix: `--split a,b` and `--split layout:gkc-vipseg`
run every split in one process, one record each, the same records as one split per command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import env, toy_run_words

from ovbench.cli import main
from ovbench.metrics.tc import TCMetrics
from ovbench.run.record import merge_runs

TOY = ["--plugin", "toy_adapters", "--model", "toy-colour", "--device", "cpu", "--workers", "0", "--no-progress"]


def records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_tc_run_offline_with_random_flow(vspw_runs, tmp_path):
    words = ["run", *TOY, "--split", "vspw_all", "--data-root", str(vspw_runs), "--out", str(tmp_path),
             "--tc", "--tc-weights", "none", "--tc-subset", "official100", "--batch-size", "3"]
    assert main(words) == 0
    (name, record), = records(tmp_path).items()
    tc = record["options"]["tc"]
    assert tc["subset"] == "official100" and tc["videos"] == 3
    assert tc["flow"]["random_init"] is True and tc["flow"]["sha256"] is None and tc["flow"]["flow_updates"] == 20
    state = tmp_path / Path(name).with_suffix(".state") / "videos"
    reference = TCMetrics(len(record["per_class"]))
    for path in sorted(state.glob("*.json")):
        entry = json.loads(path.read_text())["metrics"]
        assert entry["tc"]["pairs"] == entry["frames"] - 1
        reference.add_video(path.stem, entry["tc"])
    assert record["metrics"]["TC"] == reference.compute()["metrics"]["TC"]
    assert all("TC" in video for video in record["per_video"].values())
    merged, _ = merge_runs([state.parent], tmp_path / "merged")
    assert merged["metrics"] == record["metrics"]


def test_missing_flow_weights_is_one_line(vspw_runs, tmp_path):
    words = ["run", *TOY, "--split", "vspw_all", "--data-root", str(vspw_runs), "--out", str(tmp_path),
             "--tc", "--tc-weights", str(tmp_path / "raft.pth")]
    done = subprocess.run([sys.executable, "-m", "ovbench", *words], env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ovbench: error: RAFT weights not found: {tmp_path / 'raft.pth'}; TC needs torchvision's port of RAFT"
        " raft-things (Raft_Large_Weights.C_T_V1): raft_large_C_T_V1-22a6c225.pth from download.pytorch.org/models/"]
    assert not list(tmp_path.glob("*.state"))  # refused before anything ran


@pytest.mark.parametrize("words, message", [
    (["--tc"], "--tc needs --tc-weights"),
    (["--tc-weights", "none"], "--tc-weights and --tc-subset only apply with --tc"),
    (["--tc", "--tc-weights", "none", "--tc-subset", "first100"], "unknown TC subset 'first100'"),
])
def test_tc_words_that_cannot_run(vspw_runs, tmp_path, capsys, words, message):
    assert main(["run", *TOY, "--split", "vspw_all", "--data-root", str(vspw_runs), "--out", str(tmp_path), *words]) == 2
    assert message in capsys.readouterr().err


def test_score_tc_imports_torch_only_when_asked(vspw_runs, tmp_path):
    """Predictions written by a run (vocabulary-index PNGs), scored with and without --tc."""
    assert main(["run", *TOY, "--split", "vspw_all", "--data-root", str(vspw_runs), "--out", str(tmp_path / "run"),
                 "--save-predictions", "png", "--tc", "--tc-weights", "none"]) == 0
    (_, run_record), = records(tmp_path / "run").items()
    pred = next((tmp_path / "run").glob("*.predictions"))
    probe = ("import sys\nfrom ovbench.cli import main\ncode = main(sys.argv[1:])\n"
             "print('torch' in sys.modules)\nsys.exit(code)")
    base = ["score", "--split", "vspw_all", "--pred", str(pred), "--pred-ids", "vocab", "--data-root", str(vspw_runs),
            "--no-progress"]
    for extra, torch_expected in (([], "False"), (["--tc", "--tc-weights", "none"], "True")):
        out = tmp_path / f"score{len(extra)}"
        done = subprocess.run([sys.executable, "-c", probe, *base, "--out", str(out), *extra], env=env(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == torch_expected
    (_, scored), = records(tmp_path / "score3").items()
    assert scored["metrics"]["TC"] == run_record["metrics"]["TC"]  # the same flow on the same frames and labels
    assert scored["options"]["tc"]["flow"] == run_record["options"]["tc"]["flow"]


def test_split_list_runs_each_split_once_with_one_model(vspw_runs, tmp_path, monkeypatch):
    import ovbench.run.model_io as model_io

    built = []
    real = model_io.build_model
    monkeypatch.setattr(model_io, "build_model", lambda *a, **k: built.append(a[0]) or real(*a, **k))
    words = ["run", *TOY, "--data-root", str(vspw_runs)]
    assert main([*words, "--split", "vspw_all,vspw_unseen", "--out", str(tmp_path / "matrix")]) == 0
    assert built == ["toy-colour"]
    for split in ("vspw_all", "vspw_unseen"):
        assert main([*words, "--split", split, "--out", str(tmp_path / "single")]) == 0
    matrix, single = records(tmp_path / "matrix"), records(tmp_path / "single")
    assert sorted(matrix) == sorted(single)  # the same runs, by name (fingerprint)
    for name in matrix:
        assert matrix[name]["metrics"] == single[name]["metrics"]
    assert main([*words, "--split", "vspw_all,vspw_all", "--out", str(tmp_path / "x")]) == 2


def test_evaluate_takes_a_list(vspw_runs, tmp_path):
    import toy_adapters  # noqa: F401

    import ovbench

    quiet = dict(device="cpu", workers=0, log=lambda message: None)
    many = ovbench.evaluate("toy-colour", ["vspw_all", "vspw_seen"], vspw_runs, out_dir=tmp_path, **quiet)
    assert [r["split"]["name"] for r in many] == ["vspw_all", "vspw_seen"]
    one = ovbench.evaluate("toy-colour", "vspw_seen", vspw_runs, out_dir=tmp_path, **quiet)
    assert isinstance(one, dict) and one["metrics"] == many[1]["metrics"]


def test_gkc_vipseg_protocol_in_one_call_renders_its_table(vipseg_videos, tmp_path):
    words = toy_run_words(vipseg_videos, tmp_path, "layout:gkc-vipseg")
    done = subprocess.run([sys.executable, "-m", "ovbench", *words], env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    made = {r["split"]["name"]: r["dataset"]["name"] for r in records(tmp_path).values()}
    assert sorted(made) == ["vipseg_all", "vipseg_seen", "vipseg_unseen"]
    table = subprocess.run([sys.executable, "-m", "ovbench", "leaderboard", "--results", str(tmp_path), "--table", "gkc-vipseg",
                            "--dataset", made["vipseg_all"]],
                           env=env(), capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "toy-colour" in line)
    assert "-" not in [cell.strip() for cell in row.strip("|").split("|")][2:]  # Base, Novel, hIoU, VC8, VC16 all read


@pytest.mark.parametrize("words, message", [
    ("layout:nope", "--split layout:nope: unknown --table layout 'nope'"),
    ("layout:gkc-video", "--split layout:gkc-video: layout gkc-video names no split in its columns"),
    ("vspw_all,", "--split 'vspw_all,': an empty name in the list"),
])
def test_split_words_that_name_no_run(tmp_path, capsys, words, message):
    assert main(["score", "--split", words, "--pred", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
