"""Which records may share a table, and how they form rows.

Numbers are only comparable on the same data (never the synthetic sample beside real VSPW)
and the same split definition (version and content hash), so the rest is left out with a
note. A row is one model configuration; its columns come from its runs on the protocol's
splits, the newest run per split unless every run is asked for.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Callable, Iterable

from ovbench.leaderboard.layouts import Layout, RowSpec
from ovbench.leaderboard.records import ModelConfig, Run

from ovbench.errors import ConfigError
from ovbench.suggest import did_you_mean

PREFERRED_DATASET = "vspw"
PREFERRED_PROTOCOL = "vspw"


@dataclasses.dataclass
class Row:
    label: str
    config: ModelConfig
    runs: list[Run]  # at most one per split
    partial: bool = False  # its runs do not cover their whole splits (shown only when asked for)

    @property
    def newest(self) -> Run:
        return max(self.runs, key=lambda r: r.created)


def _files(runs: Iterable[Run]) -> str:
    return ", ".join(str(r.path) for r in runs)


def _pick(
    runs: list[Run], key: Callable[[Run], str], wanted: str | None, preferred: str, what: str, option: str
) -> tuple[list[Run], str, list[str]]:
    groups: dict[str, list[Run]] = collections.defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    if wanted is not None:
        if wanted not in groups:
            raise ConfigError(
                f"{option} {wanted!r}: no run records on that {what}{did_you_mean(wanted, groups)};"
                f" found: {', '.join(sorted(groups))}"
            )
        chosen = wanted
    else:
        chosen = preferred if preferred in groups else min(groups, key=lambda k: (-len(groups[k]), k))
    notes = [
        f"left out {len(group)} record(s) on {what} {name!r} (this table uses {chosen!r}; choose with {option}):"
        f" {_files(group)}"
        for name, group in sorted(groups.items())
        if name != chosen
    ]
    return groups[chosen], chosen, notes


def _short_hash(value: str) -> str:
    return value[: len("sha256:") + 12]


def _one_definition(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Keep the newest protocol version, and per split the hash of its newest run."""
    top = max(int(r.record["split"]["version"]) for r in runs)
    notes, kept = [], []
    old = [r for r in runs if int(r.record["split"]["version"]) != top]
    if old:
        notes.append(
            f"left out {len(old)} record(s) on an older split version (this table uses version {top}): {_files(old)}"
        )
    by_split: dict[str, list[Run]] = collections.defaultdict(list)
    for run in runs:
        if int(run.record["split"]["version"]) == top:
            by_split[run.split].append(run)
    for name, group in sorted(by_split.items()):
        chosen = max(group, key=lambda r: r.created).record["split"]["hash"]
        other = [r for r in group if r.record["split"]["hash"] != chosen]
        kept += [r for r in group if r.record["split"]["hash"] == chosen]
        if other:
            notes.append(
                f"left out {len(other)} record(s) of split {name} v{top} with a different definition hash than"
                f" the newest run's ({_short_hash(str(chosen))}): {_files(other)}"
            )
    return kept, notes


def select(
    runs: list[Run], *, dataset: str | None, protocol: str | None
) -> tuple[list[Run], str, str, list[str]]:
    """The runs one table may hold: one data set, one protocol, one definition per split."""
    if not runs:
        return [], dataset or PREFERRED_DATASET, protocol or PREFERRED_PROTOCOL, []
    runs, chosen_dataset, notes = _pick(runs, lambda r: r.dataset, dataset, PREFERRED_DATASET, "data set", "--dataset")
    runs, chosen_protocol, more = _pick(
        runs, lambda r: r.protocol, protocol, PREFERRED_PROTOCOL, "protocol", "--protocol"
    )
    runs, definition = _one_definition(runs)
    return runs, chosen_dataset, chosen_protocol, notes + more + definition


def select_across(runs: list[Run], splits: set[str]) -> tuple[list[Run], str, str, list[str]]:
    """The runs of a table whose columns each read a split of its own data set (an image table):
    the runs on those splits, all on real data or (when there is none) all on synthetic data,
    and one definition per split (its protocol's newest version)."""
    named = [r for r in runs if r.split in splits]
    other = [r for r in runs if r.split not in splits]
    notes = [f"left out {len(other)} record(s) on splits no column of this table reads: {_files(other)}"] if other else []
    real = [r for r in named if "-synthetic" not in r.dataset]
    if real and len(real) < len(named):
        synthetic = [r for r in named if "-synthetic" in r.dataset]
        notes.append(f"left out {len(synthetic)} record(s) on synthetic data (this table shows real data): {_files(synthetic)}")
    named, more = real or named, []
    if not named:
        return [], "none", "none", notes
    kept = []
    for protocol in sorted({r.protocol for r in named}):
        chosen, definition = _one_definition([r for r in named if r.protocol == protocol])
        kept += chosen
        more += definition
    datasets, protocols = sorted({r.dataset for r in kept}), sorted({r.protocol for r in kept})
    return kept, ", ".join(datasets), ", ".join(protocols), notes + more


def _config_order(config: ModelConfig) -> tuple[str, ...]:
    return (config.id, config.weights, config.weights_sha256, config.args)


