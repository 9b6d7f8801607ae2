"""TC (flow-warped temporal consistency) for `run` and `score`: which videos it covers, the
flow model it runs with, and what the fingerprint and the record say about it.

The flow model (torch, torchvision) is imported only here, inside `TCSetup.load`, and only
when TC is asked for: `ovbench score` without `--tc` never imports torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ovbench.errors import ConfigError
from ovbench.metrics.tc import tc_subset

TC_BATCH_PAIRS = 2  # frame pairs per flow call: a video holds at most 3 frames and 2 flows


@dataclasses.dataclass(frozen=True)
class TCRequest:
    """What the user asked for: --tc, --tc-weights and --tc-subset."""

    enabled: bool = False
    weights: str | None = None
    subset: str = "all"

    def check(self) -> None:
        """One line for a combination that cannot run (before any model or data is loaded)."""
        if not self.enabled:
            if self.weights is not None or self.subset != "all":
                raise ConfigError("--tc-weights and --tc-subset only apply with --tc")
            return
        if self.weights is None:
            raise ConfigError("--tc needs --tc-weights: a local raft_large_C_T_V1-22a6c225.pth (torchvision's port of"
                              " RAFT raft-things, from download.pytorch.org/models/), or none for random flow weights")
        tc_subset([], self.subset)  # an unknown subset is refused here, by name


class TCSetup:
    """The flow model on the run's device and the videos TC covers."""

    def __init__(self, request: TCRequest, video_names: Sequence[str], device: Any):
        from ovbench.metrics.temporal import RaftFlow  # torch: only when TC is asked for

        self.request = request
        self.flow = RaftFlow.load(request.weights, device)
        self.videos = set(tc_subset(video_names, request.subset))

    def describe(self) -> dict[str, Any]:
        """The fingerprint's and the record's `options.tc`: subset, videos, flow and its weights."""
        return {"subset": self.request.subset, "videos": len(self.videos), "flow": self.flow.describe()}

    def new_state(self, num_classes: int):
        from ovbench.metrics.temporal import TemporalConsistency

        return TemporalConsistency(num_classes, self.flow, batch_pairs=TC_BATCH_PAIRS)


def tc_setup(request: TCRequest, video_names: Sequence[str], device: Any) -> TCSetup | None:
    """None without --tc; the checked request's flow model otherwise."""
    request.check()
    return TCSetup(request, video_names, device) if request.enabled else None

