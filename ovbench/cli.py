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


def resolve_data(data_root: str | None, announce: Callable[[str], None]) -> tuple[Path, str, bool]:
    """--data-root, else $OVBENCH_DATA_ROOT, else the built-in synthetic sample (made once)."""
    from .data.synthetic import SAMPLE, dataset_name, ensure_sample
    from .textcache import cache_root

    root = data_root or os.environ.get("OVBENCH_DATA_ROOT")
    if root:
        path = Path(root).expanduser()
        return path, dataset_name(path), False
    path = ensure_sample(cache_root() / "sample")
    announce(
        f"*** no --data-root (or OVBENCH_DATA_ROOT): using the built-in SYNTHETIC sample at {path}"
        f" ({SAMPLE['height']}x{SAMPLE['width']} frames); numbers on it say nothing about VSPW ***"
    )
    return path, dataset_name(path), True


def _distributed() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) under torchrun, after joining the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # NCCL's object collectives use the current device
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, local_rank


def _process_device(device: str, launched: tuple[int, int, int] | None) -> str:
    """Under torchrun each process takes the GPU of its local rank unless told otherwise."""
    if launched is None or device not in ("auto", "cuda"):
        return device
    import torch

    return f"cuda:{launched[2]}" if torch.cuda.is_available() else "cpu"


