"""The synthetic VSPW generator: exact layout, determinism, lengths, label content, the sample."""

import hashlib
import json
import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovbench.data.synthetic import sample, scenes
from ovbench.data.synthetic.sample import ensure_sample, is_synthetic
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.data.vspw import load_class_names
from ovbench.errors import ConfigError

GKC_UNSEEN = {11, 32, 34, 57, 76, 78, 80, 94, 102, 112, 116, 122}  # converted ids


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def pixels(path: Path, dtype=None) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im, dtype=dtype)


def split_list(root: Path, subset: str) -> list[str]:
    return (root / f"{subset}.txt").read_text().split()


def raw_masks(root: Path, video: str) -> list[np.ndarray]:
    """Raw mask values, read with PIL directly (not through the reader under test)."""
    return [pixels(p) for p in sorted((root / "data" / video / "mask").iterdir())]


def classes_in(root: Path, subset: str) -> set[int]:
    """Converted ids present in a split's masks."""
    raw = set()
    for video in split_list(root, subset):
        for m in raw_masks(root, video):
            raw |= set(np.unique(m).tolist())
    return {v - 1 for v in raw if 1 <= v <= 124}


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    return write_synthetic_vspw(tmp_path_factory.mktemp("synth") / "root")


def test_layout_is_exact(default_set):
    root = default_set
    assert {p.name for p in root.iterdir()} == {"train.txt", "val.txt", "test.txt", "data",
                                                "label_num_dic_final.json", scenes.STAMP_FILE}
    assert is_synthetic(root) and not is_synthetic(root / "data")
    assert (root / "test.txt").read_text() == ""
    val, train = split_list(root, "val"), split_list(root, "train")
    assert len(val) == 4 and len(train) == 4 and not set(val) & set(train)
    assert sorted(val + train) == sorted(p.name for p in (root / "data").iterdir())
    for video in val + train:
        assert re.fullmatch(r"\d{4}_[A-Za-z0-9_]+_\d", video)
        folder = root / "data" / video
        assert {p.name for p in folder.iterdir()} == {"origin", "mask"}
        jpgs = sorted(p.name for p in (folder / "origin").iterdir())
        pngs = sorted(p.name for p in (folder / "mask").iterdir())
        assert all(re.fullmatch(r"\d{8}\.jpg", n) for n in jpgs)
        assert [n[:-4] for n in jpgs] == [n[:-4] for n in pngs]
        with Image.open(folder / "origin" / jpgs[0]) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (106, 60))
        with Image.open(folder / "mask" / pngs[0]) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "L", (106, 60))
    labels = json.loads((root / "label_num_dic_final.json").read_text())
    assert labels == {"others": "0", **{n: str(i + 1) for i, n in enumerate(load_class_names())}}


def test_default_lengths(default_set):
    count = lambda v: len(list((default_set / "data" / v / "origin").iterdir()))
    assert [count(v) for v in split_list(default_set, "val")] == [24, 17, 16, 9]
    train = [count(v) for v in split_list(default_set, "train")]
    assert len(train) == 4 and all(12 <= n <= 24 for n in train)


def test_deterministic(tmp_path, default_set):
    again = write_synthetic_vspw(tmp_path / "again")
    assert tree_hash(again) == tree_hash(default_set)
    other = write_synthetic_vspw(tmp_path / "other", seed=1)
    assert tree_hash(other) != tree_hash(default_set)


def test_labels_move_and_others_void_present(default_set):
    frames_with_others = frames = 0
    void_seen = False
    for video in split_list(default_set, "val") + split_list(default_set, "train"):
        masks = raw_masks(default_set, video)
        assert any(not np.array_equal(masks[0], m) for m in masks[1:]), video
        assert set(np.unique(np.stack(masks)).tolist()) <= set(range(125)) | {255}
        frames += len(masks)
        frames_with_others += sum(bool((m == 0).any()) for m in masks)
        void_seen |= any(bool((m == 255).any()) for m in masks)
    assert 0 < frames_with_others < frames
    assert void_seen


def test_class_pool_in_both_splits(default_set):
    val, train = classes_in(default_set, "val"), classes_in(default_set, "train")
    assert val == set(scenes.POOL)  # every pool class gets per-class numbers
    for present in (val, train):
        assert len(present & GKC_UNSEEN) >= 5
        assert any(c < 80 for c in present) and any(c >= 80 for c in present)


def interior(raw: np.ndarray, r: int = 2) -> np.ndarray:
    """Pixels whose (2r+1)^2 neighbourhood has one label: away from edges and JPEG bleeding."""
    keep = np.zeros(raw.shape, dtype=bool)
    keep[r:-r, r:-r] = True
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            keep &= np.roll(raw, (dy, dx), axis=(0, 1)) == raw
    return keep


