"""The run record: validation names the problem, writes are atomic and NaN-free."""

from pathlib import Path

import pytest
from helpers import minimal_record

from ovbench.errors import DataError
from ovbench.records.read import load_record
from ovbench.records.schema import SCHEMA_VERSION, validate_record
from ovbench.records.write import record_stem, write_record

REPO = Path(__file__).resolve().parents[2]


def test_round_trip_and_file_name(tmp_path):
    record = minimal_record()
    path = write_record(record, tmp_path, record_stem(record["model"], "vspw_all", {"run": 1}))
    assert path.name.startswith("m-x__vspw_all__") and path.name != record_stem(record["model"], "vspw_all", {"run": 2}) + ".json"
    assert load_record(path) == record
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop("metrics"), "missing key 'metrics'"),
        (lambda r: r["metrics"].update(mIoU=1.5), "not a fraction"),
        (lambda r: r["metrics"].update(mIoU=float("nan")), "not a fraction"),
        (lambda r: r["metrics"].update(miou=0.1), "unknown metric"),
        (lambda r: r["split"].pop("hash"), "split.hash"),
        (lambda r: r.update(schema_version=SCHEMA_VERSION + 1), "upgrade ovbench"),
    ],
)
def test_invalid_records_are_named(change, message):
    record = minimal_record()
    change(record)
    with pytest.raises(DataError, match=message):
        validate_record(record, "r.json")


def test_nan_cannot_be_written(tmp_path):
    record = minimal_record()
    record["per_video"] = {"v": {"mIoU": float("nan")}}
    with pytest.raises(ValueError):
        write_record(record, tmp_path, "r")
    assert not list(tmp_path.iterdir())


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        load_record(bad)
    with pytest.raises(DataError, match="missing.json: cannot read"):
        load_record(tmp_path / "missing.json")


def docs_pivot(folder):
    """The load_records example of docs/tables.md, as written there."""
    import ovbench

    df = ovbench.load_records(folder).sort_values("created")
    return df[~df.partial].pivot_table(index=["dataset", "model", "weights_sha256"], columns=["protocol", "split", "split_version"],
                                       values="mIoU", aggfunc="last")


def test_the_docs_load_records_example_never_averages_data_sets_or_checkpoints(tmp_path):
    """Issue 23.4: two checkpoints on two data sets are four cells, not one mean; an empty folder
    gives an empty table, not a KeyError."""
    assert 'values="mIoU", aggfunc="last")' in (REPO / "docs" / "tables.md").read_text()
    assert docs_pivot(tmp_path).empty
    for i, (dataset, weights, miou) in enumerate([("vspw", "a", 0.351), ("vspw", "b", 0.008), ("vipseg", "a", 0.2)]):
        record = minimal_record(mIoU=miou)
        record["dataset"]["name"], record["model"]["weights_sha256"] = dataset, weights
        write_record(record, tmp_path, f"r{i}")
    table = docs_pivot(tmp_path)
    assert table.loc[("vspw", "m/x", "a")].iloc[0] == 0.351 and table.loc[("vspw", "m/x", "b")].iloc[0] == 0.008
    assert table.shape == (3, 1)
