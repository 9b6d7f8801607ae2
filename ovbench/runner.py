"""`ovbench run`: stream every frame of a split's videos through a model into the metrics.

The runner owns everything an adapter should not have to get right: decoding in worker
processes, batching within a video, device placement, mixed precision, bilinear resizing of
scores to the ground-truth size, argmax, metrics, timing, resumable state, and isolation of
broken videos. Memory is bounded by one batch plus the metrics' per-video window state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from . import results
from .api import SegmentationModel, args_to_dict, parse_model_args, parse_pairs
from .data.loader import VideoFrames, frame_loader
from .data.vspw import VSPW
from .errors import ConfigError, DataError, ModelError, OvbenchError
from .evaluation import list_videos, new_metrics
from .merge import record_from_parts
from .modelclock import ModelClock
from .predictions import PredictionWriter
from .registry import get_model_class
from .runstate import Part, RunState, new_session_id
from .splits import Split
from .textcache import TextCache

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SAVE_PACE = 20  # state saving takes at most 1/SAVE_PACE of a run's time


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


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r} is not a device (auto, cpu, cuda, cuda:K)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def build_model(model_id: str, model_args: str, device: torch.device, on_sample: bool) -> SegmentationModel:
    """Instantiate an adapter from CLI words; on the built-in sample its `sample_args` fill in
    whatever the user left out."""
    cls = get_model_class(model_id)
    given = parse_pairs(model_args)
    if on_sample:
        given = {**cls.sample_args, **given}
    return cls(parse_model_args(cls.Args, given), device)


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


def group_by_frame_size(data: VSPW, videos: list[VideoFrames]) -> list[VideoFrames]:
    """Videos of one frame size one after another, then by name. An adapter that compiles or
    captures per input shape (gkc's CUDA graphs, a few shapes kept) then does so once per size;
    in name order VSPW's sizes alternate. The order changes no number: records are sorted."""
    def size(video: VideoFrames) -> tuple[int, int]:
        known = data.frame_size(video.name, video.frames[0]) if video.frames else None
        return known or (1 << 30, 1 << 30)  # unreadable or empty: last (and never the first video)

    return sorted(videos, key=lambda video: (size(video), video.name))


def upsampled_argmax(scores: torch.Tensor, frame_size: tuple[int, int]) -> torch.Tensor:
    """Bilinear on scores (never on labels), then the first maximum over classes: the plain
    definition, identical on every CPU, GPU and torch build. Frame by frame, so memory holds
    one frame's full-size scores, not a batch's."""
    if tuple(scores.shape[-2:]) == tuple(frame_size):
        return scores.argmax(1)
    return torch.stack([
        F.interpolate(frame[None].float(), frame_size, mode="bilinear", align_corners=False).argmax(1)[0]
        for frame in scores
    ])


def labels_from_output(output: torch.Tensor, batch: int, frame_size: tuple[int, int], classes: int, where: str) -> torch.Tensor:
    """Adapter output -> (B, H, W) vocabulary indices, checking the contract on the way."""
    if not isinstance(output, torch.Tensor) or output.shape[:1] != (batch,):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(f"{where}: predict returned {shape} for {batch} frames")
    if output.is_floating_point():
        if output.dim() != 4 or output.shape[1] != classes:
            raise ModelError(f"{where}: predict returned scores of shape {tuple(output.shape)}, expected (B, {classes}, h, w)")
        return upsampled_argmax(output, frame_size)  # bilinear on scores, never on labels
    if output.dim() != 3 or tuple(output.shape[-2:]) != frame_size:
        raise ModelError(f"{where}: predict returned labels of shape {tuple(output.shape)}, expected (B, {frame_size[0]}, {frame_size[1]})")
    if output.numel() and (int(output.min()) < 0 or int(output.max()) >= classes):
        raise ModelError(f"{where}: predicted label {int(output.max())} outside 0..{classes - 1}")
    return output


def _fingerprint(options: RunOptions, model_info: dict, videos: list[VideoFrames], device: torch.device, static_shards: int) -> dict:
    """Everything that changes the numbers; a resume or merge must match it exactly."""
    listing = hashlib.sha256("\n".join(f"{v.name}:{len(v.frames)}" for v in videos).encode()).hexdigest()
    return {
        "model": model_info,
        "split": {"name": options.split.name, "hash": options.split.hash, "source": options.split.source or options.split.name},
        "dataset": {"name": options.dataset_name, "root": str(options.data_root.resolve())},
        "videos": {"sha256": listing, "names": [v.name for v in videos]},
        "options": {
            "miou_convention": options.convention,
            "min_video_frames": options.min_video_frames,
            "precision": options.precision,
            "device_type": device.type,
            "save_predictions": options.save_predictions,
            # --shard jobs split the videos statically, so all of them must use the same N
            # (torchrun re-balances what is left, so any process count may resume)
            "shards": static_shards,
        },
    }


class _Progress:
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


def run(options: RunOptions, *, on_sample: bool = False, log: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """Run a model over the split, resumably; returns the record and its path (rank 0) or the
    state folder (other shards)."""
    device = resolve_device(options.device)
    if options.precision not in PRECISIONS:
        raise ConfigError(f"--precision {options.precision!r}: choose {', '.join(PRECISIONS)}")
    if device.type == "cpu":
        leave_cores_to_workers(options.workers)
    data = VSPW(options.data_root)
    split = options.split
    videos = list_videos(data, split, options.limit_videos)

    model = build_model(options.model, options.model_args, device, on_sample)
    weights = model.weights()
    model_info = {
        "id": options.model,
        "args": args_to_dict(model.args),
        "weights": weights.source,
        "weights_sha256": weights.sha256,
        "random_init": weights.random_init,
        "backbone": weights.backbone,
        **({"training": weights.training} if weights.training is not None else {}),
    }
    index, count = options.shard
    group = _process_group(count)
    fingerprint = _fingerprint(options, model_info, videos, device, count if group is None else 1)
    # rank 0 names the run: on several nodes, paths inside the fingerprint may differ per node
    stem = _agree(group, lambda: results.record_stem(model_info, split.name, run=fingerprint))
    state = RunState(options.out_dir / f"{stem}.state")
    if group is None and count > 1 and options.overwrite:
        raise ConfigError("--overwrite with --shard would delete the other shards' work; remove the state folder by hand")
    predictions = state.directory.with_suffix(".predictions")
    if index == 0 or group is None:
        if options.overwrite:
            shutil.rmtree(predictions, ignore_errors=True)
        state.prepare(fingerprint, options.overwrite)
    # every process must agree on what is done and on the session, whatever it finds on disk later
    session, done = _agree(group, lambda: (new_session_id(), sorted(state.done_videos())))
    ordered = group_by_frame_size(data, videos)  # the run's order; every process computes the same
    pending = [v for v in ordered if v.name not in done]
    if group is None:
        mine = [v for v in assign_videos(ordered, count)[index] if v.name not in done]  # static: shards run independently
    else:
        mine = assign_videos(pending, count)[index]
    if done and index == 0:
        log(f"resuming: {len(done)} of {len(videos)} videos already done in {state.directory}")
    # a model failing on the run's first video stops the run
    fatal_video = next((v.name for v in ordered if v.frames), None)

    text, text_seconds = TextCache().embed(model, split.class_names)
    text = text.to(device)
    metrics = new_metrics(split, device, options.min_video_frames)
    part = Part(session=session, rank=index, text_seconds=text_seconds, env=results.environment(device, options.precision))
    writer = PredictionWriter.create(options.save_predictions, predictions, split)
    _stream(options, data, model, text, mine, metrics, part, state, writer, device, fatal_video)

    if group is None and count > 1:
        return {}, state.directory  # a --shard job: `ovbench merge` makes the record
    this_session = _gather(group, part)
    if index != 0:
        return {}, state.directory
    earlier = [p for p in state.parts() if p.session != session]
    record = record_from_parts(fingerprint, earlier + this_session)
    return record, results.write_record(record, options.out_dir, stem=state.directory.stem)


def leave_cores_to_workers(workers: int) -> None:
    """On CPU the model's threads and the decoding workers share the cores; oversubscribed,
    OpenMP threads spin at barriers and a run slows down many times (measured: 20x on 2 cores).
    An explicit OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))


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


def _gather(group, part: Part) -> list[Part]:
    """Every process's finished work, reduced to rank 0 through torch.distributed."""
    if group is None:
        return [part]
    gathered: list[Any] = [None] * torch.distributed.get_world_size() if torch.distributed.get_rank() == 0 else None
    torch.distributed.gather_object(part.to_payload(), gathered, dst=0)
    return [Part(**payload) for payload in gathered] if gathered is not None else []


def _stream(options, data, model, text, videos, metrics, part, state, writer, device, fatal_video) -> None:
    for video in videos:
        if not video.frames:  # listed in the split, but nothing to evaluate
            empty = DataError(f"video {video.name}: no frames in {data.frame_dir(video.name)}")
            if options.strict:
                raise empty
            part.skipped[video.name] = str(empty)
    videos = [video for video in videos if video.frames]
    loader = frame_loader(
        data, videos, batch_size=options.batch_size, workers=options.workers, pin_memory=device.type == "cuda"
    )
    progress = _Progress(sum(len(v.frames) for v in videos), options.progress)
    try:
        _VideoLoop(options, model, text, metrics, part, state, writer, device, fatal_video, progress).run(videos, loader)
    finally:
        progress.close()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, for bookkeeping that must happen all or
    not at all; the interrupt is raised right after. Only the main thread receives signals, so
    elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            if callable(previous):
                previous(*held[0])
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt


class _VideoLoop:
    """One process's pass over its videos, with the bookkeeping that keeps the saved state
    exact however the pass ends. The metrics are the one record of what is finished (the
    part's done list and frame count are read from them when saving); a video is folded into
    them together with its predictions, with Ctrl-C held; an open video is undone on any error
    or interrupt; and the times cover finished and skipped videos only (an interrupted video is
    redone on resume, where its time counts)."""

    def __init__(self, options, model, text, metrics, part, state, writer, device, fatal_video, progress):
        self.options, self.model, self.text, self.device = options, model, text, device
        self.metrics, self.part, self.state, self.writer = metrics, part, state, writer
        self.fatal_video, self.progress = fatal_video, progress
        self.classes = len(options.split.vocabulary)
        dtype = PRECISIONS[options.precision]
        self.autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        self.clock = ModelClock(device)
        self.video: VideoFrames | None = None  # the open video
        self.failed = False  # the open video was dropped: its remaining batches are passed over
        self.start = time.perf_counter()
        self.saved_at, self.save_cost = self.start, 0.0

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
            try:
                self.save(force=True)  # everything finished is on disk, however the loop ended
            except Exception as err:  # never hide the error that stopped the run
                warnings.warn(f"the run state could not be saved ({type(err).__name__}: {err}); "
                              "a resume redoes the videos finished since the last save")
            raise
        self.save(force=True)

    def begin_video(self, video: VideoFrames) -> None:
        with _interrupts_held():
            self.metrics.begin_video(video.name)
            self.writer.begin_video(video.name)
            self.video, self.failed = video, False
        try:
            self.model.begin_video(video.name)
        except Exception as err:
            self.model_failed(ModelError(f"{self.options.model} failed to begin video {video.name}: {type(err).__name__}: {err}"))

    def evaluate(self, video: VideoFrames, batch: dict) -> None:
        if "error" in batch:
            self.drop_video(DataError(batch["error"]))
            return
        stems = [video.frames[i] for i in batch["frames"]]
        where = f"video {video.name} frames {stems[0]}..{stems[-1]}"
        frames = batch["image"].to(self.device, non_blocking=True)
        gt = batch["gt"].to(self.device, non_blocking=True)
        try:
            labels = self.score(self.predict(frames, where), gt, where)
        except ModelError as err:
            self.model_failed(err)
        except DataError as err:
            self.drop_video(err)
        else:
            self.writer.write(video.name, stems, labels)

    def predict(self, frames: torch.Tensor, where: str) -> torch.Tensor:
        try:
            with self.clock.measure(where), torch.inference_mode(), self.autocast:
                return self.model.predict(frames, self.text)
        except Exception as err:  # the adapter's own failure, not the data's
            raise ModelError(f"{self.options.model} failed on {where}: {type(err).__name__}: {err}") from err

    def score(self, output: torch.Tensor, gt: torch.Tensor, where: str) -> torch.Tensor:
        """Labels at the ground truth's size, counted into the metrics."""
        try:
            labels = labels_from_output(output, gt.shape[0], tuple(gt.shape[-2:]), self.classes, where)
            self.metrics.update(gt, labels)
        except OvbenchError:
            raise
        except Exception as err:  # say where (out of memory on a huge frame, ...), keep the traceback
            raise RuntimeError(f"resizing or scoring {where}: {type(err).__name__}: {err}") from err
        return labels

    def model_failed(self, err: ModelError) -> None:
        """Skip the video, unless it is the run's first: a model failing there is more likely
        broken than the video, and would fail on every video. Decided by the video, not by
        what this process happened to meet or finish first, so one process, N processes,
        `--shard` jobs and a resume agree (a finished first video is never run again)."""
        if self.video.name == self.fatal_video:
            raise ModelError(f"{err} (the run's first video: stopping, the model looks broken;"
                             " `ovbench check-model` tests an adapter's contract)") from err
        self.drop_video(err)

    def drop_video(self, err: OvbenchError) -> None:
        """Forget every trace of the open video and record why, or stop in strict mode."""
        name = self.video.name
        message = str(err) if name in str(err) else f"video {name}: {err}"
        if self.options.strict:
            raise err if message == str(err) else type(err)(message)
        self.metrics.abort_video()
        self.writer.abort_video()
        self.failed = True
        self.part.skipped[name] = message
        self.mark_time()
        self.save()
        self.progress.note(f"skipping {message}")

    def close_video(self) -> None:
        if self.video is not None and not self.failed:
            try:
                with _interrupts_held():  # predictions complete, then the video in the totals
                    self.writer.end_video()
                    self.metrics.end_video()  # validates, then folds
                    self.video = None
            except OvbenchError as err:
                self.drop_video(err)
            else:
                self.mark_time()
                self.save()
        self.video = None

    def roll_back(self) -> None:
        """After an error or interrupt: undo the open video (aborting twice is harmless)."""
        if self.video is not None and not self.failed:
            self.metrics.abort_video()
            self.writer.abort_video()

    def mark_time(self) -> None:
        """Model and wall time up to the end of the last finished or skipped video."""
        self.part.model_seconds = self.clock.seconds()
        self.part.wall_seconds = time.perf_counter() - self.start

    def save(self, force: bool = False) -> None:
        """Save what is finished. The state holds every finished video, so saving after each
        one would cost O(videos^2) on a long run: save when the time since the last save is at
        least SAVE_PACE times what that save took (<= 1/SAVE_PACE of the run), and always at the end."""
        now = time.perf_counter()
        if not force and now - self.saved_at < SAVE_PACE * self.save_cost:
            return
        self.part.metrics = self.metrics.state_dict()
        self.part.done = sorted(self.metrics.videos)
        self.part.frames = sum(entry["frames"] for entry in self.metrics.videos.values())
        self.state.save(self.part)
        self.saved_at = time.perf_counter()
        self.save_cost = self.saved_at - now
