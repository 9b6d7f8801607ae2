"""What several test modules share, in one place (test modules never import each other): a
toy run through the Python runner, a minimal valid record, and the subprocess helpers of the
scale-out tests."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import toy_adapters  # noqa: F401  (registers the toy models)

from ovbench.records.read import load_record
from ovbench.records.schema import SCHEMA_VERSION
from ovbench.run.options import RunOptions
from ovbench.run.orchestration import run
from ovbench.split import load_split

TESTS = Path(__file__).parent
COMPARED = ("metrics", "per_class", "per_video")  # what must be equal between two ways of running


def run_toy(data_root: Path, out: Path, split: str = "vspw_all", **overrides):
    """`toy-colour` on `split` through the Python runner, on the CPU without workers;
    `overrides` are RunOptions fields (a misspelt one is a TypeError, never silently ignored)."""
    options = RunOptions(model="toy-colour", split=load_split(split), data_root=data_root, dataset_name="vspw-synthetic",
                         out_dir=out, device="cpu", workers=0, progress=False)
    return run(dataclasses.replace(options, **overrides), log=lambda message: None)


def minimal_record(**metrics):
    """The smallest record `validate_record` accepts (a score record of one video)."""
    return {
        "schema_version": SCHEMA_VERSION, "ovbench_version": "0", "kind": "score", "created": "2026-01-01T00:00:00+00:00",
        "git": None, "model": {"id": "m/x"}, "split": {"name": "vspw_all", "protocol": "vspw", "version": 1, "hash": "sha256:0", "vocabulary_size": 124},
        "dataset": {"name": "vspw", "videos": 1, "frames": 2}, "options": {}, "metrics": metrics or {"mIoU": 0.5},
        "per_class": {"wall": {"iou": None, "acc": None, "gt_pixels": 0}}, "per_video": {}, "timing": None, "env": {},
    }


def toy_run_words(data: Path, out: Path, split: str = "vspw_all") -> list[str]:
    """`ovbench run` of toy-colour on the CPU, as a child process runs it."""
    return ["run", "--plugin", "toy_adapters", "--model", "toy-colour", "--split", split, "--data-root", str(data),
            "--out", str(out), "--device", "cpu", "--workers", "0", "--batch-size", "2", "--no-progress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    """The environment of a child ovbench process: the toy adapters importable, one thread."""
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1", **extra}


def torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--master-port={free_port()}", "-m", "ovbench"]


def single() -> list[str]:
    return [sys.executable, "-m", "ovbench"]


def check(argv: list[str], **extra) -> None:
    done = subprocess.run(argv, env=env(**extra), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def only_record(folder: Path) -> dict:
    records = list(folder.glob("*.json"))
    assert len(records) == 1, records
    return load_record(records[0])


def assert_same(a: dict, b: dict) -> None:
    for key in COMPARED:
        assert a[key] == b[key], key
    assert a["dataset"]["frames"] == b["dataset"]["frames"] and a["dataset"]["videos"] == b["dataset"]["videos"]
