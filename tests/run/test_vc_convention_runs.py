"""`--vc-convention` through the runner, `ovbench merge` and the leaderboard.

The reference is plain arithmetic over the video entries the run state saved (each holds the
video's frames and, per VC window n, the fixed-point sum of its window accuracies and their
count): the official VC_n pools every video, the CFFM family's only the videos of more than 16
frames (shared/reference/field.md 1.5-1.6). `vspw_runs` has val videos of 24, 17 and 16 frames:
the 17-frame one is kept and the 16-frame one left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_toy

from ovbench.cli import main
from ovbench.metrics.consistency import FIXED_POINT_BITS
from ovbench.run.record import merge_runs


def entries(record_path: Path) -> dict[str, dict]:
    state = record_path.with_suffix(".state") / "videos"
    return {p.stem: json.loads(p.read_text())["metrics"] for p in state.glob("*.json")}


def pooled_vc(videos: dict[str, dict], n: int, longer_than: int) -> float:
    total = count = 0
    for entry in videos.values():
        if entry["frames"] > longer_than:
            for window, window_total, window_count in entry["vc"]:
                if window == n:
                    total, count = total + window_total, count + window_count
    return total / (count << FIXED_POINT_BITS)


@pytest.fixture(scope="module")
def runs(vspw_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("vc_runs")
    official = run_toy(vspw_runs, out)
    cffm = run_toy(vspw_runs, out, vc_convention="cffm")
    return official, cffm


def test_cffm_leaves_16_frame_videos_out_of_vc_and_miou(runs, vspw_runs, tmp_path):
    (official, official_path), (cffm, cffm_path) = runs
    videos = entries(official_path)
    assert sorted(v["frames"] for v in videos.values()) == [16, 17, 24]
    assert cffm["options"]["vc_convention"] == "cffm" and cffm["options"]["min_video_frames"] == 16
    assert "vc_convention" not in official["options"] and official["options"]["min_video_frames"] == 0
    for n in (8, 16):
        assert official["metrics"][f"VC{n}"] == pytest.approx(pooled_vc(videos, n, 0), abs=1e-12)
        assert cffm["metrics"][f"VC{n}"] == pytest.approx(pooled_vc(videos, n, 16), abs=1e-12)
    assert cffm["metrics"]["VC8"] != official["metrics"]["VC8"]  # the 16-frame video counted for official VC8
    mIoU_16, _ = run_toy(vspw_runs, tmp_path, min_video_frames=16)  # official: 16 leaves mIoU only
    assert cffm["metrics"]["mIoU"] == mIoU_16["metrics"]["mIoU"]
    assert mIoU_16["metrics"]["VC8"] == official["metrics"]["VC8"]
    assert cffm_path != official_path  # another run, another record


def test_merge_rescores_a_state_under_the_other_convention(runs, tmp_path):
    (official, official_path), (cffm, cffm_path) = runs
    state = official_path.with_suffix(".state")
    same, same_path = merge_runs([state], tmp_path)
    assert same["metrics"] == official["metrics"] and same_path.name == official_path.name
    rescored, path = merge_runs([state], tmp_path, vc_convention="cffm")
    assert rescored["metrics"] == cffm["metrics"]
    assert rescored["options"]["vc_convention"] == "cffm"
    assert path.name == cffm_path.name  # the record that run writes (and would reuse)
    back, _ = merge_runs([cffm_path.with_suffix(".state")], tmp_path, vc_convention="official")
    assert back["metrics"] == official["metrics"] and "vc_convention" not in back["options"]


def test_the_cli_words(vspw_runs, tmp_path, capsys):
    base = ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root",
            str(vspw_runs), "--out", str(tmp_path), "--device", "cpu", "--workers", "0", "--no-progress"]
    assert main([*base, "--vc-convention", "cfm"]) == 2
    assert "unknown VC convention 'cfm'" in capsys.readouterr().err
    assert main([*base, "--vc-convention", "cffm", "--min-video-frames", "17"]) == 0
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["options"]["min_video_frames"] == 17 and record["options"]["vc_convention"] == "cffm"
    assert record["dataset"]["videos"] == 3 and "VC16" in record["metrics"]  # only the 24-frame video counted
    state = next(tmp_path.glob("*.state"))
    assert main(["merge", str(state), "--out", str(tmp_path / "m"), "--vc-convention", "official"]) == 0
    merged = json.loads(next((tmp_path / "m").glob("*.json")).read_text())
    assert merged["options"]["min_video_frames"] == 0 and "vc_convention" not in merged["options"]


def test_leaderboard_marks_cffm_cells(runs):
    from ovbench.leaderboard.layouts import load_layout
    from ovbench.leaderboard.records import find_runs
    from ovbench.leaderboard.table import build_leaderboard

    (_, official_path), (_, cffm_path) = runs
    found, _ = find_runs(official_path.parent)
    board = build_leaderboard(found, load_layout("default"), all_runs=True)
    marked = {board.rows[i].newest.path.name for (i, _), ids in board.markers.items() if "cffm" in ids}
    assert marked == {cffm_path.name}
    assert "cffm" in board.footnotes()


def test_a_paper_vocabulary_run_scores_background_as_wrong(vspw_runs, tmp_path):
    """ov2vss_unseen_paper gives the model 45 names (44 + background): predicting background is
    counted (not an out-of-range error) and wrong for the pixel's class; a run on it records 45
    names and a background entry without ground truth."""
    import toy_adapters  # noqa: F401

    from ovbench.metrics.split_metrics import new_metrics
    from ovbench.split import load_split

    paper = load_split("ov2vss_unseen_paper")
    metrics = new_metrics(paper, None)
    metrics.begin_video("v")
    gt = np.full((1, 4, 4), 80, np.uint8)  # trash_can, the first unseen class
    metrics.update(gt, np.full((1, 4, 4), 44, np.uint8))  # index 44: background
    metrics.end_video()
    assert metrics.compute()["metrics"]["mIoU"] == 0.0
    record, _ = run_toy(vspw_runs, tmp_path, split="ov2vss_unseen_paper")
    assert record["split"]["vocabulary_size"] == 45
    assert record["per_class"]["background"] == {"iou": None, "acc": None, "gt_pixels": 0, "seen": False}
