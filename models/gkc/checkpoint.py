"""GKC checkpoints: one safetensors file (no pickle: loading a downloaded checkpoint cannot run
code) holding the network, the config that built it and where its CLIP text tower came from,
so a run record's numbers trace back to exact weights.

The frozen CLIP text tower is stored only when it is random-init (the tiny built-in sample):
then nothing else could reproduce its embeddings. It is stored in fp16 to keep the sample small;
`round_text_tower_to_fp16_` makes a random tower exactly representable before training, so the
embeddings at inference equal those the network was trained with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import safetensors
import torch
from ovbench.models.gkc.config import GKCConfig
from safetensors.torch import save
from torch import nn

from ovbench import __version__
from ovbench.api import WeightsInfo
from ovbench.errors import ConfigError, WeightsError
from ovbench.fileio import file_sha256, write_bytes
from ovbench.resolve import user_file
from ovbench.suggest import did_you_mean

FORMAT = "ovbench-gkc"
FORMAT_VERSION = "1"
METADATA_KEY = "ovbench"
BUILTIN_PREFIX = "builtin:"
WEIGHTS_DIR = Path(__file__).with_name("weights")
NETWORK_PREFIX = "network."
TEXT_PREFIX = "text."


def resolve_checkpoint(spec: str) -> Path:
    """A .safetensors path or `builtin:<name>` (ovbench/models/gkc/weights/<name>.safetensors)."""
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.is_file():
            shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []
            raise WeightsError(
                f"no built-in GKC checkpoint {spec!r}{did_you_mean(name, shipped)};"
                f" shipped: {', '.join(BUILTIN_PREFIX + s for s in shipped) or 'none'}"
            )
        return path
    return user_file(spec, "GKC checkpoint", WeightsError)


def text_tower_state(clip_model: nn.Module) -> dict[str, torch.Tensor]:
    """The CLIP model's state without its image tower (what text embeddings depend on)."""
    return {key: value for key, value in clip_model.state_dict().items() if not key.startswith("visual.")}


@torch.no_grad()
def round_text_tower_to_fp16_(clip_model: nn.Module) -> None:
    """Round the text tower's weights to fp16-representable values (kept in their dtype)."""
    state = clip_model.state_dict()
    for key, value in text_tower_state(clip_model).items():
        if value.is_floating_point():
            state[key].copy_(value.half().to(value.dtype))


@dataclasses.dataclass
class Checkpoint:
    path: Path
    sha256: str
    config: GKCConfig
    network: dict[str, torch.Tensor]
    text_tower: dict[str, torch.Tensor] | None  # present iff the CLIP text tower was random-init
    metadata: dict[str, str]

    @property
    def clip_weights(self) -> WeightsInfo:
        """The CLIP weights the network was trained against."""
        return WeightsInfo(
            source=self.metadata["clip_weights"],
            sha256=self.metadata.get("clip_sha256") or None,
            random_init=self.metadata.get("clip_random_init") == "true",
            backbone=self.config.clip_arch,
        )

    @property
    def training_stages(self) -> list[dict] | None:
        """The stages the weights went through (see train.training_stages); None for a
        checkpoint that does not record them (the built-in sample, a random benchmark file)."""
        stored = self.metadata.get("training_stages")
        return json.loads(stored) if stored else None

    @property
    def steps(self) -> int:
        return int(self.metadata.get("steps", "0"))


def save_checkpoint(
    path: str | Path,
    network: nn.Module,
    clip_model: nn.Module,
    clip_info: WeightsInfo,
    steps: int,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write atomically (temp file + rename, so an interrupted save never leaves a truncated
    checkpoint). `extra` adds the trainer's own metadata (strings)."""
    path = Path(path)
    tensors = {NETWORK_PREFIX + k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    if clip_info.random_init:
        for key, value in text_tower_state(clip_model).items():
            stored = value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu()
            if value.is_floating_point() and not torch.equal(stored.to(value.dtype), value.detach().cpu()):
                raise ValueError(f"random-init text tower weight {key} is not fp16-exact: call round_text_tower_to_fp16_ before training")
            tensors[TEXT_PREFIX + key] = stored.contiguous()
    config: GKCConfig = network.config  # type: ignore[assignment]
    metadata = {
        **(extra or {}),
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config_id": config.id,
        "config": config.to_json(),
        "clip_arch": config.clip_arch,
        "clip_weights": clip_info.source,
        "clip_sha256": clip_info.sha256 or "",
        "clip_random_init": "true" if clip_info.random_init else "false",
        "ovbench_version": __version__,
        "steps": str(steps),
    }
    # one key of sorted JSON: safetensors writes separate keys in hash order, so the same
    # training would give files with different bytes (and sha256) each time
    write_bytes(path, save(tensors, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)}))
    return path


def load_checkpoint(spec: str | Path) -> Checkpoint:
    path = resolve_checkpoint(str(spec))
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, safetensors.SafetensorError) as err:
        raise WeightsError(f"GKC checkpoint {path} cannot be read as safetensors: {err}") from None
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path} is not an ovbench GKC checkpoint (metadata format={metadata.get('format')!r})")
    try:
        config = GKCConfig.from_dict(json.loads(metadata["config"]), str(path))
    except (KeyError, json.JSONDecodeError, TypeError, ConfigError) as err:
        raise WeightsError(f"GKC checkpoint {path} has an unusable config in its metadata: {err}") from None
    network = {k[len(NETWORK_PREFIX) :]: v for k, v in tensors.items() if k.startswith(NETWORK_PREFIX)}
    text = {k[len(TEXT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TEXT_PREFIX)}
    return Checkpoint(path, file_sha256(path.resolve()), config, network, text or None, metadata)


def _first_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str | None:
    for key, value in expected.items():
        if key not in given:
            return f"{key} is missing"
        if given[key].shape != value.shape:
            return f"{key} has shape {tuple(given[key].shape)}, the model expects {tuple(value.shape)}"
    extra = [key for key in given if key not in expected]
    return f"{extra[0]} is not a weight of the model" if extra else None


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """load_state_dict that fails with a WeightsError naming the file and the first key that
    does not fit, instead of a page of missing/unexpected keys."""
    problem = _first_mismatch(module.state_dict(), state)
    if problem:
        raise WeightsError(f"GKC checkpoint {path} does not fit the {what}: {problem}")
    module.load_state_dict(state)


def load_network_state(network: nn.Module, checkpoint: Checkpoint) -> None:
    load_state_checked(network, checkpoint.network, checkpoint.path, f"network of config {network.config.id!r}")


def load_text_tower(clip_model: nn.Module, checkpoint: Checkpoint) -> None:
    """Put the checkpoint's stored (random-init) text tower into a CLIP model of its arch."""
    assert checkpoint.text_tower is not None
    current = text_tower_state(clip_model)
    state = {k: v.to(current[k].dtype) if k in current else v for k, v in checkpoint.text_tower.items()}
    problem = _first_mismatch(current, state)
    if problem:
        raise WeightsError(f"GKC checkpoint {checkpoint.path} does not fit the {checkpoint.config.clip_arch} text tower: {problem}")
    clip_model.load_state_dict(state, strict=False)
