"""Seconds spent inside the model's `predict`, without stalling a GPU pipeline to measure them.

On the CPU the clock is the wall time around the call. On CUDA, reading a wall clock after
`predict` needs a host sync per batch, and that sync leaves the GPU idle while the host
fetches the next batch and launches the resize and the labels' copy to the host. Instead the clock
records a CUDA event pair around the call, on the stream the model runs on, and reads the pair
only once `lag` newer batches have been launched: the host stays at most `lag` batches ahead
of the GPU (so queued work, and the memory it holds, stays bounded) and never waits for work
it just queued. The start event fires only after earlier queued work (the previous batch's
resize and copy), so the figure is the model's own time, launch gaps included.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from typing import Any, Callable, Iterator

import torch

LAG = 2  # batches the host may run ahead of the GPU


def _cuda_timing_event() -> torch.cuda.Event:
    return torch.cuda.Event(enable_timing=True)


class ModelClock:
    def __init__(self, device: torch.device, *, lag: int = LAG,
                 new_event: Callable[[], Any] | None = None):
        """`new_event` makes a timing event (torch.cuda.Event by default on CUDA); tests pass a
        stand-in with the same record/synchronize/elapsed_time methods."""
        if new_event is None and device.type == "cuda":
            new_event = _cuda_timing_event
        self._new_event = new_event
        self._device = device
        self._lag = lag
        self._pending: deque[tuple[Any, Any, str]] = deque()
        self._seconds = 0.0

    @contextlib.contextmanager
    def measure(self, label: str = "") -> Iterator[None]:
        """Time the block; nothing is counted when it raises. `label` names the work in the
        error raised should it fail on the GPU, which surfaces only when it is read, later."""
        if self._new_event is None:
            start = time.perf_counter()
            yield
            self._seconds += time.perf_counter() - start
            return
        start, end = self._new_event(), self._new_event()
        start.record(self._stream())
        yield
        end.record(self._stream())
        self._pending.append((start, end, label))
        while len(self._pending) > self._lag:
            self._read_oldest()

    def seconds(self) -> float:
        """Everything measured so far (waits for the GPU to finish the timed work)."""
        while self._pending:
            self._read_oldest()
        return self._seconds

    def _read_oldest(self) -> None:
        start, end, label = self._pending.popleft()
        try:
            end.synchronize()
        except RuntimeError as err:  # an asynchronous CUDA error of that work, or of later work
            raise RuntimeError(f"{err} (surfaced while waiting for the GPU to finish {label or 'earlier work'})") from err
        self._seconds += start.elapsed_time(end) / 1000  # milliseconds

    def _stream(self):
        return torch.cuda.current_stream(self._device) if self._device.type == "cuda" else None
