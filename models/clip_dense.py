"""Training-free dense CLIP: MaskCLIP (Zhou et al., "Extract Free Dense Labels from CLIP",
ECCV 2022), ViT variant. It needs nothing but CLIP weights, which makes it the floor any
trained open-vocabulary segmenter has to clear.

CLIP's patch tokens are not aligned with text, but the value path of the last attention block
is: there every token carries its own content into the space the class token is projected
from. The variant implemented is the one in MaskCLIP's released code for ViT (its backbone's
`return_qkv` path): in the last block, for each patch token x,
    y = x + out_proj(W_v LN1(x) + b_v)        (query and key unused: a token sees only itself)
    y = y + MLP(LN2(y))                       (residual and MLP kept, as MaskCLIP keeps them)
then ln_post and the visual projection give the patch embedding; cosine with the class text
embeddings gives the scores. MaskCLIP's optional refinements (key smoothing, prompt
denoising) are not applied.

Frames are resized so the short side is `input_size` (the long side keeps the aspect ratio,
rounded to whole patches) and the positional embeddings are interpolated bicubically to the
patch grid, as MaskCLIP evaluates. `window=whole` runs each frame in one pass; `window=slide`
runs square `input_size` windows `stride` pixels apart and averages the scores where they
overlap, keeping each pass near CLIP's square training shape.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from typing import Literal

import torch
import torch.nn.functional as F
from open_clip.transformer import VisionTransformer
from ovbench.models.clip_baseline import ClipArgs, ClipBaseline, class_scores
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ovbench.errors import ConfigError
from ovbench.registry import register_model

OPEN_CLIP = "open_clip_torch"


@dataclasses.dataclass
class ClipDenseArgs(ClipArgs):
    clip: str = "ViT-B-16"
    input_size: int = 448  # short side in pixels fed to the ViT; a multiple of its patch size
    window: Literal["whole", "slide"] = "whole"
    stride: int = 224  # window=slide: pixels between windows; a multiple of the patch size

    def __post_init__(self) -> None:
        for key in ("input_size", "stride"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"model argument {key}={getattr(self, key)}: must be positive")


def value_path(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last block of a CLIP ViT with its attention replaced by the value path (MaskCLIP)."""
    attn = block.attn
    width = x.shape[-1]
    value = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :])
    x = x + block.ls_1(attn.out_proj(value))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def block_layout(blocks: torch.nn.ModuleList) -> bool:
    """Whether the ViT's blocks take (batch, tokens, width) (True) or (tokens, batch, width),
    read from the nn.MultiheadAttention each block calls: open_clip before 2.26 built them
    sequence-first, later ones batch-first, and a wrong guess would attend across the frames
    of a batch instead of across patches, silently. Anything else fails in one line."""
    attentions = [getattr(block, "attn", None) for block in blocks]
    layouts = {a.batch_first for a in attentions if isinstance(a, torch.nn.MultiheadAttention)}
    if len(layouts) != 1 or not all(isinstance(a, torch.nn.MultiheadAttention) for a in attentions):
        raise ConfigError(
            f"open_clip {importlib.metadata.version(OPEN_CLIP)}: its ViT blocks are not nn.MultiheadAttention blocks of"
            f" one batch layout, which clip-dense reads; install {declared_open_clip()}"
        )
    return layouts.pop()


def declared_open_clip_requirement() -> Requirement | None:
    """open_clip_torch as ovbench declares it (pyproject.toml, the versions CI tests), read from
    the installed package's metadata so that the range is written in one place; None without
    that metadata."""
    try:
        requirements = importlib.metadata.requires("ovbench") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return next((r for r in map(Requirement, requirements) if canonicalize_name(r.name) == canonicalize_name(OPEN_CLIP)), None)


def declared_open_clip() -> str:
    """The declared open_clip_torch versions in words, lower bound first, as people write a range."""
    requirement = declared_open_clip_requirement()
    if requirement is None:
        return f"the {OPEN_CLIP} versions in ovbench's pyproject.toml (ovbench's package metadata is not installed here)"
    bounds = sorted((str(spec) for spec in requirement.specifier), key=lambda bound: bound[0] != ">")
    return f"{OPEN_CLIP} {','.join(bounds)}"


