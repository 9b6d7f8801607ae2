"""FC-CLIP's text side: each class's synonyms (ovbench's "a_or_b" name parts) embedded under the
14 ViLD templates, and whether the class counts as seen, i.e. shares a name with FC-CLIP's
COCO Panoptic training vocabulary (coco_vocabulary.json, the project's own record of those
names), which picks the ensemble weight.

The text tensor is self-contained, because the runner may hand `predict` a cached copy without
calling `encode_text`: (C, P, D + 1), the shared CLIP layout (ovbench/models/clip_baseline.py:
P the most synonyms of any class, fewer padded with copies of the first, which never change a
max) with one more channel holding the seen flag (1.0 or 0.0) on every row."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch
from ovbench.models.clip_baseline import encode_vocabulary

from ovbench.api import class_name_parts

COCO_VOCABULARY = Path(__file__).with_name("coco_vocabulary.json")


@functools.cache
def coco_names() -> frozenset[str]:
    """Every name of every class FC-CLIP was trained on."""
    classes = json.loads(COCO_VOCABULARY.read_text())["classes"]
    return frozenset(name for entry in classes for name in entry["names"])


@functools.cache
def coco_vocabulary_hash() -> str:
    return hashlib.sha256(COCO_VOCABULARY.read_bytes()).hexdigest()[:16]


def is_seen(name: str) -> bool:
    """FC-CLIP's rule: a class is seen when any of its synonyms is a training name."""
    return not coco_names().isdisjoint(class_name_parts(name))


def encode_classes(clip: torch.nn.Module, tokenizer, names: Sequence[str]) -> torch.Tensor:
    """Class names -> (C, P, D + 1): synonym embeddings (mean over the ViLD templates of the
    L2-normalised prompt embeddings, L2-normalised again, as FC-CLIP does) and the seen flag."""
    parts = encode_vocabulary(clip, tokenizer, names, "ensemble")
    seen = torch.tensor([float(is_seen(name)) for name in names], device=parts.device, dtype=parts.dtype)
    return torch.cat([parts, seen[:, None, None].expand(-1, parts.shape[1], 1)], dim=-1)


def split_text(text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tensor `encode_classes` made -> (synonym embeddings (C*P, D), their classes (C*P,),
    seen (C,) bool)."""
    classes, parts, _ = text.shape
    owner = torch.arange(classes, device=text.device).repeat_interleave(parts)
    return text[..., :-1].flatten(0, 1), owner, text[:, 0, -1] > 0.5
