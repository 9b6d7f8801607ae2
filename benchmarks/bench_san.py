"""SAN's cost per frame on this machine: parameters, FLOPs (torch.utils.flop_counter, the whole
predict: resize, network, frame-size semantic inference) at the authors' 640 test size and at
the frame's own 480x853, CPU frames/s on one thread, and the cost of embedding a vocabulary
(classes x 14 ViLD templates, batched and trimmed to the longest prompt).

Random weights (checkpoint=none, seeded) cost what the released ones do: the shapes are the same.

    python benchmarks/bench_san.py [--config vit-b16] [--frames 2] [--classes 124]
"""

from __future__ import annotations

import argparse
import time

import torch
from ovbench.models.san.adapter import SAN
from torch.utils.flop_counter import FlopCounterMode

from ovbench.modelargs import parse_model_args

FRAME = (480, 853)  # a VSPW 480p frame


def flops(model: SAN, frames: torch.Tensor, text: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        model.predict(frames, text)
    return counter.get_total_flops() / frames.shape[0]


def frames_per_second(model: SAN, frames: torch.Tensor, text: torch.Tensor) -> float:
    model.predict(frames[:1], text)  # warm-up
    start = time.perf_counter()
    for frame in frames:
        model.predict(frame[None], text)
    return frames.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vit-b16")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--classes", type=int, default=124)
    options = parser.parse_args()
    torch.set_num_threads(1)
    frames = torch.randint(0, 256, (options.frames, 3, *FRAME), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    names = [f"class number {index}" for index in range(options.classes)]
    for test_size in (640, FRAME[0]):
        model = SAN(parse_model_args(SAN.Args, f"checkpoint=none,config={options.config},test_size={test_size}"), torch.device("cpu"))
        start = time.perf_counter()
        text = model.encode_text(names)
        text_seconds = time.perf_counter() - start
        parameters = sum(p.numel() for p in model.network.parameters())
        print(f"{options.config} test_size={test_size} on {FRAME[0]}x{FRAME[1]}: {parameters / 1e6:.2f} M parameters,"
              f" {flops(model, frames[:1], text) / 1e9:.1f} GFLOPs/frame, {frames_per_second(model, frames, text):.3f} frames/s"
              f" (1 thread), vocabulary of {options.classes} x 14 prompts {text_seconds:.1f} s")


if __name__ == "__main__":
    main()
