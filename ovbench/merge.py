"""From run state to run record: the merge of every part of a run (all sessions, all
processes, all `--shard` jobs). One path for all of them, so a single-process run, a torchrun
job and merged SLURM shards produce the same record from the same finished videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import results
from .errors import ConfigError, DataError
from .evaluation import compute_for_split, new_metrics, options_summary
from .runstate import Part, RunState
from .splits import Split


def timing_of(parts: list[Part], text_seconds: float, static_shards: bool) -> dict[str, Any]:
    """How long the run took. Under torchrun the processes of one session run side by side
    (the slowest sets the time) and sessions (resumes) run one after another; `--shard` jobs
    run side by side, each through its own sessions one after another."""
    groups: dict[Any, list[Part]] = {}
    for part in parts:
        groups.setdefault(part.rank if static_shards else part.session, []).append(part)
    within, across = (sum, max) if static_shards else (max, sum)
    wall = across(within(p.wall_seconds for p in group) for group in groups.values())
    model = across(within(p.model_seconds for p in group) for group in groups.values())
    frames = sum(p.frames for p in parts)
    return {
        "frames": frames,
        "seconds": wall,
        "model_seconds": model,
        "fps_model": frames / model if model > 0 else 0.0,
        "fps_end_to_end": frames / wall if wall > 0 else 0.0,
        "text_seconds": text_seconds,
        "processes": len(groups) if static_shards else max((len(group) for group in groups.values()), default=0),
    }


def record_from_states(states: list[RunState], *, partial: bool = False) -> dict[str, Any]:
    fingerprint = states[0].fingerprint()
    for state in states[1:]:
        other = state.fingerprint()
        if other != fingerprint:
            changed = sorted(k for k in set(other) | set(fingerprint) if other.get(k) != fingerprint.get(k))
            raise ConfigError(f"{state.directory} and {states[0].directory} are different runs (they differ in {', '.join(changed)})")
    parts = [part for state in states for part in state.parts()]
    if not parts:
        raise DataError(f"{states[0].directory} holds no finished work yet")
    return record_from_parts(fingerprint, states[0].split(), parts, partial=partial)


def record_from_parts(fingerprint: dict[str, Any], split: Split, parts: list[Part], *, partial: bool = False) -> dict[str, Any]:
    """The record of every listed video, finished or skipped. A video in no part (a `--shard`
    job unfinished or not given) is an error, or with `partial` a skipped video."""
    if not isinstance(fingerprint.get("videos"), dict):
        raise DataError("this run state was written by an older ovbench (its fingerprint lists no videos); rerun the run to make a record")
    options = fingerprint["options"]
    metrics = new_metrics(split, "cpu", options["min_video_frames"])
    for part in parts:
        if part.metrics is not None:
            one = new_metrics(split, "cpu", options["min_video_frames"])
            one.load_state_dict(part.metrics)
            metrics.merge(one)
    computed = compute_for_split(metrics, split, options["miou_convention"])
    done = {video for part in parts for video in part.done}
    skipped = {video: error for part in parts for video, error in part.skipped.items() if video not in done}
    missing = [v for v in fingerprint["videos"]["names"] if v not in done and v not in skipped]
    if missing and not partial:
        raise DataError(
            f"{len(missing)} of the run's {len(fingerprint['videos']['names'])} videos are in none of the given"
            f" states (first: {missing[0]}): a --shard job is unfinished or its state was not given;"
            " `ovbench merge --partial` writes a record of the rest, listing them as skipped"
        )
    skipped.update((v, f"video {v}: not evaluated (merged with --partial)") for v in missing)
    if not done:
        first = next(iter(skipped.values()), "nothing was run")
        raise DataError(f"no video could be evaluated ({len(skipped)} skipped; first: {first})")
    record = results.new_record(
        kind="run",
        model=fingerprint["model"],
        split=split.summary(),
        dataset={
            **fingerprint["dataset"],
            "subset": split.subset,
            "videos": len(done),
            "frames": sum(entry["frames"] for entry in computed["per_video"].values()),
            "skipped": [{"video": v, "error": e} for v, e in sorted(skipped.items())],
        },
        options={**options_summary(options["miou_convention"], options["min_video_frames"]), "precision": options["precision"]},
        computed=computed,
        timing=timing_of(parts, max(p.text_seconds for p in parts), static_shards=options["shards"] > 1),
        env=next(p.env for p in parts if p.env),
    )
    record["run"] = {"fingerprint_sha256": results.content_sha256(fingerprint)}
    return record


def merge_runs(state_dirs: list[Path], out_dir: Path | None = None, *, partial: bool = False) -> tuple[dict[str, Any], Path]:
    """Write the record of the given state folders of one run; by default beside the first."""
    for directory in state_dirs:
        if not directory.is_dir():
            raise DataError(f"run state folder {directory} does not exist")
    record = record_from_states([RunState(d) for d in state_dirs], partial=partial)
    first = state_dirs[0].resolve()
    return record, results.write_record(record, out_dir or first.parent, stem=first.stem)
