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
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np
import open_clip
import torch
import torch.distributed as dist
import torch.nn.functional as F
from ovbench.models.clip_baseline import TEMPLATE_SETS
from ovbench.models.clip_loading import encode_class_names
from ovbench.models.gkc.backbone import default_resnet101_file
from ovbench.models.gkc.checkpoint import Checkpoint, load_checkpoint, load_network_state, save_checkpoint
from ovbench.models.gkc.losses import GKCCriterion, KDRegions, LossConfig, StepTargets, masked_crops, select_regions
from ovbench.models.gkc.network import GKCNetwork, normalize_pixels
from ovbench.models.gkc.synonyms import SynonymBank, SynonymFilter, rebuild_vocabulary
from ovbench.models.gkc.train_data import Augment, TrainFrames, train_loader
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ovbench.api import TrainableModel, TrainJob, WeightsInfo
from ovbench.data.roots import dataset_name
from ovbench.errors import ConfigError, ModelError, WeightsError, first_line
from ovbench.fileio import write_atomic
from ovbench.modelargs import ModelArgs, parse_model_args, parse_pairs
from ovbench.run.distributed import join

STATE_FILE = "train_state.pt"
FINAL_FILE = "final.safetensors"
LOG_FILE = "train_log.jsonl"
TEACHER_BATCH = 256  # masked crops per CLIP image forward (memory only)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d, nn.Embedding)


@dataclasses.dataclass
class TrainArgs(LossConfig, ModelArgs):
    """`--train-args`: defaults are the paper's video fine-tuning on VSPW (Mask2Former's
    optimiser settings); the tiny config wants a small crop, few points and a higher lr."""

    iterations: int = 6000
    batch_size: int = 16  # per process
    lr: float = 1e-4
    weight_decay: float = 0.05
    backbone_lr_mult: float = 0.1
    schedule: Literal["poly", "step"] = "poly"
    poly_power: float = 0.9
    lr_steps: str = "0.89:0.96"  # fractions of `iterations` where the step schedule multiplies lr by 0.1
    warmup_iters: int = 0
    grad_clip: float = 0.01  # max L2 norm of all gradients together (Mask2Former's "full_model"); 0 = off
    crop: int = 512  # crop width
    crop_height: int = 0  # 0: see crop_size()
    short_min: int = 360
    short_max: int = 480
    # the loss weights and point sampling are LossConfig's fields
    max_kd_regions: int = 200
    syn_filter: bool = True  # CLIP filtering of synonyms per segment (needs real CLIP weights)
    checkpoint_every: int = 1000
    log_every: int = 20
    workers: int = 4
    seed: int | None = None  # default: the job's --seed

    def loss_config(self) -> LossConfig:
        fields = {f.name for f in dataclasses.fields(LossConfig)}
        return LossConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in fields})

    def crop_size(self) -> tuple[int, int]:
        """(height, width) of the training crops. By default the height is the largest multiple
        of 32 within both `crop` and `short_min` (352 x 512 for the video settings): a
        landscape frame scaled to a short side of 360-480 then always fills the crop, where
        a 512 x 512 crop would be 6-30% ignore padding, and no network padding is added."""
        if self.crop_height:
            return self.crop_height, self.crop
        limit = min(self.crop, self.short_min)
        return (limit // 32 * 32 if limit >= 32 else limit), self.crop

    def lr_factor(self, step: int) -> float:
        if step < self.warmup_iters:
            return (step + 1) / self.warmup_iters
        if self.schedule == "poly":
            return (1 - step / self.iterations) ** self.poly_power
        return 0.1 ** sum(step >= float(f) * self.iterations for f in self.lr_steps.split(":"))


# GKC's image stage on COCO Panoptic (gkc.md): 50k iterations on 512x512 crops; the scale jitter
# is Mask2Former's 512-crop semantic config (short side 0.5x..2x of 512), which the authors keep.
IMAGE_STAGE_DEFAULTS = {"iterations": 50000, "crop": 512, "crop_height": 512, "short_min": 256, "short_max": 1024}
DATASET_DEFAULTS = {"coco": IMAGE_STAGE_DEFAULTS}


def parse_train_args(model_cls: type, options: str, dataset: str = "vspw") -> TrainArgs:
    """The data set's schedule (COCO: the image stage), then the model class's
    `default_train_options` (gkc-base switches syn and kd off), overridden by the user's words."""
    chosen = {**DATASET_DEFAULTS.get(dataset, {}), **getattr(model_cls, "default_train_options", {}), **parse_pairs(options)}
    args = parse_model_args(TrainArgs, chosen)
    if args.crop_height < 0:
        raise ConfigError(f"train argument crop_height={args.crop_height}: must be positive (0: automatic)")
    for name in ("iterations", "batch_size", "crop", "num_points", "log_every", "checkpoint_every"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"train argument {name}={getattr(args, name)}: must be positive")
    if not 0 < args.short_min <= args.short_max:
        raise ConfigError(f"train arguments short_min={args.short_min}, short_max={args.short_max}: need 0 < short_min <= short_max")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"train argument seed={args.seed}: must be >= 0")
    if not 0 <= args.region_dropout < 1:
        raise ConfigError(f"train argument region_dropout={args.region_dropout}: must be in [0, 1)")
    try:
        [float(f) for f in args.lr_steps.split(":")]
    except ValueError:
        raise ConfigError(f"train argument lr_steps={args.lr_steps!r}: fractions joined by ':' (e.g. 0.89:0.96)") from None
    return args


