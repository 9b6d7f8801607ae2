"""One optimisation step of GKC: the network, the CLIP teacher and the losses as one module, the optimiser's parameter groups, gradients applied under AMP."""

from __future__ import annotations

import hashlib
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from ovbench.models.clip_loading import encode_class_names
from ovbench.models.gkc.losses import GKCCriterion, KDRegions, StepTargets, masked_crops, select_regions
from ovbench.models.gkc.network import GKCNetwork
from ovbench.models.gkc.synonyms import SynonymBank, SynonymFilter, rebuild_vocabulary
from ovbench.models.gkc.train_args import TrainArgs
from torch import nn

TEACHER_BATCH = 256  # masked crops per CLIP image forward (memory only)


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d, nn.Embedding)


def param_groups(network: nn.Module, criterion: nn.Module, args: TrainArgs) -> list[dict]:
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


def apply_gradients(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float) -> None:
    """Backward, then Mask2Former's full-model gradient clipping and the (scaled) step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    scaler.step(optimizer)
    scaler.update()
