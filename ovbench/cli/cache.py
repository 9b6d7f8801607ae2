"""`ovbench cache`"""

from __future__ import annotations

import argparse

SUMMARY = "inspect or clear cached text embeddings"
EXAMPLE = "ovbench cache ls"
AFTER_INTERRUPT = "rerun the command"


def execute(args: argparse.Namespace) -> int:
    from ovbench.run.textcache import TextCache

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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache_command", choices=["ls", "clear"], help="list or delete the cached embeddings")
