"""FC-CLIP on the benchmark, from the authors' released checkpoint file as downloaded.

`checkpoint=` the authors' file (or `none` for a random head, recorded as random init),
`clip_pretrained=` the CLIP weights for both towers (an open_clip tag or a local file; default:
the tag the variant was trained on), `config=` the variant (default: read off the checkpoint's
tensor shapes), `test_size=` the short side frames are resized to (default: FC-CLIP's test
protocol, detectron2's ResizeShortestEdge(800, max 1333)). The resolved variant, CLIP weights
and test size are written back into the arguments, so the run record holds the protocol.

Frames are resized as detectron2 does at test time, on the uint8 image through PIL (bilinear),
because resizing float frames differs by up to a grey level, which moves FC-CLIP's scores by
several percent; scores come back at the frame's own size."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import open_clip
import torch
from ovbench.models.clip_baseline import ENSEMBLE_TEMPLATES
from ovbench.models.clip_loading import RANDOM_INIT, RANDOM_SEED, create_clip, file_sha256, weights_identity
from ovbench.models.fc_clip.checkpoint import CLIP_PREFIX, checkpoint_path, load_network_state, read_state, renamed_state
from ovbench.models.fc_clip.config import FCCLIPConfig, load_config, shipped_configs
from ovbench.models.fc_clip.detect import detect_config
from ovbench.models.fc_clip.network import FCCLIPNetwork, semantic_inference
from ovbench.models.fc_clip.vocabulary import coco_vocabulary_hash, encode_classes, split_text
from PIL import Image

from ovbench.api import ModelArgs, ModelVariant, PositiveInt, SegmentationModel, WeightsInfo
from ovbench.errors import ConfigError, WeightsError
from ovbench.registry import register_model

_TEXT_FORMAT = "fcclip-text-v1"  # bumped when the text tensor's layout changes


@dataclasses.dataclass
class FCCLIPArgs(ModelArgs):
    checkpoint: str = ""  # the authors' file (fcclip_cocopan.pth, .pth or .safetensors), or "none" (random head)
    config: str | None = None  # convnext-large, rn50, tiny or a json file; default: read off the checkpoint
    clip_pretrained: str = ""  # open_clip tag, file or "none" for both CLIP towers; default: the variant's tag
    test_size: PositiveInt | None = None  # short side at test time; default: the variant's (800, long side <= 1333)


def resized_shape(height: int, width: int, short_side: int, max_side: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge output size: the short side scaled to `short_side`,
    both scaled down again if the long side would pass `max_side`, each rounded half up."""
    scale = short_side / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > max_side:
        shrink = max_side / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, *size), bilinear through PIL as detectron2 resizes."""
    if tuple(frames.shape[-2:]) == size:
        return frames
    images = frames.permute(0, 2, 3, 1).cpu().numpy()
    resized = [np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)) for image in images]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).to(frames.device)


@register_model("fc-clip")
class FCCLIP(SegmentationModel):
    """FC-CLIP (NeurIPS 2023): one frozen CLIP as backbone and out-of-vocabulary classifier,
    a Mask2Former head trained on COCO Panoptic, geometric ensemble of both classifiers."""

    Args = FCCLIPArgs

    def __init__(self, args: FCCLIPArgs, device: torch.device):
        super().__init__(args, device)
        if not args.checkpoint:
            release = load_config(args.config or "convnext-large").checkpoint or {}
            raise WeightsError(
                f"fc-clip needs checkpoint=<file>: download {release.get('file', 'the checkpoint')} from"
                f" {release.get('host', 'the authors')} (or checkpoint=none for random weights, with config=)"
            )
        random_head = args.checkpoint.lower() == RANDOM_INIT
        state, self._checkpoint = self._read_checkpoint(args, random_head)
        self._sha256 = file_sha256(self._checkpoint) if self._checkpoint else None  # of the file as loaded
        config = load_config(args.config) if args.config else detect_config(state, self._checkpoint)
        pretrained = args.clip_pretrained or config.clip_pretrained
        clip, self._clip_weights = create_clip(config.clip_arch, pretrained, "cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)  # a random head is the same every run
            network = FCCLIPNetwork(config, clip)
        if state is not None:
            load_network_state(network, state, self._checkpoint, config)
        # CLIP text weights the file holds replace clip_pretrained's, so they name the text cache too
        self._text_in_checkpoint = state is not None and any(
            key.startswith(CLIP_PREFIX) and not key.startswith(CLIP_PREFIX + "visual.") for key in state
        )
        self.config: FCCLIPConfig = config
        self.network = network.to(device).eval().requires_grad_(False)  # inference only
        self.tokenizer = open_clip.get_tokenizer(config.clip_arch)
        self._mean = torch.tensor(config.pixel_mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(config.pixel_std, device=device).view(1, 3, 1, 1)
        self.args = dataclasses.replace(
            args, config=config.id if args.config is None else args.config, clip_pretrained=pretrained,
            test_size=args.test_size or config.test_short_side,
        )

    @staticmethod
    def _read_checkpoint(args: FCCLIPArgs, random_head: bool) -> tuple[dict[str, torch.Tensor] | None, Path | None]:
        if random_head:
            if args.config is None:
                raise ConfigError("fc-clip checkpoint=none (random weights) needs config=convnext-large, rn50 or tiny")
            return None, None
        path = checkpoint_path(args.checkpoint, load_config(args.config) if args.config else None)
        return renamed_state(read_state(path)), path

    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        return encode_classes(self.network.clip, self.tokenizer, names)

    def text_cache_key(self) -> str | None:
        identity = weights_identity(self._clip_weights)
        if identity is None:
            return None
        if self._text_in_checkpoint:
            identity += f"|checkpoint:sha256:{self._sha256}"
        templates = "|".join(ENSEMBLE_TEMPLATES)
        return f"{_TEXT_FORMAT}|{self.config.clip_arch}|{identity}|vild14:{hashlib.sha256(templates.encode()).hexdigest()[:16]}|coco:{coco_vocabulary_hash()}"

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        frame_size = tuple(frames.shape[-2:])
        size = resized_shape(*frame_size, self.args.test_size, self.config.test_max_side)
        images = (resize_frames(frames, size).float() - self._mean) / self._std
        parts, owner, seen = split_text(text.to(self.device))
        log_probs, masks = self.network(images, parts, owner, seen)
        return semantic_inference(log_probs, masks, size, frame_size)

    def weights(self) -> WeightsInfo:
        clip = self._clip_weights
        return WeightsInfo(
            source=str(self._checkpoint) if self._checkpoint else RANDOM_INIT,
            sha256=self._sha256,
            random_init=self._checkpoint is None,
            backbone=self.config.clip_arch,
            text_encoder=f"{self.config.clip_arch} ({clip.source}{', sha256 ' + clip.sha256[:12] if clip.sha256 else ''})",
        )

    @classmethod
    def variants(cls) -> list[ModelVariant]:
        """Each shipped variant with its released file, licences and published numbers."""
        return [c.variant() for c in shipped_configs()]
