"""The leaderboard as data: rows x layout columns, best values, footnote markers, intervals.

Renderers (markdown, LaTeX, CSV, HTML) only format what is decided here, so every format bolds
the same cells and leaves out the same records for the same reasons.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath, PureWindowsPath
from typing import Callable

import numpy as np
import pandas as pd
from ovbench.leaderboard.bootstrap import video_bootstrap
from ovbench.leaderboard.layouts import Column, Layout
from ovbench.leaderboard.published import published
from ovbench.leaderboard.quantities import FPS, INTERVAL_KEYS, Value, evaluate
from ovbench.leaderboard.records import Run
from ovbench.leaderboard.select import Row, form_rows, select, select_across

from ovbench.errors import DataError
from ovbench.records.read import batch_size, processes, random_init, random_parts

MISSING = "-"
UNSUPPORTED = "n/s"
# Footnote id -> text; renderers choose the symbol.
FOOTNOTES = {
    "separate": "seen / unseen mIoU from separate seen-only and unseen-only vocabulary runs (no all-class run);"
    " no hIoU, which needs both from one run",
    "partial": "partial run: not every video of the split was evaluated (--limit-videos, skipped videos or a"
    " --partial merge); not comparable with complete runs",
    "random": "random (untrained) weights: a smoke test, not a result of the method",
    "cffm": "the CFFM family's VC convention (--vc-convention cffm): videos of at most options.min_video_frames"
    " frames (16 unless set) left out of VC8 and VC16 as well as mIoU; unmarked cells use the official one",
    "mmseg": "mIoU averaged also over classes predicted but absent from the ground truth, as 0 (--miou-convention"
    " mmseg: detectron2 <= v0.6, OVSeg, zsseg, mmseg); unmarked mIoU averages over the classes present in the"
    " ground truth (detectron2 since 2022-07, CAT-Seg, FC-CLIP, SAN's logs). They differ where a class is absent"
    " from the ground truth (PC-459)",
    "rule_unknown": "published number whose source does not say which mIoU averaging rule it used",
}


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    resamples: int = 1000
    seed: int = 0


@dataclasses.dataclass
class Leaderboard:
    layout: Layout
    dataset: str
    protocol: str
    rows: list[Row]
    values: pd.DataFrame  # metric columns: float (fractions, or frames/s), NaN when missing
    text: pd.DataFrame  # field columns: str
    best: pd.DataFrame  # metric columns: bool
    cells: dict[tuple[int, str], Value]  # (row position, column label) -> where the number came from
    markers: dict[tuple[int, str], list[str]]  # (row position, column label) -> footnote ids
    intervals: dict[tuple[int, str], tuple[float, float]]
    notes: list[str]
    shown: list[Run]  # the runs some cell reads

    @property
    def metric_columns(self) -> list[Column]:
        return [c for c in self.layout.columns if c.metric]

    def number(self, column: Column, value: float) -> str:
        """A value as papers print it: percentages (fractions x 100) or frames/s, one decimal."""
        return f"{100 * value if column.format == 'percent' else value:.1f}"

    def exact(self, column: Column, value: float) -> str:
        """A value for programs (CSV): the same unit at full precision; 15 significant digits
        drop only the last-bit noise of the x100 (0.452 -> 45.2, not 45.199999999999996)."""
        return f"{100 * value if column.format == 'percent' else value:.15g}"

    def footnotes(self) -> list[str]:
        used = {marker for markers in self.markers.values() for marker in markers}
        return [key for key in FOOTNOTES if key in used]

    def split_definitions(self) -> list[tuple[str, int, str]]:
        return sorted({(r.split, int(r.record["split"]["version"]), str(r.record["split"]["hash"]))
                       for r in self.shown})


def short_weights(weights: str) -> str:
    """A checkpoint path prints as its file name; tags ("openai", "builtin:...") as they are."""
    if "/" in weights or "\\" in weights:
        return PureWindowsPath(weights).name if "\\" in weights else PurePosixPath(weights).name
    return weights


def parameter_count(count: int | None) -> str:
    """A record's parameter count in millions ("154.3 M"); records from adapters that report
    none (or from before counts were recorded) show as missing."""
    return MISSING if count is None else f"{count / 1e6:.1f} M"


def _field(row: Row, field: str, fps: Value) -> str:
    model = row.newest.record["model"]
    if field == "label":
        return row.label
    if field == "model":
        return row.config.id
    if field == "weights":
        return short_weights(row.config.weights)
    if field == "backbone":
        return str(model.get("backbone") or MISSING)
    if field == "parameters":
        return parameter_count(model.get("parameters"))
    if field == "args":
        args = row.config.args_dict()
        return ", ".join(f"{k}={v}" for k, v in args.items()) or MISSING
    if field == "device":
        return str(fps.run.record["env"].get("device") or MISSING) if fps.run else MISSING
    if field == "processes":
        return str(processes(fps.run.record)) if fps.run else MISSING
    if field == "batch":
        size = batch_size(fps.run.record) if fps.run else None
        return MISSING if size is None else str(size)
    if field == "unsupported":
        return UNSUPPORTED
    return f"{row.newest.created:%Y-%m-%d %H:%M}"  # "created"


def _best(values: pd.Series, column: Column, number: Callable[[Column, float], str]) -> pd.Series:
    """Best as printed: equal printed numbers are all best, but when every number ties none is
    (bold would single nothing out). Needs two numbers to compare."""
    printed = values.map(lambda v: float(number(column, v)) if pd.notna(v) else np.nan)
    if printed.notna().sum() < 2 or printed.nunique() < 2:
        return pd.Series(False, index=values.index)
    target = printed.max() if column.better == "higher" else printed.min()
    return printed == target


def build_leaderboard(
    runs: list[Run],
    layout: Layout,
    *,
    dataset: str | None = None,
    protocol: str | None = None,
    all_runs: bool = False,
    include_partial: bool = False,
    bootstrap: Bootstrap | None = None,
) -> Leaderboard:
    if not runs:
        raise DataError("no valid run records to tabulate")
    if layout.across_datasets:
        kept, chosen_dataset, chosen_protocol, notes = select_across(runs, {c.split for c in layout.columns if c.split})
    else:
        kept, chosen_dataset, chosen_protocol, notes = select(
            runs, dataset=dataset or layout.dataset, protocol=protocol or layout.protocol
        )
    rows, more = form_rows(kept, layout, all_runs=all_runs, include_partial=include_partial)
    notes += more
    if not rows and kept and all(run.partial for run in kept):
        raise DataError(
            f"all {len(kept)} run record(s) on {chosen_dataset}/{chosen_protocol} are partial runs;"
            " show them, marked, with --include-partial"
        )
    if not rows:
        raise DataError(
            f"none of the {len(kept)} run record(s) on {chosen_dataset}/{chosen_protocol}"
            f" fits a row of layout {layout.id}"
        )
    metric_labels = [c.label for c in layout.columns if c.metric or c.published]
    field_labels = [c.label for c in layout.columns if c.field]
    index = range(len(rows))
    board = Leaderboard(
        layout, chosen_dataset, chosen_protocol, rows,
        values=pd.DataFrame(index=index, columns=metric_labels, dtype="float64"),
        text=pd.DataFrame(index=index, columns=field_labels, dtype="str"),
        best=pd.DataFrame(False, index=index, columns=metric_labels),
        cells={}, markers={}, intervals={}, notes=notes, shown=[],
    )
    for i in range(len(rows)):
        _fill_row(board, i)
    _mark_best(board)
    if bootstrap is not None:
        board.intervals = _intervals(board, bootstrap)
    return board


def _fill_row(board: Leaderboard, i: int) -> None:
    """Read the row's cells and note which of its runs no cell reads."""
    row, layout = board.rows[i], board.layout
    fps = evaluate(row.runs, FPS)
    used = {id(fps.run)} if fps.run is not None and layout.fields & {"device", "processes", "batch"} else set()
    for column in layout.columns:
        if column.field:
            board.text.loc[i, column.label] = _field(row, column.field, fps)
            continue
        value = _published_cell(board, i, column) if column.published else evaluate(row.runs, column.metric, column.split)
        board.cells[(i, column.label)] = value
        board.values.loc[i, column.label] = np.nan if value.value is None else value.value
        used |= {id(run) for run in value.sources}
        if value.separate:
            board.markers.setdefault((i, column.label), []).append("separate")
        if any(run.record["options"].get("vc_convention", "official") != "official" for run in value.sources):
            board.markers.setdefault((i, column.label), []).append("cffm")
        if value.run is not None and "IoU" in str(value.key) and value.run.record["options"].get("miou_convention") == "mmseg":
            board.markers.setdefault((i, column.label), []).append("mmseg")
    label = next((c.label for c in layout.columns if c.field == "label"), layout.columns[0].label)
    if row.partial:
        board.markers.setdefault((i, label), []).append("partial")
    if any(random_init(run.record) for run in row.runs):
        board.markers.setdefault((i, label), []).append("random")
    for run in row.runs:
        if id(run) in used:
            board.shown.append(run)
        else:
            note = f"not shown: {run.path}: no cell of layout {layout.id} reads split {run.split} for this row"
            if run.form in ("seen", "unseen"):
                note += " (seen-only and unseen-only runs are a fallback when there is no all-class run)"
            board.notes.append(note)


