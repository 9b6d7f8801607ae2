"""The `ovbench` command. The one module that knows every part; each subcommand is a thin
translation from CLI words to a library call, and every user error ends as one line and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import ConfigError, OvbenchError

EXIT_USER_ERROR = 2
EXIT_SKIPPED = 3  # a record was written, but some videos were skipped (listed in it)
DEFAULT_OUT = Path("runs")


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/4)") from None
    if not (count >= 1 and 0 <= index < count):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= I < N")
    return index, count


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def resolve_data(data_root: str | None, announce: Callable[[str], None], kind: str = "vspw") -> tuple[Path, str, bool]:
    """--data-root, else $OVBENCH_DATA_ROOT, else the built-in synthetic sample (made once; VSPW only)."""
    from .data.synthetic import SAMPLE, dataset_name, sample_root

    root = data_root or os.environ.get("OVBENCH_DATA_ROOT")
    if root:
        path = Path(root).expanduser()
        return path, dataset_name(path), False
    if kind != "vspw":
        raise ConfigError(f"this split reads {kind} data: pass its root with --data-root (the built-in sample is VSPW;"
                          f" `ovbench data synth --dataset {kind}` writes a small synthetic one)")
    path = sample_root()
    announce(
        f"*** no --data-root (or OVBENCH_DATA_ROOT): using the built-in SYNTHETIC sample at {path}"
        f" ({SAMPLE['height']}x{SAMPLE['width']} frames); numbers on it say nothing about VSPW ***"
    )
    return path, dataset_name(path), True


def _warn_limited(limit: int | None) -> None:
    if limit is not None:
        _stderr(f"*** --limit-videos {limit}: only the split's first {limit} video(s); a smoke test, not comparable with a full run ***")


def _report(record: dict, path: Path) -> None:
    from .results import format_summary

    print(format_summary(record))
    print(f"record: {path}")


def cmd_run(args: argparse.Namespace) -> int:
    from .devices import join, process_device, torchrun_launch
    from .runner import RunOptions, run
    from .splits import load_split

    split = load_split(args.split)
    device = process_device(args.device, torchrun_launch())
    launched = join(device)
    shard = args.shard
    if launched:
        if args.shard != (0, 1):
            raise ConfigError("--shard cannot be combined with torchrun (torchrun already shards)")
        shard = (launched.rank, launched.world)
    quiet = shard[0] != 0
    data_root, dataset_name, on_sample = resolve_data(args.data_root, _stderr if not quiet else _silent, split.dataset)
    if not quiet:
        _warn_limited(args.limit_videos)
    options = RunOptions(
        model=args.model,
        split=split,
        data_root=data_root,
        dataset_name=dataset_name,
        out_dir=Path(args.out),
        model_args=args.model_args,
        device=str(device),
        precision=args.precision,
        batch_size=args.batch_size,
        workers=args.workers,
        limit_videos=args.limit_videos,
        save_predictions=args.save_predictions,
        strict=args.strict,
        overwrite=args.overwrite,
        min_video_frames=args.min_video_frames,
        convention=args.miou_convention,
        shard=shard,
        progress=not args.no_progress and not quiet,
        command=args.command_line,
        max_model_failures=args.max_model_failures,
    )
    record, path = run(options, on_sample=on_sample, log=_stderr)
    if record:
        _report(record, path)
        skipped = len(record["dataset"].get("skipped") or [])
        if skipped:
            _stderr(f"ovbench: {skipped} video(s) skipped, listed in the record (exit status {EXIT_SKIPPED})")
            return EXIT_SKIPPED
    elif not launched:
        print(f"shard {shard[0]}/{shard[1]} done; state in {path}; combine with `ovbench merge`")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge_runs

    record, path = merge_runs([Path(d) for d in args.states], Path(args.out) if args.out else None, partial=args.partial)
    _report(record, path)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .results import write_record
    from .score import ScoreOptions, record_stem, score
    from .splits import load_split

    split = load_split(args.split)
    data_root, dataset_name, _ = resolve_data(args.data_root, _stderr, split.dataset)
    _warn_limited(args.limit_videos)
    record = score(
        ScoreOptions(
            split=split,
            pred_dir=Path(args.pred),
            data_root=data_root,
            dataset_name=dataset_name,
            name=args.name,
            pred_ids=args.pred_ids,
            min_video_frames=args.min_video_frames,
            convention=args.miou_convention,
            limit_videos=args.limit_videos,
            progress=not args.no_progress,
        )
    )
    _report(record, write_record(record, Path(args.out), stem=record_stem(record, Path(args.pred))))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .api import TrainableModel, TrainJob
    from .registry import get_model_class
    from .devices import join, process_device, torchrun_launch
    from .runner import build_model
    from .splits import load_split

    split = load_split(args.split)
    if split.subset != "train" or split.unseen_index():
        raise ConfigError(f"--split {split.name} is an evaluation split; train on a *_train_seen split (train videos, seen classes only)")
    if not issubclass(get_model_class(args.model), TrainableModel):
        raise ConfigError(f"model {args.model!r} cannot be trained by ovbench (it is not a TrainableModel)")
    data_root, _, _ = resolve_data(args.data_root, _stderr, split.dataset)
    device = process_device(args.device, torchrun_launch())
    join(device)
    model = build_model(args.model, args.model_args, device, on_sample=False, log=_stderr)
    job = TrainJob(
        data_root=data_root,
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


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import PredictOptions, parse_classes, predict, vocabulary_names

    names = parse_classes(args.classes) if args.classes is not None else vocabulary_names(args.vocabulary)
    options = PredictOptions(
        input=Path(args.input), model=args.model, names=names, out=Path(args.out), model_args=args.model_args,
        device=args.device, precision=args.precision, batch_size=args.batch_size, fps=args.fps,
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    summary = predict(options, log=_stderr)
    top = ", ".join(f"{c['name']} {100 * c['mean_share']:.1f}%" for c in summary["classes_found"][:8])
    print(f"{summary['frames']} frame(s) -> {args.out}: labels/ (palette PNGs), overlays/, overlay.mp4, summary.json, shares.csv")
    print(f"classes found (mean share of the picture): {top or 'none'}")
    if summary["model"]["random_init"]:
        print("RANDOM WEIGHTS (untrained): these classes say nothing about the model")
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    from .splits import load_split
    from .visualize import parse_run, visualize

    split = load_split(args.split)
    data_root, _, _ = resolve_data(args.data_root, _stderr, split.dataset)
    videos = [name.strip() for name in args.videos.split(",") if name.strip()] if args.videos else None
    figure = visualize([parse_run(spec, flat=split.dataset == "coco") for spec in args.runs], split, data_root, Path(args.out),
                       videos=videos, num_videos=args.num_videos, frames=args.frames)
    print(f"{figure.panels} panels of videos {', '.join(figure.videos)}: {', '.join(str(path) for path in figure.paths)}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "models":
        _list_models(args.verbose)
    else:
        _list_splits(args.data_root or os.environ.get("OVBENCH_DATA_ROOT"))
    return 0


def _list_models(verbose: bool) -> None:
    from .catalog import model_arguments
    from .registry import available_models, get_model_class, registry_notes

    for name in available_models():
        try:
            cls = get_model_class(name)
        except Exception as err:  # a broken plugin must not hide the others
            print(f"{name:16s} (cannot be loaded: {type(err).__name__}: {err})")
            continue
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph
        print(f"{name:16s} {cls.__module__}:{cls.__qualname__}  {doc}")
        if verbose:
            for arg in model_arguments(cls.Args):
                comment = f"  # {arg.comment}" if arg.comment else ""
                print(f"    {arg.name}: {arg.type} = {arg.default}{comment}")
    for note in registry_notes():
        print(f"note: {note}")
    if verbose:
        print("built-in weights, no download needed:")
        print(f"  checkpoint=builtin:NAME (gkc): {', '.join(_builtin_files('ovbench.models.gkc', 'weights', '.safetensors'))}")
        print(f"  clip=NAME,pretrained=none (clip-dense, clip-twostage; tiny and random, for tests):"
              f" {', '.join(_builtin_files('ovbench.models', 'clip_configs', '.json'))}")


def _builtin_files(package: str, folder: str, suffix: str) -> list[str]:
    from importlib import resources

    from .resolve import builtin_names

    return builtin_names(resources.files(package) / folder, suffix)


def _list_splits(data_root: str | None) -> None:
    """With a data root, the number of videos each split of the root's data set has there ("-"
    for the other data sets' splits, and where the count needs the masks: base_delete)."""
    from .splits import list_splits

    splits = list_splits()
    kind, counts = _videos_per_subset(Path(data_root).expanduser()) if data_root else (None, {})
    print(f"{'split':24s} {'protocol':9s} {'ver':>3s} {'subset':6s} {'vocab':>5s} {'seen':>4s} {'unseen':>6s}  "
          + ("videos@root  " if data_root else "") + "hash")
    for split in splits:
        known = split.dataset == kind and split.videos == "all" and split.subset in counts
        count = (f"{counts[split.subset]:>11d}  " if known else f"{'-':>11s}  ") if data_root else ""
        print(
            f"{split.name:24s} {split.protocol:9s} {split.version:>3d} {split.subset:6s} {len(split.vocabulary):>5d}"
            f" {len(split.seen_index()):>4d} {len(split.unseen_index()):>6d}  {count}{split.hash[:19]}"
        )
    seen_protocols: set[str] = set()
    for split in splits:
        if split.protocol not in seen_protocols:
            seen_protocols.add(split.protocol)
            print(f"  {split.protocol}: {split.provenance}")
    if data_root:
        print(f"videos@root: the videos of each subset in {data_root} ({kind} data)")


