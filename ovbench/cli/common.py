"""What the commands share: exit codes, option types, option groups, help layout, printing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ovbench.errors import ConfigError

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
MATRIX_HELP = (SPLIT_HELP + "; several, comma-separated (a,b,c), run one after another in one process with the model built"
               " once (one record each); layout:<id> runs the splits a leaderboard layout's columns read (layout:gkc-vipseg)")
LAYOUT_PREFIX = "layout:"


def split_words(text: str) -> list[str]:
    """The splits of `--split`: one, a comma-separated list, or layout:<id> (every split that
    layout's columns read, via leaderboard.layouts)."""
    if text.startswith(LAYOUT_PREFIX):
        from ovbench.leaderboard.layouts import load_layout

        try:
            return load_layout(text[len(LAYOUT_PREFIX):]).run_splits()
        except ConfigError as err:
            raise ConfigError(f"--split {text}: {err}") from None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--split {text!r}: an empty name in the list")
    if len(set(names)) < len(names):
        raise ConfigError(f"--split {text!r}: a split named twice")
    return names
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
            "convention": args.miou_convention, "vc_convention": args.vc_convention, "progress": not args.no_progress,
            "tc": args.tc, "tc_weights": args.tc_weights, "tc_subset": args.tc_subset}


def add_scoring_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit-videos", type=positive, metavar="N", help="only the split's first N videos (a smoke test: the record says so)")
    add_vc_words(parser)
    parser.add_argument("--miou-convention", default="vspw", choices=["vspw", "mmseg"], help="how mIoU averages over classes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--tc", action="store_true", help="also compute TC, VSPW's flow-warped temporal consistency (RAFT; slow on a CPU)")
    parser.add_argument("--tc-weights", metavar="PATH|none",
                        help="RAFT raft-things weights for --tc: torchvision's raft_large_C_T_V1-22a6c225.pth, or none (random, a smoke test)")
    # no `choices` here: the lists live with the metrics (numpy), which --help does not import; the
    # metrics refuse an unknown word in one line
    parser.add_argument("--tc-subset", default="all",
                        help="videos TC covers: all, or official100 (the split list's first 100, as VSPW's TC_cal.py)")


def add_vc_words(parser: argparse.ArgumentParser, merging: bool = False) -> None:
    """--min-video-frames and --vc-convention; `merge` has no defaults: the merged run's own."""
    frames_unset = "the run's own, or with --vc-convention its default" if merging else "0, or 16 with --vc-convention cffm"
    parser.add_argument("--min-video-frames", type=non_negative, metavar="N",
                        help="leave out videos with <= N frames (from mIoU; under --vc-convention cffm also from VC8/VC16);"
                             f" if not given: {frames_unset}")
    parser.add_argument("--vc-convention", default=None if merging else "official", metavar="official|cffm",
                        help="official: VC pools every video (VSPW's VC_perclip.py); cffm: only the videos kept for mIoU"
                             " (the VC_perclip.py of CFFM, MRCFA, TV3S, OV2VSS)" + ("; if not given: the run's own" if merging else ""))
