"""What the commands share: exit codes, option types, option groups, help layout, printing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


EXIT_SKIPPED = 3  # a record was written, but some videos were skipped (listed in it)


DEFAULT_OUT = Path("runs")


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def warn_limited(limit: int | None) -> None:
    if limit is not None:
        stderr(f"*** --limit-videos {limit}: only the split's first {limit} video(s); a smoke test, not comparable with a full run ***")


def report(record: dict, path: Path) -> None:
    from ovbench.records.summary import format_summary

    print(format_summary(record))
    print(f"record: {path}")


def stderr(message: str) -> None:
    print(message, file=sys.stderr)


def silent(message: str) -> None:
    pass


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (unless there is none to show, or the help states
    it already); examples in the epilog kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, "", [], argparse.SUPPRESS) or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


DATA_ROOT_HELP = ("the split's data set root: VSPW_480p, VIPSeg_720P or COCO; if not given: $OVBENCH_DATA_ROOT,"
                  " else the built-in synthetic VSPW sample")


SPLIT_HELP = "split name (see `ovbench ls splits`) or path/to/split.json[#name]"
PRECISION_CHOICES = ["fp32", "bf16", "fp16"]


def add_model_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id (see `ovbench ls models -v`)")
    parser.add_argument("--model-args", default="", metavar="K=V,...", help="typed model arguments (see `ovbench ls models -v`)")
    add_plugin(parser)


def add_plugin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                        help="import this module first (it registers models); repeatable")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:K")
    parser.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES, help="autocast precision of the model")


def add_split_words(parser: argparse.ArgumentParser, split_help: str = SPLIT_HELP) -> None:
    """--split and --data-root: what every command that reads a split's data takes."""
    parser.add_argument("--split", required=True, help=split_help)
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)


def scoring_options(args: argparse.Namespace) -> dict:
    """The options `add_scoring_words` adds, as RunOptions and ScoreOptions name them."""
    return {"limit_videos": args.limit_videos, "min_video_frames": args.min_video_frames,
            "convention": args.miou_convention, "progress": not args.no_progress}


def add_scoring_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit-videos", type=positive, metavar="N", help="only the split's first N videos (a smoke test: the record says so)")
    parser.add_argument("--min-video-frames", type=int, default=0, metavar="N", help="skip videos with <= N frames for mIoU (16 = the common VSPW variant)")
    parser.add_argument("--miou-convention", default="vspw", choices=["vspw", "mmseg"], help="how mIoU averages over classes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
