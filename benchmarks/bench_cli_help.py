"""How long does `ovbench --help` (and each `ovbench COMMAND --help`) take, from a fresh process?

Every command keeps its heavy imports (torch, pandas, matplotlib, open_clip) inside the function
that runs it, so asking for help costs the interpreter's start and argparse only. Each line is
the fastest of --repeats fresh `python -m ovbench ... --help` processes (a busy machine adds
noise, never speed), next to a bare `python -c pass` for the floor and `import torch` for scale.

    python benchmarks/bench_cli_help.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ovbench.cli import COMMANDS


def fastest(command: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    cases = {"python -c pass (floor)": ["-c", "pass"], "python -c 'import torch' (scale)": ["-c", "import torch"],
             "ovbench --help": ["-m", "ovbench", "--help"]}
    cases.update({f"ovbench {name} --help": ["-m", "ovbench", name, "--help"] for name in COMMANDS})
    for label, words in cases.items():
        print(f"{label:38s} {fastest([sys.executable, *words], repeats):6.3f} s", flush=True)


if __name__ == "__main__":
    main()
