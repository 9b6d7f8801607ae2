"""Pipeline benchmark: is the runner out of the model's way, is text cached, is memory flat?

For each model: end-to-end vs model-only frames/s from the run record (target >= 0.9: decoding,
metrics and bookkeeping hide behind the model); the text-encoding time on a cold vs a warm
cache as a fraction of the run (target < 1% warm); and the peak RSS of a run over a short video
vs one 10x longer (target <= 1.1x), each run in a fresh process so the peaks are independent.

    python benchmarks/bench_pipeline.py [--models clip-dense,clip-twostage,gkc] [--device cuda --precision bf16]

The speed runs use the sample's layout (16 videos, 132 validation frames): on a GPU that is
too short to hide one-time costs (cuDNN autotuning, CUDA-graph capture, worker start-up);
`--speed-frames 120` gives each video 120 frames (960 validation frames) for the steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_cli(argv: list[str], env: dict) -> dict:
    """One `ovbench run` in a child process; returns its record and the child's peak RSS (MiB)."""
    code = (
        "import json, os, resource, sys\n"
        "from ovbench.cli import main\n"
        "import torch\n"
        "table = os.environ.get('OVBENCH_BENCH_PROFILE')\n"
        "if table:\n"
        "    from torch.profiler import ProfilerActivity, profile\n"
        "    cuda = torch.cuda.is_available()\n"
        "    with profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda) as prof:\n"
        "        status = main(sys.argv[1:])\n"
        "    key = 'self_cuda_time_total' if cuda else 'self_cpu_time_total'\n"
        "    open(table, 'w').write(prof.key_averages().table(sort_by=key, row_limit=40))\n"
        "else:\n"
        "    status = main(sys.argv[1:])\n"
        "gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0\n"
        "print('PEAK_GPU_B', gpu, 'PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ovbench {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    peak = int(done.stderr.split("PEAK_RSS_KB")[-1].split()[0]) / 1024
    gpu = int(done.stderr.split("PEAK_GPU_B")[-1].split()[0]) / 2**20
    record_path = done.stdout.strip().splitlines()[-1].removeprefix("record: ")
    return {"record": json.loads(Path(record_path).read_text()), "peak_mib": peak, "gpu_mib": gpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="clip-dense,clip-twostage,gkc")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=214)
    parser.add_argument("--frames", type=int, default=12, help="frames of the short video (the long one has 10x)")
    parser.add_argument("--speed-frames", type=int, help="give each speed-run video this many frames (default: the sample's 9 to 24) to see the steady state")
    parser.add_argument("--speed-videos", type=int, help="time only the first N validation videos")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--gkc-config", help="time gkc with a random-init checkpoint of this config (e.g. gkc-r50) instead of the shipped sample")
    parser.add_argument("--model-args", action="append", default=[], metavar="MODEL:K=V,...", help="override a model's args")
    parser.add_argument("--profile", type=Path, help="instead of timing: one run of the first model under torch.profiler, its op table written here")
    args = parser.parse_args()
    overrides = dict(item.split(":", 1) for item in args.model_args)

    from ovbench.data.synthetic.sample import SAMPLE
    from ovbench.data.synthetic.vspw import write_synthetic_vspw

    work = Path(tempfile.mkdtemp(prefix="ovbench-bench-"))
    env = {**os.environ, "OVBENCH_CACHE": str(work / "cache")}
    sample = write_synthetic_vspw(work / "sample", videos=SAMPLE["videos"], frames=args.speed_frames, height=args.height, width=args.width)
    if args.gkc_config:
        from gkc_weights import random_gkc_checkpoint

        overrides.setdefault("gkc", f"checkpoint={random_gkc_checkpoint(args.gkc_config, work)}")
    common = ["--split", "vspw_all", "--device", args.device, "--precision", args.precision,
              "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--no-progress"]
    speed_set = ["--data-root", str(sample)] + (["--limit-videos", str(args.speed_videos)] if args.speed_videos else [])
    if args.profile:
        model = args.models.split(",")[0]
        words = ["run", "--model", model, "--model-args", overrides.get(model, _sample_args(model)), *common, *speed_set]
        run_cli([*words, "--out", str(work / "profile")], {**env, "OVBENCH_BENCH_PROFILE": str(args.profile)})
        print(f"profile of one {model} run: {args.profile}")
        return
    print(f"device {args.device} ({args.precision}), {args.height}x{args.width} frames, batch {args.batch_size}, {args.workers} workers, torch threads {os.cpu_count()}")
    print(f"{'model':14s} {'frames':>6s} {'model fps':>9s} {'e2e fps':>8s} {'e2e/model':>9s} {'text cold s':>11s} {'text warm s':>11s} {'warm/run':>8s}")
    for model in args.models.split(","):
        words = ["run", "--model", model, "--model-args", overrides.get(model, _sample_args(model)), *common, *speed_set]
        cold = run_cli([*words, "--out", str(work / f"{model}-cold")], env)  # empty text cache
        warm = run_cli([*words, "--out", str(work / f"{model}-warm")], env)  # same vocabulary: cached
        timing = warm["record"]["timing"]
        print(
            f"{model:14s} {timing['frames']:6d} {timing['fps_model']:9.1f} {timing['fps_end_to_end']:8.1f} {timing['fps_end_to_end'] / timing['fps_model']:9.2f}"
            f" {cold['record']['timing']['text_seconds']:11.3f} {timing['text_seconds']:11.4f}"
            f" {100 * timing['text_seconds'] / (timing['seconds'] + timing['text_seconds']):7.2f}%"
        )

    if args.skip_memory:
        return
    print(f"\npeak memory of one run over a video of {args.frames} vs {10 * args.frames} frames (first model)")
    model = args.models.split(",")[0]
    peaks = []
    for frames in (args.frames, 10 * args.frames):
        root = write_synthetic_vspw(work / f"len{frames}", videos=1, frames=frames, height=480, width=853)
        out = run_cli(["run", "--model", model, "--model-args", overrides.get(model, _sample_args(model)), *common, "--data-root", str(root), "--out", str(work / f"mem{frames}")], env)
        peaks.append(out)
        print(f"  {frames:5d} frames: peak RSS {out['peak_mib']:8.1f} MiB, peak GPU memory {out['gpu_mib']:8.1f} MiB")
    print(f"  ratio long/short: RSS {peaks[1]['peak_mib'] / peaks[0]['peak_mib']:.3f}"
          + (f", GPU {peaks[1]['gpu_mib'] / peaks[0]['gpu_mib']:.3f}" if peaks[0]["gpu_mib"] else "") + " (target <= 1.1)")


def _sample_args(model: str) -> str:
    from ovbench.registry import get_model_class

    return ",".join(f"{k}={v}" for k, v in get_model_class(model).sample_args.items())


if __name__ == "__main__":
    main()
