"""SAN network configurations as data: `configs/<id>.json`, the file name being the variant id
(`vit-b16`, `vit-l14-336`, `tiny`), so a checkpoint's variant can be named, detected from its
tensor shapes, and listed with the file the authors publish, its licences and the paper's numbers."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import open_clip
from ovbench.models.clip_loading import register_tiny_configs
from ovbench.models.gkc.config import read_config_file, refuse_unknown_fields

from ovbench.api import ModelVariant
from ovbench.errors import ConfigError
from ovbench.suggest import did_you_mean

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclasses.dataclass(frozen=True)
class SANConfig:
    """Sizes of one SAN network; the defaults are the paper's ViT-B/16 model.

    `fusion_map` maps a side-adapter block index (0 = before the first block) to the CLIP layer
    whose tokens are added there (0 = after ln_pre). CLIP runs `feature_last_layer` blocks on
    the image; its remaining blocks form the recognition head. `release` holds what the authors
    published for the variant (file, host, licences, numbers); random-init variants have none."""

    id: str
    clip_arch: str = "ViT-B-16-quickgelu"
    clip_resolution: float = 0.5  # CLIP sees the padded image scaled by this; the side adapter the full one
    feature_last_layer: int = 9
    fusion_map: dict[str, int] = dataclasses.field(default_factory=lambda: {"0": 0, "1": 3, "2": 6, "3": 9})
    side_width: int = 240
    side_depth: int = 8
    side_heads: int = 6
    side_patch: int = 16
    side_image_size: int = 640  # the side ViT's position-embedding grid is side_image_size / side_patch
    num_queries: int = 100
    attn_bias_heads: int = 12  # the CLIP heads, or 1 (one bias shared by all heads)
    mask_embed_dim: int = 256
    mask_mlp_dim: int = 256
    mask_mlp_layers: int = 3
    size_divisibility: int = 32
    test_size: int = 640  # the short side at test time (the authors' MIN_SIZE_TEST)
    max_size: int = 2560  # the long-side cap (MAX_SIZE_TEST)
    release: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        register_tiny_configs()
        if self.clip_arch not in open_clip.list_models():
            raise ConfigError(f"SAN config {self.id!r}: unknown CLIP architecture {self.clip_arch!r}"
                              f"{did_you_mean(self.clip_arch, open_clip.list_models())}")
        vision = self.clip_vision
        if not isinstance(vision.get("layers"), int):
            raise ConfigError(f"SAN config {self.id!r}: {self.clip_arch} is not a CLIP ViT (SAN's recognition head is one)")
        if not 0 < self.feature_last_layer < vision["layers"]:
            raise ConfigError(f"SAN config {self.id!r}: feature_last_layer must be in 1..{vision['layers'] - 1}")
        for block, layer in self.fusion_map.items():
            if not (block.isdigit() and int(block) <= self.side_depth and 0 <= layer <= self.feature_last_layer):
                raise ConfigError(f"SAN config {self.id!r}: fusion_map entry {block}->{layer} is outside the networks")
        if self.attn_bias_heads not in (1, self.clip_heads):
            raise ConfigError(f"SAN config {self.id!r}: attn_bias_heads must be 1 or CLIP's {self.clip_heads} heads")
        if self.side_width % self.side_heads:
            raise ConfigError(f"SAN config {self.id!r}: side_width must be divisible by side_heads")

    @property
    def clip_vision(self) -> dict[str, Any]:
        return open_clip.get_model_config(self.clip_arch)["vision_cfg"]

    @property
    def clip_heads(self) -> int:
        vision = self.clip_vision
        return vision["width"] // vision.get("head_width", 64)

    @property
    def shape_signature(self) -> tuple:
        """What tells the variants apart in a checkpoint: CLIP's patch embedding, the number of
        CLIP blocks on each side of the split, and the side adapter's position embedding."""
        vision = self.clip_vision
        grid = self.side_image_size // self.side_patch
        return (vision["width"], vision["patch_size"], self.feature_last_layer,
                vision["layers"] - self.feature_last_layer, grid * grid, self.side_width)

    def variant(self) -> ModelVariant:
        """This config as `ovbench ls models -v` lists it, from `release` (random-init variants: none)."""
        if self.release is None:
            return ModelVariant(id=self.id, description=f"random-init test model on SAN's code paths ({self.clip_arch}); no published weights",
                                code_licence="Apache-2.0 (ovbench)", weights_licence="none (random init)")
        release = self.release
        return ModelVariant(
            id=self.id, description=f"{release['paper']}, {self.clip_arch}",
            checkpoint_file=release["checkpoint_file"], checkpoint_host=release["checkpoint_host"],
            code_licence=f"{release['code_licence']} ({release['code']})", weights_licence=release["weights_licence"],
            published=dict(release["published_miou"]), metric="mIoU", published_source=release["published_source"],
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def load_config(name: str) -> SANConfig:
    """A shipped variant id or the path of a researcher's json file."""
    path, values = read_config_file(name, CONFIG_DIR, "SAN config")
    refuse_unknown_fields(SANConfig, values, str(path), "SAN config")
    return SANConfig(**values)


@functools.cache
def shipped_configs() -> tuple[SANConfig, ...]:
    """Every variant in configs/, for detection and listing."""
    return tuple(load_config(path.stem) for path in sorted(CONFIG_DIR.glob("*.json")))
