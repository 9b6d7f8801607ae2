"""`ovbench run`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import (
    DEFAULT_OUT,
    EXIT_SKIPPED,
    MATRIX_HELP,
    add_device,
    add_model_words,
    add_scoring_words,
    add_split_words,
    non_negative,
    positive,
    report,
    scoring_options,
    silent,
    split_words,
    stderr,
    warn_limited,
)
from ovbench.errors import ConfigError

SUMMARY = "evaluate a model on a split"
EXAMPLE = "ovbench run --model gkc --split vspw_all --data-root /data/VSPW_480p"


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/4)") from None
    if not (count >= 1 and 0 <= index < count):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= I < N")
    return index, count


def execute(args: argparse.Namespace) -> int:
    """Each split of --split in turn, the model built once (an evaluation matrix in one process)."""
    from ovbench.run.distributed import join, process_device, torchrun_launch
    from ovbench.run.orchestration import run
    from ovbench.split import load_split

    splits = [load_split(name) for name in split_words(args.split)]
    device = process_device(args.device, torchrun_launch())
    launched = join(device)
    shard = args.shard
    if launched:
        if args.shard != (0, 1):
            raise ConfigError("--shard cannot be combined with torchrun (torchrun already shards)")
        shard = (launched.rank, launched.world)
    if shard[0] == 0:
        warn_limited(args.limit_videos)
    model, status = None, 0
    for split in splits:
        options, on_sample = _options(args, split, device, shard)
        if model is None and len(splits) > 1:  # one adapter for every split of the matrix
            from ovbench.run.distributed import resolve_device
            from ovbench.run.model_io import build_model

            model = build_model(options.model, options.model_args, resolve_device(options.device), on_sample,
                                log=stderr if shard[0] == 0 else None)
        status = max(status, _finish(*run(options, on_sample=on_sample, log=stderr, model=model), launched, shard))
    return status


def _options(args: argparse.Namespace, split, device, shard: tuple[int, int]):
    """RunOptions of one split of the command (its own data root: a matrix may span data sets)."""
    from ovbench.data.roots import resolve_data_root
    from ovbench.run.options import RunOptions

    quiet = shard[0] != 0
    root = resolve_data_root(args.data_root, split.dataset, stderr if not quiet else silent)
    options = RunOptions(
        model=args.model,
        split=split,
        data_root=root.path,
        dataset_name=root.name,
        out_dir=Path(args.out),
        model_args=args.model_args,
        device=str(device),
        precision=args.precision,
        batch_size=args.batch_size,
        workers=args.workers,
        save_predictions=args.save_predictions,
        strict=args.strict,
        overwrite=args.overwrite,
        shard=shard,
        command=args.command_line,
        max_model_failures=args.max_model_failures,
        **{**scoring_options(args), "progress": not args.no_progress and not quiet},
    )
    return options, root.on_sample


def _finish(record: dict, path: Path, launched, shard: tuple[int, int]) -> int:
    if record:
        report(record, path)
        skipped = len(record["dataset"].get("skipped") or [])
        if skipped:
            stderr(f"ovbench: {skipped} video(s) skipped, listed in the record (exit status {EXIT_SKIPPED})")
            return EXIT_SKIPPED
    elif not launched:
        print(f"shard {shard[0]}/{shard[1]} done; state in {path}; combine with `ovbench merge`")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    add_model_words(parser)
    add_split_words(parser, MATRIX_HELP)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for run records")
    add_device(parser)
    parser.add_argument("--batch-size", type=positive, default=4, help="frames per predict call (never across videos)")
    parser.add_argument("--workers", type=non_negative, default=2, help="frame-decoding worker processes")
    parser.add_argument("--save-predictions", choices=["png", "rle"], help="also save predictions: palette PNGs or one RLE JSON per video")
    parser.add_argument("--strict", action="store_true", help="abort on the first broken video instead of skipping it")
    parser.add_argument("--max-model-failures", type=positive, default=3, metavar="K",
                        help="stop (resumably) after the model fails on K videos in a row")
    parser.add_argument("--overwrite", action="store_true", help="discard a partial run instead of resuming it")
    parser.add_argument("--shard", type=_shard, default="0/1", metavar="I/N",
                        help="run shard I of N, I = 0..N-1 (SLURM arrays: $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)); combine with `ovbench merge`")
    add_scoring_words(parser)
