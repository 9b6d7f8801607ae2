"""`ovbench score` on predictions written the way other codebases write them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.cli import main
from ovbench.data.files import read_raw_mask
from ovbench.data.reader import VideoFrames
from ovbench.data.vspw import VSPW
from ovbench.errors import DataError
from ovbench.predictions import PredictionReader
from ovbench.records.read import load_record
from ovbench.score import FRAMES_AHEAD, read_ahead
from ovbench.split import load_split


@pytest.fixture(scope="module")
def data_root(vspw_small) -> Path:
    return vspw_small


def write_predictions(data_root: Path, out: Path, predict) -> Path:
    data = VSPW(data_root)
    for video in data.videos("val"):
        (out / video).mkdir(parents=True)
        for stem in data.frames(video):
            Image.fromarray(predict(data.read_mask(video, stem)).astype(np.uint8)).save(out / video / f"{stem}.png")
    return out


def score(data_root: Path, pred: Path, out: Path, split: str = "vspw_all", *extra: str) -> int:
    return main(["score", "--split", split, "--pred", str(pred), "--data-root", str(data_root), "--out", str(out), "--no-progress", *extra])


def test_perfect_predictions_score_100(data_root, tmp_path):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: gt)  # 255 stays at void: ignored
    assert score(data_root, pred, tmp_path / "out") == 0
    record = load_record(next((tmp_path / "out").glob("*.json")))
    assert record["metrics"]["mIoU"] == 1.0 and record["metrics"]["pAcc"] == 1.0 and record["metrics"]["VC8"] == 1.0
    assert record["kind"] == "score" and record["model"]["id"] == "pred" and record["dataset"]["name"].startswith("vspw-synthetic-")


def test_unseen_split_with_global_and_vocabulary_ids(data_root, tmp_path):
    split = load_split("vspw_unseen")
    lut = split.gt_lut()
    keep_unseen = lambda gt: np.where(lut[gt] != 255, gt, 255)  # noqa: E731 - seen pixels are ignored anyway
    as_vocab = lambda gt: lut[gt]  # noqa: E731
    glob = write_predictions(data_root, tmp_path / "global", keep_unseen)
    voc = write_predictions(data_root, tmp_path / "vocab", as_vocab)
    assert score(data_root, glob, tmp_path / "g", "vspw_unseen") == 0
    assert score(data_root, voc, tmp_path / "v", "vspw_unseen", "--pred-ids", "vocab") == 0
    a, b = (load_record(next((tmp_path / d).glob("*.json"))) for d in ("g", "v"))
    assert a["metrics"] == b["metrics"] and a["metrics"]["mIoU"] == 1.0


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda pred: next(pred.rglob("*.png")).unlink(), "no prediction for video"),
        (lambda pred: Image.new("L", (5, 5)).save(next(pred.rglob("*.png"))), "prediction is 5x5 but the ground truth is 43x24"),
        (lambda pred: Image.new("RGB", (43, 24)).save(next(pred.rglob("*.png"))), "must be single-channel"),
        (lambda pred: next(pred.rglob("*.png")).write_bytes(b"garbage"), "cannot read prediction"),
        (lambda pred: Image.new("L", (43, 24), 200).save(next(pred.rglob("*.png"))), "prediction value 200 is not a class"),
    ],
)
def test_bad_predictions_are_one_line_naming_the_frame(data_root, tmp_path, capsys, damage, message):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: gt)
    damage(pred)
    assert score(data_root, pred, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_value_beyond_vocabulary_with_vocab_ids(data_root, tmp_path, capsys):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: np.where(gt == 255, 255, 12))
    assert score(data_root, pred, tmp_path / "out", "vspw_unseen", "--pred-ids", "vocab") == 2
    assert "prediction value 12 >= vocabulary size 12" in capsys.readouterr().err


def records(out: Path) -> list[Path]:
    return sorted(out.glob("*.json"))


def test_records_are_named_by_everything_that_changes_the_numbers(data_root, tmp_path):
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: np.where(gt == 255, 0, gt))
    out = tmp_path / "out"
    assert score(data_root, pred, out) == 0
    first = records(out)
    assert score(data_root, pred, out, "vspw_all", "--miou-convention", "mmseg") == 0
    assert score(data_root, pred, out, "vspw_all", "--min-video-frames", "16") == 0
    assert score(data_root, pred, out, "vspw_all", "--limit-videos", "1") == 0
    made = records(out)
    assert len(made) == 4 and first[0] in made
    options = sorted((r["options"]["miou_convention"], r["options"]["min_video_frames"], r["dataset"]["videos"])
                     for r in map(load_record, made))
    assert options == [("mmseg", 0, 2), ("vspw", 0, 1), ("vspw", 0, 2), ("vspw", 16, 2)]
    assert score(data_root, pred, out) == 0  # the same scoring again replaces its own record only
    assert records(out) == made


def write_rle(data_root: Path, out: Path, class_id: str) -> Path:
    """RLE predictions equal to the ground truth, except that the first frame's first class is
    written under `class_id`."""
    from pycocotools import mask as mask_utils

    data = VSPW(data_root)
    out.mkdir()
    for video in data.videos("val"):
        frames = {}
        for stem in data.frames(video):
            gt = data.read_mask(video, stem)
            classes = {str(c): mask_utils.encode(np.asfortranarray(gt == c, dtype=np.uint8))["counts"].decode("ascii")
                       for c in np.unique(gt).tolist()}
            frames[stem] = {"size": list(gt.shape), "classes": classes}
        (out / f"{video}.json").write_text(json.dumps({"video": video, "frames": frames}))
    first = data.videos("val")[0]
    payload = json.loads((out / f"{first}.json").read_text())
    stem = data.frames(first)[0]
    classes = payload["frames"][stem]["classes"]
    key = next(k for k in classes if k not in ("255", class_id))
    classes[class_id] = classes.pop(key)
    (out / f"{first}.json").write_text(json.dumps(payload))
    return out


def test_rle_predictions_score_like_pngs(data_root, tmp_path):
    rle = write_rle(data_root, tmp_path / "rle", "3")
    png = write_predictions(data_root, tmp_path / "png", lambda gt: gt)
    first, stem = VSPW(data_root).videos("val")[0], VSPW(data_root).frames(VSPW(data_root).videos("val")[0])[0]
    Image.fromarray(PredictionReader(rle).read(first, stem)).save(png / first / f"{stem}.png")
    assert score(data_root, rle, tmp_path / "a") == 0 and score(data_root, png, tmp_path / "b") == 0
    a, b = (load_record(records(tmp_path / d)[0]) for d in ("a", "b"))
    assert a["metrics"] == b["metrics"] and a["metrics"]["mIoU"] < 1.0


@pytest.mark.parametrize("class_id, message", [
    ("300", "class id 300 is outside 0..255"),
    ("-1", "class id -1 is outside 0..255"),
    ("x7", "malformed RLE entry"),
    ("200", "prediction value 200 is not a class"),
])
def test_rle_class_id_out_of_range_is_one_line_naming_the_frame(data_root, tmp_path, capsys, class_id, message):
    rle = write_rle(data_root, tmp_path / "rle", class_id)
    data = VSPW(data_root)
    video = data.videos("val")[0]
    assert score(data_root, rle, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and f"video {video} frame {data.frames(video)[0]}" in err[0]
    assert not records(tmp_path / "out")


@pytest.mark.parametrize("mode", ["L", "P"])
def test_reading_through_a_lut_equals_numpy_indexing(tmp_path, mode):
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 256, (17, 29), dtype=np.uint8)
    lut = rng.integers(0, 256, 256, dtype=np.uint8)
    image = Image.fromarray(raw, mode="L")
    if mode == "P":
        image = image.convert("P")
        image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        image.frombytes(raw.tobytes())
    image.save(tmp_path / "x.png")
    assert np.array_equal(read_raw_mask(tmp_path / "x.png"), raw)
    assert np.array_equal(read_raw_mask(tmp_path / "x.png", lut=lut), lut[raw])


def test_read_ahead_keeps_order_bounds_memory_and_raises_at_the_frame():
    videos = [VideoFrames("a", ("0", "1", "2")), VideoFrames("b", tuple(str(i) for i in range(40)))]
    calls = []

    def read(video, stem):
        calls.append((video, stem))
        if (video, stem) == ("b", "30"):
            raise DataError("video b frame 30: broken")
        return video, stem

    got = []
    with pytest.raises(DataError, match="frame 30"):
        for item in read_ahead(read, videos, threads=2):
            assert len(calls) <= len(got) + 1 + FRAMES_AHEAD  # decoded ahead, but never the whole video
            got.append(item)
    assert got == [("a", s) for s in "012"] + [("b", str(i)) for i in range(30)]


def test_scoring_never_imports_torch(data_root, tmp_path):
    """torch's import is seconds of a score's start-up and its threads spin against the
    decoders: `ovbench score` runs on numpy alone."""
    pred = write_predictions(data_root, tmp_path / "pred", lambda gt: gt)
    check = ("import sys; from ovbench.cli import main; code = main(sys.argv[1:]); "
             "sys.exit(code or ('torch' in sys.modules and 'torch was imported'))")
    done = subprocess.run([sys.executable, "-c", check, "score", "--split", "vspw_all", "--pred", str(pred), "--data-root",
                           str(data_root), "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.json"))) == 1


def write_tricky_set(root: Path, rng: np.random.Generator) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """A hand-made VSPW root whose videos are 20 frames (VC8 and VC16 windows), 16 (exactly a
    VC16 window: skipped), 5 (shorter than every window) and 9 frames of all-void ground truth.
    Ground truth mixes classes with raw 0, 255 and 130 (all void); predictions hold arbitrary
    bytes at void pixels, classes absent from the ground truth, and long static stretches (ties
    between windows). Returns raw (gt, prediction) frames per video."""
    classes = np.array([1, 2, 12, 33, 124])  # raw ids; 12 and 33 are unseen in vspw (pillar, ice)
    videos = {}
    for name, length, void_only in (("v20", 20, False), ("v16", 16, False), ("v05", 5, False), ("void", 9, True)):
        gt = rng.choice(np.append(classes, [0, 255, 130]), (6, 8)).astype(np.uint8)
        pred = rng.choice(classes - 1, (6, 8)).astype(np.uint8)
        frames = []
        for t in range(length):
            if t % 4:  # every fourth frame is a copy of the one before: runs of equal windows
                gt = np.where(rng.random(gt.shape) < 0.04, rng.choice(np.append(classes, 0), gt.shape), gt).astype(np.uint8)
                pred = np.where(rng.random(gt.shape) < 0.06, rng.choice(classes - 1, gt.shape), pred).astype(np.uint8)
            shown_gt = np.full_like(gt, 255) if void_only else gt
            shown_pred = np.where(np.isin(shown_gt, [0, 255, 130]), rng.integers(0, 256, gt.shape), pred).astype(np.uint8)
            frames.append((shown_gt, shown_pred))
        videos[name] = frames
    root.mkdir(parents=True)
    (root / "val.txt").write_text("".join(f"{name}\n" for name in videos))
    for name, frames in videos.items():
        for folder in ("origin", "mask"):
            (root / "data" / name / folder).mkdir(parents=True)
        for t, (gt, _) in enumerate(frames):
            Image.new("RGB", (8, 6)).save(root / "data" / name / "origin" / f"{t:08d}.jpg")
            Image.fromarray(gt).save(root / "data" / name / "mask" / f"{t:08d}.png")
    return videos


@pytest.mark.parametrize("split_name, convention, min_frames", [
    ("vspw_all", "vspw", 0), ("vspw_all", "mmseg", 16), ("vspw_unseen", "vspw", 0), ("vspw_unseen", "mmseg", 0),
])
def test_tricky_cases_match_the_plain_references(tmp_path, split_name, convention, min_frames):
    from reference_metrics import ref_confusion, ref_scores, ref_vc

    videos = write_tricky_set(tmp_path / "root", np.random.default_rng(11))
    split = load_split(split_name)
    lut, k = split.gt_lut(), len(split.vocabulary)
    to_converted = np.full(256, 255, dtype=np.uint8)
    to_converted[1:125] = np.arange(124)
    pred_dir = tmp_path / "pred"
    for name, frames in videos.items():
        (pred_dir / name).mkdir(parents=True)
        for t, (gt, pred) in enumerate(frames):
            keep = lut[to_converted[gt]] != 255  # counted pixels must hold a class of the split
            fixed = np.where(keep & (lut[pred] == 255), split.vocabulary[t % k], pred).astype(np.uint8)
            Image.fromarray(fixed).save(pred_dir / name / f"{t:08d}.png")
    assert score(tmp_path / "root", pred_dir, tmp_path / "out", split_name, "--miou-convention", convention,
                 "--min-video-frames", str(min_frames)) == 0
    record = load_record(records(tmp_path / "out")[0])

    total, vc_videos = np.zeros((k, k), dtype=np.int64), []
    for name, frames in videos.items():
        gts = [to_converted[gt] for gt, _ in frames]
        preds = [lut[np.array(Image.open(pred_dir / name / f"{t:08d}.png"))] for t in range(len(frames))]
        matrix = sum(ref_confusion(lut[g], p, k) for g, p in zip(gts, preds))
        got = np.zeros((k, k), dtype=np.int64)
        for g, p, c in record["per_video"][name]["confusion"]:
            got[g, p] = c
        assert np.array_equal(got, matrix), name
        total += matrix if len(frames) > min_frames else 0
        vc_videos.append((gts, preds))
    want = ref_scores(total, split.seen_index() or None, split.unseen_index() or None, convention)
    want = {key: value for key, value in want.items() if key != "per_class"}
    want.update({f"VC{n}": ref_vc(vc_videos, n) for n in (8, 16)})
    if not (split.seen_index() and split.unseen_index()):
        want = {key: value for key, value in want.items() if key not in ("mIoU_seen", "mIoU_unseen", "hIoU")}
    assert record["metrics"].keys() == want.keys()
    for key, value in want.items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-12), key


def test_a_score_without_metrics_writes_no_record(coco_images, tmp_path, capsys):
    """Issue 23.10b: on COCO (one frame an image) --min-video-frames 16 leaves nothing to score:
    exit 2 and no record, as `run` does."""
    from ovbench.data.kinds import open_dataset

    data = open_dataset("coco", coco_images)
    pred = tmp_path / "pred"
    for stem in data.videos("val"):
        (pred / stem).mkdir(parents=True)
        Image.fromarray(data.read_mask(stem, stem)).save(pred / stem / f"{stem}.png")
    assert score(coco_images, pred, tmp_path / "out", "coco_val", "--min-video-frames", "16") == 2
    assert "leaves out every evaluated video" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.json"))
