"""The image kinds as rows of the kinds table: a prepared root is recognised by its manifest
(before VIPSeg's `images/` marker, which it also has), each kind's reader reads only its kind,
its class names are its class file's, and a half-prepared root is one line."""

import shutil

import pytest

from ovbench.data.images import IMAGE_KINDS, STARTED, image_class_names
from ovbench.data.kinds import KINDS, class_names, detect_kind, open_dataset
from ovbench.data.synthetic.prepared import write_prepared
from ovbench.errors import DataError


@pytest.fixture(scope="module")
def ade847_root(tmp_path_factory):
    return write_prepared("ade847", tmp_path_factory.mktemp("ade847"), images=2)


def test_every_image_kind_is_a_row_with_its_names():
    for kind in IMAGE_KINDS:
        assert KINDS[kind].image and class_names(kind) == image_class_names(kind)
    assert len(class_names("ade847")) == 847 and len(class_names("pc459")) == 459


def test_a_prepared_root_is_its_manifest_kind_not_vipseg(ade847_root):
    assert (ade847_root / "images").is_dir() and detect_kind(ade847_root) == "ade847"
    assert open_dataset("ade847", ade847_root).videos("val") == ["ADE_val_00000001", "ADE_val_00000002"]
    with pytest.raises(DataError, match="ADE20K-847 root, but this split needs ADE20K-150"):
        open_dataset("ade150", ade847_root)


def test_a_half_prepared_root_is_one_line(ade847_root, tmp_path):
    half = shutil.copytree(ade847_root, tmp_path / "half")
    (half / "ovbench_prepared.json").rename(half / STARTED)
    with pytest.raises(DataError, match="half-prepared"):
        detect_kind(half)
