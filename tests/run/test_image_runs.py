"""Every image kind end to end on a synthetic prepared root: toy-colour runs on its split,
`score` of the saved predictions gives the run's numbers, and the gkc-image leaderboard reads
each of its columns from the run on that column's split (COCO from a COCO Panoptic run)."""

import json

import pytest
from helpers import run_toy

from ovbench.cli import main
from ovbench.data.synthetic.panoptic import write_synthetic_coco
from ovbench.data.synthetic.prepared import write_prepared

KINDS = ("ade150", "ade847", "pc59", "pc459", "voc20", "voc21", "voc20b", "cityscapes", "cocostuff171")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("images")
    roots = {kind: write_prepared(kind, base / "data" / kind, images=2, height=40, width=56) for kind in KINDS}
    roots["coco"] = write_synthetic_coco(base / "data" / "coco", images=2, height=40, width=56)
    records = {kind: run_toy(root, base / "results", split=f"{kind}_val", save_predictions="png")[0]
               for kind, root in roots.items()}
    return base, roots, records


@pytest.mark.parametrize("kind", KINDS)
def test_score_of_each_kind_gives_the_run_numbers(runs, kind, tmp_path):
    base, roots, records = runs
    pred = next(p for p in (base / "results").glob(f"*__{kind}_val__*.predictions"))
    assert main(["score", "--split", f"{kind}_val", "--pred", str(pred), "--data-root", str(roots[kind]),
                 "--out", str(tmp_path), "--no-progress"]) == 0
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["metrics"] == records[kind]["metrics"] and records[kind]["split"]["name"] == f"{kind}_val"


def test_the_gkc_image_table_reads_every_column_from_its_split(runs, capsys):
    base, _, records = runs
    assert main(["leaderboard", "--results", str(base / "results"), "--table", "gkc-image"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| toy-colour"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][2:]
    columns = ("coco", "voc20", "cityscapes", "ade150", "ade847", "pc59", "pc459")
    assert cells == [f"{100 * records[kind]['metrics']['mIoU']:.1f}" for kind in columns]
