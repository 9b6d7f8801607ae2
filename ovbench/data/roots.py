"""Which data a command reads and what its records call it: one resolution for the CLI and the
Python API, so both read the same root, print the same banner on the built-in sample and
refuse the same way when a split needs data the sample does not have."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ovbench.data.kinds import KINDS, detect_kind
from ovbench.data.synthetic.sample import SAMPLE, SYNTHETIC_NAME, is_current_sample, is_synthetic, sample_root
from ovbench.data.synthetic.scenes import STAMP_FILE
from ovbench.errors import ConfigError

SAMPLE_KIND = "vspw"  # the built-in sample's layout


@dataclass(frozen=True)
class DataRoot:
    path: Path
    name: str  # what records call the data (`dataset_name`)
    on_sample: bool  # the built-in synthetic sample (adapters may fill in their sample weights)


def dataset_name(root: str | Path) -> str:
    """The data set a record names: its kind ("vspw", "vipseg", "coco", ...) for real data,
    "vspw-synthetic" for the built-in sample, and "<kind>-synthetic-<id>" for any other
    generated set (<id> hashes its generator version and arguments), so that the leaderboard
    never puts two different sets in one table."""
    root = Path(root)
    if not is_synthetic(root):
        return detect_kind(root) or SAMPLE_KIND
    if is_current_sample(root):
        return SYNTHETIC_NAME
    try:
        kind = json.loads((root / STAMP_FILE).read_text()).get("dataset", SAMPLE_KIND)
    except (OSError, ValueError, AttributeError):
        kind = SAMPLE_KIND
    return f"{kind}-synthetic-{hashlib.sha256((root / STAMP_FILE).read_bytes()).hexdigest()[:8]}"


def resolve_data_root(data_root: str | Path | None, kind: str, announce: Callable[[str], None],
                      option: str = "--data-root") -> DataRoot:
    """`data_root`, else $OVBENCH_DATA_ROOT, else the built-in synthetic sample (made once; VSPW
    only), announced as synthetic. `option` is how the caller's user passes a root (the CLI's
    flag, or the Python argument), for the line that refuses a split the sample cannot serve."""
    root = data_root or os.environ.get("OVBENCH_DATA_ROOT")
    if root:
        path = Path(root).expanduser()
        return DataRoot(path, dataset_name(path), False)
    if kind != SAMPLE_KIND:
        title = KINDS[kind].title if kind in KINDS else kind
        raise ConfigError(f"this split reads {title} data: pass its root with {option} (the built-in sample is VSPW;"
                          f" `ovbench data synth --dataset {kind}` writes a small synthetic one)")
    path = sample_root()
    announce(
        f"*** no {option} (or OVBENCH_DATA_ROOT): using the built-in SYNTHETIC sample at {path}"
        f" ({SAMPLE['height']}x{SAMPLE['width']} frames); numbers on it say nothing about VSPW ***"
    )
    return DataRoot(path, dataset_name(path), True)