def mark_subsets(runs: list[Run]) -> list[Run]:
    """A run whose videos are a strict subset of another run's, with the same configuration on
    the same split, is partial even when its record does not say so (records written before
    `options.limit_videos` was recorded): a one-video smoke test is not a result."""
    by_setup: dict[tuple[ModelConfig, str], list[Run]] = collections.defaultdict(list)
    for run in runs:
        by_setup[(run.config, run.split)].append(run)
    marked = []
    for run in runs:
        larger = [o for o in by_setup[(run.config, run.split)] if run.videos and run.videos < o.videos]
        if larger:
            most = max(larger, key=lambda o: len(o.videos))
            run = dataclasses.replace(
                run, covers_less=f"{len(run.videos)} of the {len(most.videos)} videos of {most.path}"
            )
        marked.append(run)
    return marked


def _leave_out_partial(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Partial runs (a --limit-videos smoke test, skipped videos, a --partial merge) never stand
    for a configuration: left out with a note saying whether a complete run is shown instead."""
    complete = {(run.config, run.split) for run in runs if not run.partial}
    notes = [
        f"left out partial run {run.path} ({'; '.join(run.partial)}): "
        + ("a complete run of the same configuration is shown" if (run.config, run.split) in complete
           else "show partial runs, marked, with --include-partial")
        for run in runs if run.partial
    ]
    return [run for run in runs if not run.partial], notes


def _runs_per_config(
    runs: list[Run], all_runs: bool
) -> tuple[list[tuple[ModelConfig, bool, list[Run]]], list[str]]:
    """Newest run per (configuration, split), complete and partial runs apart so that one never
    stands in for the other; with `all_runs`, the k-th newest runs of each split form the
    configuration's k-th row. Each group: (configuration, partial, runs)."""
    grouped: dict[tuple[ModelConfig, bool], dict[str, list[Run]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for run in runs:
        grouped[(run.config, bool(run.partial))][run.split].append(run)
    result, notes = [], []
    for config, partial in sorted(grouped, key=lambda key: (_config_order(key[0]), key[1])):
        splits = grouped[(config, partial)]
        per_split = {s: sorted(g, key=lambda r: r.created, reverse=True) for s, g in sorted(splits.items())}
        depth = max(len(g) for g in per_split.values()) if all_runs else 1
        for rank in range(depth):
            result.append((config, partial, [g[rank] for g in per_split.values() if rank < len(g)]))
        if not all_runs:
            for split, group in per_split.items():
                if len(group) > 1:
                    notes.append(
                        f"left out {len(group) - 1} older{' partial' if partial else ''} run(s) of {config.id} on"
                        f" {split}, superseded by {group[0].path} (keep all with --all-runs): {_files(group[1:])}"
                    )
    return result, notes


def _describe(config: ModelConfig, key: str) -> str:
    value = config.args_dict().get(key)
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def _disambiguate(rows: list[Row], shown: set[str]) -> None:
    """Rows that would print the same label get what tells them apart (and is not already a
    column): differing model id, arguments, weights, or run time."""
    by_label: dict[str, list[Row]] = collections.defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    for same in by_label.values():
        if len(same) < 2:
            continue
        configs = [r.config for r in same]
        arg_keys = sorted({k for c in configs for k in c.args_dict()})
        varying_args = [] if "args" in shown else [
            k for k in arg_keys if len({json.dumps(c.args_dict().get(k)) for c in configs}) > 1
        ]
        for row in same:
            parts = []
            if "model" not in shown and len({c.id for c in configs}) > 1:
                parts.append(row.config.id)
            parts += [_describe(row.config, k) for k in varying_args]
            if "weights" not in shown and len({c.weights for c in configs}) > 1:
                parts.append(f"weights={row.config.weights}")
            if len({c.weights_sha256 for c in configs}) > 1 and len({c.weights for c in configs}) == 1:
                parts.append(f"weights {row.config.weights_sha256[:8]}")
            if len({(r.config, r.partial) for r in same}) < len(same) and "created" not in shown:
                parts.append(f"run of {row.newest.created:%Y-%m-%d %H:%M}")
            if parts:
                row.label = f"{row.label} ({', '.join(parts)})"


def _spec_for(specs: tuple[RowSpec, ...], runs: list[Run]) -> RowSpec | None:
    newest = max(runs, key=lambda r: r.created).record
    return next((spec for spec in specs if spec.matches(newest)), None)


def form_rows(
    runs: list[Run], layout: Layout, *, all_runs: bool, include_partial: bool = False
) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    runs = mark_subsets(runs)
    if not include_partial:
        runs, notes = _leave_out_partial(runs)
    groups, more = _runs_per_config(runs, all_runs)
    notes += more
    if layout.rows is None:
        rows = [Row(config.id, config, group, partial) for config, partial, group in groups]
    else:
        placed: dict[int, list[Row]] = collections.defaultdict(list)
        unmatched: list[Row] = []
        for config, partial, group in groups:
            spec = _spec_for(layout.rows, group)
            if spec is not None:
                placed[layout.rows.index(spec)].append(Row(spec.label, config, group, partial))
            elif layout.other_models == "append":
                unmatched.append(Row(config.id, config, group, partial))
            else:
                notes.append(
                    f"left out {config.id} (weights {config.weights}): matches no row of layout {layout.id}:"
                    f" {_files(group)}"
                )
        rows = [row for index in sorted(placed) for row in placed[index]] + unmatched
    _disambiguate(rows, layout.fields)
    return rows, notes
