"""GKC's two-stage recipe on synthetic data: the image stage on COCO (its schedule as the
defaults), `--init` into the video stage on VIPSeg, then a VIPSeg run that writes a record."""

from __future__ import annotations

import numpy as np
import pytest
from ovbench.models.gkc.train_args import TrainArgs, parse_train_args
from ovbench.models.gkc.train_data import Augment, TrainFrames

from ovbench.cli import main
from ovbench.data.kinds import open_dataset
from ovbench.data.synthetic.panoptic import write_synthetic_vipseg
from ovbench.errors import DataError
from ovbench.records.read import load_record
from ovbench.registry import get_model_class
from ovbench.split import load_split

GKC = ["--model", "gkc", "--model-args", "config=gkc-tiny,clip_pretrained=none"]
SHORT = "iterations=2,batch_size=2,crop=48,short_min=40,short_max=64,num_points=256,workers=0,log_every=1"


def test_the_image_stage_has_the_authors_schedule_by_default():
    gkc = get_model_class("gkc")
    image, video = parse_train_args(gkc, "", "coco"), parse_train_args(gkc, "", "vipseg")
    assert (image.iterations, image.crop_size(), image.short_min, image.short_max) == (50000, (512, 512), 256, 1024)
    assert video.iterations == TrainArgs.iterations and video.crop == TrainArgs.crop
    assert parse_train_args(gkc, "iterations=7", "coco").iterations == 7  # the user's words win


@pytest.mark.slow
def test_coco_then_init_into_vipseg_then_a_vipseg_run(coco_images, tmp_path):
    coco = coco_images
    vipseg = write_synthetic_vipseg(tmp_path / "vipseg", videos=4, frames=3, height=40, width=60, seed=3)
    image = tmp_path / "image"
    assert main(["train", *GKC, "--train-args", SHORT, "--split", "coco_train", "--data-root", str(coco), "--out", str(image)]) == 0
    video = tmp_path / "video"
    assert main(["train", *GKC, "--train-args", SHORT, "--split", "vipseg_train_seen", "--data-root", str(vipseg),
                 "--out", str(video), "--init", str(image / "final.safetensors")]) == 0
    runs = tmp_path / "runs"
    final = video / "final.safetensors"
    assert main(["run", "--model", "gkc", "--model-args", f"checkpoint={final}", "--split", "vipseg_all",
                 "--data-root", str(vipseg), "--out", str(runs), "--workers", "0", "--no-progress"]) == 0
    record = load_record(next(runs.glob("*.json")))
    assert record["model"]["weights"] == str(final) and record["dataset"]["name"].startswith("vipseg-synthetic-")
    assert {"mIoU_seen", "mIoU_unseen", "hIoU"} <= set(record["metrics"])


def test_base_delete_trains_on_the_videos_without_novel_pixels(tmp_path):
    vipseg = write_synthetic_vipseg(tmp_path / "vipseg", videos=8, frames=2, height=30, width=40, seed=6)
    data = open_dataset("vipseg", vipseg)
    novel = set(load_split("vipseg_unseen").vocabulary)
    train = data.videos("train")
    clean = [v for v in train if not any(set(np.unique(data.read_mask(v, s)).tolist()) & novel for s in data.frames(v))]
    assert 0 < len(clean) < len(train)
    aug = Augment(crop=32, short_min=30, short_max=40, pad_rgb=(0, 0, 0))
    assert TrainFrames(vipseg, load_split("vipseg_train_seen_delete"), aug).videos.tolist() == clean
    assert TrainFrames(vipseg, load_split("vipseg_train_seen"), aug).videos.tolist() == train


def test_base_delete_that_keeps_no_video_says_why(tmp_path):
    vipseg = write_synthetic_vipseg(tmp_path / "vipseg", videos=8, frames=2, height=30, width=40, seed=1)
    aug = Augment(crop=32, short_min=30, short_max=40, pad_rgb=(0, 0, 0))
    with pytest.raises(DataError, match="has a pixel of an unseen class; vipseg_train_seen_delete .* keeps none"):
        TrainFrames(vipseg, load_split("vipseg_train_seen_delete"), aug)
