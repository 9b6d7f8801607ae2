"""The `cat-seg` adapter: CAT-Seg (Cho et al., "CAT-Seg: Cost Aggregation for Open-Vocabulary
Semantic Segmentation", CVPR 2024) from the authors' released checkpoints, with their
published test protocol, per frame.

The protocol (the authors' `eval.sh`: sliding window on, class-aggregation pooling 1):
1. the uint8 frame is resized through PIL (bilinear) to the short side `test_size`, rounding
   each side as detectron2's ResizeShortestEdge does (`int(side * scale + 0.5)`, the long
   side capped at 2560);
2. that image is stretched to `test_size` x `test_size` (aspect ignored), cut into `crop`-sized
   views every `stride` pixels (640/384/256: 2x2 views), plus one global view, the image
   stretched to `crop` x `crop`; every view is normalised with CLIP's mean and std and resized
   to CLIP's resolution;
3. each view's logits are resized to `crop`, passed through a sigmoid (the model is trained
   with per-class binary cross-entropy), averaged where views overlap, then averaged with the
   global view's scores resized to `test_size`;
4. the scores are resized to the frame's size, which is what `predict` returns.
Text: one template, "A photo of a {} in the scene", on the first synonym of each name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from ovbench.models.cat_seg.checkpoint import load_authors_checkpoint, read_state
from ovbench.models.cat_seg.config import detect_variant, load_config, shipped_configs
from ovbench.models.cat_seg.network import CATSegNetwork
from ovbench.models.clip_dense import window_starts
from ovbench.models.clip_loading import RANDOM_INIT, RANDOM_SEED, encode_prompts, weights_identity
from PIL import Image

from ovbench.api import ModelVariant, SegmentationModel, WeightsInfo, class_name_parts
from ovbench.errors import ConfigError
from ovbench.fileio import file_sha256
from ovbench.modelargs import ModelArgs, PositiveInt
from ovbench.registry import register_model
from ovbench.resolve import user_file

TEMPLATE = "A photo of a {} in the scene"
MAX_LONG_SIDE = 2560  # the authors' INPUT.MAX_SIZE_TEST


@dataclasses.dataclass
class CATSegArgs(ModelArgs):
    checkpoint: str = ""  # the authors' model_base.pth (ViT-B) / model_large.pth (ViT-L) or a .safetensors; none: random init
    config: str | None = None  # vit-b16, vit-l14-336, tiny or a json; default: read off the checkpoint's shapes
    test_size: PositiveInt = 640  # short side of the first resize and side of the square the views are cut from
    crop: PositiveInt = 384  # side of each sliding-window view and of the global view
    stride: PositiveInt = 256  # pixels between views
    global_view: bool = True  # average with a view of the whole image, as the authors do

    def __post_init__(self) -> None:
        if self.test_size < self.crop:
            raise ConfigError(f"model argument test_size={self.test_size}: must be at least crop={self.crop}")


def no_checkpoint_message() -> str:
    published = "; ".join(f"{c.id}: {c.published_file()}" for c in shipped_configs() if c.checkpoint)
    return f"cat-seg needs checkpoint=<the authors' file> ({published}), or checkpoint=none config=<variant> for random weights"


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge arithmetic: (new height, new width)."""
    scale = short / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > MAX_LONG_SIDE:
        new_h, new_w = new_h * MAX_LONG_SIDE / max(new_h, new_w), new_w * MAX_LONG_SIDE / max(new_h, new_w)
    return int(new_h + 0.5), int(new_w + 0.5)


def pil_resize(frame: torch.Tensor, short: int) -> torch.Tensor:
    """uint8 (3, H, W) -> float (3, h, w) with the short side `short`, through PIL as the authors."""
    height, width = frame.shape[-2:]
    new_h, new_w = short_side_size(height, width, short)
    image = Image.fromarray(frame.permute(1, 2, 0).cpu().numpy()).resize((new_w, new_h), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).to(frame.device, torch.float32)


