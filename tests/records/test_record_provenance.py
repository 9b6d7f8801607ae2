"""Records say how they were made: the command, batch size, workers, processes, each session's
host, device, cores and libraries; frames/s per process; a resume on another device is marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toy_adapters

from ovbench.cli import main
from ovbench.records.provenance import usable_cores
from ovbench.records.read import load_record


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


def argv(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root", str(data_root),
            "--out", str(out), "--device", "cpu", "--workers", "0", "--batch-size", "3", "--limit-videos", "3",
            "--no-progress", *extra]


def test_the_record_names_the_command_and_every_session(data_root, tmp_path):
    words = argv(data_root, tmp_path)
    assert main(words) == 0
    record = load_record(next(tmp_path.glob("*.json")))
    (session,) = record["run"]["sessions"]
    assert session["command"] == ["ovbench", *words]
    assert (session["batch_size"], session["workers"], session["processes"]) == (3, 0, 1)
    assert session["host"] and session["device"] and session["cores"] == usable_cores() >= 1
    assert set(session["libraries"]) == {"numpy", "pillow", "open_clip"} and session["libraries"]["numpy"]
    assert "cuda" not in session  # CUDA's version only when CUDA was used
    assert record["options"]["limit_videos"] == 3
    assert record["run"]["ovbench"]["version"] and len(record["model"]["source_sha256"]) == 64
    timing = record["timing"]
    assert timing["processes"] == 1 and timing["mixed_devices"] is False
    assert timing["fps_per_process_end_to_end"] == pytest.approx(timing["fps_end_to_end"])


def test_a_run_resumed_on_another_device_is_marked_mixed(data_root, tmp_path):
    toy_adapters.CALLS["predict_frames"] = 0
    toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = 5  # Ctrl-C in the second video
    try:
        assert main(argv(data_root, tmp_path)) == 130
    finally:
        toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = -1
    (first,) = tmp_path.glob("*.state/sessions/*.json")
    payload = json.loads(first.read_text())
    payload["env"]["device"] = "Some Other CPU"  # as if the first session ran on another machine
    first.write_text(json.dumps(payload))
    assert main(argv(data_root, tmp_path)) == 0
    record = load_record(next(tmp_path.glob("*.json")))
    assert [s["device"] == "Some Other CPU" for s in record["run"]["sessions"]] == [True, False]
    assert record["timing"]["mixed_devices"] is True


def test_a_skipped_video_counts_neither_its_frames_nor_its_time(data_root, tmp_path):
    videos = sorted((data_root / "val.txt").read_text().split())[:3]
    slow = tmp_path / "slow"
    assert main(argv(data_root, slow, "--model-args", f"fail_video={videos[1]}")) == 3
    record = load_record(next(slow.glob("*.json")))
    assert [s["video"] for s in record["dataset"]["skipped"]] == [videos[1]]
    (state,) = slow.glob("*.state")
    finished = [json.loads(p.read_text()) for p in (state / "videos").glob("*.json")]
    assert record["timing"]["frames"] == record["dataset"]["frames"] == sum(f["metrics"]["frames"] for f in finished)
    assert record["timing"]["seconds"] == pytest.approx(sum(f["seconds"] for f in finished))
