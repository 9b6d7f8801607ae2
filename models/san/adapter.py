"""SAN (Xu et al., CVPR 2023) on the benchmark, from the authors' released checkpoints.

Test protocol (the authors' test config): each frame resized to a short side of `test_size`
(640; the long side capped at `max_size` 2560; the tiny variant's default is 64) as detectron2's ResizeShortestEdge does it (the
uint8 image through PIL, bilinear, sides rounded as int(x + 0.5)), CLIP-normalised, zero-padded to
a multiple of 32. Scores are returned at the frame's size: SAN resizes the mask logits before the
sigmoid, so resizing scores afterwards would not be SAN.

Vocabulary: the 14 ViLD templates (clip_baseline.ENSEMBLE_TEMPLATES, the strings SAN's "vild" set
holds), each prompt's embedding normalised, averaged over templates and normalised again. SAN
embeds a class name as one string and writes synonyms as "a, b" (its ADE-847 names read
"building, edifice"), so an ovbench name "handrail_or_fence" becomes "handrail, fence" (its
class_name_parts joined by ", "). The text tensor is (C, D), one normalised row per class, as the
adapter API asks (the runner's cache checks it); `predict` appends the checkpoint's background
embedding and applies CLIP's logit scale (`network.classifier`), which are weights of the model,
not of the vocabulary. Its cache key names the checkpoint (or CLIP weights) it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from ovbench.models.clip_baseline import ENSEMBLE_TEMPLATES
from ovbench.models.clip_loading import RANDOM_INIT, create_clip, encode_prompts, weights_identity
from ovbench.models.san.checkpoint import detect_config, network_state, published_files, read_state
from ovbench.models.san.config import load_config, shipped_configs
from ovbench.models.san.network import SANNetwork, meta_network, semantic_scores
from PIL import Image

from ovbench.api import ModelVariant, SegmentationModel, WeightsInfo, class_name_parts
from ovbench.errors import ConfigError
from ovbench.fileio import file_sha256
from ovbench.modelargs import ModelArgs, PositiveInt
from ovbench.registry import register_model

TEXT_FORMAT = "san-classifier-v2"  # bumped when the text tensor's layout or name mapping changes
RANDOM_SEED = 0


def san_class_name(name: str) -> str:
    """An ovbench name in SAN's form: synonyms joined by ', '."""
    return ", ".join(class_name_parts(name))


def resized_size(height: int, width: int, short: int, longest: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge output size (h, w)."""
    scale = short / min(height, width)
    new_h, new_w = (short, scale * width) if height < width else (scale * height, short)
    if max(new_h, new_w) > longest:
        cap = longest / max(new_h, new_w)
        new_h, new_w = new_h * cap, new_w * cap
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_like_detectron2(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, h, w): each frame through PIL's bilinear resize."""
    if tuple(frames.shape[-2:]) == size:
        return frames.float()
    images = frames.permute(0, 2, 3, 1).cpu().numpy()
    resized = [np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)) for image in images]
    return torch.from_numpy(np.stack(resized)).to(frames.device).permute(0, 3, 1, 2).float()


@dataclasses.dataclass
class SANArgs(ModelArgs):
    checkpoint: str = ""  # the authors' .pth (or a .safetensors of it), or "none" for a seeded random init
    config: str | None = None  # vit-b16, vit-l14-336, tiny or a json path; default: read off the checkpoint
    clip_pretrained: str = "openai"  # CLIP weights for what the checkpoint lacks (an open_clip tag or a file)
    test_size: PositiveInt | None = None  # short side at test time; default: the variant's (the authors' 640)
    max_size: PositiveInt | None = None  # long-side cap; default: the variant's (the authors' 2560)


