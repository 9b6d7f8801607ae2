"""`ovbench merge`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import add_vc_words, report

SUMMARY = "merge the state folders of sharded runs into one record"
EXAMPLE = "ovbench merge runs/*.state"


def execute(args: argparse.Namespace) -> int:
    from ovbench.run.record import merge_runs

    record, path = merge_runs([Path(d) for d in args.states], Path(args.out) if args.out else None, partial=args.partial,
                              vc_convention=args.vc_convention, min_video_frames=args.min_video_frames)
    report(record, path)
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("states", nargs="+", help="<out>/<run>.state folders written by `ovbench run --shard`")
    parser.add_argument("--partial", action="store_true", help="write a record although some videos are in no state (listed as skipped)")
    parser.add_argument("--out", help="folder for the record; if not given: the one holding the state folder")
    add_vc_words(parser, merging=True)
