"""The authors' SAN checkpoints (`san_vit_b_16.pth`, `san_vit_large_14.pth`): a detectron2
`torch.save` dict whose "model" holds the state dict. Read with torch's weights-only loader (or
as .safetensors), never unpickled; keys renamed to ovbench's network; the variant read off the
tensor shapes; a file that does not fit is refused in one line naming it and the keys at fault.

Key map (authors -> ovbench): `clip_visual_extractor.{conv1, class_embedding, positional_embedding,
ln_pre}` and `.resblocks.i` -> `clip.visual.*` and `clip.visual.transformer.resblocks.i`;
`clip_rec_head.resblocks.j` -> `clip.visual.transformer.resblocks.<split+j>`, `clip_rec_head.{ln_post,
proj}` -> `clip.visual.*`; `ov_classifier.bg_embed` -> `bg_embed`; other `ov_classifier.*` (the text
tower) -> `clip.*`; `side_adapter_network.vit_model.` -> `side_adapter.vit.`, other
`side_adapter_network.*` -> `side_adapter.*`. Dropped: `ov_classifier.attn_mask` (the causal mask
open_clip builds) and `criterion.empty_weight` (a training loss weight)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import safetensors.torch
import torch
from ovbench.models.san.config import SANConfig, shipped_configs

from ovbench.errors import ConfigError, first_line

DROPPED_KEYS = ("ov_classifier.attn_mask", "criterion.empty_weight")
RENAMES = (  # (authors' prefix, ovbench prefix), first match wins
    ("clip_visual_extractor.resblocks.", "clip.visual.transformer.resblocks."),
    ("clip_visual_extractor.", "clip.visual."),
    ("clip_rec_head.", "clip.visual."),
    ("ov_classifier.bg_embed", "bg_embed"),
    ("ov_classifier.", "clip."),
    ("side_adapter_network.vit_model.", "side_adapter.vit."),
    ("side_adapter_network.", "side_adapter."),
)
SHOWN_KEYS = 3


def published_files() -> str:
    """Where the authors publish each variant's file, for the one-line errors."""
    files = [f"{c.release['checkpoint_file']} ({c.id}) at {c.release['checkpoint_host']}" for c in shipped_configs() if c.release]
    return "; ".join(files)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an authors' .pth (its "model" dict, or a bare state dict) or .safetensors."""
    try:
        if path.suffix == ".safetensors":
            return safetensors.torch.load_file(path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"SAN checkpoint {path} holds pickled Python objects besides tensors, which ovbench never loads") from None
    except Exception as err:  # a user's file can fail anywhere in parsing: all mean "not a checkpoint"
        raise ConfigError(f"SAN checkpoint {path} cannot be read ({type(err).__name__}: {first_line(err)})") from None
    state = content.get("model", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"SAN checkpoint {path} holds no state dict of tensors (expected a dict with 'model')")
    return state


def rename(authors_key: str, split_layer: int) -> str | None:
    """An authors' key -> the ovbench network key (None for keys ovbench does not use)."""
    if authors_key in DROPPED_KEYS:
        return None
    if authors_key.startswith("clip_rec_head.resblocks."):
        index, rest = authors_key[len("clip_rec_head.resblocks.") :].split(".", 1)
        return f"clip.visual.transformer.resblocks.{split_layer + int(index)}.{rest}"
    for old, new in RENAMES:
        if authors_key.startswith(old):
            return new + authors_key[len(old) :]
    return authors_key


def shape_signature(state: dict[str, torch.Tensor]) -> tuple | None:
    """The authors' state dict's counterpart of SANConfig.shape_signature."""
    try:
        conv = state["clip_visual_extractor.conv1.weight"]
        side = state["side_adapter_network.vit_model.pos_embed"]
    except KeyError:
        return None
    def blocks(prefix: str) -> int:
        return len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})
    return (conv.shape[0], conv.shape[-1], blocks("clip_visual_extractor.resblocks."), blocks("clip_rec_head.resblocks."),
            side.shape[1], side.shape[2])


def detect_config(state: dict[str, torch.Tensor], path: Path) -> SANConfig:
    """The shipped variant whose shapes the checkpoint has."""
    signature = shape_signature(state)
    for config in shipped_configs():
        if config.shape_signature == signature:
            return config
    known = ", ".join(config.id for config in shipped_configs())
    raise ConfigError(f"SAN checkpoint {path} matches no SAN variant ({known}) by its tensor shapes; pass config=<json> for another size")


def network_state(state: dict[str, torch.Tensor], config: SANConfig, expected: dict[str, torch.Tensor],
                  path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint renamed to the network's keys, shapes checked. CLIP keys the file lacks are
    left for the caller to fill from clip_pretrained; anything else missing or unknown is one line."""
    renamed = {new: value for key, value in state.items() if (new := rename(key, config.feature_last_layer)) is not None}
    missing = [k for k in expected if k not in renamed and not k.startswith("clip.")]
    unexpected = [k for k in renamed if k not in expected]
    wrong = [f"{k} {tuple(renamed[k].shape)} (want {tuple(v.shape)})" for k, v in expected.items()
             if k in renamed and renamed[k].shape != v.shape]
    faults = [_listed(what, keys) for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if faults:
        raise ConfigError(f"SAN checkpoint {path} does not fit the {config.id} network: {'; '.join(faults)}")
    return renamed


def _listed(what: str, keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
    return f"{what} {', '.join(keys[:SHOWN_KEYS])}{more}"
