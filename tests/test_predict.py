"""`ovbench predict` on a user's own footage: videos, frame folders, single images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import toy_adapters
from PIL import Image

from ovbench.cli import main
from ovbench.palette import PALETTE
from ovbench.predict import MAX_CLASSES, parse_classes, vocabulary_names

GKC_TINY = ["--model", "gkc", "--model-args", "checkpoint=builtin:gkc-tiny-sample"]
TOY = ["--model", "toy-colour", "--plugin", "toy_adapters"]
NAMES = ["dog", "person", "grass"]


def write_mp4(path: Path, frames: np.ndarray, fps: int = 8, codec: str = "libx264") -> Path:
    """A video of (N, H, W, 3) uint8 frames; by default H.264, as a phone would write it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def random_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colour fields (random blocks upsampled), so a compressed video keeps them."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (count, 3, 4, 4)).astype(np.float32)
    smooth = F.interpolate(torch.from_numpy(blocks), (height, width), mode="bilinear", align_corners=False)
    return smooth.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()


def decoded_frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def predict(*words: str) -> int:
    return main(["predict", *words, "--device", "cpu", "--no-progress"])


def toy_reference(frame: np.ndarray, names: list[str]) -> np.ndarray:
    """The toy model's labels computed by hand: its scores, bilinear to the frame, first maximum."""
    model = toy_adapters.ToyColour(toy_adapters.ToyArgs(), torch.device("cpu"))
    model.begin_video("frames")
    scores = model.predict(torch.from_numpy(frame).permute(2, 0, 1)[None], model.encode_text(names))
    full = F.interpolate(scores.float(), frame.shape[:2], mode="bilinear", align_corners=False)[0]
    best, best_score = torch.zeros(frame.shape[:2], dtype=torch.int64), full[0]
    for k in range(1, full.shape[0]):
        better = full[k] > best_score  # strictly: ties keep the first class
        best[better], best_score = k, torch.where(better, full[k], best_score)
    return best.numpy()


def read_label(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image.getpalette(), dtype=np.uint8).reshape(-1, 3), PALETTE)
        return np.asarray(image)


def test_video_gives_one_palette_png_and_overlay_per_frame_and_a_video_of_the_same_length(tmp_path):
    video = write_mp4(tmp_path / "clip.mp4", random_frames(7))
    out = tmp_path / "out"
    assert predict(str(video), *GKC_TINY, "--classes", ",".join(NAMES), "--out", str(out), "--batch-size", "3") == 0
    labels = sorted((out / "labels").glob("*.png"))
    assert len(labels) == 7 == len(list((out / "overlays").glob("*.jpg")))
    for path in labels:
        values = read_label(path)
        assert values.shape == (48, 64) and values.max() < len(NAMES)
    assert decoded_frame_count(out / "overlay.mp4") == 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 7 and summary["vocabulary"] == NAMES and summary["fps"] == 8
    assert summary["model"]["weights"] == "builtin:gkc-tiny-sample"


@pytest.mark.parametrize("suffix, codec", [(".mkv", "libx264"), (".avi", "mpeg4"), (".webm", "libvpx-vp9")])
def test_other_containers_decode_in_bounded_batches(tmp_path, suffix, codec, monkeypatch):
    """Every frame comes through, and decord is never asked for more than one batch at a time."""
    import decord

    asked: list[int] = []
    get_batch = decord.VideoReader.get_batch
    monkeypatch.setattr(decord.VideoReader, "get_batch", lambda self, indices: asked.append(len(indices)) or get_batch(self, indices))
    video = write_mp4(tmp_path / f"clip{suffix}", random_frames(5, seed=4), codec=codec)
    out = tmp_path / "out"
    assert predict(str(video), *TOY, "--classes", ",".join(NAMES), "--out", str(out), "--batch-size", "2") == 0
    assert asked == [2, 2, 1]
    assert len(list((out / "labels").glob("*.png"))) == 5 == decoded_frame_count(out / "overlay.mp4")


