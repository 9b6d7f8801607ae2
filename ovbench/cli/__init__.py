"""The `ovbench` command. The one module that knows every part; each subcommand is a thin
translation from CLI words to a library call, and every user error ends as one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from ovbench import __version__
from ovbench.cli.common import EXIT_USER_ERROR, HelpFormatter
from ovbench.errors import OvbenchError

# The commands in the order `ovbench --help` lists them: each is the module of that name (dashes
# as underscores), with its one-line SUMMARY, an EXAMPLE, configure(parser) and execute(args).
COMMANDS = ("run", "merge", "score", "train", "predict", "visualize", "ls", "data", "cache", "check-model", "leaderboard")


def command_module(name: str):
    """The module of one command (imports of its work happen inside execute, so listing every
    command's help stays fast)."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; given `command`, only that command's options are added (the others keep
    their one-line help), so `ovbench --help` imports nothing heavy."""
    parser = argparse.ArgumentParser(prog="ovbench", description="Open-vocabulary video segmentation benchmark: VSPW, VIPSeg, COCO and the image benchmarks.",
                                     epilog="`ovbench COMMAND --help` shows a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"ovbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = command_module(name)
        command_parser = sub.add_parser(name, help=module.SUMMARY, description=module.SUMMARY,
                                        epilog=f"example:\n  {module.EXAMPLE}", formatter_class=HelpFormatter)
        if command in (None, name):
            module.configure(command_parser)
        command_parser.set_defaults(func=module.execute)
    return parser


def _command_word(argv: list[str]) -> str:
    """The subcommand being run ("" for `ovbench --help`): the first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), "")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a SLURM preemption, `kill`): unwinds like Ctrl-C, so the open video is undone
    and everything finished is kept."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_word(argv)).parse_args(argv)
    args.command_line = ["ovbench", *argv]  # for the record
    finished = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        plugins = getattr(args, "plugin", [])
        if plugins:  # the registry imports torch: `score` and `ls splits` never need it
            from ovbench.registry import load_plugin

            for module in plugins:
                load_plugin(module)
        code = args.func(args)
        finished = True
        return code
    except OvbenchError as err:
        print(f"ovbench: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        after = getattr(command_module(args.command), "AFTER_INTERRUPT", "rerun the same command to resume")
        print(f"ovbench: {what}; {after}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if "torch.distributed" in sys.modules:  # only a command that used torch can have joined
            from ovbench.run.distributed import leave

            leave(wait_for_others=finished)


if __name__ == "__main__":
    sys.exit(main())