def _param_groups(network: nn.Module, criterion: nn.Module, args: TrainArgs) -> list[dict]:
    """Backbone at lr x backbone_lr_mult; weight decay on every weight and bias except those of
    norms and embeddings, as detectron2's Mask2Former optimiser (WEIGHT_DECAY_NORM and
    WEIGHT_DECAY_EMBED 0). The two learned scalars, CLIP's logit scale and TGKD's s, are
    temperatures rather than weights and are not decayed: decay would pull the logit scale
    towards a flat softmax."""
    no_decay = {id(p) for m in network.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False)}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in network.named_parameters():
        if param.requires_grad:
            decay = id(param) not in no_decay and param.ndim > 0
            groups.setdefault((name.startswith("backbone."), decay), []).append(param)
    groups.setdefault((False, False), []).extend(criterion.parameters())
    return [
        {
            "params": params,
            "lr": args.lr * (args.backbone_lr_mult if backbone else 1.0),
            "base_lr": args.lr * (args.backbone_lr_mult if backbone else 1.0),
            "weight_decay": args.weight_decay if decay else 0.0,
        }
        for (backbone, decay), params in sorted(groups.items())
    ]


class StepBuilder:
    """Builds the per-step inputs of the GKC terms (shared by every decoder layer): the teacher
    embeddings of up to `max_kd_regions` masked segment crops, the synonym drawn for each
    segment among those CLIP keeps for that segment's crop (every segment is filtered, as in
    GKC; the teacher then embeds every segment, in chunks of TEACHER_BATCH crops, and TGKD
    reuses the embeddings of its chosen regions) and each image's vocabulary rebuilt with them."""

    def __init__(self, clip: nn.Module, tokenizer, clip_random: bool, class_names, templates, args: TrainArgs, world: int,
                 say: Callable[[str], None]):
        self.args, self.world = args, world
        self.text, self.owner = encode_class_names(clip, tokenizer, class_names, templates)
        self.owner = self.owner.to(self.text.device)
        # TGKD's T_i without synonyms: the mean of the class's name parts
        summed = torch.zeros(len(class_names), self.text.shape[1], device=self.text.device).index_add_(0, self.owner, self.text)
        self.class_text = F.normalize(summed, dim=-1)
        self.bank = self.filter = None
        if args.syn_weight:
            self.bank = SynonymBank(class_names, lambda words: encode_class_names(clip, tokenizer, words, templates)[0])
            if args.syn_filter and not clip_random:
                self.filter = SynonymFilter(clip, tokenizer, self.bank.synonyms)
            else:
                say(f"synonym filter off ({'random-init CLIP' if clip_random else 'syn_filter=false'}): every synonym of a class is kept")
        self.teacher = clip if (args.kd_weight or self.filter) else None
        if self.teacher is not None:
            cfg = clip.visual.preprocess_cfg
            self.size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
            self.mean, self.std = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"])

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> StepTargets:
        counts = [len(t["labels"]) for t in targets]
        num_masks = torch.tensor(float(sum(counts)), device=images.device)
        if self.world > 1:
            dist.all_reduce(num_masks)
        step = StepTargets(targets, max(float(num_masks) / self.world, 1.0))
        regions = select_regions(counts, self.args.max_kd_regions) if self.args.kd_weight else None
        # the filter needs every segment's crop, TGKD only its regions'
        embedded = [torch.arange(n) for n in counts] if self.filter is not None else regions
        teacher = self._teacher_embeddings(images, targets, embedded) if embedded is not None else None
        drawn = []
        for b, t in enumerate(targets):
            if self.bank is None:
                drawn.append(self.class_text[t["labels"]])
                continue
            kept = self.filter.keep(teacher[b], t["labels"]) if self.filter is not None and counts[b] else [None] * counts[b]
            drawn.append(self.bank.embeddings[self.bank.draw(t["labels"], kept)])
        if self.bank is not None:
            step.syn_vocab = [rebuild_vocabulary(self.text, self.owner, t["labels"], d) for t, d in zip(targets, drawn)]
        if regions is not None:
            step.kd = [
                KDRegions(r, teacher[b][r.to(teacher[b].device)] if self.filter is not None else teacher[b], drawn[b][r.to(drawn[b].device)])
                for b, r in enumerate(regions)
            ]
        return step

    def _teacher_embeddings(self, images: torch.Tensor, targets: list[dict], segments: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per image (n_b, D) L2-normalised CLIP embeddings of the masked crops of `segments[b]`."""
        crops = [masked_crops(img, t["masks"][s.to(t["masks"].device)], self.size, self.mean, self.std)
                 for img, t, s in zip(images, targets, segments) if len(s)]
        dim = self.text.shape[1]
        flat = torch.cat(crops) if crops else torch.empty(0, 3, self.size, self.size, device=images.device)
        embeddings = [self.teacher.encode_image(chunk, normalize=True).float() for chunk in flat.split(TEACHER_BATCH)]
        joined = torch.cat(embeddings) if embeddings else torch.empty(0, dim, device=images.device)
        return list(joined.split([len(s) for s in segments]))


class TrainStep(nn.Module):
    """The network and the criterion as one module, so that DistributedDataParallel owns every
    trainable parameter, TGKD's scale s included: their gradients are averaged alike on every
    rank, so gradient clipping sees the same norm, a GradScaler finds the same inf/NaN and
    skips the same steps, and the replicas stay bit-identical (DDP never re-syncs them)."""

    def __init__(self, network: GKCNetwork, criterion: GKCCriterion):
        super().__init__()
        self.network, self.criterion = network, criterion

    def forward(self, images: torch.Tensor, text: torch.Tensor, owner: torch.Tensor, num_classes: int,
                step: StepTargets) -> dict[str, torch.Tensor]:
        outputs = self.network(images, text, owner, num_classes)
        return self.criterion(outputs, step, self.network.classify, num_classes)


def replica_digests(module: nn.Module, world: int) -> list[str]:
    """Every rank's sha256 of `module`'s parameters (bytes, in name order): equal digests prove
    the replicas are bit-identical; rank 0 stores them in the final checkpoint."""
    digest = hashlib.sha256()
    for name, param in module.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    if world == 1:
        return [digest.hexdigest()]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, digest.hexdigest())
    return gathered


def training_stages(init: Checkpoint | None, origin: dict, args: TrainArgs, dataset: str, split, world: int) -> list[dict]:
    """What the weights went through, oldest first, stored in every checkpoint and copied into
    run records (a number must say whether its model saw an image stage, which data and which
    schedule). A run started from an ovbench checkpoint continues its list; from a checkpoint
    made elsewhere, the list starts with that file; from pretrained weights, with `origin`."""
    if init is None:
        stages = [{"stage": "init", **origin}]
    else:
        stages = init.training_stages or [{"stage": "init", "checkpoint": str(init.path), "sha256": init.sha256}]
    height, width = args.crop_size()
    stages.append({
        "stage": "images" if split.kind.image else "video frames",  # GKC's image stage, or its video stage
        "data": f"{dataset} {split.name} ({split.hash})",
        "iterations": args.iterations,
        "batch": args.batch_size * world,
        "lr": args.lr,
        "schedule": args.schedule,
        "crop": f"{height}x{width}, short side {args.short_min}-{args.short_max}",
        "losses": {"ce": args.ce_weight, "synonym_ce": args.syn_weight, "tgkd": args.kd_weight},
    })
    return stages


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


def _apply_gradients(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float) -> None:
    """Backward, then Mask2Former's full-model gradient clipping and the (scaled) step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    scaler.step(optimizer)
    scaler.update()


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
    optimizer = torch.optim.AdamW(_param_groups(network, criterion, args), lr=args.lr)
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
        _apply_gradients(losses["loss"], parts.optimizer, parts.scaler, args.grad_clip)
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
    }
    write_atomic(process.out_dir / STATE_FILE, lambda out: torch.save(state, out))
    return weights


def _restore(process: _Process, parts: _Parts, state: dict) -> int:
    """Load a train state's weights, optimiser, criterion and scaler; returns its step."""
    load_network_state(parts.trainable.network, load_checkpoint(process.out_dir / state["weights"]))
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.trainable.criterion.load_state_dict(state["criterion"])
    parts.scaler.load_state_dict(state["scaler"])
    start = int(state["step"])
    saved, args = json.loads(state["args"]), process.args
    changed = {k: (v, getattr(args, k)) for k, v in saved.items() if getattr(args, k) != v}
    if changed:
        process.say(f"resuming {process.out_dir} at step {start} with changed train args (saved, now): {changed}")
    return start
