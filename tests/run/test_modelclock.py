"""ModelClock: exact sums, nothing counted for a failed call, and on CUDA a host that runs at
most `lag` batches ahead of the GPU (checked with stand-in events on the CPU, and with real
CUDA events where there is a GPU)."""

import pytest
import torch

import ovbench.run.clock as modelclock
from ovbench.run.clock import ModelClock


class GPUStandIn:
    """A GPU timeline: the k-th recorded event fires at `fires_at_ms[k]`; the test sees when
    the host waited for an event."""

    def __init__(self, fires_at_ms):
        self.fires_at = list(fires_at_ms)
        self.recorded = 0
        self.waited = []  # how many events had been recorded when the host waited

    def new_event(self):
        return StandInEvent(self)


class StandInEvent:
    def __init__(self, gpu):
        self.gpu, self.index = gpu, None

    def record(self, stream=None):
        self.index = self.gpu.recorded
        self.gpu.recorded += 1

    def synchronize(self):
        assert self.index is not None, "waited for an event that was never recorded"
        self.gpu.waited.append(self.gpu.recorded)

    def elapsed_time(self, end):
        return self.gpu.fires_at[end.index] - self.gpu.fires_at[self.index]


def test_cpu_clock_counts_wall_time_of_successful_calls(monkeypatch):
    ticks = iter([10.0, 10.25, 20.0, 30.0, 30.5])
    monkeypatch.setattr(modelclock.time, "perf_counter", lambda: next(ticks))
    clock = ModelClock(torch.device("cpu"))
    with clock.measure():
        pass
    with pytest.raises(ValueError), clock.measure():
        raise ValueError("the model failed")  # 20.0 -> never stopped, never counted
    with clock.measure():
        pass
    assert clock.seconds() == 0.75


@pytest.mark.parametrize("lag", [0, 1, 2, 5])
def test_event_clock_bounds_run_ahead_and_sums_exactly(lag):
    durations = [12.5, 3.0, 7.25, 1.0, 40.0, 2.5, 9.0]
    fires_at, now = [], 100.0
    for duration in durations:  # with idle gaps between calls, which must not count
        fires_at += [now, now + duration]
        now += duration + 50.0
    gpu = GPUStandIn(fires_at)
    clock = ModelClock(torch.device("cpu"), lag=lag, new_event=gpu.new_event)
    for call in range(len(durations)):
        with clock.measure():
            pass
        launched, read = call + 1, len(gpu.waited)
        assert launched - read == min(lag, launched), "host more than `lag` batches ahead, or waiting early"
    assert clock.seconds() == pytest.approx(sum(durations) / 1000, rel=1e-12)
    assert len(gpu.waited) == len(durations)  # every pair read exactly once
    assert clock.seconds() == pytest.approx(sum(durations) / 1000, rel=1e-12)  # reading again adds nothing


def test_event_clock_drops_a_failed_call():
    # events: call 1 (0, 5), the failed call's start (7), call 3 (20, 26)
    gpu = GPUStandIn([0.0, 5.0, 7.0, 20.0, 26.0])
    clock = ModelClock(torch.device("cpu"), lag=1, new_event=gpu.new_event)
    with clock.measure():
        pass
    with pytest.raises(RuntimeError), clock.measure():
        raise RuntimeError("out of memory")
    with clock.measure():
        pass
    assert clock.seconds() == pytest.approx((5.0 + 6.0) / 1000, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_clock_times_queued_work_without_losing_any():
    device = torch.device("cuda")
    x = torch.randn(2048, 2048, device=device)
    clock = ModelClock(device, lag=2)
    for _ in range(6):
        with clock.measure():
            for _ in range(20):
                x = torch.tanh(x @ x)
        assert len(clock._pending) <= 2
    seconds = clock.seconds()
    assert seconds > 0 and not clock._pending


def test_a_gpu_error_read_late_names_the_work_it_belongs_to():
    class FailingEvent(StandInEvent):
        def synchronize(self):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    gpu = GPUStandIn([0.0, 1.0, 2.0, 3.0])
    clock = ModelClock(torch.device("cpu"), lag=1, new_event=lambda: FailingEvent(gpu))
    with clock.measure("video A frames 1..4"):
        pass
    with pytest.raises(RuntimeError, match=r"illegal memory access.*finish video A frames 1\.\.4"):
        with clock.measure("video B frames 1..4"):
            pass
