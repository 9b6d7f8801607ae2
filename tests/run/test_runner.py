"""`ovbench run` end to end on a small synthetic set with the toy adapter."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import toy_adapters
from helpers import run_toy

from ovbench import registry
from ovbench.cli import main
from ovbench.data.reader import VideoFrames
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.data.vspw import VSPW
from ovbench.errors import ConfigError, DataError, ModelError
from ovbench.predictions import RleWriter
from ovbench.records.read import load_record
from ovbench.run.record import merge_runs
from ovbench.run.schedule import assign_videos, list_videos
from ovbench.run.state import RunState
from ovbench.split import load_split

COMPARED = ("metrics", "per_class", "per_video", "dataset", "split", "model")


@pytest.fixture(scope="module")
def data_root(vspw_runs) -> Path:
    return vspw_runs


def same(a: dict, b: dict) -> None:
    for key in COMPARED:
        assert a[key] == b[key], key


def test_record_is_complete_and_valid(data_root, tmp_path):
    record, path = run_toy(data_root, tmp_path)
    assert load_record(path) == record
    assert record["dataset"]["name"] == "vspw-synthetic"
    assert set(record["metrics"]) >= {"mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "pAcc", "mAcc", "fwIoU", "VC8"}
    assert record["dataset"]["videos"] == len(record["per_video"]) > 0
    assert record["dataset"]["frames"] == record["timing"]["frames"]
    assert record["timing"]["fps_end_to_end"] > 0 and record["timing"]["fps_model"] > 0
    assert record["model"]["weights"] == "toy"


def test_unseen_split_has_no_seen_keys(data_root, tmp_path):
    record, _ = run_toy(data_root, tmp_path, split="vspw_unseen")
    assert record["split"]["vocabulary_size"] == 12
    assert "hIoU" not in record["metrics"] and "mIoU_seen" not in record["metrics"]
    assert all(not entry["seen"] for entry in record["per_class"].values())


def test_batch_size_does_not_change_numbers(data_root, tmp_path):
    one, _ = run_toy(data_root, tmp_path / "b1", batch_size=1)
    eight, _ = run_toy(data_root, tmp_path / "b8", batch_size=8, workers=2)
    same(one, eight)


def test_second_run_hits_the_text_cache(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("OVBENCH_CACHE", str(tmp_path / "cache"))
    before = toy_adapters.CALLS["encode_text"]
    run_toy(data_root, tmp_path / "first")
    run_toy(data_root, tmp_path / "second")
    assert toy_adapters.CALLS["encode_text"] - before == 1


def test_interrupted_run_resumes_to_the_same_record(data_root, tmp_path):
    reference, _ = run_toy(data_root, tmp_path / "reference")
    toy_adapters.CALLS["predict_frames"] = 0
    toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = 30
    try:
        with pytest.raises(KeyboardInterrupt):
            run_toy(data_root, tmp_path / "crash", batch_size=2)
    finally:
        toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = -1
    toy_adapters.CALLS["predict_frames"] = 0
    resumed, _ = run_toy(data_root, tmp_path / "crash", batch_size=3)
    same(reference, resumed)
    total = sum(v["frames"] for v in reference["per_video"].values())
    assert 0 < toy_adapters.CALLS["predict_frames"] < total  # finished videos were not run again


def test_runs_with_other_settings_get_their_own_record(data_root, tmp_path):
    full, full_path = run_toy(data_root, tmp_path)
    short, short_path = run_toy(data_root, tmp_path, limit_videos=2)
    assert short_path != full_path and short["dataset"]["videos"] == 2
    assert load_record(full_path) == full  # not replaced
    again, again_path = run_toy(data_root, tmp_path)  # the same settings: the same run, resumed
    assert again_path == full_path and again["metrics"] == full["metrics"]


def test_a_video_the_model_fails_on_is_skipped_and_named(data_root, tmp_path):
    videos = sorted((data_root / "val.txt").read_text().split())
    record, _ = run_toy(data_root, tmp_path, model_args=f"fail_video={videos[1]}")
    assert [s["video"] for s in record["dataset"]["skipped"]] == [videos[1]]
    assert "simulated failure" in record["dataset"]["skipped"][0]["error"]
    assert videos[1] not in record["per_video"] and videos[0] in record["per_video"]
    with pytest.raises(ModelError, match=videos[1]):
        run_toy(data_root, tmp_path / "strict", model_args=f"fail_video={videos[1]}", strict=True)


def test_a_model_failing_before_any_success_stops_the_run(data_root, tmp_path):
    first = sorted((data_root / "val.txt").read_text().split())[0]
    with pytest.raises(ModelError, match=f"failed on video {first} frames .*simulated failure.*first video: stopping"):
        run_toy(data_root, tmp_path, model_args=f"fail_video={first}")
    assert not RunState(next(tmp_path.glob("*.state"))).done_videos()


@pytest.mark.slow
def test_failing_video_first_in_a_shard_or_a_resume_is_skipped_as_in_one_run(data_root, tmp_path):
    """Whether a model failure stops the run depends on the video (the run's first), never on
    which process met it first or on what an earlier session finished."""
    videos = sorted(list_videos(VSPW(data_root), load_split("vspw_all")), key=lambda v: v.name)  # one frame size
    bad = assign_videos(videos, 2)[1][0].name  # first in shard 1's share, not the run's first
    assert bad != min(v.name for v in videos)
    reference, _ = run_toy(data_root, tmp_path / "one", model_args=f"fail_video={bad}")
    assert [s["video"] for s in reference["dataset"]["skipped"]] == [bad]
    run_toy(data_root, tmp_path / "shards", model_args=f"fail_video={bad}", shard=(1, 2))  # no ModelError
    run_toy(data_root, tmp_path / "shards", model_args=f"fail_video={bad}", shard=(0, 2))
    merged, _ = merge_runs(list((tmp_path / "shards").glob("*.state")), tmp_path / "shards")
    same(reference, merged)
    # a resume whose first video is the bad one (skipped videos are retried) skips it again
    ordered = sorted(v.name for v in videos)
    bad = ordered[1]
    reference, _ = run_toy(data_root, tmp_path / "one-b", model_args=f"fail_video={bad}")
    first_frames = len(next(v for v in videos if v.name == ordered[0]).frames)
    toy_adapters.CALLS["predict_frames"] = 0
    toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = first_frames + 1  # Ctrl-C inside the third video
    try:
        with pytest.raises(KeyboardInterrupt):
            run_toy(data_root, tmp_path / "resume", model_args=f"fail_video={bad}", batch_size=2)
    finally:
        toy_adapters.CRASH_AFTER_FRAMES["toy-colour"] = -1
    resumed, _ = run_toy(data_root, tmp_path / "resume", model_args=f"fail_video={bad}")
    same(reference, resumed)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["writing the predictions", "saving the state"])
def test_interrupt_while_closing_a_video_resumes_exactly(data_root, tmp_path, monkeypatch, where):
    """Ctrl-C between a video's last frame and its bookkeeping: the video must end up counted
    once (not twice, not lost) and its predictions kept or redone."""
    reference, _ = run_toy(data_root, tmp_path / "reference", save_predictions="rle")
    target = RleWriter.end_video if where == "writing the predictions" else RunState.save_result
    calls = {"n": 0}

    def interrupt_second(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return target(*args)

    monkeypatch.setattr(RleWriter if target is RleWriter.end_video else RunState, target.__name__, interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_toy(data_root, tmp_path / "crash", save_predictions="rle", batch_size=2)
    monkeypatch.undo()
    resumed, path = run_toy(data_root, tmp_path / "crash", save_predictions="rle")
    same(reference, resumed)
    assert resumed["timing"]["frames"] == resumed["dataset"]["frames"] == reference["dataset"]["frames"]
    predictions = path.parent / (path.stem + ".predictions")
    assert sorted(p.stem for p in predictions.glob("*.json")) == sorted(reference["per_video"])


@pytest.mark.slow
def test_a_real_ctrl_c_while_a_video_is_closed_resumes_exactly(data_root, tmp_path, monkeypatch):
    import os
    import signal

    reference, _ = run_toy(data_root, tmp_path / "reference", save_predictions="rle")
    original, closing = RleWriter.end_video, []

    def end_with_ctrl_c(self):
        closing.append(self.video)
        if len(closing) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of the bookkeeping
        original(self)

    monkeypatch.setattr(RleWriter, "end_video", end_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_toy(data_root, tmp_path / "crash", save_predictions="rle")
    monkeypatch.undo()
    (state,) = (tmp_path / "crash").glob("*.state")
    assert RunState(state).done_videos() == set(closing[:1])  # the interrupted video was not committed...
    predictions = state.with_suffix(".predictions")
    assert sorted(p.stem for p in predictions.glob("*.json")) == closing[:1]  # ...nor its predictions kept
    resumed, _ = run_toy(data_root, tmp_path / "crash", save_predictions="rle")
    same(reference, resumed)
    assert resumed["timing"]["frames"] == reference["dataset"]["frames"]
    assert sorted(p.stem for p in predictions.glob("*.json")) == sorted(reference["per_video"])


def test_an_unexpected_error_while_scoring_names_the_frames_and_keeps_finished_work(data_root, tmp_path, monkeypatch):
    import ovbench.run.model_io as runner_module

    original, calls = runner_module.upsampled_labels, []

    def fail_in_the_second_video(scores, size):
        calls.append(1)
        if len(calls) == 14:  # the first video has 24 frames: 12 batches of 2
            raise MemoryError("out of memory")
        return original(scores, size)

    monkeypatch.setattr(runner_module, "upsampled_labels", fail_in_the_second_video)
    with pytest.raises(RuntimeError, match=r"resizing video \S+ frames \d+\.\.\d+: MemoryError: out of memory") as caught:
        run_toy(data_root, tmp_path, batch_size=2)
    assert isinstance(caught.value.__cause__, MemoryError)  # the traceback is kept
    assert len(RunState(next(tmp_path.glob("*.state"))).done_videos()) == 1  # finished work is on disk


def test_video_without_frames_is_skipped_and_named(data_root, private_copy, tmp_path):
    copy = private_copy(data_root, tmp_path / "data")
    video = sorted((copy / "val.txt").read_text().split())[1]
    for frame in (copy / "data" / video / "origin").iterdir():
        frame.unlink()
    record, _ = run_toy(copy, tmp_path / "out")
    assert [s["video"] for s in record["dataset"]["skipped"]] == [video]
    assert "no frames" in record["dataset"]["skipped"][0]["error"]
    with pytest.raises(DataError, match=f"video {video}: no frames"):
        run_toy(copy, tmp_path / "strict", strict=True)


def test_corrupt_frame_skips_only_its_video(data_root, private_copy, tmp_path):
    broken = private_copy(data_root, tmp_path / "broken")
    video = (broken / "val.txt").read_text().split()[0]
    frame = sorted((broken / "data" / video / "origin").iterdir())[2]
    frame.write_bytes(b"not a jpeg")
    record, _ = run_toy(broken, tmp_path / "out")
    assert record["dataset"]["skipped"][0]["video"] == video
    assert frame.stem in record["dataset"]["skipped"][0]["error"]
    assert video not in record["per_video"] and len(record["per_video"]) == record["dataset"]["videos"] > 0
    with pytest.raises(DataError, match=frame.stem):
        run_toy(broken, tmp_path / "strict", strict=True)


def test_saved_predictions_rescore_to_the_same_numbers(data_root, tmp_path):
    for kind in ("png", "rle"):
        record, path = run_toy(data_root, tmp_path / kind, save_predictions=kind)
        pred_dir = path.parent / (path.stem + ".predictions")
        assert main(["score", "--split", "vspw_all", "--pred", str(pred_dir), "--data-root", str(data_root), "--out", str(tmp_path / f"score-{kind}"), "--no-progress"]) == 0
        scored = load_record(next((tmp_path / f"score-{kind}").glob("*.json")))
        assert scored["metrics"] == record["metrics"]
        assert scored["per_class"] == record["per_class"]


def test_videos_of_one_frame_size_run_one_after_another(tmp_path):
    from ovbench.run.schedule import group_by_frame_size

    roots = [write_synthetic_vspw(tmp_path / f"d{i}", videos=4, height=40, width=71 + 10 * (i % 2), seed=i) for i in range(3)]
    merged = tmp_path / "merged"
    (merged / "data").mkdir(parents=True)
    names = []
    for i, root in enumerate(roots):  # interleave the sizes in name order
        for name in (root / "val.txt").read_text().split():
            new = f"{len(names):04d}_{i}"
            (root / "data" / name).rename(merged / "data" / new)
            names.append(new)
    data = VSPW(merged)
    videos = [VideoFrames(n, tuple(sorted(p.stem for p in (merged / "data" / n / "origin").iterdir()))) for n in sorted(names)]
    ordered = group_by_frame_size(data, videos)
    widths = [data.frame_size(v.name, v.frames[0])[1] for v in ordered]
    assert widths == sorted(widths) and len(set(widths)) == 2  # one switch, not one per video
    assert sorted(v.name for v in ordered) == sorted(names)
    assert data.frame_size(videos[0].name, "missing") is None


def test_assignment_is_balanced_and_complete():
    videos = [VideoFrames(f"v{i}", tuple(map(str, range(n)))) for i, n in enumerate([50, 40, 30, 20, 10, 10])]
    shares = assign_videos(videos, 2)
    # longest first, each to the least loaded share (ties: the first), each share in list order
    assert [[v.name for v in share] for share in shares] == [["v0", "v3", "v4"], ["v1", "v2", "v5"]]
    assert [sum(len(v.frames) for v in share) for share in shares] == [80, 80]


def test_plugin_from_a_py_file_or_the_current_folder(tmp_path, monkeypatch):
    import sys

    from ovbench.registry import available_models, load_plugin

    source = textwrap.dedent("""
        from ovbench.registry import register_model
        import toy_adapters

        @register_model("{name}")
        class Plugged(toy_adapters.ToyColour):
            pass
    """)
    (tmp_path / "helper_of_plugin.py").write_text("NAME = 'plugged-by-file'\n")
    (tmp_path / "tqdm.py").write_text(source.replace('"{name}"', "helper_of_plugin.NAME").replace(
        "import toy_adapters", "import toy_adapters, helper_of_plugin"))  # named like a real module
    (tmp_path / "in_cwd.py").write_text(source.format(name="plugged-in-cwd"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    for module in ("helper_of_plugin", "in_cwd"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    load_plugin(str(tmp_path / "tqdm.py"))
    from tqdm import tqdm  # noqa: F401  the real one is still there
    load_plugin("in_cwd")  # the `ovbench` script does not put the current folder on sys.path
    assert {"plugged-by-file", "plugged-in-cwd"} <= set(available_models())
    with pytest.raises(ConfigError, match="plugin module 'not_there' not found"):
        load_plugin("not_there")
    with pytest.raises(ConfigError, match="plugin file .*missing.py does not exist"):
        load_plugin("missing.py")


def test_a_state_folder_refuses_another_runs_fingerprint(tmp_path):
    state = RunState(tmp_path / "x.state")
    state.prepare({"model": "a"}, overwrite=False)
    state.prepare({"model": "a"}, overwrite=False)  # the same run: resumes
    with pytest.raises(ConfigError, match="made with different settings"):
        state.prepare({"model": "b"}, overwrite=False)


def test_plugin_module_and_entry_point(data_root, tmp_path, monkeypatch, capsys):
    plugin_dir = tmp_path / "site"
    (plugin_dir / "myplug").mkdir(parents=True)
    (plugin_dir / "myplug" / "__init__.py").write_text(textwrap.dedent("""
        from toy_adapters import ToyColour
        class EntryToy(ToyColour):
            '''Announced through an entry point.'''
    """))
    dist = plugin_dir / "myplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ovbench.models]\nentry-toy = myplug:EntryToy\n")
    monkeypatch.syspath_prepend(str(plugin_dir))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert main(["ls", "models"]) == 0
    listing = capsys.readouterr().out
    assert "entry-toy" in listing and "clip-dense" in listing and "gkc" in listing
    out = tmp_path / "runs"
    assert main(["run", "--model", "entry-toy", "--split", "vspw_unseen", "--data-root", str(data_root), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    assert main(["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_unseen", "--data-root", str(data_root), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    assert len(list(out.glob("*.json"))) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--model", "toy-colur", "--split", "vspw_all"], "did you mean toy-colour"),
        (["run", "--model", "toy-colour", "--split", "vspw_unsen"], "did you mean vspw_unseen"),
        (["run", "--model", "toy-colour", "--split", "vspw_all", "--model-args", "dimm=3"], "unknown model argument 'dimm'"),
        (["run", "--model", "toy-colour", "--split", "vspw_all", "--model-args", "dim=three"], "expected int"),
        (["run", "--model", "clip-dense", "--split", "vspw_all", "--model-args", "pretrained=/nonexistent/ViT.pt"], "/nonexistent/ViT.pt does not exist"),
        (["run", "--model", "toy-colour", "--split", "vspw_all", "--data-root", "/nonexistent/VSPW"], "/nonexistent/VSPW"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, data_root, tmp_path, capsys):
    if "--data-root" not in argv:
        argv = argv + ["--data-root", str(data_root)]
    code = main(argv + ["--out", str(tmp_path), "--workers", "0", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("ovbench: error:") and message in err[0]


def test_check_model_passes_a_good_adapter_and_names_violations(capsys):
    assert main(["check-model", "toy-colour", "--device", "cpu"]) == 0
    assert main(["check-model", "toy-wrong-shape", "--device", "cpu"]) == 1
    assert "expected (2, 124, h, w)" in capsys.readouterr().out
    assert main(["check-model", "toy-nondeterministic", "--device", "cpu"]) == 1
    assert "not deterministic" in capsys.readouterr().out
    assert main(["check-model", "toy-stateful", "--device", "cpu"]) == 0  # temporal state, reset per video


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_matches_cpu(data_root, tmp_path):
    cpu, _ = run_toy(data_root, tmp_path / "cpu")
    gpu, _ = run_toy(data_root, tmp_path / "gpu", device="cuda")
    assert gpu["metrics"]["mIoU"] == pytest.approx(cpu["metrics"]["mIoU"], abs=1e-3)
    assert 0 < gpu["timing"]["model_seconds"] < gpu["timing"]["seconds"]  # CUDA events, read late


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))])
def test_bf16_changes_only_pixels_whose_classes_nearly_tie(data_root, tmp_path, device):
    """bf16 keeps 8 significant bits: a pixel may change class only where the fp32 scores of
    its top two classes are within a few bf16 steps of each other; everywhere else bf16 must
    predict what fp32 predicts. Checked pixel by pixel against the fp32 scores."""
    import torch.nn.functional as F

    from ovbench.predictions import PredictionReader

    record, path = run_toy(data_root, tmp_path, device=device, precision="bf16", save_predictions="rle")
    reader = PredictionReader(path.with_suffix(".predictions"))
    split, data = load_split("vspw_all"), VSPW(data_root)
    model = toy_adapters.ToyColour(toy_adapters.ToyArgs(), torch.device("cpu"))
    text = model.encode_text(list(split.class_names))
    decided = flipped = 0
    for video in record["per_video"]:
        model.begin_video(video)
        for stem in data.frames(video):
            frame = torch.from_numpy(data.read_frame(video, stem)).permute(2, 0, 1)[None]
            scores = F.interpolate(model.predict(frame, text).float(), frame.shape[-2:], mode="bilinear", align_corners=False)[0]
            top2 = scores.topk(2, dim=0).values
            clear = (top2[0] - top2[1]) > 2 ** -5 * scores.abs().amax(0)  # four bf16 steps of the largest score
            bf16 = torch.from_numpy(reader.read(video, stem).astype("int64"))
            decided += int(clear.sum())
            flipped += int((clear & (bf16 != scores.argmax(0))).sum())
    assert decided > 0.25 * record["dataset"]["frames"] * 40 * 71, decided  # the check covers many pixels
    assert flipped == 0


def test_record_json_has_no_nan(data_root, tmp_path):
    _, path = run_toy(data_root, tmp_path, split="vspw_unseen")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in record"))


def test_each_video_is_committed_once_in_its_own_file(data_root, tmp_path, monkeypatch):
    """No rewrite of everything finished after each video (O(videos^2) on a long run): one
    small file per video, written once."""
    committed, original = [], RunState.save_result

    def record_commit(self, result):
        committed.append(result.video)
        original(self, result)

    monkeypatch.setattr(RunState, "save_result", record_commit)
    record, path = run_toy(data_root, tmp_path)
    assert sorted(committed) == sorted(record["per_video"]) and len(set(committed)) == len(committed)
    state = path.with_suffix(".state")
    assert sorted(p.stem for p in (state / "videos").glob("*.json")) == sorted(record["per_video"])


def test_records_say_the_peak_memory_a_run_reached(data_root, tmp_path):
    """Issue 23.16: a record carries the largest peak resident memory of its processes (kept
    per video in the state, so resumes and merges keep it too); on the CPU no GPU figure."""
    import resource

    record, _ = run_toy(data_root, tmp_path)
    peak = record["timing"]["peak_host_memory_bytes"]
    assert 10 * 2**20 < peak <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert "peak_gpu_memory_bytes" not in record["timing"]
    entries = [json.loads(p.read_text()) for p in tmp_path.glob("*.state/videos/*.json")]
    assert entries and all(entry["peak_memory"]["host_bytes"] <= peak for entry in entries)
