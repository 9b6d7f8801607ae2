"""`ovbench ls`"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ovbench.cli.common import add_plugin

SUMMARY = "list models or splits"
EXAMPLE = "ovbench ls models -v"
AFTER_INTERRUPT = "rerun the command"


def execute(args: argparse.Namespace) -> int:
    if args.what == "models":
        _list_models(args.verbose)
    else:
        _list_splits(args.data_root or os.environ.get("OVBENCH_DATA_ROOT"))
    return 0


def _list_models(verbose: bool) -> None:
    from ovbench.modelargs import model_arguments
    from ovbench.registry import available_models, get_model_class, registry_notes

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
            _list_variants(cls)
    for note in registry_notes():
        print(f"note: {note}")
    if verbose:
        print("built-in weights, no download needed:")
        print(f"  checkpoint=builtin:NAME (gkc): {', '.join(_builtin_files('ovbench.models.gkc', 'weights', '.safetensors'))}")
        print(f"  clip=NAME,pretrained=none (clip-dense, clip-twostage; tiny and random, for tests):"
              f" {', '.join(_builtin_files('ovbench.models', 'clip_configs', '.json'))}")


def _list_variants(cls: type) -> None:
    """The adapter's `variants()` hook: file and host, licences, published numbers of each size."""
    variants = cls.variants()
    if variants:
        print("  variants (config=ID):")
    for variant in variants:
        print(f"    {variant.describe()}")


def _builtin_files(package: str, folder: str, suffix: str) -> list[str]:
    from importlib import resources

    from ovbench.resolve import builtin_names

    return builtin_names(resources.files(package) / folder, suffix)


def _list_splits(data_root: str | None) -> None:
    """With a data root, the number of videos each split of the root's data set has there ("-"
    for the other data sets' splits, and where the count needs the masks: base_delete)."""
    from ovbench.split import list_splits

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
    from ovbench.data.kinds import detect_kind, layouts, open_dataset
    from ovbench.errors import DataError

    kind = detect_kind(root)
    if kind is None:
        raise DataError(f"{root}: not a {layouts()} root")
    data = open_dataset(kind, root)
    counts = {}
    for subset in ("train", "val", "test"):
        try:
            counts[subset] = len(data.videos(subset))
        except DataError:
            continue
    return kind, counts


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["models", "splits"], help="what to list")
    parser.add_argument("-v", "--verbose", action="store_true", help="models: their arguments, types and defaults, and built-in weights")
    parser.add_argument("--data-root", help="splits: count the videos each split has there; if not given: $OVBENCH_DATA_ROOT")
    add_plugin(parser)
