"""Joining a torchrun job: the backend follows the device the process uses, not the machine."""

import pytest
import torch
import torch.distributed as dist

from ovbench.errors import ConfigError
from ovbench.run import distributed as devices


@pytest.fixture
def torchrun_env(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    joined = []
    monkeypatch.setattr(dist, "is_initialized", lambda: bool(joined))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: joined.append(backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    return joined


def test_a_cpu_process_joins_with_gloo_even_on_a_gpu_node(torchrun_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU node
    assert devices.join(torch.device("cpu")) == devices.Launch(rank=1, world=2, local_rank=1)
    assert torchrun_env == ["gloo"]


def test_a_cuda_process_joins_with_nccl_on_its_own_gpu(torchrun_env, monkeypatch):
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    devices.join(torch.device("cuda:1"))
    assert torchrun_env == ["nccl"] and current == [torch.device("cuda:1")]


def test_auto_means_the_local_ranks_gpu_under_torchrun(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    launch = devices.Launch(rank=3, world=4, local_rank=1)
    assert devices.process_device("auto", launch) == torch.device("cuda:1")
    assert devices.process_device("cpu", launch) == torch.device("cpu")
    assert devices.process_device("auto", None) == torch.device("cuda")


def test_outside_torchrun_nothing_is_joined(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert devices.join(torch.device("cpu")) is None


@pytest.mark.parametrize("spec", ["cuda:7", "tpu", "cuda" if not torch.cuda.is_available() else "cuda:99"])
def test_a_bad_device_is_one_line(spec):
    with pytest.raises(ConfigError, match="--device"):
        devices.resolve_device(spec)
