"""`ovbench data prepare KIND --from RAW --out ROOT` on a synthetic ADEChallengeData2016
release: labels equal a plain conversion written here (0 -> 255, v -> v - 1), an interrupted run
continues when run again, bad input is one line and exit 2; `data synth` writes a prepared root
of an image kind that `data verify` recognises and passes."""

import numpy as np
from PIL import Image

from ovbench.cli import main
from ovbench.data import prepare as driver
from ovbench.data.synthetic.images import write_ade_challenge


def plain_ade150(raw_png):
    values = np.array(Image.open(raw_png)).astype(np.int64)
    return np.where(values == 0, 255, values - 1).astype(np.uint8)


def test_prepare_gives_the_plain_conversion_and_resumes(tmp_path, monkeypatch, capsys):
    raw = write_ade_challenge(tmp_path / "raw", images=5)
    convert, calls = driver.release("ade150").convert, []

    def stop_at_the_third(kind, item):
        calls.append(item.stem)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return convert(kind, item)

    words = ["data", "prepare", "ade150", "--from", str(raw), "--out", str(tmp_path / "out"), "--workers", "1"]
    monkeypatch.setattr(driver.release("ade150"), "convert", stop_at_the_third)
    assert main(words) == 130
    assert main(["data", "verify", "--data-root", str(tmp_path / "out")]) == 2
    assert "half-prepared" in capsys.readouterr().err
    monkeypatch.setattr(driver.release("ade150"), "convert", convert)
    assert main(words) == 0
    raw_labels = sorted((raw / "ADEChallengeData2016" / "annotations" / "validation").glob("*.png"))
    assert len(raw_labels) == 5
    for path in raw_labels:
        ours = np.array(Image.open(tmp_path / "out" / "labels" / "val" / path.name))
        assert np.array_equal(ours, plain_ade150(path))
    assert main(["data", "verify", "--data-root", str(tmp_path / "out")]) == 1  # 5 of the 2000 images
    assert "the full ADE20K-150 val set has 2000" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "prepare", "ade150", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "none") in err and "ADEChallengeData2016" in err
    raw = write_ade_challenge(tmp_path / "raw", images=2)
    (raw / "ADEChallengeData2016" / "annotations" / "validation" / "ADE_val_00000002.png").write_bytes(b"not a png")
    assert main(["data", "prepare", "ade150", "--from", str(raw), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ADE_val_00000002.png" in err


def test_synth_writes_a_prepared_root_that_verify_recognises(tmp_path, capsys):
    for kind, workers in (("ade847", "1"), ("voc20b", "2")):  # 2: the table's verifier in worker processes
        assert main(["data", "synth", "--dataset", kind, "--out", str(tmp_path / kind), "--videos", "3"]) == 0
        assert main(["data", "verify", "--data-root", str(tmp_path / kind), "--workers", workers]) == 0
        assert "check of" in capsys.readouterr().out
    (tmp_path / "voc20b" / "labels" / "val" / "2007_000001.png").write_bytes(b"damaged")
    assert main(["data", "verify", "--data-root", str(tmp_path / "voc20b"), "--workers", "2"]) == 1
    assert "2007_000001.png: changed since it was prepared" in capsys.readouterr().out
