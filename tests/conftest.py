"""Test-wide settings: never touch the network or the user's cache."""

import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OVBENCH_CACHE", tempfile.mkdtemp(prefix="ovbench-test-cache-"))
os.environ.pop("OVBENCH_DATA_ROOT", None)
sys.path.insert(0, str(Path(__file__).parent))  # so `--plugin toy_adapters` resolves


def pytest_collection_modifyitems(items):
    """Every test that skips without CUDA is a `gpu` test, so `pytest -m gpu` on a GPU machine
    runs exactly the CUDA checks (benchmarks/gpu_check.sh does)."""
    import pytest

    for item in items:
        on_cuda = getattr(item, "callspec", None) is not None and item.callspec.params.get("device") == "cuda"
        if on_cuda or any(mark.kwargs.get("reason") == "needs CUDA" for mark in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.gpu)
