"""CLIP weights and text embeddings through open_clip, shared by every adapter that uses CLIP.

Weights come from an open_clip pretrained tag (`openai`, downloaded once into the Hugging Face
cache) or a local file; random weights only when the user says `pretrained=none`, and the run
record then says so. A missing file is a one-line error, never a silent random init.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import pickle
import warnings
from pathlib import Path
from typing import Sequence

import open_clip
import torch
import torch.nn.functional as F

from ovbench.api import WeightsInfo, class_name_parts
from ovbench.errors import ConfigError, WeightsError, first_line
from ovbench.fileio import file_sha256
from ovbench.resolve import names_a_file, user_file
from ovbench.suggest import did_you_mean

TINY_CONFIG_DIR = Path(__file__).with_name("clip_configs")
RANDOM_INIT = "none"
RANDOM_SEED = 0


@functools.cache
def register_tiny_configs() -> None:
    """Make the project's tiny CLIP configs (ovbench-tiny-rn, ovbench-tiny-vit) known to
    open_clip: millisecond-fast models for tests and the built-in sample."""
    open_clip.add_model_config(TINY_CONFIG_DIR)


def resolve_weights(arch: str, pretrained: str) -> Path | None:
    """Turn a `pretrained=` word into a local file (None for random init), or explain why not."""
    register_tiny_configs()
    if arch not in open_clip.list_models():
        raise ConfigError(f"unknown CLIP architecture {arch!r}{did_you_mean(arch, open_clip.list_models())}")
    if pretrained.lower() == RANDOM_INIT:
        return None
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if names_a_file(pretrained, tags):
        return user_file(pretrained, "CLIP weights file", WeightsError)
    if pretrained not in tags:
        raise ConfigError(
            f"{arch} has no open_clip pretrained tag {pretrained!r}{did_you_mean(pretrained, tags)};"
            f" tags: {', '.join(tags) or 'none'}; or pass pretrained=/path/to/weights"
        )
    try:
        target = open_clip.pretrained.download_pretrained(open_clip.get_pretrained_cfg(arch, pretrained))
    except Exception as err:  # no network, hub refused, disk full: all mean "not here"
        raise WeightsError(
            f"CLIP weights {arch}/{pretrained} are not cached and could not be downloaded ({type(err).__name__});"
            f" download them where there is internet, or pass pretrained=/path/to/{arch}.pt"
        ) from None
    if not target or not Path(target).is_file():
        raise WeightsError(f"CLIP weights {arch}/{pretrained} could not be found or downloaded")
    return Path(target)


@contextlib.contextmanager
def _quiet_open_clip():
    """open_clip warns that the model it builds is random before ovbench loads the weights; the
    record says which weights the model holds instead."""
    previous = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.root.setLevel(previous)


def _load_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """open_clip's loader (its key conversions and position-embedding resizes), never letting
    it unpickle objects: open_clip >= 3 is told weights_only; before, its loader would unpickle
    anything, so the file is first read with torch's weights-only loader."""
    if "weights_only" in inspect.signature(open_clip.load_checkpoint).parameters:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
        return
    if path.suffix != ".safetensors":
        torch.load(path, map_location="cpu", weights_only=True)  # raises on anything but tensors
    open_clip.load_checkpoint(model, str(path), strict=True)


def load_weights_file(model: torch.nn.Module, path: Path, arch: str) -> None:
    """Load a CLIP weights file without ever unpickling Python objects (safetensors, or torch's
    weights-only loader), turning every way the file can be bad into one line naming it."""
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols would break the one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            _load_checkpoint(model, path)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"CLIP weights file {path} holds pickled Python objects besides tensors, which ovbench never loads;"
            f" save its state dict with safetensors.torch.save_file or torch.save(state_dict)"
        ) from None
    except Exception as err:  # a user's file can fail anywhere in parsing or conversion: all mean "bad file"
        raise WeightsError(
            f"CLIP weights file {path} cannot be loaded into {arch}: damaged, not a weights file, or made for"
            f" another architecture ({type(err).__name__}: {first_line(err)})"
        ) from None


