"""`ovbench.evaluate`: a run from Python, with a registered model id or an adapter instance
(as lm_eval.simple_evaluate takes a name or a model object). The same runner as `ovbench run`:
the same record, the same resumable state, the same reuse of a finished run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from ovbench.api import SegmentationModel
from ovbench.errors import ConfigError
from ovbench.split import Split, load_split
from ovbench.suggest import did_you_mean

_SET_BY_EVALUATE = {"model", "split", "data_root", "dataset_name", "out_dir"}


def evaluate(model: str | SegmentationModel, split: str | Split | Sequence[str | Split], data_root: str | Path | None = None, *,
             out_dir: str | Path = "runs", log=print, **options: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """Evaluate `model` (a registered id, or an adapter instance built on the device it should
    run on) on `split` (a name, path.json#name, or a Split) and return the run record; given a
    list of splits, one run per split with the model built once, and the list of records.

    `data_root` defaults to $OVBENCH_DATA_ROOT, else the built-in synthetic sample. `options`
    are those of `ovbench run`, named as the CLI names them with `_` for `-` (model_args as
    "k=v,..." or a mapping, device, precision, batch_size, workers, limit_videos,
    min_video_frames, miou_convention, overwrite, ...; `convention` is accepted for
    miou_convention)."""
    from ovbench.data.roots import resolve_data_root
    from ovbench.run.options import RunOptions
    from ovbench.run.orchestration import run

    if not isinstance(split, (str, Split)):
        return _evaluate_each(model, list(split), data_root, out_dir=out_dir, log=log, **options)
    if "miou_convention" in options:
        options["convention"] = options.pop("miou_convention")
    known = {f.name for f in dataclasses.fields(RunOptions)} - _SET_BY_EVALUATE | {"miou_convention"}
    for key in options:
        if key not in known:
            raise ConfigError(f"evaluate(): unknown option {key!r}{did_you_mean(key, known)}; known: {', '.join(sorted(known))}")
    instance = model if isinstance(model, SegmentationModel) else None
    if instance is not None:
        options.setdefault("device", str(instance.device))
    elif not isinstance(model, str):
        raise ConfigError(f"evaluate(): model must be a registered id or a SegmentationModel, not {type(model).__name__}")
    split = split if isinstance(split, Split) else load_split(split)
    root = resolve_data_root(data_root, split.dataset, log, option="data_root=")
    run_options = RunOptions(
        model=model if instance is None else getattr(type(instance), "model_id", type(instance).__name__),
        split=split,
        data_root=root.path,
        dataset_name=root.name,
        out_dir=Path(out_dir),
        **{"progress": False, **options},
    )
    record, _ = run(run_options, on_sample=root.on_sample and instance is None, log=log, model=instance)
    return record


def _evaluate_each(model: str | SegmentationModel, splits: list[str | Split], data_root: str | Path | None, *,
                   out_dir: str | Path, log, **options: Any) -> list[dict[str, Any]]:
    """An evaluation matrix: a registered id is built once (on the first split's sample
    arguments, when that one runs on the built-in sample) and every split runs with it."""
    from ovbench.data.roots import resolve_data_root
    from ovbench.run.distributed import resolve_device
    from ovbench.run.model_io import build_model

    if isinstance(model, str) and splits:
        first = splits[0] if isinstance(splits[0], Split) else load_split(splits[0])
        root = resolve_data_root(data_root, first.dataset, log, option="data_root=")
        built = build_model(model, options.get("model_args", ""), resolve_device(options.get("device", "auto")), root.on_sample)
        options.setdefault("device", str(built.device))
        model = built
    return [evaluate(model, split, data_root, out_dir=out_dir, log=log, **options) for split in splits]
