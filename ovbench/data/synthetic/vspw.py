"""A small synthetic data set in the exact VSPW_480p layout (raw ids: 0 = others, 1..124, 255 = void)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ovbench.data.synthetic.scenes import JPEG_QUALITY, STAMP_FILE, SynthFrame, generator_stamp, write_video_tree
from ovbench.data.vspw import load_class_names


def write_synthetic_vspw(out: str | Path, *, videos: int = 8, frames: int | None = None,
                         height: int = 60, width: int = 106, seed: int = 0) -> Path:
    """Write a synthetic VSPW_480p tree under `out` (new or empty) and return `out`.

    The first half of the videos (at least one) is listed in val.txt, the rest in train.txt;
    test.txt is empty. `frames=None` varies the lengths (val: 24, 17, 16, 9, repeated; train:
    12..24); an int gives every video that length. The same arguments give byte-identical files.
    Besides the VSPW files, a hidden `STAMP_FILE` records the generator version and arguments.
    """
    out = Path(out)

    def save(frame: SynthFrame, stem: str) -> None:
        Image.fromarray(frame.image).save(out / "data" / frame.video / "origin" / f"{stem}.jpg", quality=JPEG_QUALITY)
        Image.fromarray(frame.raw).save(out / "data" / frame.video / "mask" / f"{stem}.png")

    write_video_tree(out, ("data/{video}/origin", "data/{video}/mask"), save,
                     videos=videos, frames=frames, height=height, width=width, seed=seed)
    label_ids = {"others": "0", **{n: str(k + 1) for k, n in enumerate(load_class_names())}}
    (out / "label_num_dic_final.json").write_text(json.dumps(label_ids, indent=1) + "\n")
    stamp = generator_stamp(videos=videos, frames=frames, height=height, width=width, seed=seed)
    (out / STAMP_FILE).write_text(json.dumps(stamp) + "\n")
    return out
