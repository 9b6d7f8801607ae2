"""The lines a researcher reads in the terminal after a run."""

from __future__ import annotations

from typing import Any

from ovbench.records.schema import METRIC_KEYS


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_summary(record: dict[str, Any]) -> str:
    """The few lines a researcher reads in the terminal after a run."""
    metrics = record["metrics"]
    lines = [
        f"model {record['model']['id']}  split {record['split']['name']} (v{record['split']['version']},"
        f" {record['split']['vocabulary_size']} classes)  data {record['dataset']['name']}"
        f" ({_count(record['dataset']['videos'], 'video')}, {_count(record['dataset']['frames'], 'frame')})",
        "  ".join(f"{key} {100 * metrics[key]:.1f}" for key in METRIC_KEYS if key in metrics),
    ]
    from ovbench.records.read import fps_per_process, partial_reasons, processes, random_init

    timing = record.get("timing")
    if timing:
        count = processes(record)
        per_process = f" ({fps_per_process(record):.1f} per process of {count})" if count > 1 else ""
        lines.append(
            f"{timing['frames']} frames in {timing['seconds']:.1f} s: {timing['fps_end_to_end']:.1f} frames/s end to end{per_process},"
            f" {timing['fps_model']:.1f} model only ({record['env']['device']}, {record['env']['precision']})"
        )
    skipped = record["dataset"].get("skipped") or []
    if skipped:
        lines.append(f"SKIPPED {len(skipped)} video(s): " + "; ".join(f"{s['video']}: {s['error']}" for s in skipped[:5]))
    if random_init(record):
        lines.append("RANDOM WEIGHTS (untrained): a smoke test, not a result of the method")
    reasons = partial_reasons(record)
    if reasons:
        lines.append("PARTIAL RUN (" + "; ".join(reasons) + "): the leaderboard leaves it out unless --include-partial")
    return "\n".join(lines)
