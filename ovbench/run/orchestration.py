"""`ovbench run`: stream every frame of a split's videos through a model into the metrics.

The runner owns everything an adapter should not have to get right: decoding in worker
processes, batching within a video, device placement, mixed precision, bilinear resizing of
scores to the ground-truth size, argmax, metrics, timing, resumable state, and isolation of
broken videos. Memory is bounded by one batch (on CUDA, plus the uint8 labels of the batches
whose copy to the host is in flight) plus the metrics' per-video window state.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from ovbench.api import SegmentationModel
from ovbench.data.kinds import open_dataset
from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import ConfigError, OvbenchError
from ovbench.metrics.accumulator import resolve_min_video_frames
from ovbench.records.provenance import environment, now
from ovbench.records.write import record_stem, write_record
from ovbench.run.distributed import agree, leave_cores_to_workers, long_barrier_group, process_group, resolve_device
from ovbench.run.fingerprint import describe_model, finished_record, run_fingerprint
from ovbench.run.loop import VideoLoop, stream_videos
from ovbench.run.model_io import autocast_for, build_model
from ovbench.run.options import RunOptions
from ovbench.run.record import record_from_contents
from ovbench.run.schedule import assign_videos, group_by_frame_size, list_videos
from ovbench.run.state import RunLock, RunState, Session, new_session_id
from ovbench.run.temporal import TCSetup, tc_setup
from ovbench.run.textcache import TextCache


def run(options: RunOptions, *, on_sample: bool = False, log: Callable[[str], None] = print,
        model: SegmentationModel | None = None) -> tuple[dict[str, Any], Path]:
    """Run a model over the split, resumably; returns the record and its path (rank 0) or the
    state folder (other shards). `model`: an adapter already built (on `options.device`),
    instead of building `options.model` from `options.model_args`."""
    device = resolve_device(options.device)
    autocast_for(options.precision, device)  # a bad --precision is refused before anything loads
    resolve_min_video_frames(options.vc_convention, options.min_video_frames)  # a bad one: refused before anything loads
    if device.type == "cpu":
        leave_cores_to_workers(options.workers)
    data = open_dataset(options.split.dataset, options.data_root)
    split = options.split
    videos = list_videos(data, split, options.limit_videos, broken_ok=True)
    index, count = options.shard
    announce = log if index == 0 else None
    tc = tc_setup(options.tc_request(), [v.name for v in videos], device)  # missing flow weights: before the model loads
    if model is None:
        model = build_model(options.model, options.model_args, device, on_sample, log=announce)
    model_info = describe_model(options.model, model)
    if model_info["random_init"] and announce:
        announce(f"*** {options.model} has RANDOM weights ({model_info['weights']}): its numbers say nothing about the model ***")
    elif model_info.get("random_parts") and announce:
        announce(f"*** {options.model}'s {', '.join(model_info['random_parts'])} has random weights ({model_info['weights']}) ***")
    group = process_group(count)
    # rank 0's: the others would stat the whole data set for nothing
    fingerprint = agree(group, lambda: run_fingerprint(model_info, split, options.dataset_name, data, videos,
                                                       _numbers_options(options, device, tc, count if group is None else 1)))
    # rank 0 names the run: on several nodes, paths inside the fingerprint may differ per node
    stem = agree(group, lambda: record_stem(model_info, split.name, fingerprint))
    record_path = options.out_dir / f"{stem}.json"
    if not options.overwrite:
        reused = agree(group, lambda: finished_record(record_path, fingerprint))
        if reused is not None:
            if index == 0 or group is None:
                log(f"reusing {record_path} finished {reused['created']}; --overwrite to recompute")
            return reused, record_path
    if group is None and count > 1 and options.overwrite:
        raise ConfigError("--overwrite with --shard would delete the other shards' work; remove the state folder by hand")
    state = RunState(options.out_dir / f"{stem}.state")
    lock = RunLock(state.directory, index)
    refused = agree(group, lambda: _open_state(state, lock, fingerprint, options))
    if refused:
        raise ConfigError(refused)
    try:
        finished_here = _run_locked(options, data, model, videos, state, group, device, log, tc)
        if not finished_here:
            return {}, state.directory
        contents = state.contents()
        record = record_from_contents(fingerprint, split, contents)
        try:
            return record, write_record(record, options.out_dir, stem=stem)
        except OSError as err:
            raise ConfigError(f"cannot write the record {record_path}: {err.strerror or err}; the run state is kept, rerun to write it") from None
    finally:
        lock.release()


def _numbers_options(options: RunOptions, device: torch.device, tc: TCSetup | None, shards: int) -> dict[str, Any]:
    """The run options that change its numbers, as the fingerprint holds them. The VC
    convention and TC are written only when used, so the runs made before they existed keep
    their fingerprints (and record names)."""
    return {
        "miou_convention": options.convention,
        "min_video_frames": resolve_min_video_frames(options.vc_convention, options.min_video_frames),
        **({"vc_convention": options.vc_convention} if options.vc_convention != "official" else {}),
        **({"tc": tc.describe()} if tc is not None else {}),
        "precision": options.precision,
        "device_type": device.type,
        "save_predictions": options.save_predictions,
        "limit_videos": options.limit_videos,
        # --shard jobs split the videos statically, so all of them must use the same N
        # (torchrun re-balances what is left, so any process count may resume)
        "shards": shards,
    }


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
                group, device: torch.device, log: Callable[[str], None], tc: TCSetup | None) -> bool:
    """This process's share of the pending videos, committed one by one to the state; True
    where this process then makes the record (after every rank of a torchrun job is done)."""
    index, count = options.shard
    finish_line = long_barrier_group(group)
    # every process must agree on what is done and on the session, whatever it finds on disk later
    session, done = agree(group, lambda: (new_session_id(), sorted(state.done_videos())))
    ordered = group_by_frame_size(data, videos)  # the run's order; every process computes the same
    if group is None:
        mine = [v for v in assign_videos(ordered, count)[index] if v.name not in done]  # static: shards run independently
    else:
        mine = assign_videos([v for v in ordered if v.name not in done], count)[index]
    if done and index == 0:
        log(f"resuming: {len(done)} of {len(videos)} videos already done in {state.directory}")
    # a model failing on the run's first video stops the run
    fatal_video = next((v.name for v in ordered if v.frames), None)
    text, text_seconds = TextCache().embed(model, options.split.prompts, report=log if index == 0 else None)
    state.save_session(Session(session, index, text_seconds, environment(device, options.precision, torch.get_num_threads()), {
        "command": options.command, "batch_size": options.batch_size, "workers": options.workers,
        "processes": count, "started": now("microseconds")}))
    loop = VideoLoop(options, model, text.to(device), (session, index), state, device, fatal_video, tc)
    stream_videos(options, data, mine, loop)
    if group is None:
        return count == 1  # a --shard job: `ovbench merge` makes the record
    torch.distributed.barrier(group=finish_line)  # every rank's videos are on disk
    return index == 0


