"""The run state loses nothing: one locked writer per run, one atomic file per video, damaged
or duplicated entries named, and an unwritable --out said in one line with the state kept."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovbench.cli import main
from ovbench.errors import DataError
from ovbench.records.read import load_record
from ovbench.run.record import merge_runs
from ovbench.run.state import RunState

TESTS = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


def words(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root", str(data_root),
            "--out", str(out), "--device", "cpu", "--workers", "0", "--batch-size", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory) -> Path:
    """The state folder of a finished run."""
    out = tmp_path_factory.mktemp("finished")
    assert main(words(data_root, out)) == 0
    (state,) = out.glob("*.state")
    return state


def listed(data_root: Path) -> list[str]:
    return (data_root / "val.txt").read_text().split()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ovbench: error:"), err
    return err[0]


@pytest.mark.slow
def test_two_copies_of_one_command_on_one_out(data_root, tmp_path):
    """A double submit: the second stops at once naming the first, which finishes the run."""
    go_on = tmp_path / "go-on"  # the first run's model waits for it: the second starts mid-run
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "OVBENCH_TOY_WAIT_FOR": str(go_on)}
    argv = [sys.executable, "-m", "ovbench", *words(data_root, tmp_path)]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*.state/sessions/*.json")):
        time.sleep(0.1)
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    go_on.touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2, second.stderr[-2000:]
    line = second.stderr.strip().splitlines()
    assert len(line) == 1 and f"in use by process {first.pid} on " in line[0], line
    record = load_record(next(tmp_path.glob("*.json")))
    assert record["dataset"]["videos"] == len(listed(data_root)) and not record["dataset"]["skipped"]


def test_a_state_with_duplicate_entries_still_merges(finished, tmp_path):
    reference = merge_runs([finished], tmp_path / "reference")[0]
    copy = tmp_path / finished.name
    shutil.copytree(finished, copy)
    merged, _ = merge_runs([finished, copy], tmp_path / "twice")  # every video twice, identical: kept once
    assert merged["per_video"] == reference["per_video"] and merged["metrics"] == reference["metrics"]
    assert merged["timing"]["frames"] == reference["timing"]["frames"]
    entry = sorted((copy / "videos").glob("*.json"))[0]
    payload = json.loads(entry.read_text())
    payload["metrics"]["frames"] += 1
    entry.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=f"video {entry.stem} was scored twice with different results .*{entry.name} and .*{entry.name}"):
        merge_runs([finished, copy], tmp_path / "differ")


@pytest.mark.parametrize("damaged", ["fingerprint.json", "videos", "sessions"])
def test_a_damaged_state_file_is_named_in_one_line(data_root, finished, tmp_path, capsys, damaged):
    state = tmp_path / "runs" / finished.name
    shutil.copytree(finished, state)
    target = state / damaged if damaged.endswith(".json") else sorted((state / damaged).glob("*.json"))[0]
    target.write_text('{"half": ')
    assert main(["merge", str(state)]) == 2
    assert f"{target}: damaged run state file" in one_line_error(capsys)


def test_out_naming_a_file_is_one_line(data_root, finished, tmp_path, capsys):
    (tmp_path / "taken").write_text("not a folder")
    assert main(words(data_root, tmp_path / "taken")) == 2
    assert "cannot write the run state at" in one_line_error(capsys)
    assert main(["merge", str(finished), "--out", str(tmp_path / "taken")]) == 2
    assert f"cannot write the record into {tmp_path / 'taken'}" in one_line_error(capsys)
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_a_full_disk_mid_run_is_one_line_and_keeps_what_was_finished(data_root, tmp_path, capsys, monkeypatch):
    import ovbench.fileio as fileio

    real_write, videos = fileio.write_atomic, []

    def fill_up(path, write):
        if Path(path).parent.name == "videos":
            videos.append(path)
            if len(videos) > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, write)

    monkeypatch.setattr(fileio, "write_atomic", fill_up)
    assert main(words(data_root, tmp_path)) == 2
    assert "No space left on device; what was finished is kept there" in one_line_error(capsys)
    monkeypatch.undo()
    (state,) = tmp_path.glob("*.state")
    kept = RunState(state).done_videos()
    assert len(kept) == 2
    assert not list(state.rglob("*.tmp"))
    assert main(words(data_root, tmp_path)) == 0  # space again: resumes
    assert "resuming: " in capsys.readouterr().err
    assert load_record(next(tmp_path.glob("*.json")))["dataset"]["videos"] == len(listed(data_root))


@pytest.mark.slow
def test_sigterm_mid_run_then_resume_gives_the_same_record(data_root, finished, tmp_path):
    import signal

    reference = merge_runs([finished], tmp_path / "reference")[0]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "OVBENCH_TOY_SLEEP": "0.3"}
    job = subprocess.Popen([sys.executable, "-m", "ovbench", *words(data_root, tmp_path / "out")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "out").glob("*.state/videos/*.json")):
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)  # a SLURM preemption
    _, err = job.communicate(timeout=60)
    assert job.returncode == 143 and "ovbench: terminated; rerun the same command to resume" in err  # issue 23.10
    assert not list((tmp_path / "out").glob("*.json")), "the job finished before SIGTERM; the test proves nothing"
    assert main(words(data_root, tmp_path / "out")) == 0  # the lock went with the process
    record = load_record(next((tmp_path / "out").glob("*.json")))
    assert record["per_video"] == reference["per_video"] and record["metrics"] == reference["metrics"]
    assert record["timing"]["frames"] == reference["timing"]["frames"]


def test_an_unwritable_out_promises_no_kept_work(data_root, tmp_path, capsys):
    """Issue 23.10: --out under /proc keeps nothing, and the line must not say it did."""
    assert main(words(data_root, Path("/proc/ovbench-out"))) == 2
    err = capsys.readouterr().err
    assert "cannot write the run state" in err and "kept" not in err
