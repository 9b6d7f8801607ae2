"""`verify_images` passes a freshly prepared root of every kind and catches a defect planted in
it; the reader gives the label files' class ids, 16-bit where a kind has over 255 classes."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ovbench.data.images import CHECKSUMS, IMAGE_KINDS, MANIFEST, PreparedImages, detect_image_kind, image_class_names
from ovbench.data.prepare import prepare
from ovbench.data.synthetic.images import WRITERS
from ovbench.data.verify.images import verify_images
from ovbench.errors import DataError

KINDS = sorted(IMAGE_KINDS)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared root of every kind (one synthetic raw release per release module)."""
    base = tmp_path_factory.mktemp("prepared")
    raws, roots = {}, {}
    for kind in KINDS:
        writer = WRITERS[kind]
        if writer not in raws:
            raws[writer] = writer(base / f"raw_{writer.__name__}", images=3)
        roots[kind] = prepare(kind, raws[writer], base / kind, progress=False)
    return roots


def private(prepared, kind, tmp_path):
    return shutil.copytree(prepared[kind], tmp_path / kind)


def replant(root, rel, data):
    """Replace a file and its checksum line (and the manifest's hash of the list), so that only
    the file's content is wrong."""
    (root / rel).write_bytes(data)
    sums = root / CHECKSUMS
    lines = [f"{hashlib.sha256(data).hexdigest()}  {rel}" if line.endswith(f"  {rel}") else line
             for line in sums.read_text().splitlines()]
    text = "".join(f"{line}\n" for line in lines)
    sums.write_text(text)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["checksums"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (root / MANIFEST).write_text(json.dumps(manifest))


def png(array):
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def first_label(root):
    return sorted((root / "labels" / "val").glob("*.png"))[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_prepared_root_passes(prepared, kind):
    report = verify_images(prepared[kind], full_counts=False)
    assert report.ok, report.problems
    assert (report.frames_ok, report.frames_total) == (3, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_a_label_value_outside_the_classes_is_caught(prepared, kind, tmp_path):
    root = private(prepared, kind, tmp_path)
    label = first_label(root)
    values = np.array(Image.open(label))
    values[0, 0] = IMAGE_KINDS[kind].num_classes  # one past the last class
    replant(root, label.relative_to(root).as_posix(), png(values))
    report = verify_images(root, full_counts=False)
    assert report.problems == [f"{label}: label values {IMAGE_KINDS[kind].num_classes} outside the "
                               f"{IMAGE_KINDS[kind].num_classes} classes 0..{IMAGE_KINDS[kind].num_classes - 1} "
                               f"and ignore {IMAGE_KINDS[kind].ignore}"]
    assert report.frames_ok == 2


def test_sizes_checksums_missing_orphans_and_counts(prepared, tmp_path):
    root = private(prepared, "ade847", tmp_path)
    labels = sorted((root / "labels" / "val").glob("*.png"))
    replant(root, labels[0].relative_to(root).as_posix(), png(np.zeros((5, 7), dtype=np.uint16)))
    labels[1].write_bytes(labels[1].read_bytes()[:-8])
    (root / "images" / "val" / f"{labels[2].stem}.jpg").unlink()
    (root / "labels" / "val" / "stray.png").write_bytes(b"")
    problems = verify_images(root).problems
    assert any(f"{labels[0]}: label is 7x5 but the image is" in p for p in problems)
    assert f"{labels[1]}: changed since it was prepared (its sha256 differs from SHA256SUMS)" in problems
    assert any(p.startswith(f"{root / 'images' / 'val' / labels[2].stem}.jpg: cannot read") for p in problems)
    assert f"{root / 'labels' / 'val'}: 1 file(s) not in SHA256SUMS: stray.png" in problems
    assert f"{root / 'labels' / 'val'}: 3 images, the full ADE20K-847 val set has 2000" in problems
    assert len(problems) == 5


def test_an_edited_checksum_list_is_caught(prepared, tmp_path):
    root = private(prepared, "voc20", tmp_path)
    lines = (root / CHECKSUMS).read_text().splitlines()
    first = next(line for line in lines if "  labels/" in line)
    (root / CHECKSUMS).write_text("".join(f"{line}\n" for line in lines if line != first))
    problems = verify_images(root, full_counts=False).problems
    label = first.split("  ")[1].split("/")[-1]
    assert problems == [f"{root / CHECKSUMS}: differs from the list the manifest was written with",
                        f"{root / 'labels' / 'val'}: 2 images listed, the manifest says 3",
                        f"{root / 'images' / 'val'}: 1 file(s) not in SHA256SUMS: {label[:-4]}.jpg",
                        f"{root / 'labels' / 'val'}: 1 file(s) not in SHA256SUMS: {label}"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_reader_gives_the_label_files_ids(prepared, kind):
    data = PreparedImages(prepared[kind], kind)
    stems = data.videos("val")
    assert len(stems) == 3 and data.frames(stems[0]) == [stems[0]]
    mask = data.read_mask(stems[0], stems[0])
    raw = np.array(Image.open(prepared[kind] / "labels" / "val" / f"{stems[0]}.png"))
    np.testing.assert_array_equal(mask, raw)
    assert mask.dtype == (np.uint16 if kind in ("ade847", "pc459") else np.uint8)
    valid = mask[mask != IMAGE_KINDS[kind].ignore]
    assert valid.size and int(valid.max()) < len(image_class_names(kind)) == IMAGE_KINDS[kind].num_classes
    assert data.read_frame(stems[0], stems[0]).shape == (*mask.shape, 3)
    assert data.frame_size(stems[0], stems[0]) == mask.shape


def test_a_prepared_root_is_recognised_by_its_manifest(prepared, tmp_path):
    assert {kind: detect_image_kind(root) for kind, root in prepared.items()} == {k: k for k in KINDS}
    (tmp_path / "images").mkdir()
    assert detect_image_kind(tmp_path) is None


def test_the_reader_refuses_another_kind_and_unknown_images(prepared):
    with pytest.raises(DataError, match="holds voc21, not voc20"):
        PreparedImages(prepared["voc21"], "voc20")
    with pytest.raises(DataError, match="no image nope"):
        PreparedImages(prepared["voc21"]).frame_path("nope", "nope")
    with pytest.raises(DataError, match="not a prepared image root"):
        PreparedImages(prepared["voc21"] / "labels")
