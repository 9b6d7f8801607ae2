"""`ovbench check-model`: a verdict on a new adapter in seconds, before anyone runs VSPW.

Runs the adapter on a tiny synthetic set and lists every way it breaks the contract in plain
words (shapes, dtypes, devices, NaN, non-determinism, batch dependence), then runs it end to end
through the real runner so that what passes here also runs there."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import torch

from ovbench.api import SegmentationModel, WeightsInfo
from ovbench.data.kinds import open_dataset
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.errors import OvbenchError
from ovbench.run.distributed import resolve_device
from ovbench.run.model_io import build_model, labels_from_output, output_problem
from ovbench.run.options import RunOptions
from ovbench.run.orchestration import run
from ovbench.split import load_split

CHECK_SPLIT = "vspw_all"


def _check_text(model: SegmentationModel, names: list[str], problems: list[str]) -> torch.Tensor | None:
    text = model.encode_text(names)
    if not isinstance(text, torch.Tensor):
        problems.append(f"encode_text returned {type(text).__name__}, expected a torch.Tensor")
        return None
    if text.dim() < 2 or text.shape[0] != len(names):
        problems.append(f"encode_text of {len(names)} names returned shape {tuple(text.shape)}; the first dimension must be the number of names")
    if not text.is_floating_point():
        problems.append(f"encode_text returned dtype {text.dtype}, expected floating point")
    elif not torch.isfinite(text).all():
        problems.append("encode_text returned NaN or infinite values")
    again = model.encode_text(names)
    if isinstance(again, torch.Tensor) and (again.shape != text.shape or not torch.equal(again.cpu(), text.cpu())):
        problems.append("encode_text is not deterministic (two calls on the same names differ): its cache would be wrong")
    key = model.text_cache_key()
    if key is not None and not isinstance(key, str):
        problems.append(f"text_cache_key returned {type(key).__name__}, expected str or None")
    return text


def _check_predict(model: SegmentationModel, video: str, frames: torch.Tensor, text: torch.Tensor, problems: list[str]) -> None:
    """Each repetition starts the video afresh (`begin_video`), as the runner does: a video
    model that keeps temporal state is not thereby nondeterministic."""
    def predict(batch: torch.Tensor) -> torch.Tensor:
        model.begin_video(video)
        return model.predict(batch, text)

    out = predict(frames)
    problem = output_problem(out, frames.shape[0], tuple(frames.shape[-2:]), text.shape[0])
    if problem:
        problems.append(problem)
        return
    if out.device != frames.device:
        problems.append(f"predict returned a tensor on {out.device}, but the frames were on {frames.device}")
    _, finite = labels_from_output(out, frames.shape[0], tuple(frames.shape[-2:]), text.shape[0], "check-model")
    if not bool(finite):  # the runner's own test: a score that could decide a label
        problems.append("predict returned NaN or infinite scores")
    again = predict(frames)
    if again.shape != out.shape or not torch.allclose(again.float(), out.float(), rtol=1e-4, atol=1e-5):
        problems.append("predict is not deterministic: the same frames gave different outputs")
    model.begin_video(video)
    single = torch.cat([model.predict(frames[i : i + 1], text) for i in range(frames.shape[0])])
    if single.shape != out.shape or not torch.allclose(single.float(), out.float(), rtol=1e-3, atol=1e-4):
        problems.append("predict depends on the batch: frames predicted one at a time differ from the batch (results would change with --batch-size)")


def check_model(model_id: str, model_args: str = "", device: str = "auto", log: Callable[[str], None] = print) -> list[str]:
    """Return the list of contract violations (empty = the adapter is fit to run)."""
    problems: list[str] = []
    torch_device = resolve_device(device)
    model = build_model(model_id, model_args, torch_device, on_sample=True)
    log(f"built {model_id} on {torch_device}")
    if not isinstance(model.weights(), WeightsInfo):
        problems.append("weights() must return an ovbench.api.WeightsInfo")
    split = load_split(CHECK_SPLIT)
    with tempfile.TemporaryDirectory(prefix="ovbench-check-") as tmp:
        root = write_synthetic_vspw(Path(tmp) / "data", videos=2, frames=3, height=40, width=71, seed=1)
        data = open_dataset("vspw", root)
        text = _check_text(model, list(split.prompts), problems)
        log(f"encode_text: {len(split.prompts)} names -> {None if text is None else tuple(text.shape)}")
        if text is not None:
            video = data.videos("val")[0]
            frames = torch.stack(
                [torch.from_numpy(data.read_frame(video, stem)).permute(2, 0, 1) for stem in data.frames(video)[:2]]
            ).to(torch_device)
            with torch.inference_mode():
                _check_predict(model, video, frames, text.to(torch_device), problems)
            log("predict: checked shape, dtype, device, finiteness, determinism and batch independence")
        if not problems:
            try:
                record, _ = run(
                    RunOptions(
                        model=model_id, split=split, data_root=root, dataset_name="vspw-synthetic",
                        out_dir=Path(tmp) / "runs", model_args=model_args, device=str(torch_device),
                        batch_size=2, workers=0, strict=True, progress=False,
                    ),
                    on_sample=True,
                    log=log,
                )
                log(f"end to end through the runner: mIoU {100 * record['metrics'].get('mIoU', 0):.1f} on random synthetic frames")
            except OvbenchError as err:
                problems.append(f"the runner could not run it: {err}")
    return problems