def _report(record: dict, path: Path) -> None:
    from .results import format_summary

    print(format_summary(record))
    print(f"record: {path}")


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import RunOptions, run
    from .splits import load_split

    split = load_split(args.split)
    launched = _distributed()
    shard, device = args.shard, _process_device(args.device, launched)
    if launched:
        if args.shard != (0, 1):
            raise ConfigError("--shard cannot be combined with torchrun (torchrun already shards)")
        shard = launched[:2]
    quiet = shard[0] != 0
    data_root, dataset_name, on_sample = resolve_data(args.data_root, _stderr if not quiet else _silent)
    options = RunOptions(
        model=args.model,
        split=split,
        data_root=data_root,
        dataset_name=dataset_name,
        out_dir=Path(args.out),
        model_args=args.model_args,
        device=device,
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
    )
    record, path = run(options, on_sample=on_sample, log=_stderr)
    if record:
        _report(record, path)
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
    data_root, dataset_name, _ = resolve_data(args.data_root, _stderr)
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
    from .runner import build_model, resolve_device
    from .splits import load_split

    split = load_split(args.split)
    if split.subset != "train" or split.unseen_index():
        raise ConfigError(f"--split {split.name} is an evaluation split; train on a *_train_seen split (train videos, seen classes only)")
    if not issubclass(get_model_class(args.model), TrainableModel):
        raise ConfigError(f"model {args.model!r} cannot be trained by ovbench (it is not a TrainableModel)")
    data_root, _, _ = resolve_data(args.data_root, _stderr)
    device = _process_device(args.device, _distributed())
    model = build_model(args.model, args.model_args, resolve_device(device), on_sample=False)
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


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "models":
        from .registry import available_models, get_model_class

        for name in available_models():
            try:
                cls = get_model_class(name)
                doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph
                print(f"{name:16s} {cls.__module__}:{cls.__qualname__}  {doc}")
            except Exception as err:  # a broken plugin must not hide the others
                print(f"{name:16s} (cannot be loaded: {type(err).__name__}: {err})")
        return 0
    from .splits import list_splits

    print(f"{'split':20s} {'protocol':9s} {'ver':>3s} {'videos':6s} {'vocab':>5s} {'seen':>4s} {'unseen':>6s}  hash")
    for split in list_splits():
        print(
            f"{split.name:20s} {split.protocol:9s} {split.version:>3d} {split.subset:6s} {len(split.vocabulary):>5d}"
            f" {len(split.seen_index()):>4d} {len(split.unseen_index()):>6d}  {split.hash[:19]}"
        )
    seen_protocols: set[str] = set()
    for split in list_splits():
        if split.protocol not in seen_protocols:
            seen_protocols.add(split.protocol)
            print(f"  {split.protocol}: {split.provenance}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        from .data.synthetic import write_synthetic_vspw

        root = write_synthetic_vspw(
            Path(args.out), videos=args.videos, frames=args.frames, height=args.height, width=args.width, seed=args.seed
        )
        print(f"wrote a synthetic VSPW_480p-format data set to {root}")
        return 0
    from .data.verify import format_report, verify_vspw

    report = verify_vspw(Path(args.data_root))
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


def _add_run_words(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id (see `ovbench ls models`)")
    parser.add_argument("--model-args", default="", help="k=v,... typed model arguments")
    parser.add_argument("--plugin", action="append", default=[], help="import this module first (it registers models)")


def build_parser() -> argparse.ArgumentParser:
    from .leaderboard.command import configure_parser as configure_leaderboard

    parser = argparse.ArgumentParser(prog="ovbench", description="Open-vocabulary video segmentation benchmark on VSPW.")
    parser.add_argument("--version", action="version", version=f"ovbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data_root_help = "VSPW_480p root (default: $OVBENCH_DATA_ROOT, else the built-in synthetic sample)"
    run_p = sub.add_parser("run", help="evaluate a model on a split")
    _add_run_words(run_p)
    run_p.add_argument("--split", required=True, help="split name (see `ovbench ls splits`) or path/to/split.json[#name]")
    run_p.add_argument("--data-root", help=data_root_help)
    run_p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for run records (default: runs/)")
    run_p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K")
    run_p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    run_p.add_argument("--batch-size", type=_positive, default=4)
    run_p.add_argument("--workers", type=_non_negative, default=2, help="frame-decoding worker processes")
    run_p.add_argument("--limit-videos", type=_positive)
    run_p.add_argument("--save-predictions", choices=["png", "rle"])
    run_p.add_argument("--strict", action="store_true", help="abort on the first broken video instead of skipping it")
    run_p.add_argument("--overwrite", action="store_true", help="discard a partial run instead of resuming it")
    run_p.add_argument("--min-video-frames", type=int, default=0, help="skip videos with <= N frames for mIoU (16 = the common VSPW variant)")
    run_p.add_argument("--miou-convention", default="vspw", choices=["vspw", "mmseg"])
    run_p.add_argument("--shard", type=_shard, default=(0, 1), help="I/N: run shard I of N, I = 0..N-1 (SLURM arrays: $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)); combine with `ovbench merge`")
    run_p.add_argument("--no-progress", action="store_true")
    run_p.set_defaults(func=cmd_run)

    merge_p = sub.add_parser("merge", help="merge the state folders of sharded runs into one record")
    merge_p.add_argument("states", nargs="+", help="<out>/<run>.state folders written by `ovbench run --shard`")
    merge_p.add_argument("--partial", action="store_true", help="write a record although some videos are in no state (listed as skipped)")
    merge_p.add_argument("--out", help="folder for the record (default: the one holding the state folder)")
    merge_p.set_defaults(func=cmd_merge)

    score_p = sub.add_parser("score", help="score another codebase's PNG predictions")
    score_p.add_argument("--split", required=True)
    score_p.add_argument("--pred", required=True, help="PRED/<video>/<frame>.png (or ovbench RLE files PRED/<video>.json)")
    score_p.add_argument("--data-root", help=data_root_help)
    score_p.add_argument("--pred-ids", default="global", choices=["global", "vocab"], help="PNG values are converted VSPW ids (global) or vocabulary indices")
    score_p.add_argument("--name", help="model name for the record (default: the prediction folder's name)")
    score_p.add_argument("--out", default=str(DEFAULT_OUT))
    score_p.add_argument("--limit-videos", type=_positive)
    score_p.add_argument("--min-video-frames", type=int, default=0)
    score_p.add_argument("--miou-convention", default="vspw", choices=["vspw", "mmseg"])
    score_p.add_argument("--no-progress", action="store_true")
    score_p.set_defaults(func=cmd_score)

    train_p = sub.add_parser("train", help="train a trainable model on a split's training videos")
    _add_run_words(train_p)
    train_p.add_argument("--split", required=True, help="e.g. vspw_train_seen")
    train_p.add_argument("--data-root", help=data_root_help)
    train_p.add_argument("--out", required=True, help="folder for checkpoints")
    train_p.add_argument("--train-args", default="", help="k=v,... the model's training options")
    train_p.add_argument("--init", help="start from this checkpoint")
    train_p.add_argument("--overwrite", action="store_true", help="start over instead of resuming from --out")
    train_p.add_argument("--device", default="auto")
    train_p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    train_p.add_argument("--seed", type=int, default=0)
    train_p.set_defaults(func=cmd_train)

    ls_p = sub.add_parser("ls", help="list models or splits")
    ls_p.add_argument("what", choices=["models", "splits"])
    ls_p.add_argument("--plugin", action="append", default=[])
    ls_p.set_defaults(func=cmd_ls)

    data_p = sub.add_parser("data", help="make or check VSPW-format data")
    data_sub = data_p.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write a small synthetic data set in the VSPW_480p layout")
    synth.add_argument("--out", required=True)
    synth.add_argument("--videos", type=_positive, default=8)
    synth.add_argument("--frames", type=_positive, help="frames per video (default: varied lengths)")
    synth.add_argument("--height", type=_positive, default=60)
    synth.add_argument("--width", type=_positive, default=106)
    synth.add_argument("--seed", type=int, default=0)
    verify = data_sub.add_parser("verify", help="check a VSPW root and report what is wrong")
    verify.add_argument("--data-root", required=True)
    data_p.set_defaults(func=cmd_data)

    cache_p = sub.add_parser("cache", help="inspect or clear cached text embeddings")
    cache_p.add_argument("cache_command", choices=["ls", "clear"])
    cache_p.set_defaults(func=cmd_cache)

    check_p = sub.add_parser("check-model", help="run an adapter on a tiny synthetic set and check the contract")
    check_p.add_argument("model")
    check_p.add_argument("--model-args", default="")
    check_p.add_argument("--plugin", action="append", default=[])
    check_p.add_argument("--device", default="auto")
    check_p.set_defaults(func=cmd_check_model)

    board_p = sub.add_parser("leaderboard", help="render run records as paper tables, HTML or plots")
    configure_leaderboard(board_p)
    board_p.set_defaults(func=cmd_leaderboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    finished = False
    try:
        from .registry import load_plugin

        for module in getattr(args, "plugin", []):
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
        _leave_process_group(wait_for_others=finished)


def _leave_process_group(wait_for_others: bool) -> None:
    """Under torchrun, close the group before exiting: a process that exits with it open can
    abort in the collective library's threads (SIGABRT) after its work is done. After a failure
    the other ranks are not waited for (they may be inside another collective); torchrun stops them."""
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
