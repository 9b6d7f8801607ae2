"""`ovbench train`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovbench.cli.common import add_device, add_model_words, add_split_words, stderr
from ovbench.errors import ConfigError

SUMMARY = "train a trainable model on a split's training videos"
EXAMPLE = "ovbench train --model gkc --split vspw_train_seen --data-root /data/VSPW_480p --out ckpt/"


def execute(args: argparse.Namespace) -> int:
    from ovbench.api import TrainableModel, TrainJob
    from ovbench.data.roots import resolve_data_root
    from ovbench.registry import get_model_class
    from ovbench.run.distributed import join, process_device, torchrun_launch
    from ovbench.run.model_io import build_model
    from ovbench.split import load_split

    split = load_split(args.split)
    if split.subset != "train" or split.unseen_index():
        raise ConfigError(f"--split {split.name} is an evaluation split; train on a *_train_seen split (train videos, seen classes only)")
    if not issubclass(get_model_class(args.model), TrainableModel):
        raise ConfigError(f"model {args.model!r} cannot be trained by ovbench (it is not a TrainableModel)")
    root = resolve_data_root(args.data_root, split.dataset, stderr)
    device = process_device(args.device, torchrun_launch())
    join(device)
    model = build_model(args.model, args.model_args, device, on_sample=False, log=stderr)
    job = TrainJob(
        data_root=root.path,
        split=split,
        out_dir=Path(args.out),
        options=args.train_args,
        init=Path(args.init) if args.init else None,
        resume=not args.overwrite,
        precision=args.precision,
        seed=args.seed,
    )
    final = model.train_model(job)  # type: ignore[attr-defined]
    print(f"checkpoint: {final}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    add_model_words(parser)
    add_split_words(parser, "a *_train_seen split, e.g. vspw_train_seen")
    parser.add_argument("--out", required=True, help="folder for checkpoints")
    parser.add_argument("--train-args", default="", metavar="K=V,...", help="the model's training options")
    parser.add_argument("--init", help="start from this checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming from --out")
    add_device(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed")
