"""The GKC training loop behind `ovbench train --model gkc` (and gkc-base, the ablation).

One step: a batch of augmented frames -> the network (CLIP-normalised pixels, the split's
vocabulary embedded by the frozen CLIP text tower) -> GKCCriterion on every decoder layer, with
the per-step inputs of the GKC terms built first: the frozen CLIP image tower on masked segment
crops (TGKD's teacher, and the per-segment synonym filter) and a drawn synonym per segment.

Reproducibility: the global RNG is re-seeded from (seed, rank, step) at every step and the
data stream is a function of (seed, position), so a run resumed from any checkpoint continues
exactly as the uninterrupted run would have; train_state.pt only has to hold the optimiser,
the gradient scaler, TGKD's scale and the step.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import open_clip
import torch
import torch.distributed as dist
from ovbench.models.clip_baseline import TEMPLATE_SETS
from ovbench.models.gkc.backbone import default_resnet101_file
from ovbench.models.gkc.checkpoint import Checkpoint, load_checkpoint, load_network_state, save_checkpoint
from ovbench.models.gkc.losses import GKCCriterion
from ovbench.models.gkc.network import GKCNetwork, normalize_pixels
from ovbench.models.gkc.train_args import TrainArgs, parse_train_args, training_stages
from ovbench.models.gkc.train_data import Augment, TrainFrames, train_loader
from ovbench.models.gkc.train_step import AMP_DTYPES, StepBuilder, TrainStep, apply_gradients, param_groups, replica_digests
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ovbench.api import TrainableModel, TrainJob, WeightsInfo
from ovbench.data.roots import dataset_name
from ovbench.errors import ConfigError, ModelError, WeightsError, first_line
from ovbench.fileio import write_atomic
from ovbench.run.distributed import join

STATE_FILE = "train_state.pt"
FINAL_FILE = "final.safetensors"
LOG_FILE = "train_log.jsonl"


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> 1)


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _load_state(out_dir: Path) -> dict | None:
    """train_state.pt, or None when there is none; never unpickles code (weights_only)."""
    path = out_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not {"step", "weights", "optimizer", "criterion", "scaler", "args"} <= state.keys():
            raise ValueError("not a GKC train state")
        return state
    except Exception as error:  # any unreadable file: truncated, foreign, or pickled objects
        raise WeightsError(f"{path}: cannot resume from it ({first_line(error)}); delete it or pass --overwrite to start over") from None


def _log_step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line half written when the process was killed


def _truncate_log(path: Path, step: int) -> None:
    """Keep the complete log lines up to `step`: a resumed run rewrites what followed its
    checkpoint, and a line cut short by a kill is dropped rather than stopping the resume."""
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [line + "\n" for line in lines if (logged := _log_step(line)) is not None and logged <= step]
    path.write_text("".join(kept))


def _initial_network(model, clip: nn.Module, clip_info, init: Checkpoint | None) -> tuple[GKCNetwork, dict]:
    """The network a run starts from, and where its weights come from (the first training
    stage; empty when an init checkpoint's own stages say it)."""
    config = model.config
    if init is not None:
        network = GKCNetwork(config)
        load_network_state(network, init)
        return network, {}
    if config.backbone == "clip":
        origin = {"backbone": f"CLIP {clip_info.backbone} visual trunk", "weights": clip_info.source, "random_init": clip_info.random_init}
        return GKCNetwork(config, clip), origin
    # gkc-r101: torchvision's ImageNet weights from a local file
    backbone_file = Path(model.args.backbone_weights).expanduser() if model.args.backbone_weights else default_resnet101_file()
    return GKCNetwork(config, backbone_file=backbone_file), {"backbone": f"{config.image_backbone}, ImageNet weights", "weights": str(backbone_file)}


@dataclasses.dataclass
class _Process:
    """This process's place in the training: its device, rank among `world`, the autocast dtype
    (CUDA only), the seed and where it speaks (rank 0 only)."""

    model: TrainableModel  # the GKC adapter: its config, args and CLIP weights
    job: TrainJob
    args: TrainArgs
    device: torch.device
    rank: int
    world: int
    seed: int
    amp_dtype: torch.dtype | None
    say: Callable[[str], None]

    @property
    def out_dir(self) -> Path:
        return Path(self.job.out_dir)


@dataclasses.dataclass
class _Parts:
    """What the steps use and update: the network and criterion (one module), the optimiser and
    gradient scaler, the builder of each step's GKC inputs; and what every checkpoint also
    holds: the CLIP whose text tower it stores or names, and the run's metadata."""

    trainable: TrainStep
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    builder: StepBuilder
    clip: nn.Module
    clip_info: WeightsInfo
    metadata: dict[str, str]  # the split, the train args (JSON) and the training stages


def train_gkc(model, job: TrainJob) -> Path:
    """Train `model` (a GKC adapter: its config, device and CLIP weights) as `job` says; writes
    step checkpoints, train_state.pt and train_log.jsonl to job.out_dir and returns the path
    of final.safetensors."""
    process = _start_process(model, job)
    parts = _build_parts(process)
    start = _resume(process, parts)
    _run_steps(process, parts, start)
    return _save_final(process, parts)


def _start_process(model, job: TrainJob) -> _Process:
    """Join the torchrun job (a no-op when the CLI joined already), pin the CUDA device, or on
    CPU take the runner's thread policy (17x slower oversubscribed)."""
    args = parse_train_args(type(model), job.options, job.split.dataset)
    device = torch.device(model.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    launch = join(device)
    rank, world = (launch.rank, launch.world) if launch else (0, 1)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        from ovbench.run.distributed import leave_cores_to_workers

        leave_cores_to_workers(args.workers)
    return _Process(
        model, job, args, device, rank, world,
        seed=job.seed if args.seed is None else args.seed,
        amp_dtype=AMP_DTYPES.get(job.precision) if device.type == "cuda" else None,
        say=_say if rank == 0 else (lambda message: None),
    )


def _build_parts(process: _Process) -> _Parts:
    """CLIP, the network (from the init checkpoint or pretrained weights), the optimiser and the
    checkpoints' metadata, built under the run's seed (the random inits depend on it)."""
    model, job, args, device = process.model, process.job, process.args, process.device
    torch.manual_seed(process.seed)
    clip, clip_info = model.load_clip()
    clip.requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(model.config.clip_arch)
    init = job.init or (model.checkpoint.path if model.checkpoint is not None else None)
    init_checkpoint = load_checkpoint(init) if init is not None else None
    network, origin = _initial_network(model, clip, clip_info, init_checkpoint)
    network.to(device)
    templates = TEMPLATE_SETS[model.args.templates]
    builder = StepBuilder(clip, tokenizer, clip_info.random_init, job.split.class_names, templates, args, process.world, process.say)
    if builder.teacher is None:
        del clip.visual  # only the text tower is needed from here on
    criterion = GKCCriterion(args.loss_config()).to(device)
    optimizer = torch.optim.AdamW(param_groups(network, criterion, args), lr=args.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=process.amp_dtype == torch.float16)
    stages = training_stages(init_checkpoint, origin, args, dataset_name(job.data_root), job.split, process.world)
    metadata = {
        "split": job.split.name,
        "split_hash": job.split.hash,
        "train_args": json.dumps(dataclasses.asdict(args), sort_keys=True),
        "training_stages": json.dumps(stages, sort_keys=True),
    }
    return _Parts(TrainStep(network, criterion), optimizer, scaler, builder, clip, clip_info, metadata)


def _resume(process: _Process, parts: _Parts) -> int:
    """The step to start from: a resumable train_state.pt's, else 0; rank 0 trims the log to it."""
    job, args, out_dir, say = process.job, process.args, process.out_dir, process.say
    state = _load_state(out_dir) if job.resume else None
    start = _restore(process, parts, state) if state is not None else 0
    if process.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        _truncate_log(out_dir / LOG_FILE, start)
    say(f"GKC training on {job.split.name} ({process.device}, {process.world} process(es)):"
        f" {len(job.split.class_names)} classes, steps {start}..{args.iterations}")
    if job.precision in AMP_DTYPES and process.amp_dtype is None:
        say(f"precision {job.precision} applies on CUDA only: training in fp32 on {process.device}")
    return start


def _run_steps(process: _Process, parts: _Parts, start: int) -> None:
    """Steps `start`..iterations, each from its own seed (see the module's docstring)."""
    args, device = process.args, process.device
    statistics = process.model.config.pixel_statistics
    loader = _batches(process, start)
    forward = _distributed(parts.trainable, process)
    parts.trainable.network.train()
    num_classes = len(process.job.split.class_names)
    text, owner = parts.builder.text.to(device), parts.builder.owner.to(device)
    log = _StepLog(process, start)
    for step in range(start, args.iterations):
        torch.manual_seed(_step_seed(process.seed, process.rank, step))
        images, targets = next(loader)
        images = images.to(device, non_blocking=True)
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        factor = args.lr_factor(step)
        for group in parts.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        with torch.autocast(device.type, dtype=process.amp_dtype or torch.float32, enabled=process.amp_dtype is not None):
            prepared = parts.builder(images, targets)
            losses = forward(normalize_pixels(images, statistics), text, owner, num_classes, prepared)
        apply_gradients(losses["loss"], parts.optimizer, parts.scaler, args.grad_clip)
        done = step + 1
        log(done, losses, args.lr * factor)
        if process.rank == 0 and done % args.checkpoint_every == 0 and done < args.iterations:
            _save(process, parts, f"step_{done:07d}.safetensors", done)
    log.close()


def _batches(process: _Process, start: int) -> Iterator:
    """(images, targets) batches from stream position `start` on: this rank's share, augmented
    with the padding colour of the backbone's pixel mean."""
    args, job = process.args, process.job
    mean_rgb = tuple(round(255 * m) for m in process.model.config.pixel_statistics[0])
    dataset = TrainFrames(job.data_root, job.split, Augment(args.crop_size(), args.short_min, args.short_max, mean_rgb))
    loader = train_loader(dataset, args.batch_size, process.seed, start, process.rank, process.world, args.workers,
                          process.device.type == "cuda")
    return iter(loader)


def _distributed(trainable: TrainStep, process: _Process) -> nn.Module:
    """The module each step calls: DistributedDataParallel over `trainable` with several processes."""
    if process.world == 1:
        return trainable
    args, device = process.args, process.device
    # a switched-off head (kd_embed and s without TGKD, the classifier without any CE) gets no gradient
    unused = not args.kd_weight or not (args.ce_weight or args.syn_weight)
    return DistributedDataParallel(trainable, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)


class _StepLog:
    """The progress bar and train_log.jsonl (rank 0 writes): the mean of each loss over every
    `log_every` steps, read back from the device only then."""

    def __init__(self, process: _Process, start: int):
        self.args, self.path, self.writes = process.args, process.out_dir / LOG_FILE, process.rank == 0
        self.bar = tqdm(total=self.args.iterations, initial=start, disable=not self.writes, desc="train gkc", dynamic_ncols=True)
        self.started, self.sums, self.count = time.time(), {}, 0

    def __call__(self, done: int, losses: dict[str, torch.Tensor], lr: float) -> None:
        self.sums = {k: self.sums.get(k, 0.0) + v.detach() for k, v in losses.items()}
        self.count += 1
        self.bar.update(1)
        if done % self.args.log_every and done != self.args.iterations:
            return
        means = {k: float(v) / self.count for k, v in self.sums.items()}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
        if self.writes:
            with open(self.path, "a") as handle:
                record = {"step": done, "lr": lr, "seconds": round(time.time() - self.started, 2), **means}
                handle.write(json.dumps(record) + "\n")
        self.sums, self.count = {}, 0

    def close(self) -> None:
        self.bar.close()


def _save_final(process: _Process, parts: _Parts) -> Path:
    """final.safetensors, written by rank 0 once every replica is proven bit-identical."""
    final = process.out_dir / FINAL_FILE
    digests = replica_digests(parts.trainable, process.world)
    if len(set(digests)) > 1:
        raise ModelError(f"training in {process.out_dir}: the {process.world} replicas ended with different weights (sha256 {digests})")
    if process.rank == 0:
        _save(process, parts, FINAL_FILE, process.args.iterations, {"replica_sha256": json.dumps(digests)})
    if process.world > 1:
        dist.barrier()
    return final


def _save(process: _Process, parts: _Parts, name: str, step: int, extra: dict[str, str] | None = None) -> Path:
    """Rank 0's writes: a network checkpoint (safetensors, through checkpoint.py), then
    train_state.pt naming it, each atomically (temp file + rename), in that order, so the state
    file always points to a complete checkpoint."""
    metadata = {**parts.metadata, **(extra or {})}
    weights = save_checkpoint(process.out_dir / name, parts.trainable.network, parts.clip, parts.clip_info, step, metadata)
    state = {
        "step": step,
        "weights": weights.name,
        "optimizer": parts.optimizer.state_dict(),
        "criterion": parts.trainable.criterion.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "seed": process.seed,
        "args": parts.metadata["train_args"],
        "stages": parts.metadata["training_stages"],
    }
    write_atomic(process.out_dir / STATE_FILE, lambda out: torch.save(state, out))
    return weights


def _restore(process: _Process, parts: _Parts, state: dict) -> int:
    """Load a train state's weights, optimiser, criterion and scaler; returns its step."""
    _refuse_another_training(process, parts, state)
    load_network_state(parts.trainable.network, load_checkpoint(process.out_dir / state["weights"]))
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.trainable.criterion.load_state_dict(state["criterion"])
    parts.scaler.load_state_dict(state["scaler"])
    return int(state["step"])


def _refuse_another_training(process: _Process, parts: _Parts, state: dict) -> None:
    """A resume continues the same training or nothing: other train args, another split or data,
    another starting checkpoint, seed or process count would leave weights whose recorded
    stages describe a training that never happened. One line naming what differs."""
    saved, now = json.loads(state["args"]), json.loads(parts.metadata["train_args"])
    changed = [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if state.get("seed", process.seed) != process.seed:
        changed.append(f"seed: {state['seed']} -> {process.seed}")
    if "stages" in state and not changed and state["stages"] != parts.metadata["training_stages"]:
        before, after = json.loads(state["stages"]), json.loads(parts.metadata["training_stages"])
        changed += [f"{k}: {before[-1].get(k)!r} -> {after[-1].get(k)!r}" for k in after[-1] if before[-1].get(k) != after[-1].get(k)]
        changed = changed or ["the starting weights"]
    if changed:
        raise ConfigError(f"{process.out_dir} holds another training ({'; '.join(changed[:4])}); pass --overwrite to start"
                          " over, or use another --out")