def test_labels_and_shares_match_the_model_computed_by_hand(tmp_path):
    """A folder of frames of two sizes, in natural order (frame_2 before frame_10)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = {f"frame_{i}": random_frames(1, 30 + 8 * (i > 5), 44, seed=i)[0] for i in (1, 2, 10, 11, 3)}
    for stem, frame in frames.items():
        Image.fromarray(frame).save(folder / f"{stem}.png")
    out = tmp_path / "out"
    assert predict(str(folder), *TOY, "--classes", ",".join(NAMES), "--out", str(out), "--batch-size", "2") == 0
    shares = {}
    with open(out / "shares.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["frame"] for row in rows] == sorted((row["frame"] for row in rows), key=lambda s: int(s.split("_")[1]))
    for row in rows:
        shares[row["frame"], int(row["class_index"])] = float(row["share"])
    for stem, frame in frames.items():
        expected = toy_reference(frame, NAMES)
        assert np.array_equal(read_label(out / "labels" / f"{stem}.png"), expected)
        for k in range(len(NAMES)):
            assert shares.get((stem, k), 0.0) == pytest.approx((expected == k).mean(), abs=1e-6)
    assert decoded_frame_count(out / "overlay.mp4") == len(frames)


def test_single_image(tmp_path):
    image = tmp_path / "photo.jpg"
    Image.fromarray(random_frames(1, 33, 51)[0]).save(image)
    out = tmp_path / "out"
    assert predict(str(image), *TOY, "--vocabulary", "vspw", "--out", str(out)) == 0
    assert [p.name for p in (out / "labels").iterdir()] == ["photo.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and len(summary["vocabulary"]) == 124
    assert sum(c["mean_share"] for c in summary["classes_found"]) == pytest.approx(1, abs=1e-5)


def test_vocabularies():
    assert vocabulary_names("vspw") == vocabulary_names("vipseg")
    assert len(vocabulary_names("vspw")) == 124 and vocabulary_names("vspw")[0] == "wall"
    assert parse_classes(" dog, person ,,grass ") == NAMES


def one_line_error(capsys, code: int, *needles: str) -> None:
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ovbench: error:")
    for needle in needles:
        assert needle in err


def test_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.fromarray(random_frames(1)[0]).save(image)
    out = str(tmp_path / "out")
    one_line_error(capsys, predict(str(image), *TOY, "--classes", " , ", "--out", out), "--classes is empty")
    too_many = ",".join(f"c{i}" for i in range(MAX_CLASSES + 1))
    one_line_error(capsys, predict(str(image), *TOY, "--classes", too_many, "--out", out), "at most 255")
    one_line_error(capsys, predict(str(image), *TOY, "--classes", "a,b,a", "--out", out), "a more than once")
    one_line_error(capsys, predict(str(image), *TOY, "--classes", "a", "--out", str(image)), "is a file")
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    one_line_error(capsys, predict(str(garbage), *TOY, "--classes", "a", "--out", out), f"{garbage}: cannot read this video: not a video")
    clash = tmp_path / "clash"
    clash.mkdir()
    Image.fromarray(random_frames(1)[0]).save(clash / "f1.png")
    Image.fromarray(random_frames(1)[0]).save(clash / "f1.jpg")
    one_line_error(capsys, predict(str(clash), *TOY, "--classes", "a", "--out", out), "f1.jpg, f1.png share a name")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, predict(str(empty), *TOY, "--classes", "a", "--out", out), "no images")
    one_line_error(capsys, predict(str(tmp_path / "nothing.mp4"), *TOY, "--classes", "a", "--out", out), "no such file")
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("suffix, codec, reason", [(".avi", "mpeg4", "it has no frames"), (".mp4", "libx264", "no video stream"),
                                                    (".mkv", "libx264", "not a video, or damaged")])
def test_a_video_without_frames_is_one_line_with_a_reason(tmp_path, capfd, suffix, codec, reason):
    video = tmp_path / f"empty{suffix}"
    with av.open(str(video), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        container.start_encoding()  # the header, and not one frame
    assert video.stat().st_size > 0
    code = predict(str(video), *TOY, "--classes", "a", "--out", str(tmp_path / "out"))
    err = capfd.readouterr().err.strip()  # capfd: also what native libraries write to the descriptor
    assert code == 2 and "\n" not in err and err.startswith(f"ovbench: error: {video}: cannot read this video: {reason}")


def test_an_earlier_prediction_is_kept_unless_overwrite_and_a_failed_load_leaves_none(tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.fromarray(random_frames(1)[0]).save(image)
    out = tmp_path / "out"
    one_line_error(capsys, predict(str(image), *TOY, "--model-args", "dimm=3", "--classes", "a,b", "--out", str(out)), "dimm")
    assert predict(str(image), *TOY, "--classes", "a,b", "--out", str(out)) == 0  # the failed load left nothing behind
    capsys.readouterr()
    one_line_error(capsys, predict(str(image), *TOY, "--classes", "a,b", "--out", str(out)), "--overwrite")
    assert predict(str(image), *TOY, "--classes", "a,b,c", "--out", str(out), "--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["vocabulary"] == ["a", "b", "c"]


def test_vocabularies_are_the_data_sets_names_in_id_order():
    assert len(vocabulary_names("coco")) == 133 and vocabulary_names("coco")[0] == "person"
    assert vocabulary_names("vipseg") == vocabulary_names("vspw") and vocabulary_names("vspw")[0] == "wall"

def test_a_second_predict_on_the_same_out_is_refused(tmp_path, capsys):
    """Issue 23.7b: one predict at a time on an --out (labels/ never mixes two inputs)."""
    import subprocess
    import sys

    from ovbench.predict import LOCK_FILE

    image = tmp_path / "frame.png"
    Image.fromarray(random_frames(1)[0]).save(image)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; from ovbench.locks import try_lock;"
                               f" handle, _ = try_lock(Path({str(out / LOCK_FILE)!r}), 'process 1 on a host since now');"
                               " print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert predict(str(image), *TOY, "--classes", "dog,sky", "--out", str(out)) == 2
        assert "is in use by process 1 on a host since now (another ovbench predict)" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert predict(str(image), *TOY, "--classes", "dog,sky", "--out", str(out)) == 0  # free again once it is gone


def test_the_sample_checkpoint_says_what_it_is_for_and_which_part_is_random(tmp_path, capsys):
    """Issue 23.15: predict with builtin:gkc-tiny-sample says it only serves the synthetic
    sample, and summary.json records the random text tower instead of random_init: false alone."""
    image = tmp_path / "frame.png"
    Image.fromarray(random_frames(1)[0]).save(image)
    assert predict(str(image), *GKC_TINY, "--classes", "car,sky", "--out", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "trained on the built-in synthetic sample only" in err and "CLIP text tower has random weights" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"]["random_init"] is False and summary["model"]["random_parts"] == ["CLIP text tower"]
    assert "synthetic sample only" in summary["model"]["caveat"]
