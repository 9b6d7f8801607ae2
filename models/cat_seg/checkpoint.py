"""The authors' checkpoint files (`model_base.pth`, `model_large.pth`): detectron2's format, a
`torch.save` dict whose "model" entry maps the authors' parameter names to tensors. They are
read with torch's weights-only loader (never unpickling objects) or from .safetensors, and
their names map onto the network's by prefix, with CLIP's separately stored q/k/v projection
weights packed into open_clip's `in_proj_weight`. The shifted-window masks the file carries as
buffers are derived constants: they are checked against the network's own, not loaded."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch
from ovbench.models.cat_seg.config import CLIP_PREFIX
from torch import nn

from ovbench.errors import ConfigError, first_line

AGGREGATOR_PREFIX = "sem_seg_head.predictor.transformer."
QKV = ("q_proj_weight", "k_proj_weight", "v_proj_weight")
PACKED = "in_proj_weight"
MASK = "attn_mask"
SHOWN_KEYS = 4  # keys named in a mismatch message


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, or one line saying why the file cannot give them."""
    try:
        if path.suffix == ".safetensors":
            return safetensors.torch.load_file(str(path))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"CAT-Seg checkpoint {path} holds pickled Python objects besides tensors, which ovbench never loads") from None
    except Exception as err:  # damaged or not a checkpoint at all: one line naming the file
        raise ConfigError(f"CAT-Seg checkpoint {path} cannot be read ({type(err).__name__}: {first_line(err)})") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"CAT-Seg checkpoint {path} is not a dict of tensors (or a dict with one under 'model')")
    return state


def authors_name(key: str) -> str:
    """The authors' name of one of the network's parameters (before q/k/v splitting)."""
    if key.startswith("clip."):
        return CLIP_PREFIX + key[len("clip.") :]
    if key.startswith("aggregator."):
        return AGGREGATOR_PREFIX + key[len("aggregator.") :]
    return key


def expected_shapes(network: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape an authors' checkpoint of this network holds."""
    shapes: dict[str, tuple[int, ...]] = {}
    for key, value in network.state_dict().items():
        name = authors_name(key)
        if name.endswith(PACKED) and name.startswith(CLIP_PREFIX):
            width = value.shape[0] // 3
            shapes.update({name[: -len(PACKED)] + qkv: (width, value.shape[1]) for qkv in QKV})
        else:
            shapes[name] = tuple(value.shape)
    for key, buffer in network.named_buffers():
        if key.endswith(MASK) and buffer is not None and key.startswith("aggregator."):
            shapes[authors_name(key)] = tuple(buffer.shape)
    return shapes


def check_keys(state: Mapping[str, torch.Tensor], network: nn.Module, path: Path, variant: str) -> None:
    """One line naming the first missing, unexpected and misshapen tensors, if any."""
    expected = expected_shapes(network)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} != {expected[k]}" for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    problems = [
        f"{label} {len(keys)} ({', '.join(keys[:SHOWN_KEYS])}{', ...' if len(keys) > SHOWN_KEYS else ''})"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen))
        if keys
    ]
    if problems:
        raise ConfigError(f"CAT-Seg checkpoint {path} does not fit the {variant} network: {'; '.join(problems)}")


def network_state(state: Mapping[str, torch.Tensor], network: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """The authors' tensors under the network's names (q/k/v packed), masks checked."""
    buffers = dict(network.named_buffers())
    ours = {authors_name(key): key for key in network.state_dict()}
    ours.update({authors_name(key): key for key in buffers})
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.endswith(MASK):
            if not torch.equal(value.to(buffers[ours[name]]), buffers[ours[name]]):
                raise ConfigError(f"CAT-Seg checkpoint {path}: {name} is not the shifted-window mask of this network's window size")
        elif name.endswith(QKV[0]):
            stem = name[: -len(QKV[0])]
            out[ours[stem + PACKED]] = torch.cat([state[stem + qkv] for qkv in QKV])
        elif not name.endswith(QKV[1:]):
            out[ours[name]] = value
    return out


def load_authors_checkpoint(network: nn.Module, state: Mapping[str, torch.Tensor], path: Path, variant: str) -> None:
    check_keys(state, network, path, variant)
    network.load_state_dict(network_state(state, network, path), strict=True)