def oldest_open_clip() -> str:
    """The declared floor (`>=`), the release CI runs the CLIP baselines on."""
    requirement = declared_open_clip_requirement()
    floors = [spec.version for spec in requirement.specifier if spec.operator == ">="] if requirement else []
    if not floors:
        raise ConfigError(f"ovbench's metadata declares no lower bound for {OPEN_CLIP}")
    return floors[0]


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Window offsets covering [0, length): every `stride`, the last one flush with the end."""
    if length <= size:
        return [0]
    return sorted(set(range(0, length - size, stride)) | {length - size})


@register_model("clip-dense")
class ClipDense(ClipBaseline):
    """MaskCLIP dense CLIP on a ViT; scores (B, C, h, w) on the patch grid."""

    Args = ClipDenseArgs
    sample_args = {"clip": "ovbench-tiny-vit", "pretrained": "none"}

    def __init__(self, args: ClipDenseArgs, device: torch.device):
        super().__init__(args, device)
        visual = self.clip.visual
        if not (
            isinstance(visual, VisionTransformer)
            and visual.attn_pool is None
            and isinstance(visual.transformer.resblocks[-1].attn, torch.nn.MultiheadAttention)
        ):
            raise ConfigError(
                f"model argument clip={args.clip}: clip-dense needs a CLIP ViT with plain attention blocks"
            )
        self.batch_first = block_layout(visual.transformer.resblocks)
        self.patch = visual.patch_size[0]
        for key in ("input_size", "stride"):
            if getattr(args, key) % self.patch:
                raise ConfigError(
                    f"model argument {key}={getattr(args, key)}: must be a multiple of {args.clip}'s patch size {self.patch}"
                )
        self._positions: dict[tuple[int, int], torch.Tensor] = {}

    def positional_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """The class position plus the patch positions resized to a grid_h x grid_w grid."""
        if (grid_h, grid_w) not in self._positions:
            visual = self.clip.visual
            pos = visual.positional_embedding
            if (grid_h, grid_w) == tuple(visual.grid_size):
                resized = pos
            else:
                grid = pos[1:].reshape(1, *visual.grid_size, -1).permute(0, 3, 1, 2).float()
                grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
                resized = torch.cat([pos[:1], grid[0].flatten(1).T.to(pos.dtype)])
            self._positions[grid_h, grid_w] = resized
        return self._positions[grid_h, grid_w]

    def patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (N, 3, H, W), H and W whole patches -> L2-normalised (N, h, w, D)."""
        visual = self.clip.visual
        x = visual.conv1(pixels)
        n, _, grid_h, grid_w = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.to(x.dtype).expand(n, 1, -1), x], dim=1)
        x = visual.ln_pre(x + self.positional_embedding(grid_h, grid_w).to(x.dtype))
        blocks = visual.transformer.resblocks
        x = x if self.batch_first else x.transpose(0, 1)
        for block in blocks[:-1]:
            x = block(x)
        x = x if self.batch_first else x.transpose(0, 1)
        x = visual.ln_post(value_path(blocks[-1], x[:, 1:])) @ visual.proj
        return F.normalize(x.float(), dim=-1).view(n, grid_h, grid_w, -1)

    def resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames -> float RGB 0..255 with the short side `input_size`, whole patches."""
        height, width = frames.shape[-2:]
        scale = self.args.input_size / min(height, width)
        size = [max(self.patch, round(side * scale / self.patch) * self.patch) for side in (height, width)]
        return F.interpolate(frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False)

    def _scores(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_embeddings(pixels)
        n, grid_h, grid_w, _ = embeddings.shape
        scores = class_scores(embeddings.flatten(0, 2), text)
        return scores.view(n, grid_h, grid_w, -1).permute(0, 3, 1, 2)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        pixels = self.normalize(self.resize(frames))
        if self.args.window == "whole":
            return self._scores(pixels, text)
        size, batch = self.args.input_size, frames.shape[0]
        height, width = pixels.shape[-2:]
        windows = [
            (top, left)
            for top in window_starts(height, size, self.args.stride)
            for left in window_starts(width, size, self.args.stride)
        ]
        crops = torch.cat([pixels[:, :, top : top + size, left : left + size] for top, left in windows])
        window_scores = self._scores(crops, text).split(batch)
        grid, p = size // self.patch, self.patch
        total = window_scores[0].new_zeros(batch, window_scores[0].shape[1], height // p, width // p)
        count = total.new_zeros(1, 1, height // p, width // p)
        for (top, left), scores in zip(windows, window_scores):
            total[:, :, top // p : top // p + grid, left // p : left // p + grid] += scores
            count[:, :, top // p : top // p + grid, left // p : left // p + grid] += 1
        return total / count
