"""Accuracy vs. frames/s and per-class IoU charts (matplotlib, no pyplot global state).

The speed/accuracy plot is the point of a fast open-vocabulary model, so it reads the same
numbers as the table (same rows, same sources) rather than recomputing anything.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..errors import ConfigError, DataError
from .quantities import FPS, Value, evaluate, run_for
from .records import Run
from .select import Row
from .table import Leaderboard

SEEN_COLOUR, UNSEEN_COLOUR = "#4477aa", "#ee6677"
ONE_RUN_COLOUR, SEPARATE_COLOUR = "#228833", "#aa3377"
_ACCURACY = (("hIoU", "hIoU"), ("mIoU_unseen", "unseen mIoU"), ("mIoU", "mIoU"))


def _plain(text: str, limit: int = 70) -> str:
    """Record text must not turn on matplotlib's mathtext, nor run off the figure."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def accuracy_metric(board: Leaderboard) -> tuple[str, str]:
    """The accuracy the scatter plot shows: hIoU when any row has it, else unseen mIoU, else mIoU."""
    for metric, name in _ACCURACY:
        if any(evaluate(row.runs, metric).value is not None for row in board.rows):
            return metric, name
    raise DataError("no run has an mIoU to plot")


def accuracy_fps_figure(board: Leaderboard) -> tuple[Figure, list[str]]:
    metric, name = accuracy_metric(board)
    points: list[tuple[Row, Value, Value]] = []
    notes = []
    for row in board.rows:
        accuracy, fps = evaluate(row.runs, metric), evaluate(row.runs, FPS)
        if accuracy.value is None or fps.value is None:
            notes.append(f"plot: {row.label} has no {name if accuracy.value is None else 'frames/s'}; not plotted")
        else:
            points.append((row, accuracy, fps))
    if not points:
        raise DataError(f"no run has both {name} and frames/s to plot")
    devices = sorted({str(fps.run.record["env"].get("device")) for _, _, fps in points if fps.run})
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for row, accuracy, fps in points:
        colour = SEPARATE_COLOUR if accuracy.separate else ONE_RUN_COLOUR
        ax.scatter(fps.value, 100 * accuracy.value, s=40, color=colour, zorder=3)
        ax.annotate(_plain(row.label + (" †" if accuracy.separate else "")), (fps.value, 100 * accuracy.value),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.12)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    handles = [Line2D([], [], marker="o", linestyle="", color=ONE_RUN_COLOUR, label="one all-class run")]
    if any(accuracy.separate for _, accuracy, _ in points):
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=SEPARATE_COLOUR, label="† separate seen / unseen runs")
        )
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel(f"frames/s end to end ({_plain(', '.join(devices))})")
    ax.set_ylabel(f"{name} (%)")
    ax.set_title(_plain(f"{name} vs. speed: {board.dataset}, protocol {board.protocol}"), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return fig, notes


def per_class_run(row: Row) -> Run | None:
    """The row's run with per-class numbers, the all-class run first."""
    for form in ("all", "unseen", "seen"):
        run = run_for(row.runs, form)
        if run is not None and run.record["per_class"]:
            return run
    return next((run for run in row.runs if run.record["per_class"]), None)


def per_class_figure(rows: list[Row]) -> Figure:
    """One bar chart per row: IoU per vocabulary class, seen and unseen classes coloured apart;
    classes without ground-truth pixels get no bar."""
    charts = [(row, run) for row in rows if (run := per_class_run(row)) is not None]
    if not charts:
        raise DataError("no run has per-class results to plot")
    classes = max(len(run.record["per_class"]) for _, run in charts)
    fig = Figure(figsize=(max(6.0, 0.14 * classes + 1.5), 2.9 * len(charts)), layout="constrained")
    for ax, (row, run) in zip(fig.subplots(len(charts), 1, squeeze=False)[:, 0], charts):
        entries: dict[str, Any] = run.record["per_class"]
        names = list(entries)
        heights = [100 * e["iou"] if isinstance(e.get("iou"), (int, float)) else 0.0 for e in entries.values()]
        colours = [SEEN_COLOUR if e.get("seen") else UNSEEN_COLOUR for e in entries.values()]
        ax.bar(range(len(names)), heights, color=colours, width=0.8, edgecolor="none")
        ax.set_xticks(range(len(names)), [_plain(n) for n in names], rotation=90, fontsize=6)
        for tick, entry in zip(ax.get_xticklabels(), entries.values()):
            if not isinstance(entry.get("iou"), (int, float)):
                tick.set_color("#999999")  # no ground-truth pixels: no IoU
        ax.set_xlim(-0.7, len(names) - 0.3)
        ax.set_ylim(0, 100)
        ax.set_ylabel("IoU (%)")
        ax.set_title(_plain(f"{row.label}: per-class IoU on {run.split}"), fontsize=9, loc="left")
        ax.legend(handles=[Patch(color=SEEN_COLOUR, label="seen"), Patch(color=UNSEEN_COLOUR, label="unseen")],
                  fontsize=7, loc="upper right")
    return fig


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110)
    return buffer.getvalue()


def save_figure(fig: Figure, path: Path) -> None:
    """Format from the file suffix (png, svg, pdf)."""
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ConfigError(f"--out {path}: matplotlib cannot write .{fmt} files; use .png, .svg or .pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_bytes(fig, fmt))
