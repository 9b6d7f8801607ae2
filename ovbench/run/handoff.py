"""Scored batches on their way from the device to the metrics and the prediction writer.

On a GPU each batch's labels (uint8; int16 over 255 classes) (and whether its scores were finite) are copied to pinned
host memory without waiting and counted `LAG` batches later, so the GPU is never idle while
the host counts; on the CPU nothing waits, and nothing is kept (the labels may be the
adapter's own buffer, reused by the next batch).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np
import torch

from ovbench.errors import OvbenchError
from ovbench.run.clock import LAG
from ovbench.run.model_io import is_accelerator_error, labels_from_output, model_failure, non_finite, to_host


@dataclasses.dataclass
class ScoredBatch:
    where: str
    stems: list[str]
    gt: np.ndarray  # (B,H,W) converted ids, on the host
    labels: torch.Tensor  # (B,H,W) vocabulary indices (model_io.label_dtype), on the host once `copied`
    finite: torch.Tensor  # were all the scores finite? (host, once `copied`)
    copied: Any  # the CUDA event after which both are on the host; None when already there
    frames: torch.Tensor | None = None  # (B,3,H,W) uint8 RGB input frames on the host, kept for TC only


class HostHandoff:
    def __init__(self, model_id: str, classes: int, device: torch.device):
        self.model_id, self.classes = model_id, classes
        self.keep = LAG if device.type == "cuda" else 0
        self.pending: list[ScoredBatch] = []

    def send(self, output: torch.Tensor, gt: torch.Tensor, stems: list[str], where: str,
             frames: torch.Tensor | None = None) -> None:
        """Labels at the ground truth's size and whether their scores were finite, on their way
        to the host. A failure of the device here is the model's (one line, the run stops
        resumably); any other failure keeps its traceback, with the batch named."""
        try:
            labels, finite = labels_from_output(output, gt.shape[0], tuple(gt.shape[-2:]), self.classes, where)
            on_host = to_host(labels, finite)
        except OvbenchError:
            raise
        except Exception as err:
            if is_accelerator_error(err):
                raise model_failure(self.model_id, where, err) from err
            raise RuntimeError(f"resizing {where}: {type(err).__name__}: {err}") from err
        self.pending.append(ScoredBatch(where, stems, gt.numpy(), *on_host, frames))

    def ready(self, everything: bool = False) -> Iterator[ScoredBatch]:
        """The batches whose copies are complete, checked (NaN or infinite scores stop the
        video), oldest first; all of them with `everything` (at the end of a video)."""
        while len(self.pending) > (0 if everything else self.keep):
            scored = self.pending.pop(0)
            if scored.copied is not None:
                try:
                    scored.copied.synchronize()
                except RuntimeError as err:  # a device fault surfaces at the first wait after it
                    raise model_failure(self.model_id, scored.where, err) from err
            if not bool(scored.finite):
                raise non_finite(self.model_id, scored.where)
            yield scored

    def clear(self) -> None:
        self.pending.clear()

