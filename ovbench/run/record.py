"""From run state to run record: every finished and skipped video of a run (all sessions, all
processes, all `--shard` jobs, one state folder or several). One path for all of them, so a
single-process run, a torchrun job and merged SLURM shards produce the same record from the
same finished videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ovbench.errors import ConfigError, DataError
from ovbench.metrics.accumulator import resolve_min_video_frames
from ovbench.metrics.split_metrics import (
    add_tc,
    compute_for_split,
    new_metrics,
    options_summary,
    vc_convention_of,
    why_no_metrics,
)
from ovbench.records.write import content_sha256, new_record, record_stem, write_record
from ovbench.run.state import RunState, Session, StateContents, VideoResult, changed_keys
from ovbench.split import Split


def timing_of(finished: list[VideoResult], sessions: list[Session], static_shards: bool) -> dict[str, Any]:
    """How long the finished videos took (a skipped video's time is left out with its frames).
    Under torchrun the processes of one session run side by side (the slowest sets the time)
    and sessions (resumes) run one after another; `--shard` jobs run side by side, each
    through its own sessions one after another. Per process: frames over the summed busy time
    of every process, comparable between 1 and N processes; `mixed_devices` when the
    processes that finished videos ran on different devices."""
    per_process: dict[tuple[str, int], list[float]] = {}
    for result in finished:
        sums = per_process.setdefault((result.session, result.rank), [0.0, 0.0])
        sums[0] += result.seconds
        sums[1] += result.model_seconds
    groups: dict[Any, list[list[float]]] = {}
    for (session, rank), sums in per_process.items():
        groups.setdefault(rank if static_shards else session, []).append(sums)
    within, across = (sum, max) if static_shards else (max, sum)
    wall = across(within(s[0] for s in group) for group in groups.values())
    model = across(within(s[1] for s in group) for group in groups.values())
    busy = sum(s[0] for s in per_process.values())
    busy_model = sum(s[1] for s in per_process.values())
    frames = sum(result.metrics["frames"] for result in finished)
    env = {(s.session, s.rank): s.env for s in sessions}
    devices = {str(env.get(process, {}).get("device")) for process in per_process}
    return {
        "frames": frames,
        "seconds": wall,
        "model_seconds": model,
        "fps_model": frames / model if model > 0 else 0.0,
        "fps_end_to_end": frames / wall if wall > 0 else 0.0,
        "fps_per_process_model": frames / busy_model if busy_model > 0 else 0.0,
        "fps_per_process_end_to_end": frames / busy if busy > 0 else 0.0,
        "text_seconds": max((s.text_seconds for s in sessions), default=0.0),
        "processes": len(groups) if static_shards else max(len(group) for group in groups.values()),
        "mixed_devices": len(devices) > 1,
        **_peaks(finished),
    }


def _peaks(finished: list[VideoResult]) -> dict[str, int]:
    """The largest peak host (and GPU) memory any process reached (states written before
    ovbench measured it have none)."""
    peaks: dict[str, int] = {}
    for result in finished:
        for part, value in (result.peak_memory or {}).items():  # host_bytes, gpu_bytes
            key = f"peak_{part.removesuffix('_bytes')}_memory_bytes"
            peaks[key] = max(value, peaks.get(key, 0))
    return peaks


def unique_results(results_: Iterable[VideoResult]) -> dict[str, VideoResult]:
    """One finished result per video. The same video finished twice (two copies of a command
    that raced on one state before runs were locked, or state folders given twice) is kept once
    when both agree; when they differ the run cannot be trusted, and both files are named."""
    kept: dict[str, VideoResult] = {}
    for result in results_:
        first = kept.setdefault(result.video, result)
        if first is not result and first.metrics != result.metrics:
            raise DataError(f"video {result.video} was scored twice with different results ({first.source} and"
                            f" {result.source}); move the wrong one away (or rerun with --overwrite)")
    return kept


def record_from_states(states: list[RunState], *, partial: bool = False,
                       fingerprint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of one run's state folders; `fingerprint` (that of the states, with other
    VC options: `rescored`) makes the record of those options from the same video entries."""
    fingerprint = fingerprint or states[0].fingerprint()
    for state in states[1:]:
        other = state.fingerprint()
        if other != states[0].fingerprint():
            changed = changed_keys(other, fingerprint)
            raise ConfigError(f"{state.directory} and {states[0].directory} are different runs (they differ in {', '.join(changed)})")
    contents = StateContents([], [], [])
    for state in states:
        found = state.contents()
        contents.sessions += found.sessions
        contents.finished += found.finished
        contents.skipped += found.skipped
    if not contents.finished and not contents.skipped:
        raise DataError(f"{states[0].directory} holds no finished work yet")
    return record_from_contents(fingerprint, states[0].split(), contents, partial=partial)


def record_from_contents(fingerprint: dict[str, Any], split: Split, contents: StateContents, *, partial: bool = False) -> dict[str, Any]:
    """The record of every listed video, finished or skipped. A video in no state (a `--shard`
    job unfinished or not given) is an error, or with `partial` a skipped video."""
    if not isinstance(fingerprint.get("videos"), dict):
        raise DataError("this run state was written by an older ovbench (its fingerprint lists no videos); rerun the run to make a record")
    options = fingerprint["options"]
    finished = unique_results(contents.finished)
    metrics = new_metrics(split, options["min_video_frames"], vc_convention_of(options))
    for name in sorted(finished):
        metrics.add_video(name, finished[name].metrics)
    computed = compute_for_split(metrics, split, options["miou_convention"])
    if "tc" in options:
        add_tc(computed, {name: result.metrics for name, result in finished.items()}, split.num_classes)
    skipped = {r.video: r.error for r in contents.skipped if r.video not in finished}
    missing = [v for v in fingerprint["videos"]["names"] if v not in finished and v not in skipped]
    if missing and not partial:
        raise DataError(
            f"{len(missing)} of the run's {len(fingerprint['videos']['names'])} videos are in none of the given"
            f" states (first: {missing[0]}): a --shard job is unfinished or its state was not given;"
            " `ovbench merge --partial` writes a record of the rest, listing them as skipped"
        )
    skipped.update((v, f"video {v}: not evaluated (merged with --partial)") for v in missing)
    if not finished:
        first = next(iter(skipped.values()), "nothing was run")
        raise DataError(f"no video could be evaluated ({len(skipped)} skipped; first: {first})")
    if "mIoU" not in computed["metrics"]:
        raise DataError(why_no_metrics([r.metrics["frames"] for r in finished.values()], options["min_video_frames"]))
    record = new_record(
        kind="run",
        model=fingerprint["model"],
        split=split.summary(),
        dataset={
            **fingerprint["dataset"],
            "subset": split.subset,
            "videos": len(finished),
            "frames": sum(entry["frames"] for entry in computed["per_video"].values()),
            "skipped": [{"video": v, "error": e} for v, e in sorted(skipped.items())],
        },
        options={**options_summary(options["miou_convention"], options["min_video_frames"], vc_convention_of(options)),
                 "precision": options["precision"], "limit_videos": options.get("limit_videos"),
                 **({"tc": options["tc"]} if "tc" in options else {}),
                 **({"partial": True} if missing else {})},
        computed=computed,
        timing=timing_of(list(finished.values()), contents.sessions, static_shards=options["shards"] > 1),
        env=_first(contents.sessions).env,
    )
    record["run"] = {
        "fingerprint_sha256": content_sha256(fingerprint),
        "ovbench": fingerprint.get("ovbench"),
        "sessions": [{"session": s.session, "rank": s.rank, **s.settings, **s.env} for s in _by_start(contents.sessions)],
    }
    return record


def _by_start(sessions: list[Session]) -> list[Session]:
    return sorted(sessions, key=lambda s: (str(s.settings.get("started", "")), s.session, s.rank))


def _first(sessions: list[Session]) -> Session:
    """The session that started the run (its env is the record's, as before sessions were listed)."""
    return next(iter(_by_start(sessions)), Session("", 0))


def rescored(fingerprint: dict[str, Any], vc_convention: str | None, min_video_frames: int | None) -> dict[str, Any]:
    """A run's fingerprint with other VC options, as a run given them would have made it: the
    video entries do not depend on them, so a merge can re-score a state under another
    convention, and the record it writes is the one that run would have written (and reused).
    Not told a convention, the state's own; told one without --min-video-frames, its default."""
    options = fingerprint["options"]
    if vc_convention is None and min_video_frames is None:
        return fingerprint
    convention = vc_convention or vc_convention_of(options)
    frames = resolve_min_video_frames(convention, min_video_frames)
    kept = {key: value for key, value in options.items() if key != "vc_convention"}
    return {**fingerprint, "options": {**kept, "min_video_frames": frames,
                                       **({"vc_convention": convention} if convention != "official" else {})}}


def merge_runs(state_dirs: list[Path], out_dir: Path | None = None, *, partial: bool = False,
               vc_convention: str | None = None, min_video_frames: int | None = None) -> tuple[dict[str, Any], Path]:
    """Write the record of the given state folders of one run; by default beside the first,
    named as the run's (or, re-scored with other VC options, as that run's) record."""
    for directory in state_dirs:
        if not directory.is_dir():
            raise DataError(f"run state folder {directory} does not exist")
    states = [RunState(d) for d in state_dirs]
    own = states[0].fingerprint()
    fingerprint = rescored(own, vc_convention, min_video_frames)
    record = record_from_states(states, partial=partial, fingerprint=fingerprint)
    first = state_dirs[0].resolve()
    stem = first.stem if fingerprint == own else record_stem(fingerprint["model"], record["split"]["name"], fingerprint)
    try:
        return record, write_record(record, out_dir or first.parent, stem=stem)
    except OSError as err:
        raise ConfigError(f"cannot write the record into {out_dir or first.parent}: {err.strerror or err}") from None
