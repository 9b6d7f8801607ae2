"""The model's side of every command that runs one (`run`, `predict`, `check-model`): building
it from CLI words, calling it under autocast and timing it, the output contract, labels from
scores, and how a failure is worded (the model's own, NaN scores, the accelerator's), written
once so that every command says the same."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F

from ovbench.api import SegmentationModel
from ovbench.errors import ConfigError, ModelError
from ovbench.modelargs import parse_model_args, parse_pairs
from ovbench.registry import get_model_class
from ovbench.run.clock import ModelClock

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


SLOW_SECONDS = 2.0  # model loading that takes longer than this is announced


def build_model(model_id: str, model_args: str | Mapping[str, Any], device: torch.device, on_sample: bool,
                log: Callable[[str], None] | None = None) -> SegmentationModel:
    """Instantiate an adapter from CLI words; on the built-in sample its `sample_args` fill in
    whatever the user left out. A load that takes a while (a large CLIP) is announced to `log`."""
    cls = get_model_class(model_id)
    given = {k: str(v) for k, v in model_args.items()} if isinstance(model_args, Mapping) else parse_pairs(model_args)
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


def label_dtype(classes: int) -> torch.dtype:
    """The labels' type on their way to the host: a byte per pixel up to 255 classes, else
    int16 (A-847, PC-459; torch's uint16 has no comparison or indexing kernels on every device)."""
    return torch.uint8 if classes <= 255 else torch.int16


def labels_from_output(output: torch.Tensor, batch: int, frame_size: tuple[int, int], classes: int,
                       where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Adapter output -> (B, H, W) vocabulary indices (`label_dtype`: uint8 up to 255 classes)
    and whether the scores that chose them were finite (argmax would silently pick a NaN
    class), checking the contract."""
    problem = output_problem(output, batch, frame_size, classes)
    if problem:
        raise ModelError(f"{where}: {problem}")
    if output.is_floating_point():
        labels, finite = upsampled_labels(output, frame_size)  # bilinear on scores, never on labels
        return labels.to(label_dtype(classes)), finite
    return output.to(label_dtype(classes)), output.new_ones((), dtype=torch.bool)


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


ACCELERATOR_FAULTS = ("CUDA error", "CUDA out of memory", "CUBLAS_STATUS", "cuDNN error", "device-side assert", "HIP error")


def is_accelerator_error(err: BaseException | None) -> bool:
    """Out of memory or a device fault: the device, not the video, is at fault."""
    if err is None:
        return False
    if isinstance(err, (torch.cuda.OutOfMemoryError, getattr(torch, "AcceleratorError", torch.cuda.OutOfMemoryError))):
        return True
    return isinstance(err, RuntimeError) and any(fault in str(err) for fault in ACCELERATOR_FAULTS)


def model_failure(model_id: str, where: str, err: BaseException) -> ModelError:
    """The model (or its device) failed on `where` (a video's frames, a file)."""
    return ModelError(f"{model_id} failed on {where}: {type(err).__name__}: {err}")


def non_finite(model_id: str, where: str) -> ModelError:
    """NaN or infinite scores: argmax would silently pick a class for them."""
    return ModelError(f"{model_id} returned NaN or infinite scores on {where}")


class ModelCall:
    """One adapter called as every command calls it: frames moved to its device, under
    inference mode and the run's autocast, timed by the model clock, its own exceptions turned
    into one `ModelError` naming the frames."""

    def __init__(self, model: SegmentationModel, model_id: str, text: torch.Tensor, device: torch.device, precision: str):
        self.model, self.model_id, self.device = model, model_id, device
        self.text = text.to(device)
        self.autocast = autocast_for(precision, device)
        self.clock = ModelClock(device)

    def begin_video(self, video: str) -> None:
        try:
            self.model.begin_video(video)
        except Exception as err:
            raise ModelError(f"{self.model_id} failed to begin video {video}: {type(err).__name__}: {err}") from err

    def predict(self, frames: torch.Tensor, where: str) -> torch.Tensor:
        frames = frames.to(self.device, non_blocking=True)
        try:
            with self.clock.measure(where), torch.inference_mode(), self.autocast:
                return self.model.predict(frames, self.text)
        except Exception as err:  # the adapter's own failure, not the data's
            raise model_failure(self.model_id, where, err) from err

    def labels(self, frames: torch.Tensor, where: str) -> torch.Tensor:
        """(B, H, W) labels (`label_dtype`) of frames at their own size, at once (no hand-off to overlap
        with): for commands that go frame by frame (`predict`)."""
        output = self.predict(frames, where)
        labels, finite = labels_from_output(output, frames.shape[0], tuple(frames.shape[-2:]), self.text.shape[0], where)
        if not bool(finite):
            raise non_finite(self.model_id, where)
        return labels.cpu()
