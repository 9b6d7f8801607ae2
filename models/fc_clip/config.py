"""FC-CLIP variants as data: `configs/<id>.json`, the file name being the variant id. Each file
holds the network's sizes and inference protocol (the numbers FC-CLIP's eval configs set) and
what a user needs to find and cite the released weights: the checkpoint's file name and host,
the licences, and the paper's published numbers with their source, so `ovbench ls models -v`
can list them without the code knowing any variant."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import open_clip
from ovbench.models.clip_loading import register_tiny_configs
from ovbench.models.gkc.config import GROUP_NORM_GROUPS, Mask2FormerSizes, read_config_file, refuse_unknown_fields

from ovbench.api import ModelVariant
from ovbench.errors import ConfigError
from ovbench.suggest import did_you_mean

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FCCLIPConfig(Mask2FormerSizes):
    """One FC-CLIP variant. Defaults are the released models' (Mask2Former R50 head sizes,
    250 queries, 9 decoder layers, ensemble alpha 0.4 / beta 0.8, detectron2's test resize)."""

    id: str
    clip_arch: str  # the open_clip architecture of both CLIP towers
    clip_pretrained: str  # the open_clip tag the released checkpoint was trained on
    pixel_mean: tuple[float, float, float] = (122.7709383, 116.7460125, 104.09373615)  # RGB, 0..255
    pixel_std: tuple[float, float, float] = (68.5005327, 66.6321579, 70.32316305)
    num_queries: int = 250
    ensemble_alpha: float = 0.4  # weight of the CLIP (out-of-vocabulary) branch for seen classes
    ensemble_beta: float = 0.8  # ... and for unseen classes
    ensemble_on_valid_mask: bool = False  # ResNet CLIPs: no CLIP branch for queries with empty masks
    test_short_side: int = 800  # detectron2's ResizeShortestEdge(800, max 1333) at test time
    test_max_side: int = 1333
    checkpoint: dict[str, str] | None = None  # {"file", "host"} of the released weights
    licence: dict[str, str] | None = None  # {"code", "weights"}
    published: dict[str, Any] | None = None  # {"source", "numbers": {benchmark: value}}

    def variant(self) -> ModelVariant:
        """This config as `ovbench ls models -v` lists it (the mIoU of each published benchmark)."""
        if self.checkpoint is None:
            return ModelVariant(id=self.id, description=f"random-init test model on FC-CLIP's code paths ({self.clip_arch})",
                                code_licence="Apache-2.0 (ovbench)", weights_licence="none (random init)")
        numbers = (self.published or {}).get("numbers", {})
        return ModelVariant(
            id=self.id, description=f"Yu et al., NeurIPS 2023, CLIP {self.clip_arch} / {self.clip_pretrained}",
            checkpoint_file=self.checkpoint["file"], checkpoint_host=self.checkpoint["host"],
            code_licence=(self.licence or {}).get("code"), weights_licence=(self.licence or {}).get("weights"),
            published={_BENCHMARKS.get(name.split()[0], name.split()[0]): _miou(value) for name, value in numbers.items()
                       if "mIoU" in name},
            metric="mIoU", published_source=(self.published or {}).get("source"),
        )

    def __post_init__(self) -> None:
        register_tiny_configs()
        if self.clip_arch not in open_clip.list_models():
            raise ConfigError(
                f"FC-CLIP config {self.id!r}: unknown CLIP architecture {self.clip_arch!r}"
                f"{did_you_mean(self.clip_arch, open_clip.list_models())}"
            )
        if self.hidden_dim % GROUP_NORM_GROUPS or self.hidden_dim % self.deform_heads or self.hidden_dim % self.decoder_heads:
            raise ConfigError(
                f"FC-CLIP config {self.id!r}: hidden_dim must be a multiple of {GROUP_NORM_GROUPS} and of both head counts"
            )

    @property
    def is_convnext(self) -> bool:
        """ConvNeXt CLIPs (a timm trunk) pool the CLIP branch before the head; ResNet CLIPs
        pool inside the attention pool."""
        return "timm_model_name" in open_clip.get_model_config(self.clip_arch)["vision_cfg"]

    def protocol(self) -> dict[str, Any]:
        """The inference protocol, for the run record: two protocols are never one row."""
        return {
            "queries": self.num_queries,
            "ensemble_alpha": self.ensemble_alpha,
            "ensemble_beta": self.ensemble_beta,
            "ensemble_on_valid_mask": self.ensemble_on_valid_mask,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str) -> FCCLIPConfig:
        refuse_unknown_fields(cls, values, where, "FC-CLIP config")
        for key in ("pixel_mean", "pixel_std"):
            if key in values:
                values = {**values, key: tuple(values[key])}
        return cls(**values)


# the benchmark names of the authors' table -> the short names every zoo variant lists
_BENCHMARKS = {"ADE20K-150": "A-150", "ADE20K-847": "A-847", "Mapillary": "MV"}


def _miou(value: float | str) -> float:
    """A table cell: the mIoU, or the last of "PQ/AP/mIoU"."""
    return float(str(value).split("/")[-1])


def load_config(name: str) -> FCCLIPConfig:
    """A shipped variant id ("convnext-large", "rn50", "tiny") or a researcher's json file."""
    path, values = read_config_file(name, CONFIG_DIR, "FC-CLIP config")
    return FCCLIPConfig.from_dict(values, str(path))


def shipped_configs() -> list[FCCLIPConfig]:
    """Every variant shipped with ovbench, for listing and for reading a checkpoint's variant."""
    return [load_config(path.stem) for path in sorted(CONFIG_DIR.glob("*.json"))]
