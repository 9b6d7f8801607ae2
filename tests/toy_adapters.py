"""Adapters used by the tests: small, exact, and each breaking one rule on purpose."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time

import torch
import torch.nn.functional as F

from ovbench.api import SegmentationModel, WeightsInfo
from ovbench.modelargs import ModelArgs
from ovbench.registry import register_model

CALLS = {"encode_text": 0, "predict_frames": 0}
CRASH_AFTER_FRAMES = {"toy-colour": -1}  # simulate Ctrl-C after this many frames (-1: never)


def _name_vector(name: str, dim: int) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed))


def _wait_for(path: str | None, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while path and not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)


@dataclasses.dataclass
class ToyArgs(ModelArgs):
    dim: int = 8
    stride: int = 2
    fail_video: str = ""  # fail on these videos ("a+b")
    fail_with: str = "error"  # how: "error" (RuntimeError), "oom" (CUDA out of memory), "nan" (NaN scores)


@register_model("toy-colour")
class ToyColour(SegmentationModel):
    """Colour projection onto name vectors: deterministic, batch-independent, instant."""

    Args = ToyArgs

    def __init__(self, args: ToyArgs, device: torch.device):
        super().__init__(args, device)
        self.projection = torch.randn(3, args.dim, generator=torch.Generator().manual_seed(0)).to(device)
        self.video = ""

    def encode_text(self, names):
        CALLS["encode_text"] += 1
        return F.normalize(torch.stack([_name_vector(n, self.args.dim) for n in names]), dim=-1)

    def text_cache_key(self) -> str:
        return f"toy-colour/dim={self.args.dim}"

    def begin_video(self, video: str) -> None:
        self.video = video

    def predict(self, frames, text):
        failing = self.video in self.args.fail_video.split("+")
        if failing and self.args.fail_with == "error":
            raise RuntimeError("simulated failure")
        if failing and self.args.fail_with == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        CALLS["predict_frames"] += frames.shape[0]
        time.sleep(float(os.environ.get("OVBENCH_TOY_SLEEP", "0")))  # lets a test kill a run mid-video
        _wait_for(os.environ.get("OVBENCH_TOY_WAIT_FOR"))  # lets a test act while a run is in progress
        if 0 <= CRASH_AFTER_FRAMES["toy-colour"] < CALLS["predict_frames"]:
            raise KeyboardInterrupt
        small = F.avg_pool2d(frames.float() / 255, self.args.stride)
        features = torch.einsum("bchw,cd->bdhw", small, self.projection)
        scores = torch.einsum("bdhw,kd->bkhw", features, text.to(features.dtype))
        if failing and self.args.fail_with == "nan":
            scores[-1, 0, 0, 0] = float("nan")
        return scores

    def weights(self) -> WeightsInfo:
        return WeightsInfo(source="toy", random_init=False, backbone="colour")


@register_model("toy-labels")
class ToyLabels(ToyColour):
    """Integer labels from integer colour arithmetic: the same on every CPU, so golden files
    can hold its predictions byte for byte."""

    def predict(self, frames, text):
        rgb = frames.long()
        return (rgb[:, 0] * 7 + rgb[:, 1] * 3 + rgb[:, 2]) // 16 % text.shape[0]


@register_model("toy-wrong-shape")
class ToyWrongShape(ToyColour):
    """Returns one class too few."""

    def predict(self, frames, text):
        return super().predict(frames, text)[:, :-1]


@register_model("toy-nondeterministic")
class ToyNondeterministic(ToyColour):
    """Adds noise: check-model must notice."""

    def predict(self, frames, text):
        out = super().predict(frames, text)
        return out + torch.rand_like(out)


@register_model("toy-stateful")
class ToyStateful(ToyColour):
    """A video model: each frame's scores depend on the frames before it in the video (a
    running mean of colours), reset by begin_video. Deterministic, batch-independent."""

    def begin_video(self, video: str) -> None:
        super().begin_video(video)
        self.memory: torch.Tensor | None = None
        self.seen = 0

    def predict(self, frames, text):
        out = []
        for frame in super().predict(frames, text):
            self.memory = frame if self.memory is None else self.memory + frame
            self.seen += 1
            out.append(self.memory / self.seen)
        return torch.stack(out)