@register_model("cat-seg")
class CATSeg(SegmentationModel):
    """CAT-Seg (CVPR 2024) ViT-B/16 or ViT-L/14-336 from the authors' checkpoint; sigmoid scores
    (B, C, H, W) at frame size under the published sliding-window protocol."""

    Args = CATSegArgs
    sample_args: ClassVar[dict[str, str]] = {"config": "tiny", "checkpoint": RANDOM_INIT}

    def __init__(self, args: CATSegArgs, device: torch.device):
        super().__init__(args, device)
        if not args.checkpoint:
            raise ConfigError(no_checkpoint_message())
        if args.checkpoint.lower() == RANDOM_INIT:
            if args.config is None:
                raise ConfigError("cat-seg checkpoint=none (random init) needs config=<variant>: vit-b16, vit-l14-336 or tiny")
            self.config, self.path = load_config(args.config), None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)  # the same random network every run
                self.network = CATSegNetwork(self.config)
        else:
            self.path = self._checkpoint_file(args)
            state = read_state(self.path)
            self.config = load_config(args.config) if args.config else detect_variant(state, self.path)
            self.network = CATSegNetwork(self.config)
            load_authors_checkpoint(self.network, state, self.path, self.config.id)
        self.network = self.network.to(device).eval()
        self.tokenizer = open_clip.SimpleTokenizer(context_length=self.config.clip["text_cfg"]["context_length"])
        self.mean = torch.tensor(OPENAI_DATASET_MEAN, device=device).view(3, 1, 1) * 255
        self.std = torch.tensor(OPENAI_DATASET_STD, device=device).view(3, 1, 1) * 255

    @classmethod
    def variants(cls) -> list[ModelVariant]:
        """The shipped configs: vit-b16 and vit-l14-336 with the authors' files, tiny for tests."""
        return [config.variant() for config in shipped_configs()]

    def _checkpoint_file(self, args: CATSegArgs) -> Path:
        path = Path(args.checkpoint).expanduser()
        if not path.is_file():
            where = load_config(args.config).published_file() if args.config else no_checkpoint_message()
            raise ConfigError(f"CAT-Seg checkpoint {path.absolute()} does not exist; {where}")
        return user_file(args.checkpoint, "CAT-Seg checkpoint", ConfigError)

    def weights(self) -> WeightsInfo:
        backbone = f"CLIP ViT of CAT-Seg {self.config.id}"
        if self.path is None:
            return WeightsInfo(source=RANDOM_INIT, random_init=True, backbone=backbone)
        return WeightsInfo(source=str(self.path), sha256=file_sha256(self.path), backbone=backbone)

    def text_cache_key(self) -> str | None:
        return f"cat-seg:{self.config.id}:{weights_identity(self.weights())}:template={TEMPLATE}:first-synonym"

    @torch.no_grad()
    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        """(C, D) L2-normalised embeddings of the template on each name's first synonym."""
        prompts = [TEMPLATE.format(class_name_parts(name)[0]) for name in names]
        return encode_prompts(self.network.clip, self.tokenizer, prompts)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.frame_scores(frame, text) for frame in frames])

    def views(self, frame: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """The normalised views of one uint8 frame at CLIP's resolution, and the crops' offsets."""
        size, crop = self.args.test_size, self.args.crop
        resized = pil_resize(frame, size)[None]
        square = F.interpolate(resized, size=(size, size), mode="bilinear", align_corners=False)
        starts = window_starts(size, crop, self.args.stride)
        offsets = [(top, left) for top in starts for left in starts]
        views = [square[..., top : top + crop, left : left + crop] for top, left in offsets]
        if self.args.global_view:
            views.append(F.interpolate(resized, size=(crop, crop), mode="bilinear", align_corners=False))
        pixels = (torch.cat(views) - self.mean) / self.std
        resolution = self.config.clip_resolution
        if resolution != crop:
            pixels = F.interpolate(pixels, size=(resolution, resolution), mode="bilinear", align_corners=False)
        return pixels, offsets

    def frame_scores(self, frame: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) -> (C, H, W) sigmoid scores under the protocol above."""
        size, crop = self.args.test_size, self.args.crop
        pixels, offsets = self.views(frame)
        logits = self.network(pixels, text.to(pixels.dtype)).float()  # scores are averaged in fp32 under autocast too
        scores = F.interpolate(logits, size=(crop, crop), mode="bilinear", align_corners=False).sigmoid()
        total = scores.new_zeros(scores.shape[1], size, size)
        count = scores.new_zeros(1, size, size)
        for (top, left), view in zip(offsets, scores):
            total[:, top : top + crop, left : left + crop] += view
            count[:, top : top + crop, left : left + crop] += 1
        out = total / count
        if self.args.global_view:
            out = (out + F.interpolate(scores[-1:], size=(size, size), mode="bilinear", align_corners=False)[0]) / 2
        return F.interpolate(out[None], size=tuple(frame.shape[-2:]), mode="bilinear", align_corners=False)[0]
