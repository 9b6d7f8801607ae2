"""Flow-warped temporal consistency (TC) as VSPW's TC_cal.py computes it, on torch.

The protocol (shared/reference/field.md 2.2): RAFT with the `raft-things` checkpoint, 20 flow
updates on the RGB frames padded to a multiple of 8, flow from frame t to t+1; the prediction
at t+1 is warped back to t with nearest sampling (the script's grid arithmetic kept: the grid
is normalised with W-1 and H-1 but sampled with align_corners=False, and samples that fall
outside the frame read 0, which is a real class); the pair's counts go to `TCMetrics`. No
ground truth, no occlusion mask. torchvision ships the original checkpoint ported:
`Raft_Large_Weights.C_T_V1` (C_T_V2 is torchvision's own retraining, a different model).

This is the only metrics module that imports torch; callers import it lazily, only when TC is
asked for, so `ovbench score` without TC starts without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import raft_large, raft_small
from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow

from ovbench.errors import ConfigError
from ovbench.fileio import file_sha256
from ovbench.metrics.confusion import LabelError, as_labels
from ovbench.metrics.tc import TCMetrics

FLOW_UPDATES = 20  # TC_cal.py: iters=20
MIN_SIDE = 128  # torchvision's RAFT needs feature maps (1/8 of the input) of at least 16 pixels
RANDOM_INIT = "none"  # the weights word that asks for a random raft_small (trying the pipeline only)
RAFT_THINGS_URL = "https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth"
WHERE_TO_GET = ("TC needs torchvision's port of RAFT raft-things (Raft_Large_Weights.C_T_V1): "
                f"{Path(RAFT_THINGS_URL).name} from download.pytorch.org/models/")


@dataclass(frozen=True)
class FlowWeights:
    """Which flow weights a TC number was computed with (the record carries it)."""

    source: str  # a file path, or "none" for seeded random weights
    sha256: str | None = None
    random_init: bool = False
    backbone: str = "raft_large"


class RaftFlow:
    """A RAFT model on a device and what the record says about its weights."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device, weights: FlowWeights):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.weights = weights

    @classmethod
    def load(cls, weights: str | Path, device: str | torch.device = "cpu") -> "RaftFlow":
        """`weights` is a local raft_large state dict, or "none": a raft_small with random weights
        (seed 0), small and fast enough for the synthetic sample; its TC means nothing, and the
        record says random_init."""
        if str(weights).lower() != RANDOM_INIT:
            return cls.from_file(weights, device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = raft_small(weights=None)
        return cls(model, device, FlowWeights(source=RANDOM_INIT, random_init=True, backbone="raft_small"))

    def describe(self) -> dict:
        """What a record says about the flow: model, weights (file, sha256) and updates."""
        return {"model": f"torchvision {self.weights.backbone}", "weights": self.weights.source,
                "sha256": self.weights.sha256, "random_init": self.weights.random_init, "flow_updates": FLOW_UPDATES}

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> "RaftFlow":
        """raft_large with the state dict in a local file; never downloads."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"RAFT weights not found: {path}; {WHERE_TO_GET}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = raft_large(weights=None)
            model.load_state_dict(state)
        except (RuntimeError, OSError, ValueError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"{path}: not a raft_large state dict ({first}); {WHERE_TO_GET}") from None
        return cls(model, device, FlowWeights(source=str(path), sha256=file_sha256(path), backbone="raft_large"))

    @torch.inference_mode()
    def pair_flows(self, frames: torch.Tensor) -> torch.Tensor:
        """Flow from frame i to frame i+1 (B,2,H,W) for consecutive RGB uint8 frames (B+1,H,W,3).

        RAFT's own forward upsamples and keeps the flow of every update (20 full-size flows a
        pair); this loop runs the same parts of the model, upsamples once, and encodes each frame
        once for both pairs it belongs to."""
        images, (rows, cols) = padded_images(frames.to(self.device))
        m = self.model
        fmaps = m.feature_encoder(images)
        m.corr_block.build_pyramid(fmaps[:-1], fmaps[1:])
        encoded = m.context_encoder(images[:-1])
        size = m.update_block.hidden_state_size
        hidden, context = torch.tanh(encoded[:, :size]), torch.relu(encoded[:, size:])
        coords0 = make_coords_grid(len(hidden), *hidden.shape[-2:], device=self.device)
        coords1 = coords0
        for _ in range(FLOW_UPDATES):
            corr = m.corr_block.index_pyramid(centroids_coords=coords1)
            hidden, delta = m.update_block(hidden, context, corr, coords1 - coords0)
            coords1 = coords1 + delta
        up_mask = None if m.mask_predictor is None else m.mask_predictor(hidden)
        return upsample_flow(coords1 - coords0, up_mask=up_mask)[..., rows, cols]


def padded_images(frames: torch.Tensor) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """RGB uint8 (N,H,W,3) -> RAFT's input (N,3,H',W') in [-1,1], padded by edge replication to
    multiples of 8 with the padding split evenly, the larger half after (RAFT's InputPadder,
    its default mode), and the slices that crop a padded map back to (H,W). A side under
    MIN_SIDE is padded up to it: torchvision's correlation pyramid refuses smaller inputs (the
    original code has no such limit); VSPW's 480p frames are never affected."""
    images = 2 * (frames.permute(0, 3, 1, 2).float() / 255.0) - 1.0  # RAFT's own scaling
    h, w = images.shape[-2:]
    pad_h, pad_w = max(-h % 8, MIN_SIDE - h), max(-w % 8, MIN_SIDE - w)
    top, left = pad_h // 2, pad_w // 2
    padded = F.pad(images, [left, pad_w - left, top, pad_h - top], mode="replicate")
    return padded.contiguous(), (slice(top, top + h), slice(left, left + w))


