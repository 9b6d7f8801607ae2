"""CAT-Seg's PAS-20b rule: a model on voc20b_val is prompted with the 20 VOC names and the 39
background names (59 prompts), and a prediction of any background name counts as class 20,
background. toy-labels predicts (7R + 3G + B) // 16 mod 59 per pixel; the saved predictions
must be exactly that, collapsed at 20, computed here from the prepared images."""

import numpy as np
import pytest
import toy_adapters
from helpers import run_toy
from PIL import Image

from ovbench.data.images import class_file
from ovbench.data.synthetic.prepared import write_prepared
from ovbench.split import load_split


@pytest.fixture(scope="module")
def voc20b_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("voc20b")
    root = write_prepared("voc20b", base / "data", images=3)
    record, _ = run_toy(root, base / "out", split="voc20b_val", model="toy-labels", save_predictions="png")
    return root, base, record


def test_the_split_prompts_59_names_and_says_so():
    split = load_split("voc20b_val")
    background = class_file("voc20b")["background_names"]
    assert split.prompts == (*split.class_names[:20], *background) and len(split.prompts) == 59
    assert split.prompt_lut().tolist() == [*range(20), *[20] * 39]
    assert load_split("voc20_val").prompts == load_split("voc20_val").class_names


def test_background_prompts_count_as_background(voc20b_run):
    root, base, record = voc20b_run
    assert record["split"]["prompts"] == 59 and len(record["split"]["background_prompts"]) == 39
    assert record["split"]["vocabulary_size"] == 21
    for image in sorted((root / "images" / "val").glob("*.jpg")):
        rgb = np.array(Image.open(image).convert("RGB")).astype(np.int64)
        expected = np.minimum((rgb[..., 0] * 7 + rgb[..., 1] * 3 + rgb[..., 2]) // 16 % 59, 20)
        saved = np.array(Image.open(next(base.glob(f"out/*.predictions/{image.stem}/{image.stem}.png"))))
        assert np.array_equal(saved, expected)
    assert toy_adapters.CALLS["encode_text"] >= 1
