"""FC-CLIP's released checkpoints, read as downloaded: a detectron2 `torch.save` of a dict whose
"model" holds the state dict (or that state dict saved with safetensors), read with torch's
weights-only loader, never unpickled. Its keys map onto ovbench's modules by renaming only.

The released files do not hold CLIP's text tower (github.com/bytedance/fc-clip/issues/14), and
CLIP was frozen in training, so CLIP comes from open_clip (`clip_pretrained=`) and any CLIP
weights the file does hold are loaded over it; every other weight must be in the file."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import safetensors.torch
import torch
from ovbench.models.fc_clip.config import FCCLIPConfig
from torch import nn

from ovbench.errors import ConfigError, WeightsError, first_line
from ovbench.resolve import user_file

CLIP_PREFIX = "taps.clip."
SHOWN_KEYS = 4  # keys named per kind in a mismatch message
# (authors' key pattern, ovbench's name); first match wins
KEY_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.clip_model\.", CLIP_PREFIX),
    (r"^sem_seg_head\.pixel_decoder\.transformer\.level_embed$", "pixel_decoder.level_embed"),
    (r"^sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.", "pixel_decoder.encoder."),
    (r"^sem_seg_head\.pixel_decoder\.adapter_1\.weight$", "pixel_decoder.lateral_conv.0.weight"),
    (r"^sem_seg_head\.pixel_decoder\.adapter_1\.norm\.", "pixel_decoder.lateral_conv.1."),
    (r"^sem_seg_head\.pixel_decoder\.layer_1\.weight$", "pixel_decoder.output_conv.0.weight"),
    (r"^sem_seg_head\.pixel_decoder\.layer_1\.norm\.", "pixel_decoder.output_conv.1."),
    (r"^sem_seg_head\.pixel_decoder\.", "pixel_decoder."),
    (r"^sem_seg_head\.predictor\.transformer_cross_attention_layers\.(\d+)\.multihead_attn\.", r"decoder.cross.\1.attn."),
    (r"^sem_seg_head\.predictor\.transformer_cross_attention_layers\.", "decoder.cross."),
    (r"^sem_seg_head\.predictor\.transformer_self_attention_layers\.(\d+)\.self_attn\.", r"decoder.self_attn.\1.attn."),
    (r"^sem_seg_head\.predictor\.transformer_self_attention_layers\.", "decoder.self_attn."),
    (r"^sem_seg_head\.predictor\.transformer_ffn_layers\.", "decoder.ffn."),
    (r"^sem_seg_head\.predictor\._mask_pooling_proj\.", "mask_pooling_proj."),
    (r"^sem_seg_head\.predictor\.(class_embed\.|logit_scale$)", r"\1"),
    (r"^sem_seg_head\.predictor\.", "decoder."),
    (r"^void_embedding\.", "void_embedding."),
)
TRAINING_ONLY = ("criterion.",)  # the loss's class weights: no part of inference


def ovbench_name(key: str) -> str | None:
    """The network's name for an authors' key; None for training-only entries."""
    if key.startswith(TRAINING_ONLY):
        return None
    for pattern, replacement in KEY_RENAMES:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return key  # not an FC-CLIP key: reported as unexpected


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file ("model" of a detectron2 dict, or the dict itself)."""
    try:
        if path.suffix == ".safetensors":
            loaded = safetensors.torch.load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch's note on pickle protocols would break the one line
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"FC-CLIP checkpoint {path} holds pickled Python objects besides tensors, which ovbench never loads;"
            " save its 'model' dict with torch.save or safetensors"
        ) from None
    except Exception as err:  # damaged or not a checkpoint at all: one line either way
        raise WeightsError(f"FC-CLIP checkpoint {path} cannot be read ({type(err).__name__}: {first_line(err)})") from None
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"FC-CLIP checkpoint {path} holds no state dict of tensors (expected a dict with 'model')")
    return state


def renamed_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value for key, value in state.items() if (name := ovbench_name(key)) is not None}


def mismatches(network: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """(missing, unexpected-or-misshapen) network keys; CLIP keys may be missing (open_clip
    supplies them)."""
    expected = network.state_dict()
    missing = [key for key in expected if key not in state and not key.startswith(CLIP_PREFIX)]
    wrong = [
        key if key not in expected else f"{key} {tuple(state[key].shape)} (model: {tuple(expected[key].shape)})"
        for key in state
        if key not in expected or state[key].shape != expected[key].shape
    ]
    return missing, wrong


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN_KEYS]) + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def load_network_state(network: nn.Module, state: dict[str, torch.Tensor], path: Path, config: FCCLIPConfig) -> None:
    """Load a renamed state into the network, or fail in one line naming the file and keys."""
    missing, wrong = mismatches(network, state)
    if missing or wrong:
        parts = [f"missing {_shown(missing)}" if missing else "", f"unexpected {_shown(wrong)}" if wrong else ""]
        raise ConfigError(
            f"FC-CLIP checkpoint {path} does not fit config {config.id!r}: {'; '.join(p for p in parts if p)}"
        )
    network.load_state_dict(state, strict=False)


def checkpoint_path(spec: str, config: FCCLIPConfig | None) -> Path:
    """The user's checkpoint file, or one line saying which file the authors publish where."""
    release = (config.checkpoint if config else None) or {"file": "fcclip_cocopan.pth", "host": "drive.google.com"}
    try:
        return user_file(spec, "FC-CLIP checkpoint", WeightsError)
    except WeightsError:
        raise WeightsError(
            f"FC-CLIP checkpoint {spec} not found: download {release['file']} from {release['host']}"
            " and pass checkpoint=/path/to/it (or checkpoint=none for random weights)"
        ) from None