def _published_cell(board: Leaderboard, i: int, column: Column) -> Value:
    """The paper's number of the row's variant (its row spec's `published`), marked when its
    source averaged under the other mIoU rule or does not say which."""
    spec = board.layout.row_spec(board.rows[i].label)
    found = published(spec.published if spec else None, str(column.published))
    if found is None:
        return Value(None)
    mark = {"union_present": "mmseg", "unknown": "rule_unknown"}.get(found.rule)
    if mark:
        board.markers.setdefault((i, column.label), []).append(mark)
    return Value(found.value)


def _mark_best(board: Leaderboard) -> None:
    """Bold among complete rows of trained weights only: a partial run's number is not
    comparable, and random weights can top VC by predicting one class everywhere, so neither can
    be best nor take bold away from the best other row."""
    complete = [i for i, row in enumerate(board.rows) if not row.partial and not any(_untrained(run.record) for run in row.runs)]
    for column in board.metric_columns:
        if column.metric == FPS and column.split is None:
            sources = [board.cells[(i, column.label)].run for i in complete]
            devices = sorted({str(run.record["env"].get("device")) for run in sources if run is not None})
            if len(devices) > 1:
                board.notes.append(
                    f"column {column.label} not bolded: frames/s measured on different devices ({', '.join(devices)})"
                )
                continue
        best = _best(board.values.loc[complete, column.label], column, board.number)
        board.best.loc[complete, column.label] = best


def _untrained(record: dict) -> bool:
    """Random weights, in whole or in part (a random text tower)."""
    return random_init(record) or bool(random_parts(record))


def _intervals(board: Leaderboard, options: Bootstrap) -> dict[tuple[int, str], tuple[float, float]]:
    """Bootstrap each run once; a cell gets its run's interval for the key it was read from."""
    per_run: dict[int, dict[str, tuple[float, float]]] = {}
    intervals = {}
    for (i, label), value in board.cells.items():
        run = value.run
        if run is None or value.key not in INTERVAL_KEYS:
            continue
        if id(run) not in per_run:
            try:
                per_run[id(run)] = video_bootstrap(
                    run.record, resamples=options.resamples, seed=options.seed, source=str(run.path)
                )
            except DataError as err:
                board.notes.append(f"no confidence interval: {err}")
                per_run[id(run)] = {}
            if not run.record.get("per_video"):
                board.notes.append(f"no confidence interval for {run.path}: it has no per-video confusion matrices")
        if value.key in per_run[id(run)]:
            intervals[(i, label)] = per_run[id(run)][value.key]
    return intervals
