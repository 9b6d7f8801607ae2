"""The adapter API: the one page a researcher implements to put a model on the benchmark.

A model embeds a vocabulary once (`encode_text`, cached by the runner under `text_cache_key`)
and segments frames (`predict`). Everything else (decoding, batching, device placement, mixed
precision, resizing to the ground truth, argmax, metrics, timing, resume) belongs to the runner,
so adapters stay small and every model is measured the same way. The typed `--model-args`
(`ModelArgs`, `Range`, `PositiveInt`) live in `ovbench.modelargs` and are re-exported here, so
an adapter needs this one module.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from ovbench.modelargs import ModelArgs, PositiveInt, Range, args_to_dict, parse_model_args, parse_pairs

__all__ = ["ModelArgs", "ModelVariant", "PositiveInt", "Range", "SegmentationModel", "TrainJob", "TrainableModel", "WeightsInfo",
           "args_to_dict", "class_name_parts", "parse_model_args", "parse_pairs"]


@dataclasses.dataclass
class WeightsInfo:
    """What the run record says about the weights, so a number can be traced to a file."""

    source: str  # a pretrained tag ("openai"), a file path, "builtin:<name>" or "none"
    sha256: str | None = None
    random_init: bool = False
    backbone: str | None = None  # the image backbone's architecture
    text_encoder: str | None = None  # the text tower that classifies, where it is a separate part of the model (GKC)
    # how trained weights were made (stages, data, schedule), for weights that say so
    training: list[dict] | None = None
    # parts whose weights were never trained (e.g. ["text tower"]) in weights that are otherwise
    # trained: the numbers are then about a partly random model, and records say which part
    random_parts: list[str] | None = None
    # what the weights are fit for, when not for what the benchmark measures (a sample checkpoint)
    caveat: str | None = None


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """One published (or random-init) size of a model, as plain data for `ovbench ls models -v`
    and the docs: which file to download and from where, under which licences, and what the
    paper reports. `checkpoint_file`/`checkpoint_host` are None for variants nobody publishes."""

    id: str  # what `config=` takes
    description: str
    checkpoint_file: str | None = None
    checkpoint_host: str | None = None
    code_licence: str | None = None
    weights_licence: str | None = None
    published: dict[str, float] = dataclasses.field(default_factory=dict)  # benchmark -> number, in `metric`
    metric: str = "mIoU"
    published_source: str | None = None

    def describe(self) -> str:
        """One line: the file and host, the licences and the published numbers with their source."""
        where = (f"{self.checkpoint_file} from {self.checkpoint_host}" if self.checkpoint_file
                 else "no published checkpoint (random init: checkpoint=none)")
        licences = f"code {self.code_licence or '-'}, weights {self.weights_licence or '-'}"
        numbers = "no published numbers"
        if self.published:
            results = ", ".join(f"{name} {value}" for name, value in self.published.items())
            numbers = f"published {self.metric}: {results} ({self.published_source})"
        return f"{self.id}: {where}; {licences}; {numbers}"


class SegmentationModel(abc.ABC):
    """Base class of every adapter.

    Subclasses set `Args` to their `ModelArgs` dataclass and are registered with
    `ovbench.registry.register_model`. The constructor receives parsed arguments and the
    torch device the runner chose; the model must live on that device.
    """

    Args: ClassVar[type[ModelArgs]] = ModelArgs
    # Arguments used on the built-in synthetic sample when the user gave none of these keys
    # (e.g. a small checkpoint shipped for it), so the README's first command needs no download.
    sample_args: ClassVar[dict[str, str]] = {}

    def __init__(self, args: ModelArgs, device: torch.device):
        self.args = args
        self.device = device

    @abc.abstractmethod
    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        """Embed the vocabulary: raw class names (e.g. "handrail_or_fence") -> a float tensor
        whose first dimension is C, usually (C, D); (C, P, D) for models that keep one
        embedding per name part. The runner caches it and hands it back to `predict` as is."""

    def text_cache_key(self) -> str | None:
        """What determines `encode_text`'s output besides the names (encoder id, weights hash,
        templates). None disables caching."""
        return None

    @abc.abstractmethod
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Segment a batch of consecutive frames of one video.

        frames: uint8 (B, 3, H, W) RGB on `self.device`; text: what `encode_text` returned.
        Returns either float scores (B, C, h, w) at any resolution (the runner resizes them
        bilinearly to H x W and takes the argmax) or integer labels (B, H, W) in 0..C-1.
        """

    def begin_video(self, video: str) -> None:
        """Called before the first frame of each video; frames then arrive in temporal order.
        A video model resets its temporal state here. Per-frame models ignore it."""

    def weights(self) -> WeightsInfo:
        """Which weights produced the numbers; recorded in every run record."""
        return WeightsInfo(source="none", random_init=True)

    def parameters(self) -> int | None:
        """What the model costs in weights, for the record and the zoo table: by default the
        distinct parameters of the torch modules this adapter holds as attributes (shared
        tensors counted once); None for a model that holds none (nothing to count)."""
        modules = [value for value in vars(self).values() if isinstance(value, torch.nn.Module)]
        if not modules:
            return None
        tensors = {id(p): p for module in modules for p in module.parameters()}
        return sum(p.numel() for p in tensors.values())

    @classmethod
    def variants(cls) -> Sequence[ModelVariant]:
        """The sizes this model ships (published checkpoints and random-init test sizes), listed by
        `ovbench ls models -v`; none by default."""
        return ()


@dataclasses.dataclass
class TrainJob:
    """Everything `ovbench train` hands to a trainable model; the model owns the loop."""

    data_root: Path
    split: Any  # ovbench.split.Split: videos, vocabulary and ignored classes to train on
    out_dir: Path
    options: str  # the model's own `--train-args k=v,...`, parsed by the model
    init: Path | None  # start from this checkpoint (e.g. the image-trained model)
    resume: bool
    precision: str
    seed: int


class TrainableModel(SegmentationModel):
    """A model that `ovbench train --model ID` can train: it says so by subclassing this."""

    @abc.abstractmethod
    def train_model(self, job: TrainJob) -> Path:
        """Train and return the path of the final checkpoint (loadable through `Args`)."""


def class_name_parts(name: str) -> list[str]:
    """VSPW names join synonyms with "_or_" and words with "_": "billboard_or_Bulletin_Board"
    -> ["billboard", "bulletin board"]. Models that score a class as the max over its parts
    use this so that every adapter reads names the same way."""
    return [part.replace("_", " ").strip().lower() for part in name.split("_or_")]


