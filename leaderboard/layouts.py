"""Paper-table layouts as data: which rows (methods, ablation variants) and which columns.

A layout is a JSON file whose name is its id (like open_clip's model configs), so a new paper
table is a file, not code: built-in ones live in `layouts/`, a user passes a path.

    {"title": "...", "description": "...",
     "dataset": "vipseg",                     # optional: which data set to tabulate
     "protocol": "vspw",                      # optional: which split protocol to tabulate
     "rows": [{"label": "GKC", "match": {"model.id": "gkc"},
               "exclude": {"model.weights": ["*distill*"]}}, ...],   # optional
     "other_models": "append" | "omit",       # configurations no row matches
     "across_datasets": true,                 # optional: each column's split is of its own data set
     "columns": [{"label": "Method", "field": "label"},
                 {"label": "hIoU", "metric": "hIoU"},
                 {"label": "Unseen vocab.", "metric": "mIoU", "split": "unseen"},
                 {"label": "FPS", "metric": "fps", "format": "number", "better": "higher"}]}

Without "rows" every model configuration is a row. A column shows a `field` (FIELDS) or a
`metric`: a quantity of quantities.QUANTITIES, or with `split` (a form such as "unseen", or a
split name) any metric key of that split's run, or "fps". A `published` column shows the
paper's number of the row's `published` variant on that benchmark (leaderboard/published.json).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from importlib import resources
from typing import Any

from ovbench.leaderboard.published import check_reference
from ovbench.leaderboard.quantities import QUANTITIES

from ovbench.errors import ConfigError
from ovbench.records.schema import METRIC_KEYS
from ovbench.resolve import builtin_names, names_a_file, resolve
from ovbench.suggest import did_you_mean, refuse_unknown_keys

# "unsupported": a benchmark of the paper's table that ovbench cannot evaluate yet (cells read n/s)
FIELDS = ("label", "model", "weights", "backbone", "parameters", "args", "device", "processes", "batch", "created", "unsupported")
NUMERIC_FIELDS = ("processes", "batch")
FORMATS = ("percent", "number")
_LAYOUT_KEYS = ("title", "description", "dataset", "protocol", "rows", "other_models", "columns", "across_datasets")
_COLUMN_KEYS = ("label", "field", "metric", "split", "format", "better", "published")
_ROW_KEYS = ("label", "match", "exclude", "published")


@dataclasses.dataclass(frozen=True)
class Column:
    label: str
    field: str | None = None  # one of FIELDS: text about the row
    metric: str | None = None  # a quantity, or with `split` a key of that run's metrics / "fps"
    split: str | None = None  # a split form ("all", "unseen", ...) or a split name
    published: str | None = None  # a benchmark of leaderboard/published.json: the row's paper number
    format: str = "percent"
    better: str = "higher"


@dataclasses.dataclass(frozen=True)
class RowSpec:
    """A named row: the model configurations whose newest record matches every `match` pattern
    and no `exclude` pattern. Keys are dotted record paths ("model.id", "model.args.x"); a
    string value is a shell-style pattern, a list means any of its items."""

    label: str
    match: dict[str, tuple[Any, ...]]
    exclude: dict[str, tuple[Any, ...]]
    published: str | None = None  # its model variant in leaderboard/published.json

    def matches(self, record: dict[str, Any]) -> bool:
        return all(_path_matches(record, k, v) for k, v in self.match.items()) and not any(
            _path_matches(record, k, v) for k, v in self.exclude.items()
        )


@dataclasses.dataclass(frozen=True)
class Layout:
    id: str
    source: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: tuple[RowSpec, ...] | None  # None: one row per model configuration
    other_models: str  # "append" | "omit": configurations that match no RowSpec
    protocol: str | None
    dataset: str | None = None
    across_datasets: bool = False  # an image table: columns of splits of different data sets

    def row_spec(self, label: str) -> RowSpec | None:
        return next((spec for spec in self.rows or () if spec.label == label), None)

    @property
    def fields(self) -> set[str]:
        return {c.field for c in self.columns if c.field}

    def run_splits(self) -> list[str]:
        """The splits this table's columns read, in column order, once each: what `ovbench run
        --split layout:<id>` runs. A column naming a split form ("unseen") reads the layout's
        protocol's split of that form (vspw_unseen); a layout with neither names nothing."""
        from ovbench.split import VOCABULARIES  # numpy: not for `leaderboard --help`

        names: list[str] = []
        for column in self.columns:
            if column.split is None:
                continue
            name = column.split if column.split not in VOCABULARIES else (
                f"{self.protocol}_{column.split}" if self.protocol else None)
            if name is None:
                raise ConfigError(f"layout {self.id}: column {column.label!r} reads the split form {column.split!r}"
                                  " and the layout names no protocol; list its splits with --split a,b")
            if name not in names:
                names.append(name)
        if not names:
            raise ConfigError(f"layout {self.id} names no split in its columns; list the splits with --split a,b")
        return names


def _path_matches(record: dict[str, Any], path: str, patterns: tuple[Any, ...]) -> bool:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    for pattern in patterns:
        if isinstance(pattern, str) and isinstance(value, str):
            if fnmatch.fnmatchcase(value, pattern):
                return True
        elif pattern == value:
            return True
    return False


def _layouts_folder():
    return resources.files("ovbench.leaderboard") / "layouts"


def builtin_layouts() -> list[str]:
    return builtin_names(_layouts_folder(), ".json")


def _patterns(spec: Any, where: str) -> dict[str, tuple[Any, ...]]:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} should be an object of record path -> pattern")
    return {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in spec.items()}


def _column(spec: Any, where: str) -> Column:
    if not isinstance(spec, dict) or not isinstance(spec.get("label"), str):
        raise ConfigError(f"{where} should be an object with a text 'label'")
    refuse_unknown_keys(spec, _COLUMN_KEYS, where)
    field, metric, split = spec.get("field"), spec.get("metric"), spec.get("split")
    if [field, metric, spec.get("published")].count(None) != 2:
        raise ConfigError(f"{where} ({spec['label']!r}) needs exactly one of 'field', 'metric' or 'published'")
    check_reference(None, spec.get("published"), where)
    if field is not None and field not in FIELDS:
        raise ConfigError(
            f"{where}: unknown field {field!r}{did_you_mean(str(field), FIELDS)}; known: {', '.join(FIELDS)}"
        )
    if metric is not None and split is None and metric not in QUANTITIES:
        raise ConfigError(
            f"{where}: unknown metric {metric!r}{did_you_mean(str(metric), QUANTITIES)}; known: {', '.join(QUANTITIES)}"
            " (or give 'split' to read any key of that split's record)"
        )
    run_keys = (*METRIC_KEYS, "fps")  # what a split's record can hold: a typo there would read "-" for every row
    if metric is not None and split is not None and metric not in run_keys:
        raise ConfigError(f"{where}: unknown metric {metric!r} of split {split!r}{did_you_mean(str(metric), run_keys)};"
                          f" a run record holds {', '.join(run_keys)}")
    default_format = "number" if metric == "fps" else "percent"
    column = Column(
        label=spec["label"], field=field, metric=metric, split=split,
        format=spec.get("format", default_format), better=spec.get("better", "higher"), published=spec.get("published"),
    )
    if column.format not in FORMATS:
        raise ConfigError(f"{where}: format {column.format!r} should be one of {', '.join(FORMATS)}")
    if column.better not in ("higher", "lower"):
        raise ConfigError(f"{where}: better {column.better!r} should be 'higher' or 'lower'")
    return column


def parse_layout(payload: Any, layout_id: str, source: str) -> Layout:
    if not isinstance(payload, dict):
        raise ConfigError(f"{source}: a layout is a JSON object")
    refuse_unknown_keys(payload, _LAYOUT_KEYS, source)
    columns = payload.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ConfigError(f"{source}: 'columns' should be a non-empty list")
    parsed = tuple(_column(c, f"{source}: columns[{i}]") for i, c in enumerate(columns))
    labels = [c.label for c in parsed]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: column labels must be unique ({', '.join(labels)})")
    rows = payload.get("rows")
    specs = None
    if rows is not None:
        if not isinstance(rows, list):
            raise ConfigError(f"{source}: 'rows' should be a list")
        specs = []
        for i, row in enumerate(rows):
            where = f"{source}: rows[{i}]"
            if not isinstance(row, dict) or not isinstance(row.get("label"), str) or "match" not in row:
                raise ConfigError(f"{where} should be an object with a text 'label' and 'match'")
            refuse_unknown_keys(row, _ROW_KEYS, where)
            check_reference(row.get("published"), None, where)
            specs.append(RowSpec(row["label"], _patterns(row["match"], f"{where}.match"),
                                 _patterns(row.get("exclude", {}), f"{where}.exclude"), row.get("published")))
    other = payload.get("other_models", "append")
    if other not in ("append", "omit"):
        raise ConfigError(f"{source}: other_models {other!r} should be 'append' or 'omit'")
    return Layout(
        id=layout_id, source=source, title=str(payload.get("title", layout_id)),
        description=str(payload.get("description", "")), columns=parsed,
        rows=tuple(specs) if specs is not None else None, other_models=other,
        protocol=payload.get("protocol"), dataset=payload.get("dataset"),
        across_datasets=bool(payload.get("across_datasets", False)),
    )


def load_layout(name_or_path: str) -> Layout:
    """A built-in layout by id, or a user's layout file (its file name is its id)."""
    path = resolve(name_or_path, _layouts_folder(), ".json", "--table layout")
    builtin = not names_a_file(name_or_path, builtin_layouts())
    source = f"ovbench/leaderboard/layouts/{path.name}" if builtin else str(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"--table {path}: cannot read ({err.strerror})") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err})") from None
    return parse_layout(payload, path.name.removesuffix(".json"), source)
