"""GKC on the benchmark: a trained checkpoint plus the frozen CLIP text tower it was trained
against. At inference only the text tower of CLIP is kept (for the vocabulary, embedded once
and cached by the runner); frames go through the GKC network alone.

Text tensor: `encode_text` returns (C, K, D), K the largest number of "_or_" name parts of any
class, a class with fewer parts padded with copies of its first part (the layout every CLIP
adapter shares, see ovbench/models/clip_baseline.py; a copy never changes the max over parts).
`predict` flattens it back to per-part embeddings for the network's max-over-parts classifier.

Speed on a GPU: the network launches over a thousand small kernels per batch, and the host's
time to launch them, not the GPU's time to run them, sets the pace (on the H100 machine used
for the benchmark, about 55 ms of launching for 12 ms of GPU work per 480p frame). So `predict`
replays one captured CUDA graph per input shape (`cuda_graphs=true`, the default), and under
autocast runs a copy of the network whose matmul weights already have the autocast dtype.

Training (`ovbench train --model gkc`) is implemented in train.py; it uses `config`,
`load_clip()` and checkpoint.save_checkpoint from here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import open_clip
import torch
import torch.nn.functional as F
from ovbench.models.clip_baseline import TemplateSet, encode_vocabulary, text_cache_key
from ovbench.models.clip_loading import RANDOM_INIT, create_clip
from ovbench.models.gkc.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_network_state,
    load_text_tower,
    round_text_tower_to_fp16_,
)
from ovbench.models.gkc.config import GKCConfig, load_config
from ovbench.models.gkc.network import GKCNetwork, normalize_pixels
from torch import nn

from ovbench.api import TrainableModel, TrainJob, WeightsInfo
from ovbench.errors import ConfigError, WeightsError
from ovbench.modelargs import ModelArgs, PositiveInt
from ovbench.registry import register_model

DEFAULT_CONFIG = "gkc-r50"
GRAPH_CACHE_SIZE = 4  # input shapes kept captured (the runner groups videos by frame size)
MATMUL_MODULES = (nn.Linear, nn.Conv2d, nn.MultiheadAttention)
NO_CHECKPOINT = "gkc needs checkpoint=<file.safetensors or builtin:NAME>: train one with `ovbench train --model gkc ...`"


@dataclasses.dataclass
class GKCArgs(ModelArgs):
    checkpoint: str | None = None  # a .safetensors file or builtin:NAME
    config: str | None = None  # a configs/ id or json path; default: the checkpoint's, else gkc-r50
    clip_pretrained: str = "openai"  # CLIP weights the checkpoint was trained with (ignored if it stores its own text tower)
    input_size: PositiveInt | None = None  # resize frames to this short side; default: as given (VSPW 480p)
    templates: TemplateSet = "single"  # GKC embeds the raw name ("{}")
    cuda_graphs: bool = True  # on CUDA, replay captured graphs instead of launching kernels one by one
    backbone_weights: str | None = None  # training gkc-r101: torchvision's resnet101-63fe2227.pth; default: torch's hub cache


@dataclasses.dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    frames: torch.Tensor  # static input and output buffers of the graph
    text: torch.Tensor
    scores: torch.Tensor


SAMPLE_CHECKPOINT = "builtin:gkc-tiny-sample"
SAMPLE_CAVEAT = ("trained on the built-in synthetic sample only (its text tower is random): it segments those scenes,"
                 " not real video; its labels on your own frames mean nothing")

class CudaGraphCache:
    """`run(frames, text) -> scores` replayed as CUDA graphs, one per input shape and autocast
    dtype, least recently used dropped beyond `size`. A smaller batch replays the graph of a
    larger one: the spare slots compute on stale frames and are dropped (frames never interact
    in this network: eval-mode norms, per-image attention)."""

    def __init__(self, run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], size: int = GRAPH_CACHE_SIZE):
        self.run, self.size = run, size
        self.entries: OrderedDict[tuple, _Captured] = OrderedDict()

    def __call__(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (frames.device, tuple(frames.shape[1:]), frames.dtype, tuple(text.shape), text.dtype, dtype,
               torch.is_inference_mode_enabled())
        batch = frames.shape[0]
        entry = self.entries.get(key)
        if entry is None or entry.frames.shape[0] < batch:
            self.entries.pop(key, None)
            entry = self.entries[key] = self._capture(frames, text, dtype)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        self.entries.move_to_end(key)
        entry.frames[:batch].copy_(frames)
        entry.text.copy_(text)
        entry.graph.replay()
        return entry.scores[:batch].clone()  # the next replay overwrites the static output

    def _capture(self, frames: torch.Tensor, text: torch.Tensor, dtype: torch.dtype | None) -> _Captured:
        static_frames, static_text = frames.clone(), text.clone()
        # autocast's cast cache must stay off while capturing: cached casts would be freed
        # when the caller's autocast region ends, under the graph's feet
        autocast = torch.autocast("cuda", dtype=dtype, cache_enabled=False) if dtype else contextlib.nullcontext()
        with torch.cuda.device(frames.device):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), autocast:
                for _ in range(2):  # warm-up outside the graph: cuDNN choices, lazy initialisation
                    self.run(static_frames, static_text)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the DataLoader's pin-memory thread keeps calling CUDA meanwhile
            with autocast, torch.cuda.graph(graph, capture_error_mode="thread_local"):
                scores = self.run(static_frames, static_text)
        return _Captured(graph, static_frames, static_text, scores)


@register_model("gkc")
class GKC(TrainableModel):
    """GKC (ICCV 2023): Mask2Former + CLIP text classifier, trained with text diversification
    and text-guided distillation; no CLIP image encoder at inference."""

    Args = GKCArgs
    sample_args: ClassVar[dict[str, str]] = {"checkpoint": SAMPLE_CHECKPOINT}
    # train.py starts from these `--train-args` defaults (the user's words override them)
    default_train_options: ClassVar[dict[str, str]] = {}

    def __init__(self, args: GKCArgs, device: torch.device):
        super().__init__(args, device)
        self.checkpoint: Checkpoint | None = None
        self.network: GKCNetwork | None = None
        self._autocast_networks: dict[torch.dtype, GKCNetwork] = {}
        self._graphs = CudaGraphCache(self._scores)
        if args.checkpoint is None:  # only training can proceed; inference asks for one
            self.config: GKCConfig = load_config(args.config or DEFAULT_CONFIG)
            return
        checkpoint = load_checkpoint(args.checkpoint)
        if args.config is not None and load_config(args.config) != checkpoint.config:
            raise ConfigError(
                f"config={args.config} does not match the config {checkpoint.config.id!r} stored in {checkpoint.path};"
                " leave config= out to use the checkpoint's"
            )
        self.check_training(checkpoint)
        self.checkpoint, self.config = checkpoint, checkpoint.config
        self.clip, self._text_weights = self._inference_text_tower(checkpoint)
        del self.clip.visual  # no CLIP image encoder at inference
        self.tokenizer = open_clip.get_tokenizer(self.config.clip_arch)
        network = GKCNetwork(self.config)
        load_network_state(network, checkpoint)
        self.network = network.to(device).eval()

    def check_training(self, checkpoint: Checkpoint) -> None:
        """GKC evaluates weights of any training; its ablation (GKCBase) refuses them below."""

    def _inference_text_tower(self, checkpoint: Checkpoint) -> tuple[torch.nn.Module, WeightsInfo]:
        arch = self.config.clip_arch
        if checkpoint.text_tower is not None:
            clip, _ = create_clip(arch, RANDOM_INIT, self.device)  # create_clip keeps open_clip's random-init warning quiet
            load_text_tower(clip, checkpoint)
            # the stored tower is identified by the checkpoint file that holds it
            return clip, WeightsInfo(source=str(checkpoint.path), sha256=checkpoint.sha256, backbone=arch)
        trained = checkpoint.clip_weights
        clip, info = create_clip(arch, self.args.clip_pretrained, self.device)
        if info.sha256 != trained.sha256:
            raise WeightsError(
                f"GKC checkpoint {checkpoint.path} was trained with CLIP text weights {trained.source}"
                f" (sha256 {(trained.sha256 or 'none')[:12]}), but clip_pretrained={self.args.clip_pretrained}"
                f" gives sha256 {(info.sha256 or 'none (random init)')[:12]}; pass the same weights"
            )
        return clip, info

    def load_clip(self) -> tuple[torch.nn.Module, WeightsInfo]:
        """The full CLIP (image tower too: the backbone's initialisation and the distillation
        teacher) for training, from `clip_pretrained`. A random-init text tower is rounded to
        fp16 so that the checkpoint can store it exactly."""
        clip, info = create_clip(self.config.clip_arch, self.args.clip_pretrained, self.device)
        if info.random_init:
            round_text_tower_to_fp16_(clip)
        return clip, info

    def _require_network(self) -> GKCNetwork:
        if self.network is None:
            raise WeightsError(NO_CHECKPOINT)
        return self.network

    def _network_for(self, device_type: str) -> GKCNetwork:
        """Under autocast, a copy whose matmul weights already have the autocast dtype.
        Autocast would cast each fp32 weight again at every use (several hundred copies per
        frame, which leave the GPU waiting on the CPU); the values it computes are the same,
        since it casts exactly these weights and keeps norms and embeddings in fp32."""
        network = self._require_network()
        if not torch.is_autocast_enabled(device_type):
            return network
        dtype = torch.get_autocast_dtype(device_type)
        if dtype not in self._autocast_networks:
            cast = copy.deepcopy(network)
            for module in cast.modules():
                if isinstance(module, MATMUL_MODULES):
                    module.to(dtype)
            self._autocast_networks[dtype] = cast
        return self._autocast_networks[dtype]

    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        self._require_network()
        return encode_vocabulary(self.clip, self.tokenizer, names, self.args.templates)

    def text_cache_key(self) -> str | None:
        self._require_network()
        return text_cache_key(self.config.clip_arch, self._text_weights, self.args.templates)

    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self._require_network()
        if self.args.cuda_graphs and frames.device.type == "cuda" and not torch.is_grad_enabled():
            return self._graphs(frames, text)
        return self._scores(frames, text)

    def _scores(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        network = self._network_for(frames.device.type)
        images = normalize_pixels(frames, self.config.pixel_statistics)
        frame_size = tuple(frames.shape[-2:])
        if self.args.input_size is not None:
            scale = self.args.input_size / min(images.shape[-2:])
            size = (round(images.shape[-2] * scale), round(images.shape[-1] * scale))
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
        classes, parts, _ = text.shape
        owner = torch.arange(classes, device=text.device).repeat_interleave(parts)
        out = network(images, text.flatten(0, 1), owner, classes, aux=False)
        # scores at the frame's own size, so the runner takes the argmax as is
        return network.semantic_inference(out["pred_logits"], out["pred_masks"], tuple(images.shape[-2:]), frame_size)

    def weights(self) -> WeightsInfo:
        if self.checkpoint is None:
            raise WeightsError(NO_CHECKPOINT)
        return WeightsInfo(
            source=self.args.checkpoint or str(self.checkpoint.path),
            sha256=self.checkpoint.sha256,
            random_init=False,
            backbone=self.config.image_backbone,
            text_encoder=self.config.clip_arch,
            training=self.checkpoint.training_stages,
            random_parts=["CLIP text tower"] if self.checkpoint.clip_weights.random_init else None,
            caveat=SAMPLE_CAVEAT if self.args.checkpoint == SAMPLE_CHECKPOINT else None,
        )

    def train_model(self, job: TrainJob) -> Path:
        from ovbench.models.gkc.train import train_gkc

        return train_gkc(self, job)


@register_model("gkc-base")
class GKCBase(GKC):
    """The ablation: the same network trained as a plain Mask2Former with a CLIP text
    classifier (no text diversification, no distillation)."""

    default_train_options: ClassVar[dict[str, str]] = {"syn_weight": "0", "kd_weight": "0"}
    sample_args: ClassVar[dict[str, str]] = {}  # the sample checkpoint is GKC-trained: no gkc-base row from it

    def check_training(self, checkpoint: Checkpoint) -> None:
        """A row labelled GKC-base must hold weights trained without GKC's two losses: a
        checkpoint whose recorded training used synonym CE or distillation is refused."""
        used = sorted({loss for stage in checkpoint.training_stages or [] for loss, weight in (stage.get("losses") or {}).items()
                       if loss in ("synonym_ce", "tgkd") and weight})
        if used:
            raise ConfigError(f"{checkpoint.path} was trained with {' and '.join(used)} (GKC's losses): it is no gkc-base"
                              " checkpoint; evaluate it with --model gkc, or train gkc-base with `ovbench train --model gkc-base`")
