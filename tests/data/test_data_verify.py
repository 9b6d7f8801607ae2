"""`data verify` on VSPW: a clean set passes; each planted defect is reported once, naming its path,
and leaves the other counts as they were."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.data.verify import verify_dataset
from ovbench.data.verify.report import VerifyReport, format_report
from ovbench.errors import DataError


@pytest.fixture(scope="module")
def clean(vspw_small) -> Path:
    return vspw_small


@pytest.fixture
def copy(clean, private_copy) -> Path:
    return private_copy(clean)


def verify_vspw(root):
    return verify_dataset(root, "vspw", progress=False)


def listed(root: Path, subset: str) -> list[str]:
    return (root / f"{subset}.txt").read_text().split()


def frame_count(root: Path, video: str) -> int:
    return len(list((root / "data" / video / "origin").glob("*.jpg")))


def first_val(root: Path) -> tuple[Path, Path]:
    """(jpg, png) of the first frame of the first val video."""
    folder = root / "data" / listed(root, "val")[0]
    return folder / "origin" / "00000001.jpg", folder / "mask" / "00000001.png"


def edit_mask(png: Path, change) -> None:
    with Image.open(png) as im:
        raw = np.array(im)
    Image.fromarray(change(raw)).save(png)


def test_clean_set_passes(clean):
    report = verify_vspw(clean)
    videos = listed(clean, "val") + listed(clean, "train")
    assert report.ok and report.problems == []
    assert report.videos_total == report.videos_ok == len(videos) == 4
    assert report.frames_total == report.frames_ok == sum(frame_count(clean, v) for v in videos)
    assert "OK" in format_report(report)


def _missing_split(root):
    (root / "train.txt").unlink()
    return root / "train.txt", "missing"


def _absent_video(root):
    with open(root / "val.txt", "a") as f:
        f.write("1999_gone_0\n")
    return root / "data" / "1999_gone_0", "not found"


def _frame_without_mask(root):
    jpg, png = first_val(root)
    png.unlink()
    return jpg, "without mask"


def _size_mismatch(root):
    _, png = first_val(root)
    with Image.open(png) as im:
        im.resize((50, 30), Image.NEAREST).save(png)
    return png, "50x30"


def _out_of_range(root):
    _, png = first_val(root)

    def plant(raw):
        raw[3, 4], raw[5, 6] = 200, 125
        return raw

    edit_mask(png, plant)
    return png, "values 125, 200"


def _corrupt_jpg(root):
    jpg, _ = first_val(root)
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    return jpg, "cannot read frame"


def _corrupt_png(root):
    _, png = first_val(root)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return png, "cannot read mask"


def _rgb_mask(root):
    _, png = first_val(root)
    with Image.open(png) as im:
        im.convert("RGB").save(png)
    return png, "mode RGB"


def _bad_label_json(root):
    path = root / "label_num_dic_final.json"
    labels = json.loads(path.read_text())
    labels["wall"] = "2"
    path.write_text(json.dumps(labels))
    return path, "wall -> '2' (expected '1')"


def _duplicate_listing(root):
    val = root / "val.txt"
    val.write_text(val.read_text() + listed(root, "val")[0] + "\n")
    return val, "listed again"


def _overlap(root):
    with open(root / "train.txt", "a") as f:
        f.write(listed(root, "val")[1] + "\n")
    return root / "val.txt", "also listed in train.txt"  # train is checked first


def _mask_without_frame(root):
    jpg, png = first_val(root)
    shutil.copy(png, png.with_name("00000999.png"))
    return png.parent, "00000999.png"


def _empty_video(root):
    folder = root / "data" / listed(root, "train")[0]
    for p in folder.rglob("*.*"):
        p.unlink()
    return folder / "origin", "empty video"


# defect -> (videos_total, videos_ok, frames_total, frames_ok) relative to the clean set;
# "v" = frames of the first val video, "t" = frames of the train videos, "t0" = first train video.
CASES = {
    _missing_split: ("-2", "-2", "-t", "-t"),
    _absent_video: ("+1", "0", "0", "0"),
    _frame_without_mask: ("0", "-1", "0", "-1"),
    _size_mismatch: ("0", "-1", "0", "-1"),
    _out_of_range: ("0", "-1", "0", "-1"),
    _corrupt_jpg: ("0", "-1", "0", "-1"),
    _corrupt_png: ("0", "-1", "0", "-1"),
    _rgb_mask: ("0", "-1", "0", "-1"),
    _bad_label_json: ("0", "0", "0", "0"),
    _duplicate_listing: ("0", "0", "0", "0"),
    _overlap: ("0", "0", "0", "0"),
    _mask_without_frame: ("0", "-1", "0", "0"),
    _empty_video: ("0", "-1", "-t0", "-t0"),
}


@pytest.mark.parametrize("plant", list(CASES), ids=lambda f: f.__name__.strip("_"))
def test_each_defect_reported_once(clean, copy, plant):
    train = listed(clean, "train")
    sizes = {"t": sum(frame_count(clean, v) for v in train), "t0": frame_count(clean, train[0])}
    path, words = plant(copy)
    report = verify_vspw(copy)
    assert len(report.problems) == 1, report.problems
    assert str(path) in report.problems[0] and words in report.problems[0]
    base = verify_vspw(clean)
    expected = [base.videos_total, base.videos_ok, base.frames_total, base.frames_ok]
    for i, delta in enumerate(CASES[plant]):
        expected[i] += int(delta) if delta.lstrip("+-").isdigit() else -sizes[delta[1:]]
    assert [report.videos_total, report.videos_ok, report.frames_total, report.frames_ok] == expected


def test_all_defects_at_once_are_all_reported(copy):
    planted = [_corrupt_jpg(copy)[0], _bad_label_json(copy)[0], _absent_video(copy)[0],
               _rgb_mask(copy)[0]]  # jpg and mask of the same frame: both reported
    problems = verify_vspw(copy).problems
    assert len(problems) == 4
    assert all(any(str(p) in line for line in problems) for p in planted)


def test_missing_root_and_no_data(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nowhere'}: data root not found"):
        verify_vspw(tmp_path / "nowhere")
    (tmp_path / "train.txt").write_text("")
    problems = verify_vspw(tmp_path).problems
    assert len(problems) == 1 and str(tmp_path) in problems[0] and "no data/" in problems[0]


def test_test_subset_needs_no_masks(clean, copy):
    video = listed(copy, "train")[0]
    (copy / "train.txt").write_text("\n".join(listed(copy, "train")[1:]) + "\n")
    (copy / "test.txt").write_text(video + "\n")
    shutil.rmtree(copy / "data" / video / "mask")
    report = verify_vspw(copy)
    base = verify_vspw(clean)
    assert report.ok and (report.videos_ok, report.frames_ok) == (base.videos_ok, base.frames_ok)
    (copy / "val.txt").write_text(video + "\n")  # the same video where masks are required
    (copy / "test.txt").write_text("")
    report = verify_vspw(copy)
    assert report.problems == [f"{copy / 'data' / video / 'mask'}: mask folder missing "
                               f"({frame_count(copy, video)} frames without masks)"]
    assert report.videos_ok == report.videos_total - 1  # the video without masks, where they are required


def test_format_report_truncates():
    report = VerifyReport(Path("/r"), problems=[f"p{i}" for i in range(30)], videos_ok=1,
                          frames_ok=5, videos_total=3, frames_total=9)
    text = format_report(report, max_problems=20)
    assert "30 problem(s)" in text and "videos ok: 1/3" in text and "frames ok: 5/9" in text
    assert "- p19" in text and "- p20" not in text and "... and 10 more" in text


def test_parallel_workers_give_the_same_report(copy):
    jpg, png = first_val(copy)
    jpg.write_bytes(b"not a jpeg")
    second = copy / "data" / listed(copy, "train")[0] / "mask" / "00000002.png"
    edit_mask(second, lambda raw: np.where(raw == 255, 200, raw).astype(np.uint8))
    one, two = verify_dataset(copy, workers=1, progress=False), verify_dataset(copy, workers=2, progress=False)
    assert one == two and len(one.problems) == 2
    assert one.problems == verify_vspw(copy).problems


def test_verify_cli_missing_root_is_one_line_exit_2(tmp_path, capsys):
    from ovbench.cli import main

    assert main(["data", "verify", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere: data root not found" in err
    assert main(["data", "verify", "--data-root", str(tmp_path)]) == 2
    assert "use --dataset" in capsys.readouterr().err


def test_verify_cli_recognises_the_layout(clean, capsys):
    from ovbench.cli import main

    assert main(["data", "verify", "--data-root", str(clean), "--workers", "1"]) == 0
    assert "VSPW_480p check" in capsys.readouterr().out
    assert main(["data", "verify", "--data-root", str(clean), "--dataset", "vipseg", "--workers", "1"]) == 2  # one line, not a report
    assert "is a VSPW_480p root, not VIPSeg_720P" in capsys.readouterr().err
