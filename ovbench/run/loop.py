"""One process's pass over its videos, each video one transaction.

Each video is committed to the run state on its own (one atomic file: finished with its metric
entry, or skipped with the reason), with its predictions written before; an open video is
undone on any error or interrupt, so however the pass ends the state holds exactly the
committed videos. The time of each committed video is the wall and model time since the
previous one. The model's side (calling it, timing it) is `ModelCall`, the way to the host is
`HostHandoff`, and what a failure leads to is `FailurePolicy`.
"""

from __future__ import annotations

import resource
import time

import torch

from ovbench.api import SegmentationModel
from ovbench.data.loader import frame_loader
from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import DataError, ModelError, OvbenchError
from ovbench.metrics.split_metrics import new_metrics
from ovbench.predictions import PredictionWriter
from ovbench.run.failures import FailurePolicy
from ovbench.run.handoff import HostHandoff
from ovbench.run.model_io import ModelCall
from ovbench.run.options import RunOptions
from ovbench.run.progress import Progress
from ovbench.run.state import RunState, VideoResult
from ovbench.run.temporal import TCSetup


def peak_memory(device: torch.device) -> dict[str, int]:
    """This process's peak resident host memory and, on CUDA, peak allocated GPU memory, so far:
    what the record says a run cost besides time."""
    peaks = {"host_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}  # Linux reports KiB
    if device.type == "cuda":
        peaks["gpu_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return peaks


def stream_videos(options: RunOptions, data: VideoDataset, videos: list[VideoFrames], loop: "VideoLoop") -> None:
    """Skip (and name) the videos with nothing to evaluate, then decode the others in worker
    processes into the loop."""
    for video in videos:
        if not video.frames:  # listed in the split, but nothing to evaluate
            empty = DataError(f"video {video.name}: {video.problem or f'no frames in {data.frame_dir(video.name)}'}")
            if options.strict:
                raise empty
            loop.skip(video.name, str(empty))
    videos = [video for video in videos if video.frames]
    loader = frame_loader(data, videos, batch_size=options.batch_size, workers=options.workers,
                          pin_memory=loop.call.device.type == "cuda")
    loop.progress = Progress(sum(len(v.frames) for v in videos), options.progress)
    try:
        loop.run(videos, loader)
    finally:
        loop.progress.close()


class VideoLoop:
    def __init__(self, options: RunOptions, model: SegmentationModel, text: torch.Tensor, process: tuple[str, int],
                 state: RunState, device: torch.device, fatal_video: str | None, tc: TCSetup | None = None):
        self.options, self.state = options, state
        self.tc_setup = tc
        self.tc = None if tc is None else tc.new_state(options.split.num_classes)
        self.tc_open = False  # the open video is one TC covers
        self.call = ModelCall(model, options.model, text, device, options.precision)
        self.handoff = HostHandoff(options.model, len(options.split.prompts), device)
        self.prompt_lut = options.split.prompt_lut()  # background prompts -> the background class
        self.policy = FailurePolicy(fatal_video, options.max_model_failures)
        self.metrics = new_metrics(options.split, options.min_video_frames, options.vc_convention)
        self.writer = PredictionWriter.create(options.save_predictions, state.directory.with_suffix(".predictions"), options.split)
        self.session, self.rank = process
        self.progress = Progress(0, False)
        self.video: VideoFrames | None = None  # the open video
        self.failed = False  # the open video was dropped: its remaining batches are passed over
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
        self.tc_open = self.tc is not None and video.name in self.tc_setup.videos
        if self.tc_open:
            self.tc.begin_video(video.name)
        self.writer.begin_video(video.name)
        self.video, self.failed = video, False
        try:
            self.call.begin_video(video.name)
        except ModelError as err:
            self.model_failed(err)

    def evaluate(self, video: VideoFrames, batch: dict) -> None:
        if "error" in batch:
            self.drop_video(DataError(batch["error"]))
            return
        stems = [video.frames[i] for i in batch["frames"]]
        where = f"video {video.name} frames {stems[0]}..{stems[-1]}"
        try:
            frames = batch["image"] if self.tc_open else None  # kept on the host for the flow
            self.handoff.send(self.call.predict(batch["image"], where), batch["gt"], stems, where, frames)
            self.count(everything=False)
        except ModelError as err:
            self.model_failed(err)
        except DataError as err:
            self.drop_video(err)

    def count(self, everything: bool) -> None:
        """Count and write the batches that are on the host."""
        for scored in self.handoff.ready(everything):
            labels = scored.labels.numpy()
            if self.prompt_lut is not None:
                labels = self.prompt_lut[labels]
            self.metrics.update(scored.gt, labels)
            if self.tc_open:
                self.tc.update(scored.frames.permute(0, 2, 3, 1).numpy(), labels)
            self.writer.write(self.video.name, scored.stems, labels)

    def model_failed(self, err: ModelError) -> None:
        self.policy.failed(self.video.name, err)  # raises when the run must stop
        self.drop_video(err)

    def drop_video(self, err: OvbenchError) -> None:
        """Forget every trace of the open video and record why, or stop in strict mode."""
        name = self.video.name
        self.handoff.clear()
        message = str(err) if name in str(err) else f"video {name}: {err}"
        if self.options.strict:
            raise err if message == str(err) else type(err)(message)
        self.abort_metrics()
        self.writer.abort_video()
        self.failed = True
        self.skip(name, message)

    def skip(self, name: str, message: str) -> None:
        self.state.save_result(VideoResult(name, self.session, self.rank, *self.lap(), error=message,
                                           peak_memory=peak_memory(self.call.device)))
        self.progress.note(f"skipping {message}")

    def close_video(self) -> None:
        """Predictions complete, then the video committed to the state (the commit point)."""
        if self.video is not None and not self.failed:
            name = self.video.name
            try:
                self.count(everything=True)
                self.writer.end_video()
                if self.tc_open:
                    self.tc.end_video()
                self.metrics.end_video()  # validates, then folds
            except ModelError as err:
                self.model_failed(err)
            except OvbenchError as err:
                self.drop_video(err)
            else:
                entry = self.metrics.videos.pop(name)  # on disk from here: memory stays flat
                if self.tc_open:
                    entry = {**entry, "tc": self.tc.metrics.videos.pop(name)}
                self.state.save_result(VideoResult(name, self.session, self.rank, *self.lap(), metrics=entry,
                                                   peak_memory=peak_memory(self.call.device)))
                self.policy.finished()
        self.video = None

    def roll_back(self) -> None:
        """After an error or interrupt: undo the open video unless it was committed (aborting
        twice is harmless)."""
        self.handoff.clear()
        if self.video is not None and not self.failed and not self.state.is_finished(self.video.name):
            self.abort_metrics()
            self.writer.abort_video()

    def abort_metrics(self) -> None:
        self.metrics.abort_video()
        if self.tc_open:
            self.tc.abort_video()

    def lap(self) -> tuple[float, float]:
        """Wall and model seconds since the last committed video."""
        wall, model = time.perf_counter(), self.call.clock.seconds()
        lap = (wall - self.marked[0], model - self.marked[1])
        self.marked = (wall, model)
        return lap
