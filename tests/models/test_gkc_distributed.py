"""GKC training with torchrun and 2 gloo processes is data parallel for real: after the last
step every trainable parameter (TGKD's scale s included) is bit-identical on both ranks, with
gradient clipping on (its norm includes s) and off. Real processes, as users run them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ovbench.models.gkc.checkpoint import load_checkpoint
from ovbench.models.gkc.train_step import replica_digests

pytestmark = pytest.mark.slow  # real 2-process training

TRAIN_ARGS = "iterations=3,batch_size=1,crop=48,short_min=40,short_max=64,num_points=256,workers=0,log_every=1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data_root(vspw_train) -> Path:
    return vspw_train


@pytest.mark.parametrize("grad_clip", ["0.01", "0"])
def test_two_ranks_end_bit_identical(data_root, tmp_path, grad_clip):
    out = tmp_path / "gkc"
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={free_port()}",
            "-m", "ovbench", "train", "--model", "gkc", "--model-args", "config=gkc-tiny,clip_pretrained=none",
            "--train-args", f"{TRAIN_ARGS},grad_clip={grad_clip}", "--split", "vspw_train_seen",
            "--data-root", str(data_root), "--out", str(out), "--device", "cpu"]
    done = subprocess.run(argv, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    digests = json.loads(load_checkpoint(out / "final.safetensors").metadata["replica_sha256"])
    assert len(digests) == 2 and digests[0] == digests[1]


def test_replica_digest_sees_one_bit_and_the_criterion():
    module = torch.nn.ModuleDict({"network": torch.nn.Linear(3, 2), "criterion": torch.nn.ParameterDict({"s": torch.nn.Parameter(torch.ones(()))})})
    before = replica_digests(module, world=1)
    with torch.no_grad():
        module["criterion"]["s"].copy_(torch.nextafter(torch.ones(()), torch.zeros(())))
    assert replica_digests(module, world=1) != before
