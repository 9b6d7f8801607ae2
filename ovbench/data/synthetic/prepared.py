"""Small PREPARED image roots for `ovbench data synth --dataset ade150` and the tests: a
synthetic raw release in its downloaded layout (`ovbench.data.synthetic.images`) put through
the real `data prepare`, so that a synthetic root is exactly what a user's preparation gives.
Its manifest says it is synthetic (`data verify` then does not ask for the full release's image
counts), and so does the generator stamp every synthetic set has (records then name the data
set "<kind>-synthetic-<id>", and the leaderboard never puts it beside real data)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ovbench.data.images import MANIFEST, read_manifest
from ovbench.data.synthetic.images import WRITERS
from ovbench.data.synthetic.scenes import STAMP_FILE, generator_stamp
from ovbench.fileio import write_json


def write_prepared(kind: str, out: str | Path, *, images: int = 4, height: int = 48, width: int = 64,
                   seed: int = 0) -> Path:
    """A prepared root of `kind` with `images` images of about height x width in `out`."""
    from ovbench.data.prepare import prepare

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=f"ovbench-raw-{kind}-") as raw:
        WRITERS[kind](raw, images=images, height=height, width=width, seed=seed)
        prepare(kind, raw, out, workers=1, progress=False)
    manifest = read_manifest(out)
    manifest["source"] = {"release": "synthetic (ovbench.data.synthetic.images)", "seed": seed}
    write_json(out / MANIFEST, {**manifest, "synthetic": True})
    stamp = generator_stamp(videos=images, frames=1, height=height, width=width, seed=seed)
    (out / STAMP_FILE).write_text(json.dumps({"dataset": kind, **stamp}) + "\n")
    return out
