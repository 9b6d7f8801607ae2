"""SAN equals the authors' code: same weights, same frames, same vocabulary -> same scores.

How the reference was made (tests/data/san/reference_vit_b16.*): the authors' SAN (MendelXu/SAN
at the commit in the json, config configs/san_clip_vit_res4_coco.yaml, ViT-B/16) was built in a
sandbox outside the project with open_clip 2.16.0, detectron2 0.6 built CPU-only, wandb stubbed,
QuickGELU forced (open_clip's create_model_and_transforms called with force_quick_gelu, as its
openai loader builds the released model) and no CLIP download. Every tensor of its state dict
except two buffers was replaced by `rule_tensor` below (the same rule, parameters in the json);
the buffers kept the values the model builds (see the json). Two 100x150 RGB frames (a smooth
random field plus noise, seed in the json; sides not multiples of 32) went through the authors'
test path (detectron2's test augmentation with MIN_SIZE_TEST overridden to 180, MAX 2560) with the
vocabulary given as SAN strings ("handrail, fence" for handrail_or_fence); the json keeps the
authors' key/shape list, the npz the frames and the `sem_seg` scores (C, 100, 150) it returned.

At 180 the frames resize to 180x270 and pad to 192x288, so every inference path runs: the PIL
resize, padding, CLIP at scale 0.5 (96x144, grid 6x9) with resized position embeddings, the side
ViT on a 12x18 grid with its position embedding resized, the fusion map, the max-pooled attention
bias, the cropped and resized mask logits. Not covered: the long-side cap (2560), ViT-L's 0.7 scale.

This test rebuilds the weights, writes them as the authors' file format (torch.save of
{"model": state dict}) and loads that file through the adapter like a user's checkpoint.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ovbench.models.san.adapter import SAN

from ovbench.modelargs import parse_model_args

DATA = Path(__file__).parents[1] / "data" / "san"
REFERENCE = json.loads((DATA / "reference_vit_b16.json").read_text())
EMBEDDINGS = {"class_embedding", "positional_embedding", "pos_embed", "query_embed", "query_pos_embed", "bg_embed"}


def rule_tensor(key: str, shape: tuple[int, ...], gains: dict[str, float], logit_scale: float) -> torch.Tensor:
    """Each tensor from its own generator seeded by its key's sha256: embeddings N(0, 1); norm
    weights 1 + 0.1 N, other vectors 0.1 N; matrices N(0, 1) * gain / sqrt(fan_in) (fan_in the
    input side: rows of a projection used as x @ W, else all but the first dimension; gain by the
    first matching key pattern, else 1); the scalar logit scale log(logit_scale)."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & (2**63 - 1)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    name = key.rsplit(".", 1)[-1]
    if len(shape) == 0:
        return torch.tensor(math.log(logit_scale))
    if name in EMBEDDINGS or key.endswith("token_embedding.weight"):
        return noise
    if len(shape) == 1:
        is_norm = any(tag in key for tag in ("ln_", "norm", "input_proj.0"))
        return 1 + 0.1 * noise if is_norm and name == "weight" else 0.1 * noise
    fan_in = shape[0] if name in ("proj", "text_projection") else math.prod(shape[1:])
    gain = next((g for pattern, g in gains.items() if fnmatch.fnmatchcase(key, pattern)), 1.0)
    return noise * (gain / math.sqrt(fan_in))


def authors_state() -> dict[str, torch.Tensor]:
    """The authors' state dict under the rule, buffers as their model builds them."""
    rule = REFERENCE["weight_rule"]
    state = {}
    for key, shape, _ in REFERENCE["keys"]:
        if key == "ov_classifier.attn_mask":
            state[key] = torch.full(shape, float("-inf")).triu(1)
        elif key == "criterion.empty_weight":
            state[key] = torch.ones(shape)
            state[key][-1] = 0.1
        else:
            state[key] = rule_tensor(key, tuple(shape), rule["gains"], rule["logit_scale"])
    return state


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("san") / "san_vit_b_16.pth"
    torch.save({"model": authors_state(), "iteration": 0}, path)
    return path


def run_adapter(checkpoint: Path, **overrides: str) -> np.ndarray:
    """The adapter's frame-size scores on the reference frames (B, C, H, W)."""
    torch.set_num_threads(1)
    args = {"checkpoint": str(checkpoint), "test_size": str(REFERENCE["test_size"]), **overrides}
    model = SAN(parse_model_args(SAN.Args, args), torch.device("cpu"))
    frames = torch.from_numpy(np.load(DATA / "reference_vit_b16.npz")["frames"]).permute(0, 3, 1, 2).contiguous()
    return model.predict(frames, model.encode_text(REFERENCE["names"])).numpy()


def agreement(scores: np.ndarray) -> tuple[float, float, float]:
    """(label agreement, max |score difference|, max difference of per-pixel normalised scores)."""
    reference = np.load(DATA / "reference_vit_b16.npz")["scores"]
    labels = float((scores.argmax(1) == reference.argmax(1)).mean())
    def normalised(s: np.ndarray) -> np.ndarray:
        return s / s.sum(axis=1, keepdims=True)
    return labels, float(np.abs(scores - reference).max()), float(np.abs(normalised(scores) - normalised(reference)).max())


def test_reference_labels_vary():
    """The weight rule makes more than one class win, so the label comparison can fail."""
    labels = np.load(DATA / "reference_vit_b16.npz")["scores"].argmax(1)
    assert len(np.unique(labels)) >= 2


def test_adapter_equals_authors_san(checkpoint):
    labels, score_diff, normalised_diff = agreement(run_adapter(checkpoint))
    print(f"label agreement {labels:.5f}, max score difference {score_diff:.2e}, normalised {normalised_diff:.2e}")
    assert labels >= 0.995
    assert score_diff < 1e-3
    assert normalised_diff < 1e-4
