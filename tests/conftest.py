"""Test-wide settings: never touch the network or the user's cache."""

import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OVBENCH_CACHE", tempfile.mkdtemp(prefix="ovbench-test-cache-"))
os.environ.pop("OVBENCH_DATA_ROOT", None)
sys.path.insert(0, str(Path(__file__).parent))  # so `--plugin toy_adapters` resolves