def test_class_colours_are_separated(default_set):
    """Learnability proxy: the mean colour of each class is far from every other class's."""
    sums, counts = {}, {}
    for video in split_list(default_set, "val"):
        for jpg in sorted((default_set / "data" / video / "origin").iterdir()):
            image = pixels(jpg, np.float64)
            raw = pixels(default_set / "data" / video / "mask" / f"{jpg.stem}.png")
            inside = interior(raw)
            for c in np.unique(raw[inside]).tolist():
                sel = inside & (raw == c)
                sums[c] = sums.get(c, 0) + image[sel].sum(0)
                counts[c] = counts.get(c, 0) + sel.sum()
    means = {c: sums[c] / counts[c] for c in sums if c not in (0, 255)}
    assert len(means) == len(scenes.POOL)
    assert min(np.linalg.norm(means[a] - means[b]) for a, b in combinations(means, 2)) > 80


def test_flags_honoured(tmp_path):
    root = write_synthetic_vspw(tmp_path / "r", videos=3, frames=5, height=32, width=48, seed=2)
    assert len(split_list(root, "val")) == 1 and len(split_list(root, "train")) == 2
    for video in split_list(root, "val") + split_list(root, "train"):
        masks = raw_masks(root, video)
        assert len(masks) == 5 and all(m.shape == (32, 48) for m in masks)
    one = write_synthetic_vspw(tmp_path / "one", videos=1, frames=1)
    assert len(split_list(one, "val")) == 1 and split_list(one, "train") == []


@pytest.mark.parametrize("kwargs, word", [(dict(videos=0), "videos=0"), (dict(frames=0), "frames=0"),
                                          (dict(height=8), "height=8"), (dict(width=3), "width=3")])
def test_bad_arguments(tmp_path, kwargs, word):
    with pytest.raises(ConfigError, match=word):
        write_synthetic_vspw(tmp_path / "r", **kwargs)


def test_refuses_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        write_synthetic_vspw(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_ensure_sample_once_then_on_new_version(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "SAMPLE", dict(videos=2, height=24, width=40, seed=0))
    cache = tmp_path / "cache"
    root = ensure_sample(cache)
    assert split_list(root, "val") and split_list(root, "train")
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert ensure_sample(cache) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes
    (root / "stale").write_text("from the old generator")
    monkeypatch.setattr(scenes, "GENERATOR_VERSION", scenes.GENERATOR_VERSION + 1)
    assert ensure_sample(cache) == root
    assert not (root / "stale").exists()
    stamp = json.loads((root / scenes.STAMP_FILE).read_text())
    assert stamp == {"generator_version": scenes.GENERATOR_VERSION, "frames": None, **sample.SAMPLE}
    assert [p.name for p in cache.iterdir() if p.suffix != ".lock"] == [sample.SAMPLE_DIRNAME]  # no temp folders left


@pytest.mark.slow
def test_each_generated_set_has_its_own_dataset_name(vspw_sample, tmp_path):
    from ovbench.data.roots import dataset_name

    builtin = vspw_sample
    small = write_synthetic_vspw(tmp_path / "small", videos=2, height=40, width=71)
    other = write_synthetic_vspw(tmp_path / "other", videos=2, height=40, width=71, seed=1)
    again = write_synthetic_vspw(tmp_path / "again", videos=2, height=40, width=71)
    (tmp_path / "real").mkdir()
    assert dataset_name(builtin) == "vspw-synthetic"
    assert dataset_name(small).startswith("vspw-synthetic-") and dataset_name(other).startswith("vspw-synthetic-")
    assert len({dataset_name(builtin), dataset_name(small), dataset_name(other)}) == 3
    assert dataset_name(again) == dataset_name(small)  # same arguments, same data
    assert dataset_name(tmp_path / "real") == "vspw"


_RACER = """
import sys, time
from pathlib import Path
from ovbench.data.synthetic import sample

sample.SAMPLE = dict(videos=2, height=20, width=24, seed=0)
log = Path(sys.argv[2])
real = sample.write_synthetic_vspw

def slow_write(out, **kw):
    with open(log, "a") as f:
        f.write("generate\\n")
    time.sleep(1.0)  # the other process arrives while this one generates
    return real(out, **kw)

sample.write_synthetic_vspw = slow_write
root = sample.ensure_sample(sys.argv[1])
print(root, sorted(p.name for p in (root / "data").iterdir()))
"""


@pytest.mark.slow
def test_two_processes_generate_the_sample_once(tmp_path):
    """torchrun's ranks all call ensure_sample on a fresh cache: one generates, the others wait
    for it instead of generating too and renaming the sample away while it is read."""
    import os
    import subprocess
    import sys

    log = tmp_path / "log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path / "cache"), str(log)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], [err for _, err in outputs]
    assert outputs[0][0] == outputs[1][0] and "1001_synth_000_0" in outputs[0][0]
    assert log.read_text() == "generate\n"
