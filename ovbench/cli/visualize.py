"""`ovbench visualize`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import add_split_words, positive, stderr

SUMMARY = "figures of saved predictions: frame | ground truth | one column per run"
EXAMPLE = "ovbench visualize gkc=runs/gkc.predictions clip=runs/clip.predictions --split vspw_all --out fig.pdf"
AFTER_INTERRUPT = "rerun the command"


def execute(args: argparse.Namespace) -> int:
    from ovbench.data.roots import resolve_data_root
    from ovbench.split import load_split
    from ovbench.visualize import parse_run, visualize

    split = load_split(args.split)
    root = resolve_data_root(args.data_root, split.dataset, stderr)
    videos = [name.strip() for name in args.videos.split(",") if name.strip()] if args.videos else None
    figure = visualize([parse_run(spec, flat=split.kind.image) for spec in args.runs], split, root.path, Path(args.out),
                       videos=videos, num_videos=args.num_videos, frames=args.frames)
    print(f"{figure.panels} panels of videos {', '.join(figure.videos)}: {', '.join(str(path) for path in figure.paths)}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="NAME=DIR|DIR",
                        help="saved predictions (`run --save-predictions`), one column each; NAME= sets the column title")
    add_split_words(parser, "the split the predictions were made on")
    parser.add_argument("--videos", help="comma-separated video names; if not given: where the runs disagree most")
    parser.add_argument("--num-videos", type=positive, default=3, metavar="N", help="videos picked automatically")
    parser.add_argument("--frames", type=positive, default=3, metavar="N", help="frames per video, evenly spaced")
    parser.add_argument("--out", required=True, help="figure file (.png or .pdf); both are written")
