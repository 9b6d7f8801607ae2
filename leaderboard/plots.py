"""Accuracy vs. frames/s and per-class IoU charts (matplotlib, no pyplot global state).

The speed/accuracy plot is the point of a fast open-vocabulary model, so it reads the same
numbers as the table (same rows, same sources) rather than recomputing anything.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox
from ovbench.leaderboard.quantities import FPS, Value, evaluate, run_with
from ovbench.leaderboard.records import Run
from ovbench.leaderboard.select import Row
from ovbench.leaderboard.table import Leaderboard

from ovbench.errors import ConfigError, DataError
from ovbench.fileio import write_bytes
from ovbench.records.read import random_init

SEEN_COLOUR, UNSEEN_COLOUR = "#4477aa", "#ee6677"
ONE_RUN_COLOUR, SEPARATE_COLOUR = "#228833", "#aa3377"
_LEADER = {"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 4}
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
    labels = []
    for row, accuracy, fps in points:
        colour = SEPARATE_COLOUR if accuracy.separate else ONE_RUN_COLOUR
        ax.scatter(fps.value, 100 * accuracy.value, s=40, color=colour, zorder=3)
        labels.append(ax.annotate(_plain(row.label + _marks(row, accuracy.separate)),
                                  (fps.value, 100 * accuracy.value), textcoords="offset points", xytext=(5, 4),
                                  fontsize=8, arrowprops=_LEADER))
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.12)
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))  # scores are never negative, even when every one is 0
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    handles = [Line2D([], [], marker="o", linestyle="", color=ONE_RUN_COLOUR, label="one all-class run")]
    if any(accuracy.separate for _, accuracy, _ in points):
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=SEPARATE_COLOUR, label="† separate seen / unseen runs")
        )
    marked = "".join(_marks(row, False) for row, _, _ in points)
    handles += [Line2D([], [], linestyle="", label=text) for mark, text in _ROW_MARKS.items() if mark in marked]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel(f"frames/s end to end per process ({_plain(', '.join(devices))})")
    ax.set_ylabel(f"{name} (%)")
    ax.set_title(_plain(f"{name} vs. speed: {board.dataset}, protocol {board.protocol}"), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    place_labels(fig, labels)
    return fig, notes


_ROW_MARKS = {"‡": "‡ partial run (not every video)", "§": "§ random weights"}


def _marks(row: Row, separate: bool) -> str:
    """The tables' footnote marks for a plotted row: a partial or random-weights run is never
    plotted unmarked."""
    return ((" †" if separate else "") + (" ‡" if row.partial else "")
            + (" §" if any(random_init(run.record) for run in row.runs) else ""))


# Offsets (points) tried in turn for a label: beside the marker first, then rings further out.
_OFFSETS = [(dx * r, dy * r - 3) for r in (1, 2, 3, 4, 5, 6, 8, 10) for dx, dy in
            ((6, 6), (6, -6), (-6, 6), (-6, -6), (0, 10), (0, -10), (12, 0), (-12, 0))]


def place_labels(fig: Figure, labels: list[Annotation]) -> None:
    """Move each label to the first offset where it overlaps no label placed before it and
    stays inside the axes (nearby models often have close numbers). Matplotlib only: the layout
    is fixed first, so the display boxes compared here are the ones drawn. Each label has a thin
    leader line to its point, hidden under the marker when the label sits beside it."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    placed: list[Bbox] = []
    for label in labels:
        area = label.axes.get_window_extent(renderer)
        candidates = []
        for dx, dy in _OFFSETS:
            label.set_position((dx, dy))
            label.set_horizontalalignment("left" if dx >= 0 else "right")
            box = text_box(label, renderer)
            if not any(box.overlaps(other) for other in placed):
                candidates.append(((dx, dy), box))
                if area.contains(box.x0, box.y0) and area.contains(box.x1, box.y1):
                    break
        (dx, dy), box = candidates[-1] if candidates else ((dx, dy), box)
        label.set_position((dx, dy))
        label.set_horizontalalignment("left" if dx >= 0 else "right")
        placed.append(box)


def text_box(label: Annotation, renderer) -> Bbox:
    """The label's text alone (an Annotation's own extent includes its leader line), padded."""
    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer).padded(1)


def per_class_run(row: Row) -> Run | None:
    return run_with(row.runs, "per_class")


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
    write_bytes(path, figure_bytes(fig, fmt))
