"""fc-clip gives the authors' FC-CLIP predictions on the same weights.

How tests/data/fcclip/ was made (outside the project, in a sandbox): the authors' code,
bytedance/fc-clip at commit 2b0bbe213070d44da9182530fa2e826fef03f974, ran on CPU with
detectron2 0.6 built CPU-only, open_clip 2.23.0, timm 1.0.31, torch 2.14.1, an empty
`MultiScaleDeformableAttention` module (so its pure-PyTorch deformable attention ran) and
no downloads. Model: its RN50 eval config (fcclip_convnext_large_eval_ade20k_r50.yaml:
CLIP RN50, 250 queries, ensemble alpha 0.4 / beta 0.8 on valid masks) switched to semantic
segmentation only (panoptic and instance heads off, so its crop-and-resize comes after the
einsum, as in its A-847/PC/PAS configs), test resize ResizeShortestEdge(320, max 1333) on the
uint8 image. Every tensor of its state dict (the key/shape list is in reference.json) was
replaced by the weight rule `rule_tensor` below, with the parameters in reference.json: each
tensor from its own generator seeded by the key's sha256 plus a seed; normal noise scaled by
1/sqrt(fan_in), with gain 0.1 on the decoder's attention and FFN output projections (so its
250 queries stay distinct) and 5 on the mask embedding's last layer (so masks are sharp and
labels vary across the frame); decoder query, level and void embeddings and CLIP's token
embedding at std 1; 1-D weights 1 + 0.1 noise, 1-D biases 0.1 noise; BatchNorm statistics 0
and 1; scalars (logit scales) log(100). Inputs: two synthetic uint8 frames, 90x140 and
75x110 (sides not multiples of 32), with a vocabulary of COCO-seen classes, unseen ones and
one "_or_" class seen through its second synonym ("stairway_or_stairs"). Outputs: the model's
`sem_seg` at frame size (reference.npz). On these weights 2-3 classes win pixels per frame.

The test rebuilds the weights by the same rule, writes them as a user would have them: the
authors' checkpoint format (a torch.save dict with "model", without CLIP's text tower, like
the released file) plus an open_clip CLIP file, and loads both through the adapter's own
arguments; the variant is read off the checkpoint's shapes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from ovbench.models.fc_clip import FCCLIP
from ovbench.models.fc_clip.adapter import resized_shape

from ovbench.api import parse_model_args

DATA = Path(__file__).parents[1] / "data" / "fcclip"
CLIP_PREFIX = "backbone.clip_model."
LABEL_AGREEMENT = 0.995
SCORE_TOLERANCE = 1e-4  # on scores divided by each class's mean over the frame


def rule_tensor(key: str, shape: list[int], rule: dict, embeddings: list[str]) -> torch.Tensor:
    """The deterministic weight rule the reference was made with (see the module docstring)."""
    seed = (int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) + rule["seed"]) % (2**63)
    generator = torch.Generator().manual_seed(seed)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return torch.ones(shape)
    if leaf == "running_mean":
        return torch.zeros(shape)
    if not shape:
        value = torch.tensor(rule["logit_scale"])
        return value.long() if leaf == "num_batches_tracked" else value
    noise = torch.randn(shape, generator=generator)
    if len(shape) == 1:
        return 1 + rule["norm_weight_std"] * noise if leaf == "weight" else rule["bias_std"] * noise
    if key.endswith(tuple(embeddings)):
        return rule["embedding_std"] * noise
    gain = next((g for suffix, g in rule["suffix_gains"].items() if key.endswith(suffix)), rule["gain"])
    return gain * noise / math.sqrt(math.prod(shape[1:]))


def write_user_files(folder: Path, meta: dict) -> tuple[Path, Path]:
    """(the authors'-format checkpoint without the text tower, the open_clip CLIP file)."""
    state = {key: rule_tensor(key, shape, meta["weight_rule"], meta["embeddings"]) for key, shape in meta["keys"]}
    clip = {key[len(CLIP_PREFIX):]: value for key, value in state.items() if key.startswith(CLIP_PREFIX)}
    released = {k: v for k, v in state.items() if not k.startswith(CLIP_PREFIX) or k.startswith(CLIP_PREFIX + "visual.")}
    checkpoint, clip_file = folder / "fcclip_rn50.pth", folder / "RN50-random.safetensors"
    torch.save({"model": released, "iteration": 0}, checkpoint)
    safetensors.torch.save_file(clip, str(clip_file))
    return checkpoint, clip_file


@pytest.fixture(scope="module")
def reference() -> tuple[dict, dict]:
    meta = json.loads((DATA / "reference.json").read_text())
    with np.load(DATA / "reference.npz") as arrays:
        return meta, {key: arrays[key] for key in arrays.files}


@pytest.fixture(scope="module")
def predictions(reference, tmp_path_factory) -> list[np.ndarray]:
    meta, arrays = reference
    torch.set_num_threads(1)
    checkpoint, clip_file = write_user_files(tmp_path_factory.mktemp("fcclip"), meta)
    args = parse_model_args(FCCLIP.Args, {"checkpoint": str(checkpoint), "clip_pretrained": str(clip_file), "test_size": str(meta["test_size"][0])})
    model = FCCLIP(args, torch.device("cpu"))
    for written in (checkpoint, clip_file):  # 0.6 GB of fp32 weights: not kept until pytest's cleanup
        written.unlink()
    assert model.args.config == "rn50"  # read off the checkpoint's shapes
    text = model.encode_text(meta["vocabulary"])
    out = []
    for index in range(2):
        frame = torch.from_numpy(arrays[f"frame{index}"]).permute(2, 0, 1)[None]
        out.append(model.predict(frame, text)[0].numpy())
    return out


def test_labels_match_the_authors(reference, predictions):
    _, arrays = reference
    for index, scores in enumerate(predictions):
        expected = arrays[f"sem_seg{index}"]
        assert scores.shape == expected.shape
        agreement = (scores.argmax(0) == expected.argmax(0)).mean()
        assert agreement >= LABEL_AGREEMENT, f"frame {index}: {agreement:.4f} of pixels agree"


def test_scores_match_the_authors(reference, predictions):
    """Each class's scores over its mean on the frame: a class's level and its spatial
    pattern both count, whichever class wins."""
    _, arrays = reference
    for index, scores in enumerate(predictions):
        expected = arrays[f"sem_seg{index}"]
        mean = expected.mean(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(scores / mean, expected / mean, rtol=0, atol=SCORE_TOLERANCE)


def test_the_reference_has_varied_labels(reference):
    """Guards the data: a reference where one class wins everywhere could not test labels."""
    _, arrays = reference
    assert len(np.unique(arrays["sem_seg0"].argmax(0))) >= 2


def test_default_test_size_is_detectron2s(reference):
    """The 800/1333 rule gives the sizes the authors' ResizeShortestEdge gave."""
    meta, _ = reference
    for (height, width), expected in meta["default_resize_800_1333"]:
        assert list(resized_shape(height, width, 800, 1333)) == expected
