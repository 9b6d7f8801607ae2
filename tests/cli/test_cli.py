"""A CLI that explains itself: help with defaults and examples, fast help, model arguments
listed, and the console told what is slow, random or partial."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading

import pytest

from ovbench.cli import COMMANDS, build_parser, main
from ovbench.run.model_io import say_if_slow

HEAVY = ("torch", "pandas", "matplotlib", "open_clip", "numpy")


@pytest.mark.parametrize("words", [[], *([name] for name in COMMANDS)], ids=lambda words: " ".join(words) or "ovbench")
def test_help_imports_nothing_heavy(words):
    probe = (
        "import sys\nfrom ovbench.cli import main\n"
        f"try:\n    main({[*words, '--help']!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: ovbench" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def test_every_option_has_help_and_every_default_is_shown():
    for name, parser in _subparsers(build_parser()).items():
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"ovbench {name} {action.dest}: no help text"
            if action.default not in (None, False, "", [], argparse.SUPPRESS):
                assert f"(default: {action.default}" in " ".join(text.split()), f"ovbench {name} {action.dest}: default not shown"


def test_every_command_shows_an_example(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  ovbench {name}" in capsys.readouterr().out


def test_ls_models_verbose_lists_arguments_and_builtin_weights(capsys):
    assert main(["ls", "models", "-v"]) == 0
    out = capsys.readouterr().out
    assert "    checkpoint: str | None = none  # a .safetensors file or builtin:NAME" in out
    assert "    input_size: int = 448" in out
    assert "builtin:NAME (gkc): gkc-tiny-sample" in out
    assert "ovbench-tiny-rn, ovbench-tiny-vit" in out


def test_ls_splits_counts_videos_under_a_data_root(vspw_uniform, capsys):
    root = vspw_uniform
    val = len((root / "val.txt").read_text().split())
    train = len((root / "train.txt").read_text().split())
    assert main(["ls", "splits", "--data-root", str(root)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["vspw_all"][-2] == str(val) and rows["vspw_train_seen"][-2] == str(train)
    assert rows["vipseg_all"][-2] == "-" and rows["coco_val"][-2] == "-"  # other data sets: no count, never VSPW's


def test_ls_splits_counts_the_videos_of_a_vipseg_root(vipseg_videos, capsys):
    root = vipseg_videos
    val = len((root / "val.txt").read_text().split())
    assert main(["ls", "splits", "--data-root", str(root)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["vipseg_all"][-2] == str(val) and rows["vspw_all"][-2] == "-"


def test_leaderboard_refuses_an_output_whose_format_it_cannot_tell(tmp_path, capsys):
    out = tmp_path / "table.docx"
    assert main(["leaderboard", "--results", str(tmp_path), "--out", str(out)]) == 2
    assert ".docx" in capsys.readouterr().err and not out.exists()


def test_console_says_random_weights_limited_videos_and_text_encoding(vspw_small, tmp_path, capsys):
    root = vspw_small
    argv = ["run", "--model", "clip-dense", "--model-args", "clip=ovbench-tiny-vit,pretrained=none,input_size=32,templates=single",
            "--split", "vspw_all", "--data-root", str(root), "--device", "cpu", "--workers", "0", "--no-progress",
            "--limit-videos", "1"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "RANDOM weights" in err and "--limit-videos 1" in err
    assert "encoding 124 class names: cache miss" in err
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "cache miss" not in capsys.readouterr().err


def test_a_slow_block_is_announced_and_a_quick_one_is_not():
    heard: list[str] = []
    said = threading.Event()

    def log(message: str) -> None:
        heard.append(message)
        said.set()

    with say_if_slow("loading", log, after=3600):
        pass
    with say_if_slow("still loading", log, after=0.01):
        assert said.wait(timeout=60)
    assert heard == ["still loading"]
