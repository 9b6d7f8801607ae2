"""`ovbench leaderboard`: run records -> a paper table, an HTML page or a plot.

What was left out, and why, goes to stderr: a table that silently drops a run is worse than
no table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ovbench.leaderboard.layouts import builtin_layouts, load_layout

from ovbench.errors import ConfigError, OvbenchError
from ovbench.fileio import write_text

if TYPE_CHECKING:  # the tables need torch and pandas: imported when run, so --help stays fast
    from ovbench.leaderboard.table import Leaderboard

FORMATS = ("md", "latex", "csv", "html")
PLOTS = ("acc-fps", "per-class")
_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".tex": "latex", ".csv": "csv", ".html": "html", ".htm": "html"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="runs", metavar="DIR",
                        help="folder searched recursively for run records (*.json) (default: runs)")
    parser.add_argument("--format", choices=FORMATS,
                        help="table format (default: from the --out suffix, else md)")
    parser.add_argument("--out", metavar="FILE", help="write here instead of stdout (needed for --plot)")
    parser.add_argument("--table", default="default", metavar="NAME|FILE",
                        help=f"paper-table layout: built-in {', '.join(builtin_layouts())}, or a layout .json file")
    parser.add_argument("--plot", choices=PLOTS,
                        help="write only this plot (png, svg or pdf by the --out suffix) instead of a table")
    parser.add_argument("--dataset", metavar="NAME",
                        help="data set of the records to use (default: vspw when present); others are left out")
    parser.add_argument("--protocol", metavar="NAME",
                        help="split protocol to tabulate (default: the layout's, else vspw when present)")
    parser.add_argument("--all-runs", action="store_true",
                        help="one row per run instead of the newest run per model and split")
    parser.add_argument("--include-partial", action="store_true",
                        help="also show partial runs (--limit-videos, skipped videos, merge --partial) as rows of"
                             " their own, marked; by default they are left out with a note")
    parser.add_argument("--per-video", action="store_true",
                        help="markdown: add each row's mIoU and VC per video, worst first (the HTML page always has them)")
    parser.add_argument("--strict", action="store_true", help="an invalid record is an error instead of a note")
    parser.add_argument("--ci", action="store_true",
                        help="95%% bootstrap intervals over videos for mIoU and hIoU")
    parser.add_argument("--ci-resamples", type=int, default=1000, metavar="N",
                        help="bootstrap resamples (default: 1000)")
    parser.add_argument("--ci-seed", type=int, default=0, metavar="S", help="bootstrap seed (default: 0)")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if not args.out:
        return "md"
    suffix = Path(args.out).suffix.lower()
    if suffix not in _SUFFIX_FORMAT:
        known = ", ".join(_SUFFIX_FORMAT)
        raise ConfigError(f"--out {args.out}: cannot tell the table format from {suffix or 'no suffix'!r} ({known}); pass --format")
    return _SUFFIX_FORMAT[suffix]


def render_table(board: Leaderboard, fmt: str, *, per_video: bool = False) -> str:
    from ovbench.leaderboard.render import to_csv, to_latex, to_markdown

    if fmt == "html":
        from ovbench.leaderboard.html import to_html

        return to_html(board)
    if fmt == "md":
        return to_markdown(board, per_video=per_video)
    return {"latex": to_latex, "csv": to_csv}[fmt](board)


def _plot(board: Leaderboard, kind: str, out: Path) -> None:
    from ovbench.leaderboard.plots import accuracy_fps_figure, per_class_figure, save_figure

    if kind == "acc-fps":
        figure, notes = accuracy_fps_figure(board)
        board.notes.extend(notes)
    else:
        figure = per_class_figure(board.rows)
    save_figure(figure, out)


def run(args: argparse.Namespace) -> int:
    from ovbench.leaderboard.records import find_runs
    from ovbench.leaderboard.table import Bootstrap, build_leaderboard

    if args.plot and not args.out:
        raise ConfigError("--plot needs --out FILE.png")
    if args.plot and args.format:
        raise ConfigError("--plot writes an image; leave out --format")
    fmt = None if args.plot else _format(args)  # a bad --out suffix is refused before any work
    if args.ci_resamples < 1:
        raise ConfigError(f"--ci-resamples {args.ci_resamples}: needs at least 1")
    if args.per_video and (args.plot or fmt in ("latex", "csv")):
        raise ConfigError("--per-video adds tables to markdown output (the HTML page always has them)")
    layout = load_layout(args.table)
    runs, notes = find_runs(Path(args.results), strict=args.strict)
    try:
        board = build_leaderboard(
            runs, layout, dataset=args.dataset, protocol=args.protocol, all_runs=args.all_runs,
            include_partial=args.include_partial,
            bootstrap=Bootstrap(args.ci_resamples, args.ci_seed) if args.ci else None,
        )
    except OvbenchError:
        _report(notes)  # why records were skipped often explains the error
        raise
    board.notes[:0] = notes
    if args.plot:
        _plot(board, args.plot, Path(args.out))
    else:
        text = render_table(board, fmt, per_video=args.per_video)
        if args.out:
            write_text(args.out, text)
        else:
            sys.stdout.write(text)
    _report(board.notes)
    return 0


def _report(notes: list[str]) -> None:
    for note in notes:
        print(f"ovbench leaderboard: {note}", file=sys.stderr)
