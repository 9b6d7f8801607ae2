"""The deterministic weight rule of the CAT-Seg reference data (tests/data/catseg/), written
here as it was in the sandbox that ran the authors' code: each tensor from its own
torch.Generator seeded by the first 8 bytes (little-endian, mod 2**63) of the sha256 of its
key, drawn with torch.randn and scaled by 1/sqrt(prod(shape[1:])) for tensors of two or more
dimensions, 1 + 0.1 x for one-dimensional `*.weight` tensors (norms), 0.05 x otherwise."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1] / "data" / "catseg"
MASK = "attn_mask"


def rule_tensor(key: str, shape) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % (2**63)
    x = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))
    if len(shape) >= 2:
        return x / math.sqrt(math.prod(shape[1:]))
    if len(shape) == 1 and key.endswith(".weight"):
        return 1.0 + 0.1 * x
    return 0.05 * x


def reference(name: str) -> tuple[dict, dict]:
    """(the json: commit, keys and shapes, names; the npz arrays) of a reference."""
    meta = json.loads((DATA / f"{name}.json").read_text())
    with np.load(DATA / f"{name}.npz") as arrays:
        return meta, dict(arrays)


def authors_state(keys) -> dict[str, torch.Tensor]:
    """An authors'-format state dict under the rule; shifted-window masks are the authors' own
    (saved from their SwinTransformerBlock), not drawn."""
    with np.load(DATA / "swin_shift_mask.npz") as arrays:
        mask = torch.from_numpy(arrays["attn_mask"])
    return {key: mask.clone() if key.endswith(MASK) else rule_tensor(key, shape) for key, shape in keys}
