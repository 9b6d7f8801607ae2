"""Random-init GKC checkpoints for speed benchmarks: timing does not depend on the weights,
and the file goes through the same loading path as a trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from ovbench.models.gkc.adapter import GKC
from ovbench.models.gkc.checkpoint import save_checkpoint
from ovbench.models.gkc.network import GKCNetwork

from ovbench.modelargs import parse_model_args


def random_gkc_checkpoint(config_id: str, folder: Path) -> Path:
    """A checkpoint of `config_id` with random network and (stored) random text tower."""
    trainer = GKC(parse_model_args(GKC.Args, f"config={config_id},clip_pretrained=none"), torch.device("cpu"))
    clip, info = trainer.load_clip()
    # the CLIP trunk initialises a CLIP backbone; any other stays random (no ImageNet file needed)
    network = GKCNetwork(trainer.config, clip if trainer.config.backbone == "clip" else None)
    return save_checkpoint(folder / f"{config_id}.safetensors", network, clip, info, steps=0)