def _videos_per_subset(root: Path) -> tuple[str, dict[str, int]]:
    """The root's data set kind and the videos of each of its subsets (a subset it lacks: left out)."""
    from .data.datasets import detect_kind, open_dataset
    from .errors import DataError

    kind = detect_kind(root)
    if kind is None:
        raise DataError(f"{root}: not a VSPW_480p, VIPSeg_720P or COCO root")
    data = open_dataset(kind, root)
    counts = {}
    for subset in ("train", "val", "test"):
        try:
            counts[subset] = len(data.videos(subset))
        except DataError:
            continue
    return kind, counts


def cmd_data(args: argparse.Namespace) -> int:
    from .data.datasets import TITLES

    if args.data_command == "synth":
        from .data.synthetic import write_synthetic_vspw
        from .data.synthetic_panoptic import write_synthetic_coco, write_synthetic_vipseg

        size = dict(height=args.height, width=args.width, seed=args.seed)
        if args.dataset == "coco":
            if args.frames is not None:
                raise ConfigError("--frames: a COCO image is a video of one frame (--videos sets the image count)")
            root = write_synthetic_coco(Path(args.out), images=args.videos, **size)
        else:
            write = write_synthetic_vipseg if args.dataset == "vipseg" else write_synthetic_vspw
            root = write(Path(args.out), videos=args.videos, frames=args.frames, **size)
        print(f"wrote a synthetic {TITLES[args.dataset]}-format data set to {root}")
        return 0
    from .data.verify import format_report, verify_dataset

    report = verify_dataset(Path(args.data_root), args.dataset, workers=args.workers)
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_cache(args: argparse.Namespace) -> int:
    from .textcache import TextCache

    cache = TextCache()
    if args.cache_command == "clear":
        print(f"removed {cache.clear()} cached text embedding(s) from {cache.root}")
        return 0
    entries = cache.entries()
    for entry in entries:
        if entry.damaged:
            print(f"{entry.path.name[:16]}  damaged ({entry.damaged}); re-encoded when next needed  {entry.bytes / 1024:8.1f} KiB")
            continue
        print(f"{entry.path.name[:16]}  {entry.classes:4d} classes  {entry.bytes / 1024:8.1f} KiB  {entry.model_key}")
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in {cache.root}")
    return 0


