"""The papers' published numbers (`published.json` beside this module), for the columns of a
layout that put a model's published number beside ovbench's measured one. The file names each
number's source and the mIoU rule the source used, so that a table can mark a number averaged
under the other rule than ovbench's runs (`miou_rule`: gt_present, union_present, unknown)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ovbench.errors import ConfigError
from ovbench.suggest import did_you_mean

RULES = ("gt_present", "union_present", "unknown")


@dataclass(frozen=True)
class Published:
    value: float  # a fraction, as the measured numbers (the file holds percentages)
    source: str
    rule: str


@cache
def published_numbers() -> dict:
    """{variant: {"source", "miou_rule", "numbers": {benchmark: percent}}}, checked."""
    payload = json.loads(resources.files("ovbench.leaderboard").joinpath("published.json").read_text())
    for variant, entry in payload["models"].items():
        if entry.get("miou_rule") not in RULES or not entry.get("source"):
            raise ConfigError(f"leaderboard/published.json: {variant!r} needs a 'source' and a 'miou_rule' of {RULES}")
        unknown = sorted(set(entry["numbers"]) - set(payload["benchmarks"]))
        if unknown:
            raise ConfigError(f"leaderboard/published.json: {variant!r} has numbers of unknown benchmarks {unknown}")
    return payload


def check_reference(variant: str | None, benchmark: str | None, where: str) -> None:
    """A layout's names must be the file's (a typo would silently show '-')."""
    payload = published_numbers()
    for name, known, what in ((variant, payload["models"], "model variant"), (benchmark, payload["benchmarks"], "benchmark")):
        if name is not None and name not in known:
            raise ConfigError(f"{where}: {what} {name!r} is not in leaderboard/published.json{did_you_mean(name, known)}")


def published(variant: str | None, benchmark: str) -> Published | None:
    """The published number of `variant` on `benchmark`; None where its source gives none."""
    entry = published_numbers()["models"].get(variant) if variant else None
    if entry is None or benchmark not in entry["numbers"]:
        return None
    return Published(entry["numbers"][benchmark] / 100, entry["source"], entry["miou_rule"])
