"""CAT-Seg variants as data: `configs/<id>.json` holds the network's sizes (the CLIP tower in
open_clip's config layout, the guidance taps, the aggregator), the checkpoint file the authors
publish for it and where, the licences and the paper's published numbers, so `ovbench ls
models -v` can list them and a new size needs no code. The variant of a checkpoint is read off
its tensor shapes (`detect_variant`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ovbench.api import ModelVariant
from ovbench.errors import ConfigError
from ovbench.resolve import builtin_names, resolve

CONFIG_DIR = Path(__file__).with_name("configs")
AGGREGATOR_KEYS = (
    "hidden_dim", "text_guidance_proj_dim", "appearance_guidance_proj_dim", "decoder_dims",
    "decoder_guidance_dims", "decoder_guidance_proj_dims", "num_layers", "num_heads", "window_size", "pad_len",
)
CLIP_PREFIX = "sem_seg_head.predictor.clip_model."


@dataclasses.dataclass(frozen=True)
class CATSegConfig:
    id: str
    description: str
    clip: Mapping[str, Any]  # open_clip's CLIP(embed_dim, vision_cfg, text_cfg), built with QuickGELU
    clip_resolution: int  # side of every view fed to CLIP
    guidance_layers: tuple[int, int]  # ViT blocks whose outputs guide the decoder
    aggregator: Mapping[str, Any]
    checkpoint: Mapping[str, str] | None  # {"file", "host"}: what the authors publish
    licence: Mapping[str, str]
    published: Mapping[str, Any] | None

    def __post_init__(self) -> None:
        vision = self.clip["vision_cfg"]
        if self.clip_resolution % vision["patch_size"]:
            raise ConfigError(f"CAT-Seg config {self.id!r}: clip_resolution must be a multiple of the patch size")
        window = self.aggregator["window_size"]
        if self.grid % window or self.grid <= window:
            raise ConfigError(f"CAT-Seg config {self.id!r}: the {self.grid}-token grid must hold several whole windows of {window}")
        if not all(0 <= layer < vision["layers"] - 1 for layer in self.guidance_layers):
            raise ConfigError(f"CAT-Seg config {self.id!r}: guidance_layers must be ViT blocks before the last")
        missing = [key for key in AGGREGATOR_KEYS if key not in self.aggregator]
        if missing:
            raise ConfigError(f"CAT-Seg config {self.id!r}: aggregator lacks {', '.join(missing)}")

    @property
    def grid(self) -> int:
        """Tokens per side of CLIP's dense features (24 for both published variants)."""
        return self.clip_resolution // self.clip["vision_cfg"]["patch_size"]

    def published_file(self) -> str:
        """Where the authors publish this variant's checkpoint, in words."""
        if self.checkpoint is None:
            return f"the {self.id} variant has no published checkpoint (random init only: checkpoint=none)"
        return f"the authors publish {self.checkpoint['file']} at {self.checkpoint['host']}"

    def variant(self) -> ModelVariant:
        """This config as `ovbench ls models -v` lists it (file, host, licences, published numbers)."""
        published = self.published or {}
        return ModelVariant(
            id=self.id, description=self.description,
            checkpoint_file=self.checkpoint["file"] if self.checkpoint else None,
            checkpoint_host=self.checkpoint["host"] if self.checkpoint else None,
            code_licence=self.licence["code"], weights_licence=self.licence["weights"],
            published=dict(published.get("results", {})), metric=published.get("metric", "mIoU"),
            published_source=published.get("source"),
        )

    def signature(self) -> dict[str, tuple[int, ...]]:
        """Shapes of a few checkpoint tensors that tell the variants apart."""
        vision, text = self.clip["vision_cfg"], self.clip["text_cfg"]
        tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
        return {
            CLIP_PREFIX + "visual.conv1.weight": (vision["width"], 3, vision["patch_size"], vision["patch_size"]),
            CLIP_PREFIX + "visual.positional_embedding": (tokens, vision["width"]),
            CLIP_PREFIX + "text_projection": (text["width"], self.clip["embed_dim"]),
            "sem_seg_head.predictor.transformer.conv1.weight": (self.aggregator["hidden_dim"], 1, 7, 7),
        }


def load_config(name: str) -> CATSegConfig:
    """A shipped variant id (vit-b16, vit-l14-336, tiny) or the path of a json file."""
    path = resolve(name, CONFIG_DIR, ".json", "CAT-Seg config")
    fields = {f.name for f in dataclasses.fields(CATSegConfig)} - {"id"}
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError:
        values = None  # reported below, as any other malformed config
    if not isinstance(values, dict) or set(values) != fields:
        raise ConfigError(f"CAT-Seg config {path} must be a JSON object with exactly the keys {', '.join(sorted(fields))}")
    return CATSegConfig(id=path.stem, **{**values, "guidance_layers": tuple(values["guidance_layers"])})


def shipped_configs() -> list[CATSegConfig]:
    return [load_config(name) for name in builtin_names(CONFIG_DIR, ".json")]


def detect_variant(state: Mapping[str, torch.Tensor], source: Path) -> CATSegConfig:
    """The shipped variant whose tensor shapes the checkpoint has, or one line saying none fits."""
    for config in shipped_configs():
        if all(key in state and tuple(state[key].shape) == shape for key, shape in config.signature().items()):
            return config
    known = ", ".join(config.id for config in shipped_configs())
    raise ConfigError(
        f"CAT-Seg checkpoint {source}: its tensor shapes match no CAT-Seg variant ({known});"
        " pass config=<variant or json> if it is a new size"
    )
