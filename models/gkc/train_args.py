"""GKC's training options (`--train-args`), their per-data-set defaults, and the record of what a training run did."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ovbench.models.gkc.checkpoint import Checkpoint
from ovbench.models.gkc.losses import LossConfig

from ovbench.errors import ConfigError
from ovbench.modelargs import ModelArgs, parse_model_args, parse_pairs


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
