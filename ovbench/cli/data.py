"""`ovbench data`: write a small synthetic data set in any known layout, prepare an image
benchmark from the release a user downloaded, or check a data root."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ovbench.cli.common import HelpFormatter, positive
from ovbench.errors import ConfigError

SUMMARY = "make or check data in any known layout"
EXAMPLE = "ovbench data verify --data-root /data/VSPW_480p"
AFTER_INTERRUPT = "rerun the same command (`data prepare` resumes; `synth` and `verify` start over)"


def execute(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        return _synth(args)
    if args.data_command == "prepare":
        return _prepare(args)
    from ovbench.data.verify import verify_dataset
    from ovbench.data.verify.report import format_report

    report = verify_dataset(Path(args.data_root), args.dataset, workers=args.workers)
    print(format_report(report))
    return 0 if report.ok else 1


def _synth(args: argparse.Namespace) -> int:
    from ovbench.data.kinds import data_kind

    kind = data_kind(args.dataset)
    write = kind.load("synthetic")
    size = dict(height=args.height, width=args.width, seed=args.seed)
    if kind.image:
        if args.frames is not None:
            raise ConfigError(f"--frames: a {kind.title} image is a video of one frame (--videos sets the image count)")
        root = write(Path(args.out), images=args.videos, **size)
    else:
        root = write(Path(args.out), videos=args.videos, frames=args.frames, **size)
    print(f"wrote a synthetic {kind.title}-format data set to {root}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from ovbench.data.prepare import prepare

    subsets = tuple(args.subsets.split(",")) if args.subsets else None
    root = prepare(args.kind, Path(getattr(args, "from")), Path(args.out), workers=args.workers, subsets=subsets)
    print(f"prepared {args.kind} in {root} (check it with `ovbench data verify --data-root {root}`)")
    return 0


def _configure_prepare(data_sub) -> None:
    from ovbench.data.kinds import prepared_kinds

    prepare = data_sub.add_parser(
        "prepare", help="turn a downloaded image benchmark release into ovbench's prepared layout",
        formatter_class=HelpFormatter,
        epilog="an interrupted preparation continues when run again with the same words\n"
               "example:\n  ovbench data prepare ade150 --from /data/ADEChallengeData2016 --out /data/ade150")
    prepare.add_argument("kind", choices=prepared_kinds(), help="the benchmark (docs/image_benchmarks.md)")
    prepare.add_argument("--from", required=True, metavar="RAW", help="the release as downloaded: its folder or archive")
    prepare.add_argument("--out", required=True, metavar="ROOT", help="the prepared root to write (new, or half-prepared)")
    prepare.add_argument("--workers", type=positive, default=min(8, os.cpu_count() or 1), help="conversion processes")
    prepare.add_argument("--subsets", help="comma-separated subsets (val if not given; cocostuff171 also has train)")


def configure(parser: argparse.ArgumentParser) -> None:
    from ovbench.data.kinds import KINDS, layouts

    data_sub = parser.add_subparsers(dest="data_command", required=True, metavar="{synth,prepare,verify}")
    synth = data_sub.add_parser("synth", help=f"write a small synthetic data set in the {layouts()} layout",
                                formatter_class=HelpFormatter,
                                epilog="example:\n  ovbench data synth --out /tmp/vspw-mini --videos 4 --frames 10")
    synth.add_argument("--dataset", choices=list(KINDS), default="vspw", help="layout")
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--videos", type=positive, default=8, help="number of videos (images for an image data set)")
    synth.add_argument("--frames", type=positive, help="frames per video; if not given: varied lengths")
    synth.add_argument("--height", type=positive, default=60, help="frame height")
    synth.add_argument("--width", type=positive, default=106, help="frame width")
    synth.add_argument("--seed", type=int, default=0, help="random seed (the same seed writes the same files)")
    _configure_prepare(data_sub)
    verify = data_sub.add_parser("verify", help=f"check a {layouts()} root and report what is wrong", formatter_class=HelpFormatter)
    verify.add_argument("--data-root", required=True, help="the root to check")
    verify.add_argument("--dataset", choices=list(KINDS), help="the layout; if not given: recognised from the root")
    verify.add_argument("--workers", type=positive, default=min(8, os.cpu_count() or 1), help="decoding processes")
