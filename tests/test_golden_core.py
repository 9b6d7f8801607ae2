"""Golden outputs of a fixed small configuration, so that a change of the code's layout cannot
change a number, a file or a table without a test saying so.

The configuration: a synthetic VSPW set (`data synth`, fixed seed), a MODEL run with saved PNG
and RLE predictions, a rescoring of the PNG predictions, two `--shard` runs merged, and the
leaderboard in every format over those records. What is compared: every record (less the keys
that name the moment, the machine, the code's commit and the time it took), every per-video
state entry (less its timings), every prediction file byte for byte, and every table. The
expected files were written by this test (`OVBENCH_WRITE_GOLDEN=1`) on main before the core
was reorganised (commit 0d0c4e4); they are only ever rewritten on purpose, with a reason.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ovbench.cli import main

GOLDEN = Path(__file__).parent / "golden" / "core"
WRITE = os.environ.get("OVBENCH_WRITE_GOLDEN") == "1"
# Keys whose values name when, where, by which commit and how fast a run was made.
VOLATILE = {"created", "finished", "git", "env", "environment", "timing", "host", "sessions", "source", "root",
            "ovbench_version", "seconds", "model_seconds", "wall_seconds", "session", "source_sha256", "fingerprint_sha256", "peak_memory"}
# A run's file stem ends in a hash of its whole fingerprint, commit included.
RUN_HASH = re.compile(r"__[0-9a-f]{8}(?=[._/]|$)")
WORK_DIR = re.compile(r"\S*/golden\d+/")  # the test's temporary folder
# Integer labels from integer arithmetic (tests/toy_adapters.py): the same bytes on any CPU.
MODEL = ["--plugin", "toy_adapters", "--model", "toy-labels"]

pytestmark = pytest.mark.slow


def _stable(value):
    """The value with every volatile key removed and run hashes masked, at any depth."""
    if isinstance(value, dict):
        return {RUN_HASH.sub("__H", k): _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        return RUN_HASH.sub("__H", WORK_DIR.sub("WORK/", value))
    return value


def _frozen(record: dict) -> dict:
    """The record with what names the moment, the machine and the speed set to constants, so
    that the tables rendered from it are the same bytes on every machine and day."""
    timing = {k: 10.0 if isinstance(v, float) else v for k, v in record["timing"].items() if not k.startswith("peak_")}
    env = {**record["env"], "device": "CPU", "cores": 2, "threads": 1, "libraries": {}, "torch": "x", "python": "x"}
    return {**record, "created": "2026-01-01T00:00:00+00:00", "git": None, "timing": timing, "env": env}


def _records(folder: Path) -> dict[str, dict]:
    """Records by what they are (kind, model, split, shard), not by file name."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        key = RUN_HASH.sub("__H", "{}__{}__{}".format(record.get("kind", "run"), record["model"]["id"], record["split"]["name"]))
        found[key] = _stable(record)
    return found


def _state_entries(folder: Path) -> dict[str, dict]:
    return {RUN_HASH.sub("__H", f"{p.parent.parent.name}/{p.name}"): _stable(json.loads(p.read_text()))
            for p in sorted(folder.glob("*.state/videos/*.json"))}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> dict[str, object]:
    """Everything the configuration writes, reduced to what must never change."""
    work = tmp_path_factory.mktemp("golden")
    data = work / "VSPW_480p"
    assert main(["data", "synth", "--out", str(data), "--videos", "4", "--frames", "5",
                 "--height", "24", "--width", "40", "--seed", "7"]) == 0
    common = ["--data-root", str(data), "--no-progress"]
    runs, shards, scored = work / "runs", work / "shards", work / "scored"
    assert main(["run", *MODEL, "--split", "vspw_all", *common, "--out", str(runs), "--save-predictions", "png"]) == 0
    assert main(["run", *MODEL, "--split", "vspw_unseen", *common, "--out", str(runs), "--save-predictions", "rle"]) == 0
    pred = next(runs.glob("*vspw_all*.predictions"))
    assert main(["score", "--split", "vspw_all", "--pred", str(pred), *common, "--out", str(scored)]) == 0
    for shard in ("0/2", "1/2"):
        assert main(["run", *MODEL, "--split", "vspw_seen", *common, "--out", str(shards), "--shard", shard]) == 0
    assert main(["merge", str(next(shards.glob("*.state")))]) == 0
    frozen = work / "frozen"
    frozen.mkdir()
    for i, path in enumerate(sorted(runs.glob("*.json"))):
        (frozen / f"run{i}.json").write_text(json.dumps(_frozen(json.loads(path.read_text()))))
    tables = {}
    cwd = os.getcwd()
    os.chdir(work)  # the HTML page names record files by the path given
    try:
        for fmt in ("md", "latex", "csv", "html"):
            assert main(["leaderboard", "--results", "frozen", "--format", fmt, "--out", f"table.{fmt}"]) == 0
            tables[f"table.{fmt}"] = (work / f"table.{fmt}").read_text()
    finally:
        os.chdir(cwd)
    return {
        "records.json": {**_records(runs), **_records(scored), **_records(shards)},
        "state.json": {**_state_entries(runs), **_state_entries(shards)},
        "predictions": {name: data for p in sorted(runs.glob("*.predictions"))
                        for name, data in ((RUN_HASH.sub("__H", f"{p.name}/{k}"), v) for k, v in _files(p).items())},
        "tables": tables,
    }


def _check_json(name: str, value: object) -> None:
    path = GOLDEN / name
    text = json.dumps(value, indent=1, sort_keys=True) + "\n"
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert json.loads(path.read_text()) == json.loads(text), f"{name} differs from the golden file"


def test_records_are_unchanged(produced):
    _check_json("records.json", produced["records.json"])


def test_state_entries_are_unchanged(produced):
    _check_json("state.json", produced["state.json"])


def test_prediction_files_are_byte_identical(produced):
    import hashlib
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in produced["predictions"].items()}
    _check_json("predictions.json", digests)


@pytest.mark.parametrize("fmt", ["md", "latex", "csv", "html"])
def test_tables_are_unchanged(produced, fmt):
    path = GOLDEN / f"table.{fmt}"
    text = produced["tables"][f"table.{fmt}"]
    if WRITE:
        path.write_text(text)
    assert text == path.read_text()
