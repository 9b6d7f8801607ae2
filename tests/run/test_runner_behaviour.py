"""How a run ends: broken videos skipped and named (exit 3), a failing model or device stops
the run resumably, NaN scores caught, and a run without computable metrics is an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ovbench.cli import main
from ovbench.records.read import load_record
from ovbench.run.state import RunState


@pytest.fixture(scope="module")
def data_root(vspw_uniform) -> Path:
    return vspw_uniform


@pytest.fixture(scope="module")
def videos(data_root) -> list[str]:
    """The run's order (one frame size: by name)."""
    names = sorted((data_root / "val.txt").read_text().split())
    assert len(names) >= 5
    return names


def argv(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root", str(data_root),
            "--out", str(out), "--device", "cpu", "--workers", "0", "--no-progress", *extra]


def error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("ovbench: ")]
    assert len(err) == 1, err
    return err[0]


def done(out: Path) -> set[str]:
    (state,) = out.glob("*.state")
    return RunState(state).done_videos()


def test_a_missing_video_folder_is_skipped_and_named(data_root, videos, private_copy, tmp_path, capsys):
    copy = private_copy(data_root, tmp_path / "data")
    shutil.rmtree(copy / "data" / videos[2])
    assert main(argv(copy, tmp_path / "out")) == 3
    assert "1 video(s) skipped, listed in the record (exit status 3)" in error_line(capsys)
    record = load_record(next((tmp_path / "out").glob("*.json")))
    assert [s["video"] for s in record["dataset"]["skipped"]] == [videos[2]]
    assert "video folder not found" in record["dataset"]["skipped"][0]["error"]
    assert record["dataset"]["videos"] == len(videos) - 1
    assert main(argv(copy, tmp_path / "strict", "--strict")) == 2
    assert f"video {videos[2]}: " in error_line(capsys)


def test_the_run_stops_after_k_consecutive_model_failures(data_root, videos, tmp_path, capsys):
    failing = f"fail_video={videos[1]}+{videos[2]}"
    assert main(argv(data_root, tmp_path / "k2", "--model-args", failing, "--max-model-failures", "2")) == 2
    assert f"failed on video {videos[2]}" in (line := error_line(capsys)) and "2 videos in a row: stopping" in line
    assert done(tmp_path / "k2") == {videos[0]} and not list((tmp_path / "k2").glob("*.json"))
    assert main(argv(data_root, tmp_path / "k3", "--model-args", failing)) == 3  # default 3: two in a row are skipped
    record = load_record(next((tmp_path / "k3").glob("*.json")))
    assert [s["video"] for s in record["dataset"]["skipped"]] == [videos[1], videos[2]]
    capsys.readouterr()
    # a record that skipped videos is never reused: the same command retries them (here they fail again)
    assert main(argv(data_root, tmp_path / "k3", "--model-args", failing)) == 3
    assert "reusing" not in capsys.readouterr().err
    assert load_record(next((tmp_path / "k3").glob("*.json")))["dataset"]["skipped"] == record["dataset"]["skipped"]
    # failures separated by a finished video are not in a row
    apart = f"fail_video={videos[1]}+{videos[3]}"
    assert main(argv(data_root, tmp_path / "apart", "--model-args", apart, "--max-model-failures", "2")) == 3


def test_an_accelerator_error_stops_the_run_resumably(data_root, videos, tmp_path, capsys):
    assert main(argv(data_root, tmp_path, "--model-args", f"fail_video={videos[2]},fail_with=oom")) == 2
    line = error_line(capsys)
    assert f"failed on video {videos[2]}" in line and "CUDA out of memory" in line and "an accelerator error: stopping" in line
    assert done(tmp_path) == set(videos[:2])


def test_nan_scores_are_caught_and_named(data_root, videos, tmp_path, capsys):
    assert main(argv(data_root, tmp_path, "--model-args", f"fail_video={videos[1]},fail_with=nan", "--batch-size", "1")) == 3
    record = load_record(next(tmp_path.glob("*.json")))
    (skipped,) = record["dataset"]["skipped"]
    assert skipped["video"] == videos[1] and f"returned NaN or infinite scores on video {videos[1]} frames" in skipped["error"]
    capsys.readouterr()
    assert main(argv(data_root, tmp_path / "first", "--model-args", f"fail_video={videos[0]},fail_with=nan")) == 2
    assert "NaN or infinite scores" in error_line(capsys)


def test_a_run_without_computable_metrics_is_an_error(data_root, tmp_path, capsys):
    assert main(argv(data_root, tmp_path, "--min-video-frames", "100")) == 2
    assert "no metric can be computed: --min-video-frames 100 leaves out every evaluated video" in error_line(capsys)
    assert not list(tmp_path.glob("*.json"))
