"""The adapter API: the one page a researcher implements to put a model on the benchmark.

A model embeds a vocabulary once (`encode_text`, cached by the runner under `text_cache_key`)
and segments frames (`predict`). Everything else (decoding, batching, device placement, mixed
precision, resizing to the ground truth, argmax, metrics, timing, resume) belongs to the runner,
so adapters stay small and every model is measured the same way.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping, Sequence

import torch

from .errors import ConfigError
from .suggest import did_you_mean


@dataclasses.dataclass
class ModelArgs:
    """Typed `--model-args`. Subclass it as a dataclass; each field is one `key=value`.
    Bound a number with `Annotated[int, Range(min=1)]` (or `PositiveInt`), so a bad value is
    refused naming the argument before the model is built."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric model argument, declared with typing.Annotated."""

    min: float | None = None
    max: float | None = None

    def check(self, key: str, value: float) -> None:
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            raise ConfigError(f"model argument {key}={value}: must be in {low}..{high}")


PositiveInt = Annotated[int, Range(min=1)]  # sizes, counts, strides


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


@dataclasses.dataclass
class TrainJob:
    """Everything `ovbench train` hands to a trainable model; the model owns the loop."""

    data_root: Path
    split: Any  # ovbench.splits.Split: videos, vocabulary and ignored classes to train on
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


def _coerce(key: str, raw: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        value = _coerce(key, raw, base)
        for bound in extras:
            if isinstance(bound, Range) and value is not None:
                bound.check(key, value)
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        return _coerce(key, raw, options[0])
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if raw not in allowed:
            raise ConfigError(f"model argument {key}={raw!r}: expected one of {', '.join(map(str, allowed))}")
        return raw
    if annotation is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"model argument {key}={raw!r}: expected true or false")
    if annotation in (int, float):
        try:
            value = annotation(raw)
        except ValueError:
            raise ConfigError(f"model argument {key}={raw!r}: expected {annotation.__name__}") from None
        if not math.isfinite(value):
            raise ConfigError(f"model argument {key}={raw!r}: expected a finite number")
        return value
    if annotation is Path:
        return Path(raw).expanduser()
    return raw


def parse_pairs(spec: str | None) -> dict[str, str]:
    """"k=v,k2=v2" -> {"k": "v", "k2": "v2"}; values may contain "=" but not ","."""
    items: dict[str, str] = {}
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        if "=" not in pair:
            raise ConfigError(f"model argument {pair.strip()!r} is not key=value")
        key, value = (part.strip() for part in pair.split("=", 1))
        if not key or key in items:
            raise ConfigError(f"model argument {pair.strip()!r}: " + ("no key before '='" if not key else f"{key} is given twice"))
        items[key] = value
    return items


def parse_model_args(args_cls: type[ModelArgs], spec: str | Mapping[str, Any] | None) -> ModelArgs:
    """Build the model's typed arguments from "k=v,k2=v2" (or a mapping), naming any bad key."""
    if isinstance(spec, Mapping):
        items = {k: v if isinstance(v, str) else str(v) for k, v in spec.items()}
    else:
        items = parse_pairs(spec)
    hints = typing.get_type_hints(args_cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(args_cls)}
    values = {}
    for key, raw in items.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ConfigError(f"unknown model argument {key!r}{did_you_mean(key, fields)}; known: {known}")
        values[key] = _coerce(key, raw, hints[key])
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"missing model argument(s): {', '.join(missing)}")
    return args_cls(**values)


def args_to_dict(args: ModelArgs) -> dict[str, Any]:
    """JSON-ready view of the arguments for the run record."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(args).items()}
