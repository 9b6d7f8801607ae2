"""VIPSeg through the scale-out paths and the leaderboard: torchrun with 2 processes and two
merged shards give the single process's record; the leaderboard tabulates VIPSeg records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import assert_same, check, env, only_record, single, torchrun, toy_run_words

from ovbench.data.roots import dataset_name

pytestmark = pytest.mark.slow  # real torchrun and shard processes


def words(data: Path, out: Path) -> list[str]:
    return toy_run_words(data, out, "vipseg_all")


@pytest.fixture(scope="module")
def data(vipseg_videos) -> Path:
    return vipseg_videos


def test_torchrun_and_merged_shards_equal_one_process(data, tmp_path):
    check(single() + words(data, tmp_path / "single"))
    reference = only_record(tmp_path / "single")
    check(torchrun(2) + words(data, tmp_path / "torchrun"))
    assert_same(reference, only_record(tmp_path / "torchrun"))
    shards = tmp_path / "shards"
    for shard in ("0/2", "1/2"):
        check(single() + words(data, shards) + ["--shard", shard])
    (state,) = shards.glob("*.state")
    check(single() + ["merge", str(state), "--out", str(shards)])
    assert_same(reference, only_record(shards))


def test_leaderboard_tabulates_vipseg_records(data, tmp_path):
    out = tmp_path / "runs"
    check(single() + words(data, out))
    dataset = dataset_name(data)
    shown = subprocess.run(single() + ["leaderboard", "--results", str(out), "--dataset", dataset, "--protocol", "vipseg"],
                           env=env(), capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "toy-colour" in shown.stdout and dataset in shown.stdout
