"""What the runner does when the model fails on a video: skip the video, or stop the run.

Decided by the video, not by what a process happened to meet or finish first, so one process,
N processes, `--shard` jobs and a resume agree (a finished first video is never run again).
"""

from __future__ import annotations

from ovbench.errors import ModelError
from ovbench.run.model_io import is_accelerator_error


class FailurePolicy:
    """Stop on the run's first video (a model failing there is more likely broken than the
    video, and would fail on every video), at once on an accelerator error (out of memory, a
    device fault: every later video would fail the same way), and after `max_failures` videos
    in a row; otherwise the video is skipped. Every stop is resumable."""

    def __init__(self, fatal_video: str | None, max_failures: int):
        self.fatal_video = fatal_video
        self.max_failures = max_failures
        self.in_a_row = 0

    def failed(self, video: str, err: ModelError) -> None:
        """Raise to stop the run; return to skip `video`."""
        if video == self.fatal_video:
            raise ModelError(f"{err} (the run's first video: stopping, the model looks broken;"
                             " `ovbench check-model` tests an adapter's contract)") from err
        if is_accelerator_error(err.__cause__):
            raise ModelError(f"{err} (an accelerator error: stopping; finished videos are kept, rerun to resume)") from err
        self.in_a_row += 1
        if self.in_a_row >= self.max_failures:
            raise ModelError(f"{err} (the model failed on {self.in_a_row} videos in a row: stopping;"
                             " finished videos are kept, rerun to resume)") from err

    def finished(self) -> None:
        """A video was committed: the count of failures in a row starts again."""
        self.in_a_row = 0
