"""`ovbench score` end to end against the official three-process evaluation and a bare decode.

Writes its own 480x853 data (`ovbench data synth`, val videos only are scored) and predictions
(the ground truth shifted by a few pixels, plus 1% noise: converted VSPW ids, PNG at Pillow's
default compression), then times, each as a fresh process started the way a user would start it
(no OMP_NUM_THREADS), fastest of --repeats:

  score     `ovbench score --split vspw_all` (process start included);
  official  benchmarks/official_eval.py as the official evaluation.sh runs it: mIoU, VC8, VC16,
            three processes in a row, each reading every mask again;
  decode    one plain process that decodes every ground-truth and prediction PNG, nothing else;
  start     `ovbench --version`: the interpreter, torch and the CLI's imports, paid by any command.

once on a quiet machine and once while a busy-loop process keeps one core busy, and prints the
ratios against the targets (official/score >= 3 quiet, >= 2 busy; score/decode <= 1.5). The
metrics of score and official must agree (mIoU exactly, VC to 1e-12).

`--baseline PYTHON` adds `score@baseline`: the same command run by another environment's
interpreter (say a venv with an older ovbench checkout installed), timed in the same rounds.

    python benchmarks/bench_score.py [--videos 16] [--frames 69] [--repeats 2] [--work DIR] [--baseline PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ovbench.records.provenance import environment

HERE = Path(__file__).resolve().parent
DECODE = """
import sys, time
from pathlib import Path
import numpy as np
from PIL import Image

root, pred = Path(sys.argv[1]), Path(sys.argv[2])
start = time.perf_counter()
for video in (root / "val.txt").read_text().split():
    for mask in sorted((root / "data" / video / "mask").glob("*.png")):
        np.array(Image.open(mask)); np.array(Image.open(pred / video / mask.name))
print(f"decoded in {time.perf_counter() - start:.3f} s")
"""


def user_env() -> dict[str, str]:
    """The environment a new user starts from: no thread settings, no network."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**env, "HF_HUB_OFFLINE": "1"}


def write_data(work: Path, videos: int, frames: int) -> tuple[Path, Path, int]:
    """(data root, prediction folder, scored frames); reused when already in `work`."""
    root, pred = work / "VSPW_480p", work / "pred"
    if not (work / "done").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "ovbench", "data", "synth", "--out", str(root), "--videos", str(videos),
                        "--frames", str(frames), "--height", "480", "--width", "853"], check=True, env=user_env())
        write_predictions(root, pred)
        (work / "done").touch()
    count = sum(len(list((root / "data" / v / "mask").glob("*.png"))) for v in (root / "val.txt").read_text().split())
    return root, pred, count


def write_predictions(root: Path, pred: Path) -> None:
    from ovbench.data.vspw import VSPW

    data, rng = VSPW(root), np.random.default_rng(0)
    for video in data.videos("val"):
        (pred / video).mkdir(parents=True)
        for stem in data.frames(video):
            labels = np.roll(data.read_mask(video, stem), 3, axis=1)
            labels[labels == 255] = 0
            noise = rng.random(labels.shape) < 0.01
            labels[noise] = rng.integers(0, 124, int(noise.sum()))
            Image.fromarray(labels).save(pred / video / f"{stem}.png")


