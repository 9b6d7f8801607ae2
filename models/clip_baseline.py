"""What the two CLIP baselines share: prompt templates, the class-name text classifier, and
how they hold their CLIP (weights record, tokenizer, pixel normalisation).

Both baselines must read a vocabulary and normalise pixels the same way, or a difference
between them would be a difference in prompts rather than in design. A class is scored as the
max over its "_or_" name parts (each part embedded as the mean over the templates), as GKC
allows for multi-name classes. The text tensor handed to `predict` must be self-contained (the
runner may load it from its cache without calling `encode_text`), so the parts travel inside
it: (C, P, D), P the largest number of parts of any class, a class with fewer parts padded
with copies of its first part (a copy never changes a max).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal, Sequence

import open_clip
import torch
from ovbench.models.clip_loading import create_clip, encode_class_names, weights_identity

from ovbench.api import SegmentationModel, WeightsInfo
from ovbench.modelargs import ModelArgs

TemplateSet = Literal["ensemble", "single"]

# The 14 scene templates of ViLD, reused by open-vocabulary segmenters (SimBaseline's "vild"
# set, FC-CLIP): about objects in scenes, unlike most of the 80 ImageNet templates ("a tattoo
# of the {}.", "the origami {}.") that MaskCLIP averages together with 5 scene templates.
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

# The raw name, as GKC tokenises it.
SINGLE_TEMPLATES: tuple[str, ...] = ("{}",)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {"ensemble": ENSEMBLE_TEMPLATES, "single": SINGLE_TEMPLATES}

# Bumped when the layout of the text tensor changes, so stale caches are never read.
_TEXT_FORMAT = "clip-parts-v1"


def encode_vocabulary(model: torch.nn.Module, tokenizer, names: Sequence[str], templates: TemplateSet) -> torch.Tensor:
    """Class names -> (C, P, D) L2-normalised part embeddings, padded as the module says."""
    parts, owner = encode_class_names(model, tokenizer, names, TEMPLATE_SETS[templates])
    counts = torch.bincount(owner, minlength=len(names))
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(owner)) - first[owner]
    index = first[:, None].repeat(1, int(counts.max()))
    index[owner, rank] = torch.arange(len(owner))
    return parts[index.to(parts.device)]


def class_scores(features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine of L2-normalised features (N, D) with every class, max over its parts -> (N, C),
    in float32 even under autocast: close classes must not tie by rounding."""
    with torch.autocast(features.device.type, enabled=False):
        return torch.einsum("nd,cpd->ncp", features.float(), text.to(features.device, torch.float32)).amax(dim=-1)


def text_cache_key(arch: str, weights: WeightsInfo, templates: TemplateSet) -> str | None:
    """What fixes `encode_vocabulary`'s output besides the names; None when nothing identifies
    the weights, so their embeddings are never reused."""
    identity = weights_identity(weights)
    if identity is None:
        return None
    template_hash = hashlib.sha256("\n".join(TEMPLATE_SETS[templates]).encode()).hexdigest()[:16]
    return f"{_TEXT_FORMAT}|{arch}|{identity}|templates:{templates}:{template_hash}"


@dataclasses.dataclass
class ClipArgs(ModelArgs):
    clip: str = "ViT-B-16"  # an open_clip architecture
    pretrained: str = "openai"  # an open_clip tag, a weights file, or "none" (random init, recorded)
    templates: TemplateSet = "ensemble"


class ClipBaseline(SegmentationModel):
    """A CLIP on the runner's device, with the vocabulary and weights bookkeeping both
    baselines need; subclasses add `predict`."""

    Args = ClipArgs

    def __init__(self, args: ClipArgs, device: torch.device):
        super().__init__(args, device)
        self.clip, self._weights = create_clip(args.clip, args.pretrained, device)
        self.tokenizer = open_clip.get_tokenizer(args.clip)
        visual = self.clip.visual
        self._mean = torch.tensor(visual.image_mean, device=device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(visual.image_std, device=device).view(1, 3, 1, 1) * 255

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """RGB values 0..255 (any float dtype) -> CLIP's normalised input."""
        return (pixels - self._mean) / self._std

    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        return encode_vocabulary(self.clip, self.tokenizer, names, self.args.templates)

    def text_cache_key(self) -> str | None:
        return text_cache_key(self.args.clip, self._weights, self.args.templates)

    def weights(self) -> WeightsInfo:
        return self._weights
