"""The built-in sample: a synthetic VSPW set made once in the cache, what a command reads when no data root is given."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ovbench.data.synthetic.scenes import STAMP_FILE, generator_stamp
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.locks import held
from ovbench.resolve import cache_root

# Size of the built-in sample: 8 train videos (about 145 frames) a tiny model learns on 2 CPU
# cores in minutes, and 8 val videos (132 frames) it is scored on in seconds.
SAMPLE = dict(videos=16, height=120, width=214, seed=0)


SAMPLE_DIRNAME = "vspw_synthetic_sample"


SYNTHETIC_NAME = "vspw-synthetic"


def is_synthetic(root: str | Path) -> bool:
    """Whether `root` was written by this generator (any version)."""
    return (Path(root) / STAMP_FILE).is_file()


def is_current_sample(root: Path) -> bool:
    try:
        return json.loads((root / STAMP_FILE).read_text()) == generator_stamp(**{"frames": None, **SAMPLE})
    except (OSError, ValueError):
        return False


def sample_root() -> Path:
    """The built-in sample where ovbench keeps it ($OVBENCH_CACHE/sample), made on first use:
    what `ovbench run` without --data-root, `ovbench.evaluate` and the tests read."""
    return ensure_sample(cache_root() / "sample")


def ensure_sample(cache_dir: str | Path) -> Path:
    """Return the root of the built-in sample under `cache_dir`, generating it if it is absent
    or was made by another generator version. Generation happens once, under a file lock (the
    ranks of a torchrun job all arrive here: the others wait, then find it made), in a temporary
    folder that is renamed into place, so a reader never sees half a sample."""
    cache_dir = Path(cache_dir)
    root = cache_dir / SAMPLE_DIRNAME
    if is_current_sample(root):
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    with held(cache_dir / f".{SAMPLE_DIRNAME}.lock"):
        if not is_current_sample(root):  # else another process made it while this one waited
            _generate_sample(cache_dir, root)
    return root


def _generate_sample(cache_dir: Path, root: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{SAMPLE_DIRNAME}-", dir=cache_dir))
    try:
        write_synthetic_vspw(tmp, **SAMPLE)
        if root.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{SAMPLE_DIRNAME}-stale-", dir=cache_dir))
            root.rename(stale / "old")
            shutil.rmtree(stale)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