def timed(commands: list[list[str]]) -> tuple[float, float, str]:
    """Wall and CPU (user + system, all threads) seconds of the commands run one after the
    other, and their joined output. CPU time barely depends on what else the machine runs."""
    start, before, output = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), []
    for command in commands:
        # from a neutral folder: `python -m ovbench` must import each environment's installed
        # ovbench, not a checkout in the current folder
        done = subprocess.run(command, capture_output=True, text=True, env=user_env(), cwd=tempfile.gettempdir())
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        output.append(done.stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - start, cpu, "".join(output)


def commands(root: Path, pred: Path, out: Path, baseline: str | None) -> dict[str, list[list[str]]]:
    official = [sys.executable, str(HERE / "official_eval.py")]
    score = ["-m", "ovbench", "score", "--split", "vspw_all", "--pred", str(pred), "--data-root", str(root), "--no-progress"]
    return {
        "score": [[sys.executable, *score, "--out", str(out)]],
        **({"score@baseline": [[baseline, *score, "--out", f"{out}-baseline"]]} if baseline else {}),
        "official": [[*official, "miou", str(root), str(pred)], [*official, "vc", "8", str(root), str(pred)],
                     [*official, "vc", "16", str(root), str(pred)]],
        "decode": [[sys.executable, "-c", DECODE, str(root), str(pred)]],
        "start": [[sys.executable, "-m", "ovbench", "--version"]],  # what any ovbench command pays first
    }


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """A process that keeps one core busy for the duration."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None
    try:
        yield
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def check_agreement(score_out: Path, official_text: str) -> str:
    record = json.loads(next(score_out.glob("*.json")).read_text())
    official = dict(line.split() for line in official_text.splitlines())
    for key, tolerance in (("mIoU", 0.0), ("VC8", 1e-12), ("VC16", 1e-12)):
        ours, theirs = record["metrics"][key], float(official[key])
        if abs(ours - theirs) > tolerance:
            sys.exit(f"{key}: ovbench score {ours!r} but the official-style script {theirs!r}")
    return "mIoU, VC8, VC16 agree"


def check_same_record(out: Path, baseline_out: Path) -> str:
    ours, theirs = (json.loads(next(folder.glob("*.json")).read_text()) for folder in (out, baseline_out))
    for key in ("metrics", "per_class", "per_video"):
        if ours[key] != theirs[key]:
            sys.exit(f"score and score@baseline disagree on {key}")
    return "score and score@baseline: identical metrics, per-class and per-video results"


def measure(cmds: dict[str, list[list[str]]], repeats: int, busy: bool) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    with busy_core(busy):
        for _ in range(repeats):  # interleaved, so a burst of load elsewhere hits every contender
            for name, command in cmds.items():
                times[name].append(timed(command)[:2])
    return times


def report(label: str, times: dict[str, list[tuple[float, float]]], frames: int) -> None:
    best = {name: min(wall for wall, _ in values) for name, values in times.items()}
    cpu = {name: min(c for _, c in values) for name, values in times.items()}
    print(f"\n{label} (load average {os.getloadavg()[0]:.1f} after): wall seconds, fastest of "
          f"{len(times['score'])} (all runs), and CPU seconds (user + system, fewest)")
    for name, values in times.items():
        print(f"  {name:9s} {best[name]:7.2f}   ({', '.join(f'{w:.2f}' for w, _ in values)})   "
              f"{frames / best[name]:6.1f} frames/s   cpu {cpu[name]:6.2f}")
    print(f"  cpu: official / score = {cpu['official'] / cpu['score']:.2f}x   score / decode = {cpu['score'] / cpu['decode']:.2f}x")
    print(f"  official / score = {best['official'] / best['score']:.2f}x   score / decode = {best['score'] / best['decode']:.2f}x"
          f"   (score - start) / decode = {(best['score'] - best['start']) / best['decode']:.2f}x")
    if "score@baseline" in best:
        print(f"  score@baseline / score = {best['score@baseline'] / best['score']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16, help="synthetic videos (half are val, the scored ones)")
    parser.add_argument("--frames", type=int, default=69, help="frames per video")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", help="keep data here (reused by the next run); default: a temporary folder")
    parser.add_argument("--baseline", help="another environment's python: also time its `ovbench score`")
    args = parser.parse_args()

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ovbench-bench-score-")) / "data"
    try:
        root, pred, frames = write_data(work, args.videos, args.frames)
        out = work.parent / f"score-out-{os.getpid()}"
        cmds = commands(root, pred, out, args.baseline)
        print(f"{frames} frames of 480x853 ({args.videos // 2} val videos), {os.cpu_count()} cores, "
              f"{environment('cpu', 'n/a', 1)['device']}, python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f} before")
        timed(cmds["score"])
        print(check_agreement(out, timed(cmds["official"])[2]))
        if args.baseline:
            timed(cmds["score@baseline"])
            print(check_same_record(out, Path(f"{out}-baseline")))
        quiet = measure(cmds, args.repeats, busy=False)
        busy = measure(cmds, args.repeats, busy=True)
        report("quiet", quiet, frames)
        report("one core kept busy", busy, frames)
        print("\ntargets: official/score >= 3 quiet, >= 2 with one core busy; score/decode <= 1.5")
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(f"{out}-baseline", ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