def cmd_check_model(args: argparse.Namespace) -> int:
    from .check import check_model

    problems = check_model(args.model, args.model_args, device=args.device, log=print)
    if problems:
        print(f"\n{args.model}: {len(problems)} contract violation(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"\n{args.model}: OK, the adapter honours the ovbench contract")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard.command import run as run_leaderboard

    return run_leaderboard(args)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _silent(message: str) -> None:
    pass


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (unless there is none to show, or the help states
    it already); examples in the epilog kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, "", [], argparse.SUPPRESS) or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


DATA_ROOT_HELP = ("the split's data set root: VSPW_480p, VIPSeg_720P or COCO; if not given: $OVBENCH_DATA_ROOT,"
                  " else the built-in synthetic VSPW sample")
PRECISION_CHOICES = ["fp32", "bf16", "fp16"]


def _add_model_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id (see `ovbench ls models -v`)")
    parser.add_argument("--model-args", default="", metavar="K=V,...", help="typed model arguments (see `ovbench ls models -v`)")
    _add_plugin(parser)


def _add_plugin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                        help="import this module first (it registers models); repeatable")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:K")
    parser.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES, help="autocast precision of the model")


def _add_scoring_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit-videos", type=_positive, metavar="N", help="only the split's first N videos (a smoke test: the record says so)")
    parser.add_argument("--min-video-frames", type=int, default=0, metavar="N", help="skip videos with <= N frames for mIoU (16 = the common VSPW variant)")
    parser.add_argument("--miou-convention", default="vspw", choices=["vspw", "mmseg"], help="how mIoU averages over classes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def configure_run(parser: argparse.ArgumentParser) -> None:
    _add_model_words(parser)
    parser.add_argument("--split", required=True, help="split name (see `ovbench ls splits`) or path/to/split.json[#name]")
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for run records")
    _add_device(parser)
    parser.add_argument("--batch-size", type=_positive, default=4, help="frames per predict call (never across videos)")
    parser.add_argument("--workers", type=_non_negative, default=2, help="frame-decoding worker processes")
    parser.add_argument("--save-predictions", choices=["png", "rle"], help="also save predictions: palette PNGs or one RLE JSON per video")
    parser.add_argument("--strict", action="store_true", help="abort on the first broken video instead of skipping it")
    parser.add_argument("--max-model-failures", type=_positive, default=3, metavar="K",
                        help="stop (resumably) after the model fails on K videos in a row")
    parser.add_argument("--overwrite", action="store_true", help="discard a partial run instead of resuming it")
    parser.add_argument("--shard", type=_shard, default="0/1", metavar="I/N",
                        help="run shard I of N, I = 0..N-1 (SLURM arrays: $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)); combine with `ovbench merge`")
    _add_scoring_words(parser)


def configure_merge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("states", nargs="+", help="<out>/<run>.state folders written by `ovbench run --shard`")
    parser.add_argument("--partial", action="store_true", help="write a record although some videos are in no state (listed as skipped)")
    parser.add_argument("--out", help="folder for the record; if not given: the one holding the state folder")


def configure_score(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True, help="split name (see `ovbench ls splits`) or path/to/split.json[#name]")
    parser.add_argument("--pred", required=True, help="PRED/<video>/<frame>.png (or ovbench RLE files PRED/<video>.json)")
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    parser.add_argument("--pred-ids", default="global", choices=["global", "vocab"], help="PNG values are converted VSPW ids (global) or vocabulary indices")
    parser.add_argument("--name", help="model name for the record; if not given: the prediction folder's name")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the record")
    _add_scoring_words(parser)


def configure_train(parser: argparse.ArgumentParser) -> None:
    _add_model_words(parser)
    parser.add_argument("--split", required=True, help="a *_train_seen split, e.g. vspw_train_seen")
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    parser.add_argument("--out", required=True, help="folder for checkpoints")
    parser.add_argument("--train-args", default="", metavar="K=V,...", help="the model's training options")
    parser.add_argument("--init", help="start from this checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming from --out")
    _add_device(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a video (mp4, mkv, avi, webm, ...), a folder of frames, or one image")
    _add_model_words(parser)
    vocabulary = parser.add_mutually_exclusive_group(required=True)
    vocabulary.add_argument("--classes", help='comma-separated class names, e.g. "dog,person,grass" (at most 255)')
    vocabulary.add_argument("--vocabulary", choices=["vspw", "vipseg", "coco"], help="a data set's class names")
    parser.add_argument("--out", required=True, help="folder for labels/, overlays/, overlay.mp4, summary.json, shares.csv")
    _add_device(parser)
    parser.add_argument("--batch-size", type=_positive, default=4, help="frames per predict call")
    parser.add_argument("--fps", type=_positive_float, help="frame rate of overlay.mp4; if not given: the video's, else 10")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier prediction in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def configure_visualize(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="NAME=DIR|DIR",
                        help="saved predictions (`run --save-predictions`), one column each; NAME= sets the column title")
    parser.add_argument("--split", required=True, help="the split the predictions were made on")
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    parser.add_argument("--videos", help="comma-separated video names; if not given: where the runs disagree most")
    parser.add_argument("--num-videos", type=_positive, default=3, metavar="N", help="videos picked automatically")
    parser.add_argument("--frames", type=_positive, default=3, metavar="N", help="frames per video, evenly spaced")
    parser.add_argument("--out", required=True, help="figure file (.png or .pdf); both are written")


def configure_ls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["models", "splits"], help="what to list")
    parser.add_argument("-v", "--verbose", action="store_true", help="models: their arguments, types and defaults, and built-in weights")
    parser.add_argument("--data-root", help="splits: count the videos each split has there; if not given: $OVBENCH_DATA_ROOT")
    _add_plugin(parser)


def configure_data(parser: argparse.ArgumentParser) -> None:
    data_sub = parser.add_subparsers(dest="data_command", required=True, metavar="{synth,verify}")
    synth = data_sub.add_parser("synth", help="write a small synthetic data set in the VSPW_480p, VIPSeg_720P or COCO layout", formatter_class=_HelpFormatter)
    synth.add_argument("--dataset", choices=["vspw", "vipseg", "coco"], default="vspw", help="layout")
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--videos", type=_positive, default=8, help="number of videos (images for coco)")
    synth.add_argument("--frames", type=_positive, help="frames per video; if not given: varied lengths")
    synth.add_argument("--height", type=_positive, default=60, help="frame height")
    synth.add_argument("--width", type=_positive, default=106, help="frame width")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    verify = data_sub.add_parser("verify", help="check a VSPW, VIPSeg or COCO root and report what is wrong", formatter_class=_HelpFormatter)
    verify.add_argument("--data-root", required=True, help="the root to check")
    verify.add_argument("--dataset", choices=["vspw", "vipseg", "coco"], help="the layout; if not given: recognised from the root")
    verify.add_argument("--workers", type=_positive, default=min(8, os.cpu_count() or 1), help="decoding processes")


def configure_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache_command", choices=["ls", "clear"], help="list or delete the cached embeddings")


def configure_check_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model id (see `ovbench ls models`)")
    parser.add_argument("--model-args", default="", metavar="K=V,...", help="typed model arguments")
    _add_plugin(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:K")


def configure_leaderboard(parser: argparse.ArgumentParser) -> None:
    from .leaderboard.command import configure_parser

    configure_parser(parser)


# name: (one-line help, example, options, command)
COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "run": ("evaluate a model on a split", "ovbench run --model gkc --split vspw_all --data-root /data/VSPW_480p", configure_run, cmd_run),
    "merge": ("merge the state folders of sharded runs into one record", "ovbench merge runs/*.state", configure_merge, cmd_merge),
    "score": ("score another codebase's PNG predictions", "ovbench score --split vspw_all --pred preds/ --data-root /data/VSPW_480p", configure_score, cmd_score),
    "train": ("train a trainable model on a split's training videos", "ovbench train --model gkc --split vspw_train_seen --data-root /data/VSPW_480p --out ckpt/", configure_train, cmd_train),
    "predict": ("segment your own video, frame folder or image with any class names",
                'ovbench predict street.mp4 --model clip-dense --classes "car,person,road,sky" --out street/', configure_predict, cmd_predict),
    "visualize": ("figures of saved predictions: frame | ground truth | one column per run",
                  "ovbench visualize gkc=runs/gkc.predictions clip=runs/clip.predictions --split vspw_all --out fig.pdf", configure_visualize, cmd_visualize),
    "ls": ("list models or splits", "ovbench ls models -v", configure_ls, cmd_ls),
    "data": ("make or check VSPW-format data", "ovbench data verify --data-root /data/VSPW_480p", configure_data, cmd_data),
    "cache": ("inspect or clear cached text embeddings", "ovbench cache ls", configure_cache, cmd_cache),
    "check-model": ("run an adapter on a tiny synthetic set and check the contract", "ovbench check-model my-model --plugin my_model.py", configure_check_model, cmd_check_model),
    "leaderboard": ("render run records as paper tables, HTML or plots", "ovbench leaderboard --results runs --out table.tex", configure_leaderboard, cmd_leaderboard),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; given `command`, only that command's options are added (the others keep
    their one-line help), so `ovbench --help` imports nothing heavy."""
    parser = argparse.ArgumentParser(prog="ovbench", description="Open-vocabulary video segmentation benchmark on VSPW.",
                                     epilog="`ovbench COMMAND --help` shows a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"ovbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (summary, example, configure, func) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=summary, description=summary, epilog=f"example:\n  {example}", formatter_class=_HelpFormatter)
        if command in (None, name):
            configure(command_parser)
        command_parser.set_defaults(func=func)
    return parser


def _command_word(argv: list[str]) -> str:
    """The subcommand being run ("" for `ovbench --help`): the first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_word(argv)).parse_args(argv)
    args.command_line = ["ovbench", *argv]  # for the record
    finished = False
    try:
        plugins = getattr(args, "plugin", [])
        if plugins:  # the registry imports torch: `score` and `ls splits` never need it
            from .registry import load_plugin

            for module in plugins:
                load_plugin(module)
        code = args.func(args)
        finished = True
        return code
    except OvbenchError as err:
        print(f"ovbench: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("ovbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # only a command that used torch can have joined
            from .devices import leave

            leave(wait_for_others=finished)


if __name__ == "__main__":
    sys.exit(main())
