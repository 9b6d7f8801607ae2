"""`ovbench visualize`: figures of saved predictions from one or more runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.cli import main
from ovbench.palette import palette_image
from ovbench.split import load_split
from ovbench.visualize import parse_run, visualize


@pytest.fixture(scope="module")
def saved(tmp_path_factory, vspw_small) -> tuple[Path, Path, Path]:
    """A data root and two runs' records: PNG predictions and RLE predictions of another model size."""
    root, data_root = tmp_path_factory.mktemp("vis"), vspw_small
    records = []
    for name, kind, dim in (("a", "png", "8"), ("b", "rle", "4")):
        assert main(["run", "--model", "toy-colour", "--plugin", "toy_adapters", "--model-args", f"dim={dim}",
                     "--split", "vspw_all", "--data-root", str(data_root), "--device", "cpu", "--workers", "0",
                     "--no-progress", "--out", str(root / name), "--save-predictions", kind]) == 0
        records.append(next((root / name).glob("*.json")))
    return data_root, records[0], records[1]


@pytest.mark.slow
def test_named_videos_give_a_panel_per_frame_and_column_in_png_and_pdf(saved, tmp_path, capsys):
    data_root, record_a, record_b = saved
    videos = (data_root / "val.txt").read_text().split()[:2]
    out = tmp_path / "figure.pdf"
    assert main(["visualize", f"mine={record_a}", str(record_b.with_suffix(".predictions")), "--split", "vspw_all",
                 "--data-root", str(data_root), "--videos", ",".join(videos), "--frames", "3", "--out", str(out)]) == 0
    assert "24 panels" in capsys.readouterr().out  # 2 videos x 3 frames x (frame, truth, 2 runs)
    assert out.stat().st_size > 0
    with Image.open(out.with_suffix(".png")) as image:
        assert image.width > 200 and image.height > 200


def test_the_video_where_the_runs_disagree_is_picked(saved, tmp_path):
    """Run B = run A except on one video, where B says something else everywhere."""
    data_root, record_a, _ = saved
    predictions_a = record_a.with_suffix(".predictions")
    predictions_b = tmp_path / "b.predictions"
    shutil.copytree(predictions_a, predictions_b)
    target = sorted(p.name for p in predictions_b.iterdir())[-1]
    for path in (predictions_b / target).glob("*.png"):
        with Image.open(path) as image:
            values = np.asarray(image)
        palette_image(((values.astype(np.int64) + 1) % 124).astype(np.uint8)).save(path)
    runs = [parse_run(str(predictions_a)), parse_run(f"B={predictions_b}")]
    figure = visualize(runs, load_split("vspw_all"), data_root, tmp_path / "auto.png", num_videos=1, frames=2)
    assert figure.panels == 2 * 4
    assert runs[1].name == "B" and runs[0].name == record_a.stem
    assert figure.videos == [target]


def test_missing_predictions_and_bad_figure_names_are_one_line(saved, tmp_path, capsys):
    data_root, record_a, _ = saved
    common = ["--split", "vspw_all", "--data-root", str(data_root)]
    assert main(["visualize", str(tmp_path / "nowhere"), *common, "--out", str(tmp_path / "f.png")]) == 2
    assert main(["visualize", str(record_a), *common, "--out", str(tmp_path / "f.docx")]) == 2
    assert main(["visualize", str(record_a), *common, "--videos", "no_such_video", "--out", str(tmp_path / "f.png")]) == 2
    wrong_size = tmp_path / "wrong.predictions"
    shutil.copytree(record_a.with_suffix(".predictions"), wrong_size)
    frame = next(wrong_size.glob("*/*.png"))
    palette_image(np.zeros((5, 7), dtype=np.uint8)).save(frame)
    argv = ["visualize", str(wrong_size), *common, "--videos", frame.parent.name, "--frames", "1000", "--out", str(tmp_path / "f.png")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("ovbench: error:") for line in lines)
    assert f"frame {frame.stem} is 7x5" in lines[-1]


def test_a_run_has_a_video_in_every_layout_the_reader_reads(tmp_path):
    """PNG folder, RLE file, and for image data sets (COCO) a flat `<stem>.png`: visualize picks
    videos by what the reader can read, so a flat COCO folder is not passed over."""
    from ovbench.predictions import PredictionReader

    (tmp_path / "folder_video").mkdir()
    (tmp_path / "rle_video.json").write_text("{}")
    (tmp_path / "000000000139.png").write_bytes(b"")
    plain, flat = PredictionReader(tmp_path), PredictionReader(tmp_path, flat=True)
    assert plain.has("folder_video") and plain.has("rle_video") and not plain.has("000000000139")
    assert flat.has("000000000139") and not flat.has("missing")


def test_predictions_of_another_split_or_data_set_are_refused(saved, tmp_path, capsys, vspw_uniform):
    """Issue 23.5 and 23.10e: an all-class run drawn with --split vspw_seen, or over another data
    set's frames, is one line naming what the run was made on."""
    data_root, record_a, _ = saved
    out = ["--out", str(tmp_path / "f.png")]
    assert main(["visualize", str(record_a), "--split", "vspw_seen", "--data-root", str(data_root), *out]) == 2
    assert "made on split vspw_all" in capsys.readouterr().err and not (tmp_path / "f.png").exists()
    assert main(["visualize", str(record_a), "--split", "vspw_all", "--data-root", str(vspw_uniform), *out]) == 2
    assert "its predictions were made on data vspw-synthetic-" in capsys.readouterr().err
