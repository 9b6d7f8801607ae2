"""Which shipped variant a checkpoint is, read off its tensor shapes: each variant's network is
built on the meta device (no memory, no weights) and the first whose head shapes all match the
file's wins, so `checkpoint=fcclip_cocopan.pth` alone picks ConvNeXt-L."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from ovbench.models.clip_loading import RANDOM_INIT, create_clip
from ovbench.models.fc_clip.checkpoint import CLIP_PREFIX, mismatches
from ovbench.models.fc_clip.config import FCCLIPConfig, load_config, shipped_configs
from ovbench.models.fc_clip.network import FCCLIPNetwork

from ovbench.errors import ConfigError


@functools.cache
def meta_network(variant: str) -> FCCLIPNetwork:
    """The shipped variant's network with meta tensors: shapes only."""
    config = load_config(variant)
    with torch.device("meta"):
        clip, _ = create_clip(config.clip_arch, RANDOM_INIT, "meta")
        return FCCLIPNetwork(config, clip)


def detect_config(state: dict[str, torch.Tensor], path: Path) -> FCCLIPConfig:
    """The shipped variant whose network fits the (renamed) state, or one line saying none does."""
    head = {key: value for key, value in state.items() if not key.startswith(CLIP_PREFIX)}
    for config in shipped_configs():
        missing, wrong = mismatches(meta_network(config.id), head)
        if not missing and not wrong:
            return config
    raise ConfigError(
        f"FC-CLIP checkpoint {path} fits none of the shipped variants"
        f" ({', '.join(c.id for c in shipped_configs())}); pass config= to see which keys differ"
    )
