"""`ovbench check-model`"""

from __future__ import annotations

import argparse

from ovbench.cli.common import add_plugin

SUMMARY = "run an adapter on a tiny synthetic set and check the contract"
EXAMPLE = "ovbench check-model my-model --plugin my_model.py"
AFTER_INTERRUPT = "rerun the command"


def execute(args: argparse.Namespace) -> int:
    from ovbench.check import check_model

    problems = check_model(args.model, args.model_args, device=args.device, log=print)
    if problems:
        print(f"\n{args.model}: {len(problems)} contract violation(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"\n{args.model}: OK, the adapter honours the ovbench contract")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model id (see `ovbench ls models`)")
    parser.add_argument("--model-args", default="", metavar="K=V,...", help="typed model arguments")
    add_plugin(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:K")
