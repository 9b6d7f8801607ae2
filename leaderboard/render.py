"""Markdown, LaTeX (booktabs) and CSV text of a leaderboard.

Every piece of text that comes from a record (model ids, arguments, weights, device names) is
escaped for the target format: a model called `a_b & c` must not break a paper's build.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import pandas as pd
from ovbench.leaderboard.layouts import NUMERIC_FIELDS, Column
from ovbench.leaderboard.per_video import KEYS as PER_VIDEO_KEYS
from ovbench.leaderboard.per_video import per_video_run, percent, video_scores
from ovbench.leaderboard.table import FOOTNOTES, MISSING, UNSUPPORTED, Leaderboard

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "\n": " ", "\r": " ",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))
_MARKDOWN_RE = re.compile(r"([\\`*_|<>\[\]])")


def escape_latex(text: str) -> str:
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], text)


def escape_markdown(text: str) -> str:
    return _MARKDOWN_RE.sub(r"\\\1", text.replace("\n", " "))


@dataclasses.dataclass(frozen=True)
class Style:
    escape: Callable[[str], str]
    bold: Callable[[str], str]
    symbols: dict[str, str]  # footnote id -> marker
    interval: Callable[[str, str], str]


MARKDOWN = Style(
    escape_markdown, lambda s: f"**{s}**", {"separate": "†", "partial": "‡", "random": "§", "mmseg": "¶", "rule_unknown": "°"}, lambda lo, hi: f" [{lo}, {hi}]"
)
LATEX = Style(
    escape_latex, lambda s: rf"\textbf{{{s}}}", {"separate": r"$^{\dagger}$", "partial": r"$^{\ddagger}$", "random": r"\textsuperscript{\S}",
     "mmseg": r"\textsuperscript{\P}", "rule_unknown": r"\textsuperscript{$\circ$}"},
    lambda lo, hi: rf"\,{{\scriptsize[{lo}, {hi}]}}",
)


def display_frame(board: Leaderboard, style: Style) -> pd.DataFrame:
    """The table as formatted strings, in layout column order."""
    data: dict[str, list[str]] = {}
    for column in board.layout.columns:
        cells = []
        for i in range(len(board.rows)):
            if column.field:
                cell = style.escape(board.text.loc[i, column.label])
            elif pd.isna(board.values.loc[i, column.label]):
                cell = MISSING
            else:
                cell = board.number(column, board.values.loc[i, column.label])
                if board.best.loc[i, column.label]:
                    cell = style.bold(cell)
                if (i, column.label) in board.intervals:
                    low, high = board.intervals[(i, column.label)]
                    cell += style.interval(board.number(column, low), board.number(column, high))
            cells.append(cell + "".join(style.symbols[m] for m in board.markers.get((i, column.label), [])))
        data[style.escape(column.label)] = cells
    return pd.DataFrame(data, dtype="str")


def right_aligned(column: Column) -> bool:
    """Numbers line up on the right: metrics, and the count fields."""
    return column.field is None or column.field in NUMERIC_FIELDS


def provenance(board: Leaderboard) -> str:
    """Which data and split definitions the numbers were measured on."""
    splits = ", ".join(f"{name} v{version} ({digest[:19]})" for name, version, digest in board.split_definitions())
    return f"Data set {board.dataset}; protocol {board.protocol}: {splits}."


def legend(board: Leaderboard) -> str:
    parts = ["Numbers in %; frames/s end to end per process (one GPU or CPU process); best in bold"
             " (none when all tie); - = not measured."]
    if board.intervals:
        parts.append("Brackets: 95% bootstrap interval over videos.")
    if "unsupported" in board.layout.fields:
        parts.append(f"{UNSUPPORTED} = benchmark not yet supported by ovbench.")
    return " ".join(parts)


def to_markdown(board: Leaderboard, *, per_video: bool = False) -> str:
    frame = display_frame(board, MARKDOWN)
    align = ["right" if right_aligned(c) else "left" for c in board.layout.columns]
    lines = [frame.to_markdown(index=False, colalign=align, disable_numparse=True), ""]
    for key in board.footnotes():
        lines += [f"{MARKDOWN.symbols[key]} {escape_markdown(FOOTNOTES[key])}", ""]
    lines.append(escape_markdown(f"{legend(board)} {provenance(board)}"))
    if per_video:
        lines += ["", per_video_markdown(board)]
    return "\n".join(lines) + "\n"


def per_video_markdown(board: Leaderboard) -> str:
    """One table per row: mIoU and VC of each video, worst first."""
    lines = []
    for row in board.rows:
        run = per_video_run(row)
        title = f"Per video: {row.label}" + (f" ({run.split}, {run.path.name})" if run else "")
        lines += [f"### {escape_markdown(title)}", ""]
        if run is None:
            lines += ["No per-video results in these runs.", ""]
            continue
        videos = video_scores(run)
        frame = pd.DataFrame(
            {"Video": [escape_markdown(v.video) for v in videos],
             "Frames": [MISSING if v.frames is None else str(v.frames) for v in videos],
             **{key: [percent(v.scores[key], MISSING) for v in videos] for key in PER_VIDEO_KEYS}},
            dtype="str",
        )
        lines += [frame.to_markdown(index=False, colalign=["left"] + ["right"] * (len(frame.columns) - 1),
                                    disable_numparse=True), ""]
    return "\n".join(lines)


def to_latex(board: Leaderboard) -> str:
    frame = display_frame(board, LATEX)
    spec = "".join("r" if right_aligned(c) else "l" for c in board.layout.columns)
    body = frame.to_latex(index=False, escape=False, column_format=spec)
    notes = [rf"{LATEX.symbols[key]} {escape_latex(FOOTNOTES[key])}" for key in board.footnotes()]
    if notes:
        width = len(board.layout.columns)
        rows = "".join(rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {note}}} \\" + "\n" for note in notes)
        body = body.replace("\\bottomrule\n", "\\bottomrule\n" + rows)
    header = [
        f"% ovbench leaderboard, layout {board.layout.id}: {legend(board)}",
        f"% {provenance(board)}",
        "% Needs \\usepackage{booktabs}; \\input this file inside a table environment.",
    ]
    return "\n".join(line.replace("\n", " ") for line in header) + "\n" + body


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    """Text a spreadsheet will not run: a cell starting like a formula gets a leading quote
    (OWASP's advice against CSV injection; a model id or a layout label can be anything), and a
    line break inside a cell becomes a space, as in the other formats."""
    text = "'" + text if text.startswith(_FORMULA_START) else text
    return text.replace("\r", " ").replace("\n", " ")


def to_csv(board: Leaderboard) -> str:
    """Plain cells for spreadsheets and scripts: numbers at full precision (percent, or
    frames/s), empty when not measured; intervals and footnotes in columns of their own."""
    data: dict[str, list[str]] = {}

    def numbers(column, values) -> list[str]:
        return ["" if v is None or pd.isna(v) else board.exact(column, v) for v in values]

    for column in board.layout.columns:
        if column.field:
            data[csv_text(column.label)] = ["" if text == MISSING else csv_text(text) for text in board.text[column.label]]
            continue
        data[csv_text(column.label)] = numbers(column, board.values[column.label])
        if any(label == column.label for _, label in board.intervals):
            ends = [board.intervals.get((i, column.label)) for i in range(len(board.rows))]
            for end, name in ((0, "low"), (1, "high")):
                data[csv_text(f"{column.label} {name}")] = numbers(column, [e and e[end] for e in ends])
    if board.footnotes():
        per_row: list[dict[str, None]] = [{} for _ in board.rows]
        for (i, _), marks in sorted(board.markers.items()):
            per_row[i].update(dict.fromkeys(FOOTNOTES[m] for m in marks))
        data["Footnotes"] = ["; ".join(texts) for texts in per_row]
    return pd.DataFrame(data, dtype="str").to_csv(index=False, lineterminator="\n")
