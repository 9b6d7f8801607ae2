"""The progress bar of a pass over frames (`run`, `predict`): tqdm with the current video;
silent when disabled, so callers never test whether there is one."""

from __future__ import annotations


class Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, leave=False)

    def step(self, frames: int, video: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(video, refresh=False)
            self.bar.update(frames)

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
