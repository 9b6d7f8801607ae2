"""`ovbench run`: stream every frame of a split's videos through a model into the metrics.

The runner owns everything an adapter should not have to get right: decoding in worker
processes, batching within a video, device placement, mixed precision, bilinear resizing of
scores to the ground-truth size, argmax, metrics, timing, resumable state, and isolation of
broken videos. Memory is bounded by one batch (on CUDA, plus the uint8 labels of the batches
whose copy to the host is in flight) plus the metrics' per-video window state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import results
from .api import SegmentationModel, parse_model_args, parse_pairs
from .data.datasets import VideoDataset, VideoFrames, open_dataset
from .data.loader import frame_loader
from .devices import resolve_device
from .errors import ConfigError, DataError, ModelError, OvbenchError
from .evaluation import list_videos, new_metrics
from .identity import describe_model, finished_record, run_fingerprint
from .merge import record_from_contents
from .modelclock import LAG, ModelClock
from .predictions import PredictionWriter
from .registry import get_model_class
from .runstate import RunLock, RunState, Session, VideoResult, new_session_id
from .splits import Split
from .textcache import TextCache

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SLOW_SECONDS = 2.0  # model loading that takes longer than this is announced


@dataclasses.dataclass
class RunOptions:
    model: str
    split: Split
    data_root: Path
    dataset_name: str  # see ovbench.data.synthetic.dataset_name
    out_dir: Path
    model_args: str = ""
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 4
    workers: int = 2
    limit_videos: int | None = None
    save_predictions: str | None = None  # None, "png" or "rle"
    strict: bool = False
    overwrite: bool = False
    min_video_frames: int = 0
    convention: str = "vspw"
    shard: tuple[int, int] = (0, 1)  # (index, count) of this process among all that share the run
    progress: bool = True
    command: list[str] | None = None  # the command line, for the record (None: called from Python)
    max_model_failures: int = 3  # consecutive videos the model fails on before the run stops


def build_model(model_id: str, model_args: str, device: torch.device, on_sample: bool,
                log: Callable[[str], None] | None = None) -> SegmentationModel:
    """Instantiate an adapter from CLI words; on the built-in sample its `sample_args` fill in
    whatever the user left out. A load that takes a while (a large CLIP) is announced to `log`."""
    cls = get_model_class(model_id)
    given = parse_pairs(model_args)
    if on_sample:
        given = {**cls.sample_args, **given}
    args = parse_model_args(cls.Args, given)
    with say_if_slow(f"loading {model_id} on {device} ...", log):
        return cls(args, device)


@contextlib.contextmanager
def say_if_slow(message: str, log: Callable[[str], None] | None, after: float = SLOW_SECONDS) -> Iterator[None]:
    """Say `message` only if the block is still running after `after` seconds: a long silence
    gets an explanation, while a quick failure stays the one line of its error."""
    timer = threading.Timer(after, log, (message,)) if log is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def assign_videos(videos: list[VideoFrames], count: int) -> list[list[VideoFrames]]:
    """Balance videos over `count` processes by frame count (longest first, to the least
    loaded), deterministically, so every process computes the same assignment; each share
    keeps the order of `videos`."""
    loads = [0] * count
    shares: list[list[VideoFrames]] = [[] for _ in range(count)]
    for video in sorted(videos, key=lambda v: (-len(v.frames), v.name)):
        target = min(range(count), key=lambda i: (loads[i], i))
        shares[target].append(video)
        loads[target] += len(video.frames)
    position = {video.name: i for i, video in enumerate(videos)}
    return [sorted(share, key=lambda v: position[v.name]) for share in shares]


def group_by_frame_size(data: VideoDataset, videos: list[VideoFrames]) -> list[VideoFrames]:
    """Videos of one frame size one after another, then by name. An adapter that compiles or
    captures per input shape (gkc's CUDA graphs, a few shapes kept) then does so once per size;
    in name order VideoDataset's sizes alternate. The order changes no number: records are sorted."""
    def size(video: VideoFrames) -> tuple[int, int]:
        known = data.frame_size(video.name, video.frames[0]) if video.frames else None
        return known or (1 << 30, 1 << 30)  # unreadable or empty: last (and never the first video)

    return sorted(videos, key=lambda video: (size(video), video.name))


def autocast_for(precision: str, device: torch.device):
    """The autocast context of `--precision` on `device` (fp32: none); an unknown precision is
    one line naming the choices."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: choose {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def upsampled_labels(scores: torch.Tensor, frame_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear on scores (never on labels), then the first maximum over classes: the plain
    definition, identical on every CPU, GPU and torch build. Also whether every pixel's winning
    score is finite: NaN and +inf win a max (and an argmax), so that one value per pixel catches
    every bad score that could decide a label, without another pass over all the classes'
    scores. Frame by frame, so memory holds one frame's full-size scores, not a batch's."""
    if tuple(scores.shape[-2:]) == tuple(frame_size):
        best, labels = scores.max(1)
        return labels, torch.isfinite(best).all()
    best, labels = zip(*(F.interpolate(frame[None].float(), frame_size, mode="bilinear", align_corners=False).max(1)
                         for frame in scores))
    return torch.cat(labels), torch.isfinite(torch.cat(best)).all()


def output_problem(output: Any, batch: int, frame_size: tuple[int, int], classes: int) -> str | None:
    """What breaks the adapter contract in `predict`'s output, in words; None when nothing does.
    The one check of it, made by the runner on every batch and by `ovbench check-model`."""
    if not isinstance(output, torch.Tensor):
        return f"predict returned {type(output).__name__}, expected a torch.Tensor"
    if output.is_floating_point():
        if output.dim() != 4 or output.shape[0] != batch or output.shape[1] != classes:
            return f"predict returned scores of shape {tuple(output.shape)}, expected ({batch}, {classes}, h, w)"
        return None
    if tuple(output.shape) != (batch, *frame_size):
        return f"predict returned labels of shape {tuple(output.shape)}, expected ({batch}, {frame_size[0]}, {frame_size[1]})"
    if output.numel() and (int(output.min()) < 0 or int(output.max()) >= classes):
        return f"predict returned label values outside 0..{classes - 1}"
    return None


def labels_from_output(output: torch.Tensor, batch: int, frame_size: tuple[int, int], classes: int,
                       where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Adapter output -> (B, H, W) uint8 vocabulary indices (classes <= 255) and whether the scores
    that chose them were finite (argmax would silently pick a NaN class), checking the contract."""
    problem = output_problem(output, batch, frame_size, classes)
    if problem:
        raise ModelError(f"{where}: {problem}")
    if output.is_floating_point():
        labels, finite = upsampled_labels(output, frame_size)  # bilinear on scores, never on labels
        return labels.to(torch.uint8), finite
    return output.to(torch.uint8), output.new_ones((), dtype=torch.bool)


@dataclasses.dataclass
class _Scored:
    """A batch scored on the device, on its way to the metrics and the prediction writer."""

    where: str
    stems: list[str]
    gt: np.ndarray  # (B,H,W) converted ids, on the host
    labels: torch.Tensor  # (B,H,W) uint8 vocabulary indices, on the host once `copied`
    finite: torch.Tensor  # were all the scores finite? (host, once `copied`)
    copied: Any  # the CUDA event after which both are on the host; None when already there


def to_host(*tensors: torch.Tensor) -> tuple:
    """The tensors on the host and the CUDA event after which they are complete (None when
    they already are). A CUDA copy starts without waiting (into pinned memory), so the GPU
    goes on with the next batch while the host counts this one."""
    if tensors[0].device.type != "cuda":
        return (*(t.cpu() for t in tensors), None)
    host = [t.to("cpu", non_blocking=True) for t in tensors]
    copied = torch.cuda.Event()
    copied.record(torch.cuda.current_stream(tensors[0].device))
    return (*host, copied)


class Progress:
    """tqdm over frames with the current video and frames/s; silent when disabled."""

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


def run(options: RunOptions, *, on_sample: bool = False, log: Callable[[str], None] = print,
        model: SegmentationModel | None = None) -> tuple[dict[str, Any], Path]:
    """Run a model over the split, resumably; returns the record and its path (rank 0) or the
    state folder (other shards). `model`: an adapter already built (on `options.device`),
    instead of building `options.model` from `options.model_args`."""
    device = resolve_device(options.device)
    autocast_for(options.precision, device)  # a bad --precision is refused before anything loads
    if device.type == "cpu":
        leave_cores_to_workers(options.workers)
    data = open_dataset(options.split.dataset, options.data_root)
    split = options.split
    videos = list_videos(data, split, options.limit_videos, broken_ok=True)
    index, count = options.shard
    announce = log if index == 0 else None
    if model is None:
        model = build_model(options.model, options.model_args, device, on_sample, log=announce)
    model_info = describe_model(options.model, model)
    if model_info["random_init"] and announce:
        announce(f"*** {options.model} has RANDOM weights ({model_info['weights']}): its numbers say nothing about the model ***")
    group = _process_group(count)
    fingerprint = _agree(group, lambda: run_fingerprint(model_info, split, options.dataset_name, data, videos, {
        "miou_convention": options.convention,
        "min_video_frames": options.min_video_frames,
        "precision": options.precision,
        "device_type": device.type,
        "save_predictions": options.save_predictions,
        "limit_videos": options.limit_videos,
        # --shard jobs split the videos statically, so all of them must use the same N
        # (torchrun re-balances what is left, so any process count may resume)
        "shards": count if group is None else 1,
    }))  # rank 0's: the others would stat the whole data set for nothing
    # rank 0 names the run: on several nodes, paths inside the fingerprint may differ per node
    stem = _agree(group, lambda: results.record_stem(model_info, split.name, run=fingerprint))
    record_path = options.out_dir / f"{stem}.json"
    if not options.overwrite:
        reused = _agree(group, lambda: finished_record(record_path, fingerprint))
        if reused is not None:
            if index == 0 or group is None:
                log(f"reusing {record_path} finished {reused['created']}; --overwrite to recompute")
            return reused, record_path
    if group is None and count > 1 and options.overwrite:
        raise ConfigError("--overwrite with --shard would delete the other shards' work; remove the state folder by hand")
    state = RunState(options.out_dir / f"{stem}.state")
    lock = RunLock(state.directory, index)
    refused = _agree(group, lambda: _open_state(state, lock, fingerprint, options))
    if refused:
        raise ConfigError(refused)
    try:
        finished_here = _run_locked(options, data, model, videos, state, group, device, log)
        if not finished_here:
            return {}, state.directory
        contents = state.contents()
        record = record_from_contents(fingerprint, split, contents)
        try:
            return record, results.write_record(record, options.out_dir, stem=stem)
        except OSError as err:
            raise ConfigError(f"cannot write the record {record_path}: {err.strerror or err}; the run state is kept, rerun to write it") from None
    finally:
        lock.release()


def _open_state(state: RunState, lock: RunLock, fingerprint: dict[str, Any], options: RunOptions) -> str | None:
    """Lock the run (this shard of it) and check or start its state; None, or the line to stop
    with (another process holds the run, or its state is not this run's), which under torchrun
    rank 0 hands to every rank so that all stop alike."""
    held_elsewhere = lock.acquire()
    if held_elsewhere:
        return held_elsewhere
    try:
        if options.overwrite:
            shutil.rmtree(state.directory.with_suffix(".predictions"), ignore_errors=True)
        state.prepare(fingerprint, options.overwrite, options.split)
    except OvbenchError as err:
        lock.release()
        return str(err)
    except BaseException:
        lock.release()
        raise
    return None


def _run_locked(options: RunOptions, data: VideoDataset, model: SegmentationModel, videos: list[VideoFrames], state: RunState,
                group, device: torch.device, log: Callable[[str], None]) -> bool:
    """This process's share of the pending videos, committed one by one to the state; True
    where this process then makes the record (after every rank of a torchrun job is done)."""
    index, count = options.shard
    finish_line = _long_barrier_group(group)
    # every process must agree on what is done and on the session, whatever it finds on disk later
    session, done = _agree(group, lambda: (new_session_id(), sorted(state.done_videos())))
    ordered = group_by_frame_size(data, videos)  # the run's order; every process computes the same
    if group is None:
        mine = [v for v in assign_videos(ordered, count)[index] if v.name not in done]  # static: shards run independently
    else:
        mine = assign_videos([v for v in ordered if v.name not in done], count)[index]
    if done and index == 0:
        log(f"resuming: {len(done)} of {len(videos)} videos already done in {state.directory}")
    # a model failing on the run's first video stops the run
    fatal_video = next((v.name for v in ordered if v.frames), None)
    text, text_seconds = TextCache().embed(model, options.split.class_names, report=log if index == 0 else None)
    state.save_session(Session(session, index, text_seconds, results.environment(device, options.precision, torch.get_num_threads()), {
        "command": options.command, "batch_size": options.batch_size, "workers": options.workers,
        "processes": count, "started": datetime.datetime.now(datetime.timezone.utc).isoformat()}))
    loop = _VideoLoop(options, model, text.to(device), (session, index), state, device, fatal_video)
    _stream(options, data, mine, loop)
    if group is None:
        return count == 1  # a --shard job: `ovbench merge` makes the record
    torch.distributed.barrier(group=finish_line)  # every rank's videos are on disk
    return index == 0


def _long_barrier_group(group):
    """A gloo group whose barrier waits as long as ranks take to finish far apart (NCCL's 10
    minutes would kill a job whose ranks got unequal work); a rank that fails ends the job
    through torchrun, not through this timeout."""
    if group is None:
        return None
    return torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(days=7))


ACCELERATOR_FAULTS = ("CUDA error", "CUDA out of memory", "CUBLAS_STATUS", "cuDNN error", "device-side assert", "HIP error")


def is_accelerator_error(err: BaseException | None) -> bool:
    """Out of memory or a device fault: the device, not the video, is at fault."""
    if err is None:
        return False
    if isinstance(err, (torch.cuda.OutOfMemoryError, getattr(torch, "AcceleratorError", torch.cuda.OutOfMemoryError))):
        return True
    return isinstance(err, RuntimeError) and any(fault in str(err) for fault in ACCELERATOR_FAULTS)


def leave_cores_to_workers(workers: int) -> None:
    """On CPU the model's threads and the decoding workers share the cores; oversubscribed,
    OpenMP threads spin at barriers and a run slows down many times (measured: 20x on 2 cores).
    An explicit OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, results.usable_cores() - workers))


def _process_group(count: int):
    """The torch.distributed default group when running under torchrun, else None."""
    if count > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.group.WORLD
    return None


def _agree(group, decide: Callable[[], Any]) -> Any:
    """Rank 0 decides, everyone receives the same answer."""
    if group is None:
        return decide()
    box = [decide() if torch.distributed.get_rank() == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _stream(options: RunOptions, data: VideoDataset, videos: list[VideoFrames], loop: "_VideoLoop") -> None:
    for video in videos:
        if not video.frames:  # listed in the split, but nothing to evaluate
            empty = DataError(f"video {video.name}: {video.problem or f'no frames in {data.frame_dir(video.name)}'}")
            if options.strict:
                raise empty
            loop.skip(video.name, str(empty))
    videos = [video for video in videos if video.frames]
    loader = frame_loader(
        data, videos, batch_size=options.batch_size, workers=options.workers, pin_memory=loop.device.type == "cuda"
    )
    loop.progress = Progress(sum(len(v.frames) for v in videos), options.progress)
    try:
        loop.run(videos, loader)
    finally:
        loop.progress.close()


class _VideoLoop:
    """One process's pass over its videos. Each video is committed to the run state on its own
    (one atomic file: finished with its metric entry, or skipped with the reason), with its
    predictions written before; an open video is undone on any error or interrupt, so however
    the pass ends the state holds exactly the committed videos. The time of each committed
    video is the wall and model time since the previous one."""

    def __init__(self, options: RunOptions, model: SegmentationModel, text: torch.Tensor, process: tuple[str, int],
                 state: RunState, device: torch.device, fatal_video: str | None):
        self.options, self.model, self.text, self.device, self.state = options, model, text, device, state
        self.metrics = new_metrics(options.split, options.min_video_frames)
        self.writer = PredictionWriter.create(options.save_predictions, state.directory.with_suffix(".predictions"), options.split)
        self.session, self.rank = process
        self.fatal_video = fatal_video
        self.progress = Progress(0, False)
        self.classes = len(options.split.vocabulary)
        self.autocast = autocast_for(options.precision, device)
        self.clock = ModelClock(device)
        self.video: VideoFrames | None = None  # the open video
        self.failed = False  # the open video was dropped: its remaining batches are passed over
        self.model_failures = 0  # consecutive videos the model failed on
        self.pending: list[_Scored] = []  # scored batches on their way to the host, counted LAG batches late
        self.marked = (time.perf_counter(), 0.0)  # wall clock and model seconds at the last commit

    def run(self, videos: list[VideoFrames], loader) -> None:
        try:
            for batch in loader:
                video = videos[batch["video"]]
                if video is not self.video:
                    self.close_video()
                    self.begin_video(video)
                if not self.failed:
                    self.evaluate(video, batch)
                self.progress.step(len(batch["frames"]), video.name)
            self.close_video()
        except BaseException:
            self.roll_back()
            raise

    def begin_video(self, video: VideoFrames) -> None:
        self.metrics.begin_video(video.name)
        self.writer.begin_video(video.name)
        self.video, self.failed = video, False
        try:
            self.model.begin_video(video.name)
        except Exception as err:
            failure = ModelError(f"{self.options.model} failed to begin video {video.name}: {type(err).__name__}: {err}")
            failure.__cause__ = err
            self.model_failed(failure)

    def evaluate(self, video: VideoFrames, batch: dict) -> None:
        if "error" in batch:
            self.drop_video(DataError(batch["error"]))
            return
        stems = [video.frames[i] for i in batch["frames"]]
        where = f"video {video.name} frames {stems[0]}..{stems[-1]}"
        frames = batch["image"].to(self.device, non_blocking=True)
        try:
            self.pending.append(self.score(self.predict(frames, where), batch["gt"], stems, where))
            self.settle(keep=LAG if self.device.type == "cuda" else 0)
        except ModelError as err:
            self.model_failed(err)
        except DataError as err:
            self.drop_video(err)

    def predict(self, frames: torch.Tensor, where: str) -> torch.Tensor:
        try:
            with self.clock.measure(where), torch.inference_mode(), self.autocast:
                return self.model.predict(frames, self.text)
        except Exception as err:  # the adapter's own failure, not the data's
            raise self.failure(where, err) from err

    def failure(self, where: str, err: Exception) -> ModelError:
        """The model (or its device) failed on `where`: `model_failed` decides what follows."""
        return ModelError(f"{self.options.model} failed on {where}: {type(err).__name__}: {err}")

    def score(self, output: torch.Tensor, gt: torch.Tensor, stems: list[str], where: str) -> "_Scored":
        """Labels at the ground truth's size and whether their scores were finite, sent to the host."""
        try:
            labels, finite = labels_from_output(output, gt.shape[0], tuple(gt.shape[-2:]), self.classes, where)
            on_host = to_host(labels, finite)
        except OvbenchError:
            raise
        except Exception as err:
            if is_accelerator_error(err):  # the device, not this video: stop resumably, in one line
                raise self.failure(where, err) from err
            raise RuntimeError(f"resizing {where}: {type(err).__name__}: {err}") from err  # say where, keep the traceback
        return _Scored(where, stems, gt.numpy(), *on_host)

    def settle(self, keep: int = 0) -> None:
        """Check, count and write the scored batches but the latest `keep`: on a GPU their copies
        to the host are done by then, so the host never waits for work it has just queued. (On
        the CPU nothing is kept: the labels may be the adapter's own buffer, reused next batch.)"""
        while len(self.pending) > keep:
            scored = self.pending.pop(0)
            if scored.copied is not None:
                try:
                    scored.copied.synchronize()
                except RuntimeError as err:  # a device fault surfaces at the first wait after it
                    raise self.failure(scored.where, err) from err
            if not bool(scored.finite):
                raise ModelError(f"{self.options.model} returned NaN or infinite scores on {scored.where}")
            labels = scored.labels.numpy()
            self.metrics.update(scored.gt, labels)
            self.writer.write(self.video.name, scored.stems, labels)

    def model_failed(self, err: ModelError) -> None:
        """Skip the video, unless it is the run's first: a model failing there is more likely
        broken than the video, and would fail on every video. Decided by the video, not by
        what this process happened to meet or finish first, so one process, N processes,
        `--shard` jobs and a resume agree (a finished first video is never run again).
        Stop too on an accelerator error (out of memory, a device fault: every later video
        would fail the same way) and after `max_model_failures` videos in a row; the run resumes."""
        if self.video.name == self.fatal_video:
            raise ModelError(f"{err} (the run's first video: stopping, the model looks broken;"
                             " `ovbench check-model` tests an adapter's contract)") from err
        if is_accelerator_error(err.__cause__):
            raise ModelError(f"{err} (an accelerator error: stopping; finished videos are kept, rerun to resume)") from err
        self.model_failures += 1
        if self.model_failures >= self.options.max_model_failures:
            raise ModelError(f"{err} (the model failed on {self.model_failures} videos in a row: stopping;"
                             " finished videos are kept, rerun to resume)") from err
        self.drop_video(err)

    def drop_video(self, err: OvbenchError) -> None:
        """Forget every trace of the open video and record why, or stop in strict mode."""
        name = self.video.name
        self.pending.clear()
        message = str(err) if name in str(err) else f"video {name}: {err}"
        if self.options.strict:
            raise err if message == str(err) else type(err)(message)
        self.metrics.abort_video()
        self.writer.abort_video()
        self.failed = True
        self.skip(name, message)

    def skip(self, name: str, message: str) -> None:
        self.state.save_result(VideoResult(name, self.session, self.rank, *self.lap(), error=message))
        self.progress.note(f"skipping {message}")

    def close_video(self) -> None:
        """Predictions complete, then the video committed to the state (the commit point)."""
        if self.video is not None and not self.failed:
            name = self.video.name
            try:
                self.settle()
                self.writer.end_video()
                self.metrics.end_video()  # validates, then folds
            except ModelError as err:
                self.model_failed(err)
            except OvbenchError as err:
                self.drop_video(err)
            else:
                entry = self.metrics.videos.pop(name)  # on disk from here: memory stays flat
                self.state.save_result(VideoResult(name, self.session, self.rank, *self.lap(), metrics=entry))
                self.model_failures = 0
        self.video = None

    def roll_back(self) -> None:
        """After an error or interrupt: undo the open video unless it was committed (aborting
        twice is harmless)."""
        self.pending.clear()
        if self.video is not None and not self.failed and not self.state.is_finished(self.video.name):
            self.metrics.abort_video()
            self.writer.abort_video()

    def lap(self) -> tuple[float, float]:
        """Wall and model seconds since the last committed video."""
        wall, model = time.perf_counter(), self.clock.seconds()
        lap = (wall - self.marked[0], model - self.marked[1])
        self.marked = (wall, model)
        return lap