def warp_nearest(labels: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """labels (B,H,W) of frame t+1 sampled at each pixel of frame t plus its flow (B,2,H,W):
    TC_cal.py's arithmetic exactly (grid scaled by W-1, H-1; align_corners=False; nearest;
    zeros outside)."""
    h, w = labels.shape[1:]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    gx = 2.0 * (xs.float() + flow[:, 0]) / max(w - 1, 1) - 1.0
    gy = 2.0 * (ys.float() + flow[:, 1]) / max(h - 1, 1) - 1.0
    warped = F.grid_sample(labels[:, None].float(), torch.stack([gx, gy], -1), mode="nearest", align_corners=False)
    return warped[:, 0].to(torch.uint8)


class TemporalConsistency:
    """TC fed video by video, frames in any batch sizes; flow runs on `batch_pairs` consecutive
    pairs at a time, so a video of any length holds at most batch_pairs + 1 frames and
    batch_pairs flows. `metrics` is the torch-free state that saves, merges and computes."""

    def __init__(self, num_classes: int, flow: RaftFlow, *, batch_pairs: int = 2):
        if not isinstance(batch_pairs, int) or batch_pairs < 1:
            raise ConfigError(f"batch_pairs must be an integer >= 1, got {batch_pairs!r}")
        self.metrics = TCMetrics(num_classes)
        self.flow = flow
        self.batch_pairs = batch_pairs
        self._frames: list[np.ndarray] = []
        self._preds: list[np.ndarray] = []

    def begin_video(self, name: str) -> None:
        self.metrics.begin_video(name)
        self._frames, self._preds = [], []

    def update(self, frames: np.ndarray, preds: np.ndarray) -> None:
        """RGB uint8 frames (H,W,3) or (B,H,W,3) and the predictions (H,W) or (B,H,W)."""
        frames, preds = np.asarray(frames), as_labels(preds, "prediction")
        if frames.ndim == 3:
            frames, preds = frames[None], preds[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[:3] != preds.shape:
            raise LabelError(f"TC needs RGB uint8 frames (B,H,W,3) and predictions (B,H,W) of the same size, got "
                             f"{frames.dtype} {tuple(frames.shape)} and {tuple(preds.shape)}")
        for frame, pred in zip(frames, preds):
            if self._frames and frame.shape != self._frames[-1].shape:
                raise LabelError(f"frame size {frame.shape[:2]} differs from the video's {self._frames[-1].shape[:2]}")
            self._frames.append(frame)
            self._preds.append(pred)
            if len(self._frames) > self.batch_pairs:
                self._flush()

    def _flush(self) -> None:
        """Count the pending pairs; keep the last frame, the first of the next pair."""
        if len(self._frames) > 1:
            flows = self.flow.pair_flows(torch.from_numpy(np.stack(self._frames)))
            later = torch.from_numpy(np.stack(self._preds[1:])).to(flows.device)
            for reference, warped in zip(self._preds, warp_nearest(later, flows).cpu().numpy()):
                self.metrics.add_pair(reference, warped)
        self._frames, self._preds = self._frames[-1:], self._preds[-1:]

    def end_video(self) -> None:
        self._flush()
        self.metrics.end_video()
        self._frames, self._preds = [], []

    def abort_video(self) -> None:
        self.metrics.abort_video()
        self._frames, self._preds = [], []