@register_model("san")
class SAN(SegmentationModel):
    """SAN: a side adapter network proposes masks and attention biases; frozen CLIP recognises them."""

    Args = SANArgs

    def __init__(self, args: SANArgs, device: torch.device):
        super().__init__(args, device)
        self._clip_identity: str | None = None
        if not args.checkpoint:
            raise ConfigError(f"san needs checkpoint=<file>: the authors publish {published_files()}; or checkpoint=none for random weights")
        if args.checkpoint.lower() == RANDOM_INIT:
            self.config = load_config(args.config or "tiny")
            self.network, self._weights = self._random_network()
        else:
            self.network, self._weights = self._load(Path(args.checkpoint).expanduser())
        self.network.to(device).eval()
        # the record carries the variant and the test sizes that ran, also when they were defaults
        self.args = dataclasses.replace(args, config=args.config or self.config.id, test_size=args.test_size or self.config.test_size,
                                        max_size=args.max_size or self.config.max_size)
        self.tokenizer = open_clip.get_tokenizer(self.config.clip_arch)
        self._mean = torch.tensor(OPENAI_DATASET_MEAN, device=device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(OPENAI_DATASET_STD, device=device).view(1, 3, 1, 1) * 255

    def _build(self, clip_pretrained: str) -> tuple[SANNetwork, WeightsInfo]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            clip, info = create_clip(self.config.clip_arch, clip_pretrained)
            clip = self._quick_gelu(clip)
            return SANNetwork(self.config, clip), info

    def _quick_gelu(self, clip: torch.nn.Module) -> torch.nn.Module:
        """SAN's CLIP is QuickGELU (open_clip's openai loader builds it); the -quickgelu archs are,
        and any other arch (the tiny one) is rebuilt with force_quick_gelu keeping its weights."""
        if open_clip.get_model_config(self.config.clip_arch).get("quick_gelu"):
            return clip
        quick = open_clip.create_model(self.config.clip_arch, pretrained=None, force_quick_gelu=True)
        quick.load_state_dict(clip.state_dict())
        return quick.eval()

    def _random_network(self) -> tuple[SANNetwork, WeightsInfo]:
        network, _ = self._build(RANDOM_INIT)
        self._clip_identity = f"random-init:seed{RANDOM_SEED}:torch{torch.__version__}:open_clip{open_clip.__version__}"
        return network, WeightsInfo(source=RANDOM_INIT, random_init=True, backbone=self.config.clip_arch)

    def _load(self, path: Path) -> tuple[SANNetwork, WeightsInfo]:
        if not path.is_file():
            raise ConfigError(f"SAN checkpoint {path} not found; the authors publish {published_files()}")
        state = read_state(path)
        self.config = load_config(self.args.config) if self.args.config else detect_config(state, path)
        expected = meta_network(self.config).state_dict()
        renamed = network_state(state, self.config, expected, path)
        lacks_clip = [key for key in expected if key not in renamed]
        if lacks_clip and self.args.clip_pretrained.lower() == RANDOM_INIT:
            raise ConfigError(f"SAN checkpoint {path} lacks CLIP weights ({lacks_clip[0]}, {len(lacks_clip)} in all):"
                              f" pass clip_pretrained=<open_clip tag or file> (the authors' CLIP is openai), not none")
        network, clip_info = self._build(self.args.clip_pretrained if lacks_clip else RANDOM_INIT)
        network.load_state_dict(renamed, strict=not lacks_clip)
        sha256 = file_sha256(path)
        self._clip_identity = f"sha256:{sha256}" + (f"+clip:{weights_identity(clip_info)}" if lacks_clip else "")
        return network, WeightsInfo(source=str(path), sha256=sha256, backbone=self.config.clip_arch)

    def weights(self) -> WeightsInfo:
        return self._weights

    @torch.no_grad()
    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        prompts = [template.format(san_class_name(name)) for name in names for template in ENSEMBLE_TEMPLATES]
        embeddings = encode_prompts(self.network.clip, self.tokenizer, prompts).view(len(names), len(ENSEMBLE_TEMPLATES), -1)
        return F.normalize(embeddings.mean(dim=1), dim=-1)

    def text_cache_key(self) -> str | None:
        templates = hashlib.sha256("\n".join(ENSEMBLE_TEMPLATES).encode()).hexdigest()[:16]
        return f"{TEXT_FORMAT}|{self.config.to_json()}|{self._clip_identity}|vild:{templates}"

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[-2:]
        size = resized_size(height, width, self.args.test_size, self.args.max_size)
        images = (resize_like_detectron2(frames, size) - self._mean) / self._std
        divisor = self.config.size_divisibility
        padded = (-(-size[0] // divisor) * divisor, -(-size[1] // divisor) * divisor)
        images = F.pad(images, (0, padded[1] - size[1], 0, padded[0] - size[0]))
        masks, embeddings = self.network(images)
        classes = torch.einsum("bqd,cd->bqc", embeddings, self.network.classifier(text.to(embeddings)))
        return torch.cat([semantic_scores(masks[i : i + 1], classes[i : i + 1], padded, size, (height, width))
                          for i in range(frames.shape[0])])

    @classmethod
    def variants(cls) -> list[ModelVariant]:
        """The shipped variants with the file, host, licences and published numbers of each."""
        return [config.variant() for config in shipped_configs()]
