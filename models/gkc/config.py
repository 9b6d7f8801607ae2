"""GKC network configurations as data: `configs/<id>.json`, the file name being the config id
(as open_clip names its model configs), so a checkpoint can record which one built it and a
researcher can add a size without touching code."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import open_clip
from open_clip.constants import IMAGENET_MEAN, IMAGENET_STD, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from ovbench.models.clip_loading import register_tiny_configs

from ovbench.errors import ConfigError
from ovbench.resolve import resolve
from ovbench.suggest import did_you_mean

CONFIG_DIR = Path(__file__).with_name("configs")
BACKBONES = ("clip", "torchvision-resnet101")
GROUP_NORM_GROUPS = 32  # Mask2Former's GroupNorm(32, C) in the pixel decoder


@dataclasses.dataclass(frozen=True)
class Mask2FormerSizes:
    """The pixel decoder's and the masked-attention decoder's sizes (Mask2Former R50's by
    default), shared by every model built on ovbench's Mask2Former (GKC, FC-CLIP); each model's
    config adds its own fields (keyword-only) and its query count."""

    hidden_dim: int = 256
    encoder_layers: int = 6
    encoder_ffn_dim: int = 1024
    deform_heads: int = 8
    deform_points: int = 4
    decoder_layers: int = 9
    decoder_heads: int = 8
    decoder_ffn_dim: int = 2048
    mask_dim: int = 256


@dataclasses.dataclass(frozen=True, kw_only=True)
class GKCConfig(Mask2FormerSizes):
    """Sizes of one GKC network. Defaults are the paper's (CLIP RN50, Mask2Former R50 sizes).

    The pixel decoder's deformable encoder always reads the stride 8/16/32 features (3 levels)
    and the transformer decoder cycles over the same 3 scales, as in Mask2Former;
    `decoder_layers` counts transformer layers (9 layers give 10 predictions: one from the
    initial queries and one after each layer)."""

    id: str
    clip_arch: str = "RN50"  # the frozen text tower (and, with backbone "clip", the trunk's weights)
    backbone: str = "clip"  # "clip": the CLIP ResNet trunk; "torchvision-resnet101": ImageNet R-101
    frozen_backbone_bn: bool = True  # detectron2's FrozenBN; off for random-init tiny trunks
    num_queries: int = 100

    def __post_init__(self) -> None:
        register_tiny_configs()
        if self.clip_arch not in open_clip.list_models():
            raise ConfigError(
                f"GKC config {self.id!r}: unknown CLIP architecture {self.clip_arch!r}"
                f"{did_you_mean(self.clip_arch, open_clip.list_models())}"
            )
        if self.backbone not in BACKBONES:
            raise ConfigError(f"GKC config {self.id!r}: backbone {self.backbone!r}: choose {', '.join(BACKBONES)}")
        if self.backbone == "clip" and not isinstance(self._clip_cfg()["vision_cfg"].get("layers"), (list, tuple)):
            raise ConfigError(f"GKC config {self.id!r}: {self.clip_arch} is not a CLIP ResNet (GKC's backbone is one)")
        for name in ("hidden_dim", "deform_heads", "decoder_heads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"GKC config {self.id!r}: {name} must be positive")
        if self.hidden_dim % GROUP_NORM_GROUPS:
            raise ConfigError(f"GKC config {self.id!r}: hidden_dim must be a multiple of {GROUP_NORM_GROUPS}")
        for heads in ("deform_heads", "decoder_heads"):
            if self.hidden_dim % getattr(self, heads):
                raise ConfigError(f"GKC config {self.id!r}: hidden_dim must be divisible by {heads}")

    def _clip_cfg(self) -> dict[str, Any]:
        return open_clip.get_model_config(self.clip_arch)

    @property
    def text_dim(self) -> int:
        """Width of the CLIP joint embedding space the classifier projects into."""
        return int(self._clip_cfg()["embed_dim"])

    @property
    def pixel_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) of RGB in 0..1 that the backbone's pretrained weights expect."""
        if self.backbone == "clip":
            return tuple(OPENAI_DATASET_MEAN), tuple(OPENAI_DATASET_STD)
        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)

    @property
    def image_backbone(self) -> str:
        """The image backbone as run records and tables name it: a CLIP trunk by its CLIP
        architecture (as the CLIP baselines name theirs), the ImageNet one by its network. The
        CLIP text tower (`clip_arch`) is the classifier, a separate part of the model."""
        return self.clip_arch if self.backbone == "clip" else "ResNet-101 (torchvision)"

    @property
    def backbone_layers(self) -> list[int]:
        return list(self._clip_cfg()["vision_cfg"]["layers"])

    @property
    def backbone_width(self) -> int:
        return int(self._clip_cfg()["vision_cfg"].get("width", 64))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str) -> GKCConfig:
        refuse_unknown_fields(cls, values, where, "GKC config")
        return cls(**values)


def refuse_unknown_fields(cls: type, values: dict[str, Any], where: str, what: str) -> None:
    """One line naming the first key of a config file that is no field of its dataclass."""
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{where}: unknown {what} key {key!r}{did_you_mean(key, known)}")


def read_config_file(name: str, folder: Path, what: str) -> tuple[Path, dict[str, Any]]:
    """A shipped config id (a json file in `folder`) or a researcher's json file -> (its path,
    its object with "id" set to the file's stem)."""
    path = resolve(name, folder, ".json", what)
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} {path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object")
    return path, {**values, "id": path.stem}


def load_config(name: str) -> GKCConfig:
    """A shipped config id ("gkc-r50", "gkc-tiny") or the path of a researcher's json file."""
    path, values = read_config_file(name, CONFIG_DIR, "GKC config")
    return GKCConfig.from_dict(values, str(path))
