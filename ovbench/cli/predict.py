"""`ovbench predict`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import add_device, add_model_words, positive, positive_float, stderr

SUMMARY = "segment your own video, frame folder or image with any class names"
EXAMPLE = 'ovbench predict street.mp4 --model clip-dense --classes "car,person,road,sky" --out street/'
AFTER_INTERRUPT = "--out holds part of this prediction: rerun with --overwrite (predict starts over)"


def execute(args: argparse.Namespace) -> int:
    from ovbench.predict import PredictOptions, parse_classes, predict, vocabulary_names

    names = parse_classes(args.classes) if args.classes is not None else vocabulary_names(args.vocabulary)
    options = PredictOptions(
        input=Path(args.input), model=args.model, names=names, out=Path(args.out), model_args=args.model_args,
        device=args.device, precision=args.precision, batch_size=args.batch_size, fps=args.fps,
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    summary = predict(options, log=stderr)
    top = ", ".join(f"{c['name']} {100 * c['mean_share']:.1f}%" for c in summary["classes_found"][:8])
    print(f"{summary['frames']} frame(s) -> {args.out}: labels/ (palette PNGs), overlays/, overlay.mp4, summary.json, shares.csv")
    print(f"classes found (mean share of the picture): {top or 'none'}")
    if summary["model"]["random_init"]:
        print("RANDOM WEIGHTS (untrained): these classes say nothing about the model")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a video (mp4, mkv, avi, webm, ...), a folder of frames, or one image")
    add_model_words(parser)
    vocabulary = parser.add_mutually_exclusive_group(required=True)
    vocabulary.add_argument("--classes", help='comma-separated class names, e.g. "dog,person,grass" (at most 255)')
    vocabulary.add_argument("--vocabulary", choices=["vspw", "vipseg", "coco"], help="a data set's class names")
    parser.add_argument("--out", required=True, help="folder for labels/, overlays/, overlay.mp4, summary.json, shares.csv")
    add_device(parser)
    parser.add_argument("--batch-size", type=positive, default=4, help="frames per predict call")
    parser.add_argument("--fps", type=positive_float, help="frame rate of overlay.mp4; if not given: the video's, else 10")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier prediction in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
