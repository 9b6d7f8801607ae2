"""GKC's size and speed, side by side with the two-stage CLIP baseline it argues against.

Prints (1) parameters and FLOPs of the paper's configurations (gkc-r50 and gkc-r101, random init:
counts do not depend on weights) at 800x1216, gkc-r50 next to the published 44.1M / 268 GFLOPs, (2) frames/s of the
GKC adapter's `predict` (gkc-tiny and gkc-r50) at VSPW's 480x853 and, if
ovbench.models.clip_twostage is installed, of clip-twostage with the same CLIP arch (RN50),
timed the same way on the same frames, with the ratio.

FLOPs: torch.utils.flop_counter counts 2 flops per multiply-add; the paper's figures come from
detectron2's fvcore counter, which counts one multiply-add as one flop, so GMACs are the
comparable number. FlopCounterMode does not see grid_sample (deformable attention's sampling),
which is counted analytically and shown apart.

    python benchmarks/bench_gkc.py                          # CPU, a few frames
    python benchmarks/bench_gkc.py --device cuda --precision bf16 --frames 50
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before open_clip/huggingface_hub read it: never download here

import argparse
import contextlib
import logging
import platform
import tempfile
import time
from pathlib import Path

import torch
from gkc_weights import random_gkc_checkpoint
from ovbench.models.gkc.adapter import GKC
from ovbench.models.gkc.config import GKCConfig, load_config
from ovbench.models.gkc.network import GKCNetwork
from torch.utils.flop_counter import FlopCounterMode

from ovbench.modelargs import parse_model_args

PUBLISHED = {"params_m": 44.1, "gflops": 268.0}  # gkc.md: at 800x1216, from a later paper of the same group
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
VSPW_CLASSES = 124
TWOSTAGE_DEFAULTS = ["proposals=32,merge=0,templates=single", "proposals=100,merge=0,templates=single"]


def parse_size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def random_text(classes: int, dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    text = torch.nn.functional.normalize(torch.randn(classes, dim, device=device), dim=-1)
    return text, torch.arange(classes, device=device)


def deformable_sampling_macs(config: GKCConfig, size: tuple[int, int]) -> int:
    """Multiply-adds grid_sample does in the encoder: per query, head, level and point, a
    bilinear read of head_dim channels (4 taps) plus its attention weighting (1)."""
    height, width = (-(-s // 32) * 32 for s in size)
    queries = sum((height // s) * (width // s) for s in (8, 16, 32))
    return config.encoder_layers * queries * config.hidden_dim * 3 * config.deform_points * 5


def count_flops(network: GKCNetwork, size: tuple[int, int], device: torch.device) -> tuple[int, dict[str, int]]:
    """Forward flops (2 per multiply-add), total and per top-level block. Gradients stay on so
    nn.MultiheadAttention takes its decomposed path, whose matmuls the counter sees."""
    text, owner = random_text(VSPW_CLASSES, network.config.text_dim, device)
    images = torch.randn(1, 3, *size, device=device)
    counter = FlopCounterMode(display=False, depth=2)
    with counter:
        network(images, text, owner, VSPW_CLASSES)
    per_module = counter.get_flop_counts()
    blocks = {
        name.split(".", 1)[1]: sum(per_module[name].values())
        for name in per_module
        if name.count(".") == 1
    }
    return counter.get_total_flops(), blocks


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_second(model, names: list[str], size: tuple[int, int], args, device: torch.device) -> float:
    """predict() on `args.frames` frames (batch `args.batch`) after a warm-up, under the
    runner's autocast; text embedded once beforehand, as the runner does."""
    with torch.inference_mode():
        text = model.encode_text(names).to(device)
    frames = torch.randint(0, 256, (args.batch, 3, *size), dtype=torch.uint8, device=device)
    dtype = PRECISIONS[args.precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for _ in range(args.warmup):
            model.predict(frames, text)
        sync(device)
        start = time.perf_counter()
        batches = max(1, args.frames // args.batch)
        for _ in range(batches):
            model.predict(frames, text)
        sync(device)
    return batches * args.batch / (time.perf_counter() - start)


def gkc_adapter(config_id: str, folder: Path, device: torch.device, extra: str = "") -> GKC:
    """The real adapter over a random-init checkpoint of `config_id` (its text tower random
    too, stored in the file), so the timed path is exactly what `ovbench run` executes."""
    path = random_gkc_checkpoint(config_id, folder)
    return GKC(parse_model_args(GKC.Args, f"checkpoint={path},{extra}"), device)


def twostage_adapter(arch: str, extra: str, device: torch.device):
    try:
        from ovbench.models.clip_twostage import ClipTwoStage
    except ImportError:
        return None
    return ClipTwoStage(parse_model_args(ClipTwoStage.Args, f"clip={arch},pretrained=none,{extra}"), device)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def report_size(config_id: str, size: tuple[int, int], label: str, device: torch.device) -> None:
    """Trainable parameters and multiply-adds of one config (random init: counts do not
    depend on weights), against the published gkc-r50 figures."""
    config = load_config(config_id)
    network = GKCNetwork(config).to(device)
    # trainable parameters: fvcore (the paper's counter) sees no frozen-BN buffers either
    params = sum(p.numel() for p in network.parameters() if p.requires_grad)
    flops, blocks = count_flops(network, size, device)
    sampling = deformable_sampling_macs(config, size)
    gmacs = flops / 2e9
    published = config_id == "gkc-r50"
    versus = lambda value, ref: f"; published {ref} ({value / ref - 1:+.1%})" if published else ""
    print(f"\n{config_id} trainable parameters (frozen CLIP text tower and frozen BN excluded): {params / 1e6:.2f}M"
          + versus(params / 1e6, PUBLISHED["params_m"]))
    print(f"{config_id} at {label}: {gmacs:.1f} GMACs (FlopCounterMode flops / 2)"
          f" + {sampling / 1e9:.1f} GMACs deformable sampling (analytic) = {gmacs + sampling / 1e9:.1f}"
          + (f"; published {PUBLISHED['gflops']:.0f} GFLOPs (fvcore: 1 flop = 1 multiply-add)"
             f" ({gmacs / PUBLISHED['gflops'] - 1:+.1%} without sampling)" if published else ""))
    for name, value in blocks.items():
        print(f"  {name:16s} {value / 2e9:8.1f} GMACs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    parser.add_argument("--frames", type=int, default=3, help="timed frames per model")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches first")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", default="480x853", help="frame size for frames/s (VSPW 480p)")
    parser.add_argument("--flops-size", default="800x1216")
    parser.add_argument("--configs", default="gkc-tiny,gkc-r50")
    parser.add_argument("--flops-configs", default="gkc-r50,gkc-r101", help="configs whose size is counted")
    parser.add_argument("--twostage-args", action="append",
                        help="clip-twostage model args, repeatable; default: 32 proposals, and its default 100 as the"
                             " two-stage methods GKC compares with (merge=0: every superpixel is a proposal)")
    parser.add_argument("--twostage-clip", default="ViT-B-16", help="CLIP of clip-twostage (its default; RN50 for a lighter one)")
    parser.add_argument("--skip-flops", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    logging.disable(logging.WARNING)  # open_clip's "random init" warning: random weights are the point here
    print(f"device: {machine(device)}; torch {torch.__version__}; precision {args.precision}")

    if not args.skip_flops:
        for config_id in args.flops_configs.split(","):
            report_size(config_id, parse_size(args.flops_size), args.flops_size, device)

    size = parse_size(args.size)
    names = [f"class {i}" for i in range(VSPW_CLASSES)]
    print(f"\nframes/s of predict() at {args.size}, batch {args.batch}, {VSPW_CLASSES} classes:")
    rates = {}
    # on CUDA, also without CUDA graphs: kernel-by-kernel launching is what most code does
    variants = [("", "")] + ([("cuda_graphs=false", " eager")] if device.type == "cuda" else [])
    with tempfile.TemporaryDirectory() as folder:
        for config_id in args.configs.split(","):
            for extra, label in variants:
                model = gkc_adapter(config_id, Path(folder), device, extra)
                rates[config_id + label] = frames_per_second(model, names, size, args, device)
                print(f"  {config_id + label:20s} {rates[config_id + label]:8.2f} frames/s")
                del model
    baselines = {}
    for extra in args.twostage_args or TWOSTAGE_DEFAULTS:
        twostage = twostage_adapter(args.twostage_clip, extra, device)
        if twostage is None:
            print("  clip-twostage        not installed (ovbench.models.clip_twostage): no side-by-side ratio")
            return
        baselines[extra] = frames_per_second(twostage, names, size, args, device)
        print(f"  {'clip-twostage':20s} {baselines[extra]:8.2f} frames/s ({args.twostage_clip}, {extra})")
        del twostage
    for extra, rate in baselines.items():
        for name in (n for n in rates if n.startswith("gkc-r50")):
            print(f"  {name} / clip-twostage ({extra}): {rates[name] / rate:.1f}x")
    print("  (the paper's FLOPs ratio to two-stage methods with 100 proposals: about 4x)")


if __name__ == "__main__":
    main()
