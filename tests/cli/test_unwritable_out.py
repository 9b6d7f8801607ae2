"""An --out that cannot be written (a read-only file system: /proc here, even for root) is one
line naming it and exit 2 for every command that writes one, never a traceback (issue 23.8 and
23.10c)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.cli import main

NOWHERE = Path("/proc/ovbench-test")


@pytest.fixture(scope="module")
def made(tmp_path_factory, vspw_small) -> tuple[Path, Path, Path]:
    runs = tmp_path_factory.mktemp("runs")
    assert main(["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", "vspw_all", "--data-root", str(vspw_small),
                 "--out", str(runs), "--device", "cpu", "--workers", "0", "--no-progress", "--save-predictions", "png"]) == 0
    image = runs / "frame.png"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(image)
    return vspw_small, runs, image


def commands(data: Path, runs: Path, image: Path) -> dict[str, list[str]]:
    predictions = str(next(runs.glob("*.predictions")))
    split = ["--split", "vspw_all", "--data-root", str(data)]
    return {
        "score": ["score", *split, "--pred", predictions, "--out", str(NOWHERE), "--no-progress"],
        "leaderboard": ["leaderboard", "--results", str(runs), "--out", str(NOWHERE / "table.md")],
        "plot": ["leaderboard", "--results", str(runs), "--plot", "per-class", "--out", str(NOWHERE / "plot.png")],
        "visualize": ["visualize", predictions, *split, "--out", str(NOWHERE / "figure.png")],
        "predict": ["predict", str(image), "--plugin", "toy_adapters", "--model", "toy-colour", "--classes", "dog,sky",
                    "--out", str(NOWHERE), "--device", "cpu", "--no-progress"],
    }


@pytest.mark.parametrize("command", ["score", "leaderboard", "plot", "visualize", "predict"])
def test_an_unwritable_out_is_one_line(made, command, capsys):
    assert main(commands(*made)[command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ovbench: error:") and str(NOWHERE) in err[0], err
