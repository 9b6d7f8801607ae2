"""What `ovbench run` (and `ovbench.evaluate`) is asked to do: the options of one run, checked
on construction so that a bad value from Python is refused by name as the CLI refuses it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ovbench.errors import ConfigError
from ovbench.run.temporal import TCRequest
from ovbench.split import Split

# option -> (smallest allowed value, whether None is allowed)
_BOUNDS = {"batch_size": (1, False), "workers": (0, False), "limit_videos": (1, True), "max_model_failures": (1, False)}


@dataclasses.dataclass
class RunOptions:
    model: str
    split: Split
    data_root: Path
    dataset_name: str  # see ovbench.data.synthetic.dataset_name
    out_dir: Path
    model_args: str | Mapping[str, Any] = ""  # "k=v,..." or a mapping
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 4
    workers: int = 2
    limit_videos: int | None = None
    save_predictions: str | None = None  # None, "png" or "rle"
    strict: bool = False
    overwrite: bool = False
    min_video_frames: int | None = None  # None: the VC convention's own (0 official, 16 cffm)
    convention: str = "vspw"
    vc_convention: str = "official"  # or "cffm" (ovbench.metrics.accumulator.VideoSegMetrics)
    tc: bool = False  # also compute TC (flow-warped temporal consistency)
    tc_weights: str | None = None  # a raft_large state dict, or "none" (random flow weights)
    tc_subset: str = "all"  # or "official100"
    shard: tuple[int, int] = (0, 1)  # (index, count) of this process among all that share the run
    progress: bool = True
    command: list[str] | None = None  # the command line, for the record (None: called from Python)
    max_model_failures: int = 3  # consecutive videos the model fails on before the run stops

    def __post_init__(self) -> None:
        for name, (low, optional) in _BOUNDS.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}={value!r}: must be an integer >= {low}" + (" or None" if optional else ""))

    def tc_request(self) -> TCRequest:
        return TCRequest(self.tc, self.tc_weights, self.tc_subset)
