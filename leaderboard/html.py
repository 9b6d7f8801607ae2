"""One self-contained HTML page: sortable table, per-class views, plots, run metadata.

Everything (styles, script, images as base64 PNG) is inside the file, so it opens offline and
can be attached to a paper review or a CI artifact. Record text reaches the page only through
Jinja's autoescaping, never as markup or script.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup
from ovbench.leaderboard.per_video import KEYS as PER_VIDEO_KEYS
from ovbench.leaderboard.per_video import per_video_run, percent, video_scores
from ovbench.leaderboard.plots import accuracy_fps_figure, figure_bytes, per_class_figure, per_class_run
from ovbench.leaderboard.quantities import run_for
from ovbench.leaderboard.records import Run
from ovbench.leaderboard.render import MARKDOWN, legend, provenance
from ovbench.leaderboard.select import Row
from ovbench.leaderboard.strip import Strip, prediction_strip
from ovbench.leaderboard.table import FOOTNOTES, MISSING, Leaderboard

from ovbench.errors import DataError

SYMBOLS = MARKDOWN.symbols  # plain-text markers; the page puts them in <sup>


def _png(fig) -> str:
    return "data:image/png;base64," + base64.b64encode(figure_bytes(fig)).decode("ascii")


def _run_metadata(run: Run) -> list[tuple[str, str]]:
    record = run.record
    git = record.get("git") or {}
    timing = record.get("timing") or {}
    env, dataset, model = record["env"], record["dataset"], record["model"]
    items = [
        ("file", str(run.path)),
        ("split", f"{run.split} v{record['split']['version']} ({record['split']['hash']})"),
        ("created", record["created"]),
        ("kind", str(record["kind"])),
        ("model", str(model["id"])),
        ("weights", f"{model.get('weights', MISSING)} (sha256 {model.get('weights_sha256') or MISSING})"),
        ("args", json.dumps(model.get("args") or {}, sort_keys=True)),
        ("data", f"{dataset['name']} at {dataset.get('root', MISSING)}:"
                 f" {dataset['videos']} videos, {dataset['frames']} frames"),
        ("ovbench", f"{record['ovbench_version']}, git {git.get('commit', MISSING)}"
                    f"{' (dirty)' if git.get('dirty') else ''}"),
        ("device", f"{env.get('device', MISSING)}, {env.get('precision', MISSING)}, torch {env.get('torch', MISSING)}"),
        ("options", json.dumps(record["options"], sort_keys=True)),
    ]
    if timing:
        items.append(("timing", ", ".join(f"{k} {v}" for k, v in timing.items())))
    if run.partial:
        items.append(("partial run", "; ".join(run.partial)))
    for skipped in run.skipped_videos:
        items.append(("skipped video", f"{skipped.get('video')}: {skipped.get('error')}"))
    return items


def _hover(run: Run) -> str:
    shown = ("file", "split", "created", "device", "ovbench")
    return "\n".join(f"{k}: {v}" for k, v in _run_metadata(run) if k in shown)


def _cells(board: Leaderboard, i: int) -> list[dict[str, Any]]:
    row = board.rows[i]
    cells = []
    for column in board.layout.columns:
        symbols = "".join(SYMBOLS[m] for m in board.markers.get((i, column.label), []))
        if column.field:
            text = board.text.loc[i, column.label]
            cell = {"text": text, "sort": "" if text == MISSING else text.lower(), "bold": False, "interval": "",
                    "title": _hover(row.newest) if column.field == "label" else "", "anchor": column.field == "label"}
        else:
            value = board.values.loc[i, column.label]
            interval = board.intervals.get((i, column.label))
            source = board.cells[(i, column.label)]
            cell = {
                "text": MISSING if pd.isna(value) else board.number(column, value),
                "sort": "" if pd.isna(value) else repr(float(value)),
                "bold": bool(board.best.loc[i, column.label]),
                "interval": "" if interval is None else
                            f"[{board.number(column, interval[0])}, {board.number(column, interval[1])}]",
                "title": "\n\n".join(_hover(run) for run in source.sources),
                "anchor": False,
            }
        cell["symbols"] = symbols
        cells.append(cell)
    return cells


def _per_class(row: Row) -> dict[str, Any] | None:
    run = per_class_run(row)
    if run is None:
        return None
    classes = []
    for name, entry in run.record["per_class"].items():
        iou, acc = entry.get("iou"), entry.get("acc")
        classes.append({
            "name": name,
            "seen": "seen" if entry.get("seen") else "unseen",
            "iou": MISSING if iou is None else f"{100 * iou:.1f}",
            "iou_sort": "" if iou is None else repr(float(iou)),
            "acc": MISSING if acc is None else f"{100 * acc:.1f}",
            "acc_sort": "" if acc is None else repr(float(acc)),
            "pixels": str(entry.get("gt_pixels", MISSING)),
        })
    return {"split": run.split, "classes": classes, "chart": _png(per_class_figure([row]))}


def _per_video(row: Row) -> dict[str, Any] | None:
    run = per_video_run(row)
    if run is None:
        return None
    videos = [
        {"name": v.video, "frames": MISSING if v.frames is None else str(v.frames),
         "scores": [(percent(v.scores[key], MISSING), "" if v.scores[key] is None else repr(v.scores[key]))
                    for key in PER_VIDEO_KEYS]}
        for v in video_scores(run)
    ]
    return {"split": run.split, "metrics": PER_VIDEO_KEYS, "videos": videos}


def _strip(row: Row, notes: list[str]) -> Strip | None:
    """The strip of the row's first run (the all-class run first) that saved PNG predictions."""
    first = run_for(row.runs, "all")
    for run in ([first] if first is not None else []) + [r for r in row.runs if r is not first]:
        strip, note = prediction_strip(run)
        if note:
            notes.append(note)
        if strip is not None:
            return strip
    return None


def to_html(board: Leaderboard) -> str:
    package = resources.files("ovbench.leaderboard")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string((package / "page.html").read_text())
    try:
        scatter, plot_notes = accuracy_fps_figure(board)
        scatter_png = _png(scatter)
    except DataError as err:
        scatter_png, plot_notes = "", [f"plot: {err}"]
    board.notes.extend(plot_notes)
    rows = [
        {"id": f"model-{i}", "label": row.label, "cells": _cells(board, i), "per_class": _per_class(row),
         "per_video": _per_video(row), "strip": _strip(row, board.notes),
         "runs": [_run_metadata(run) for run in sorted(row.runs, key=lambda r: r.split)]}
        for i, row in enumerate(board.rows)
    ]
    return template.render(
        title=board.layout.title,
        description=board.layout.description,
        provenance=provenance(board),
        legend=legend(board),
        columns=[{"label": c.label, "type": "text" if c.field else "number", "better": c.better}
                 for c in board.layout.columns],
        rows=rows,
        footnotes=[(SYMBOLS[key], FOOTNOTES[key]) for key in board.footnotes()],
        scatter=scatter_png,
        notes=board.notes,
        css=Markup((package / "page.css").read_text()),
        script=Markup((package / "page.js").read_text()),
    )
