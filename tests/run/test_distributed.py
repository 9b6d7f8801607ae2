"""Scale-out gives the same numbers: 1 process vs torchrun with 2 (gloo) vs 2 merged shards, and a
SIGKILLed job resumed with another process count. Run as real processes, as users run them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import assert_same, check, env, only_record, single, torchrun, toy_run_words

from ovbench.records.read import fps_per_process
from ovbench.run.state import RunState

pytestmark = pytest.mark.slow  # real torchrun, shard and SIGKILL processes


@pytest.fixture(scope="module")
def data(vspw_runs) -> Path:
    return vspw_runs


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("single")
    check(single() + toy_run_words(data, out))
    return only_record(out)


def test_torchrun_two_processes_equal_one(data, reference, tmp_path):
    check(torchrun(2) + toy_run_words(data, tmp_path))
    record = only_record(tmp_path)
    assert_same(reference, record)
    assert record["timing"]["processes"] == 2
    # the leaderboard compares one process with one process: the busy time of both ranks, not the wall time
    timing = record["timing"]
    busy = sum(result.seconds for result in RunState(next(tmp_path.glob("*.state"))).contents().finished)
    assert fps_per_process(record) == timing["fps_per_process_end_to_end"] == pytest.approx(timing["frames"] / busy)
    assert fps_per_process(record) < timing["fps_end_to_end"]  # two ranks side by side: per process is less than the total


def test_two_shards_merged_equal_one(data, reference, tmp_path):
    check(single() + toy_run_words(data, tmp_path) + ["--shard", "0/2"])
    assert not list(tmp_path.glob("*.json"))  # a shard alone writes no record
    (state,) = tmp_path.glob("*.state")
    early = subprocess.run(single() + ["merge", str(state), "--out", str(tmp_path)], env=env(), capture_output=True, text=True)
    assert early.returncode == 2 and "a --shard job is unfinished" in early.stderr  # never a silent partial record
    check(single() + ["merge", str(state), "--out", str(tmp_path / "partial"), "--partial"])
    partial = only_record(tmp_path / "partial")
    assert partial["dataset"]["videos"] + len(partial["dataset"]["skipped"]) == reference["dataset"]["videos"]
    check(single() + toy_run_words(data, tmp_path) + ["--shard", "1/2"])
    check(single() + ["merge", str(state), "--out", str(tmp_path)])
    record = only_record(tmp_path)
    assert_same(reference, record)
    walls = [0.0, 0.0]
    for result in RunState(state).contents().finished:
        walls[result.rank] += result.seconds
    assert record["timing"]["processes"] == 2
    assert record["timing"]["seconds"] == pytest.approx(max(walls))  # shards ran side by side, not one after another


def test_sigkill_mid_video_then_resume_with_another_process_count(data, reference, tmp_path):
    job = subprocess.Popen(torchrun(2) + toy_run_words(data, tmp_path), env=env(OVBENCH_TOY_SLEEP="0.15"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*.state/videos/*.json")):
        time.sleep(0.2)
    time.sleep(0.5)  # well inside the next video
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not list(tmp_path.glob("*.json")), "the job finished before it was killed; the test proves nothing"
    check(single() + toy_run_words(data, tmp_path))
    record = only_record(tmp_path)
    assert_same(reference, record)
    assert sum(v["frames"] for v in record["per_video"].values()) == reference["dataset"]["frames"]
    assert record["timing"]["frames"] == reference["dataset"]["frames"]  # no frame counted twice or lost
