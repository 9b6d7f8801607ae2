"""`ovbench leaderboard`"""

from __future__ import annotations

import argparse

SUMMARY = "render run records as paper tables, HTML or plots"
EXAMPLE = "ovbench leaderboard --results runs --out table.tex"
AFTER_INTERRUPT = "rerun the command"


def execute(args: argparse.Namespace) -> int:
    from ovbench.leaderboard.command import run as run_leaderboard

    return run_leaderboard(args)


def configure(parser: argparse.ArgumentParser) -> None:
    from ovbench.leaderboard.command import configure_parser

    configure_parser(parser)
