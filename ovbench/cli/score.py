"""`ovbench score`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import (
    DATA_ROOT_HELP,
    DEFAULT_OUT,
    MATRIX_HELP,
    add_scoring_words,
    report,
    scoring_options,
    split_words,
    stderr,
    warn_limited,
)

SUMMARY = "score another codebase's PNG predictions"
EXAMPLE = "ovbench score --split vspw_all --pred preds/ --data-root /data/VSPW_480p"
AFTER_INTERRUPT = "nothing was written: rerun the command"


def execute(args: argparse.Namespace) -> int:
    """Each split of --split in turn (one record each), from the same prediction folder."""
    from ovbench.data.roots import resolve_data_root
    from ovbench.records.write import write_record
    from ovbench.score import ScoreOptions, score, score_stem
    from ovbench.split import load_split

    splits = [load_split(name) for name in split_words(args.split)]
    warn_limited(args.limit_videos)
    for split in splits:
        root = resolve_data_root(args.data_root, split.dataset, stderr)
        record = score(
            ScoreOptions(
                split=split,
                pred_dir=Path(args.pred),
                data_root=root.path,
                dataset_name=root.name,
                name=args.name,
                pred_ids=args.pred_ids,
                **scoring_options(args),
            )
        )
        report(record, write_record(record, Path(args.out), stem=score_stem(record, Path(args.pred))))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True, help=MATRIX_HELP)
    parser.add_argument("--pred", required=True, help="PRED/<video>/<frame>.png (or ovbench RLE files PRED/<video>.json)")
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    parser.add_argument("--pred-ids", default="global", choices=["global", "vocab"], help="PNG values are converted VSPW ids (global) or vocabulary indices")
    parser.add_argument("--name", help="model name for the record; if not given: the prediction folder's name")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the record")
    add_scoring_words(parser)