def create_clip(arch: str, pretrained: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, WeightsInfo]:
    """Build an open_clip model with verified weights; returns the model (eval mode) and the
    record of which weights it holds."""
    path = resolve_weights(arch, pretrained)
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        torch.manual_seed(RANDOM_SEED)  # an explicit random init is the same every run, so its numbers repeat
        model = open_clip.create_model(arch, pretrained=None, device=device)
    if path is not None:
        load_weights_file(model, path, arch)
    model.eval()
    info = WeightsInfo(
        # an open_clip tag is recorded as the tag; anything else resolved to a file, recorded by its path
        source=RANDOM_INIT if path is None else (pretrained if pretrained in open_clip.list_pretrained_tags_by_model(arch) else str(path)),
        sha256=None if path is None else file_sha256(path),
        random_init=path is None,
        backbone=arch,
    )
    return model, info


def weights_identity(info: WeightsInfo) -> str | None:
    """What identifies the weights for caching: their file hash, or for the seeded random init
    the seed and the library versions that draw it."""
    if info.sha256:
        return f"sha256:{info.sha256}"
    if info.random_init:
        return f"random-init:seed{RANDOM_SEED}:torch{torch.__version__}:open_clip{open_clip.__version__}"
    return None


@torch.no_grad()
def encode_prompts(model: torch.nn.Module, tokenizer, prompts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """CLIP text embeddings (N, D), L2-normalised, with the context trimmed to the longest
    prompt: the causal mask makes the padding irrelevant to the end-of-text token, so the
    output equals the full 77-token pass at a fraction of the cost."""
    device = next(model.parameters()).device
    tokens = tokenizer(list(prompts)).to(device)
    length = int((tokens != 0).sum(dim=1).max())
    tokens = tokens[:, :length]
    dtype = model.transformer.get_cast_dtype()
    outputs = []
    for start in range(0, tokens.shape[0], batch_size):
        chunk = tokens[start : start + batch_size]
        x = model.token_embedding(chunk).to(dtype) + model.positional_embedding[:length].to(dtype)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = model.ln_final(x)
        x = x[torch.arange(x.shape[0], device=device), chunk.argmax(dim=-1)]
        x = x @ model.text_projection if not isinstance(model.text_projection, torch.nn.Linear) else model.text_projection(x)
        outputs.append(F.normalize(x.float(), dim=-1))
    return torch.cat(outputs)


def encode_class_names(
    model: torch.nn.Module, tokenizer, names: Sequence[str], templates: Sequence[str] = ("{}",)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed every part of every class name under every template, averaging over templates.

    Returns (embeddings (P, D), owner (P,)): one row per name part ("handrail_or_fence" gives
    two), `owner[p]` the class index of part p, for adapters that score a class as the max
    over its parts."""
    parts, owner = [], []
    for index, name in enumerate(names):
        for part in class_name_parts(name):
            parts.append(part)
            owner.append(index)
    prompts = [template.format(part) for part in parts for template in templates]
    embeddings = encode_prompts(model, tokenizer, prompts).view(len(parts), len(templates), -1).mean(dim=1)
    return F.normalize(embeddings, dim=-1), torch.tensor(owner, dtype=torch.long)


def max_over_parts(logits: torch.Tensor, owner: torch.Tensor, num_classes: int, dim: int = 1) -> torch.Tensor:
    """Reduce per-part logits to per-class logits by the max over each class's parts."""
    owner = owner.to(logits.device)
    shape = list(logits.shape)
    shape[dim] = num_classes
    out = torch.full(shape, float("-inf"), dtype=logits.dtype, device=logits.device)
    index_shape = [1] * logits.dim()
    index_shape[dim] = -1
    index = owner.view(index_shape).expand_as(logits)
    return out.scatter_reduce(dim, index, logits, reduce="amax", include_self=True)
