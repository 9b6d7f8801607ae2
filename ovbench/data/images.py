"""The image benchmarks (ADE-150/847, PASCAL Context 59/459, PASCAL VOC, Cityscapes, COCO-Stuff)
in one prepared layout, read as one-frame videos like COCO Panoptic.

Every image kind is prepared (`ovbench.data.prepare`) from the release a user downloaded into
the same evaluation layout, so one reader and one verifier serve them all:

    ROOT/images/<subset>/<stem>.jpg     (.png for Cityscapes: its frames are lossless PNGs)
    ROOT/labels/<subset>/<stem>.png     class ids; 8-bit with ignore 255, or 16-bit with
                                        ignore 65535 where a kind has more than 255 classes
    ROOT/SHA256SUMS                     `sha256sum -c` list of every file written
    ROOT/ovbench_prepared.json          the manifest: kind, counts per subset, raw release

The label files hold the final class ids (the conversion is done once, when preparing), so
reading a mask is decoding one PNG. `read_mask` returns uint8 with 255 = ignore (what the
metrics use today) for kinds of at most 255 classes, and uint16 with 65535 = ignore for the two
large vocabularies (A-847, PC-459), whose ids do not fit a byte.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench.constants import IGNORE, WIDE_IGNORE
from ovbench.errors import ConfigError, DataError

MANIFEST = "ovbench_prepared.json"
STARTED = "ovbench_prepared.started.json"  # what a preparation under way converts (`ovbench.data.prepare`)
CHECKSUMS = "SHA256SUMS"
LAYOUT_FORMAT = "ovbench-prepared-images"
LAYOUT_VERSION = 1
IGNORE_8 = IGNORE
IGNORE_16 = WIDE_IGNORE


@dataclass(frozen=True)
class ImageKind:
    """One image benchmark: its class count, label width and the images its subsets hold."""

    name: str
    title: str
    num_classes: int
    counts: tuple[tuple[str, int], ...]  # (subset, number of images in the full release)
    image_suffix: str = ".jpg"

    @property
    def wide(self) -> bool:
        """16-bit labels: the class ids do not fit a byte beside the ignore value."""
        return self.num_classes > 255

    @property
    def ignore(self) -> int:
        return IGNORE_16 if self.wide else IGNORE_8

    @property
    def label_dtype(self) -> type:
        return np.uint16 if self.wide else np.uint8

    @property
    def subsets(self) -> tuple[str, ...]:
        return tuple(subset for subset, _ in self.counts)


IMAGE_KINDS = {kind.name: kind for kind in (
    ImageKind("ade150", "ADE20K-150", 150, (("val", 2000),)),
    ImageKind("ade847", "ADE20K-847", 847, (("val", 2000),)),
    ImageKind("pc59", "PASCAL Context-59", 59, (("val", 5104),)),
    ImageKind("pc459", "PASCAL Context-459", 459, (("val", 5104),)),
    ImageKind("voc20", "PASCAL VOC-20", 20, (("val", 1449),)),
    ImageKind("voc21", "PASCAL VOC-21 (background scored)", 21, (("val", 1449),)),
    ImageKind("voc20b", "PASCAL VOC-20b (background as class 20)", 21, (("val", 1449),)),
    ImageKind("cityscapes", "Cityscapes-19", 19, (("val", 500),), image_suffix=".png"),
    ImageKind("cocostuff171", "COCO-Stuff-171", 171, (("val", 5000), ("train", 118287))),
)}


def image_kind(kind: str) -> ImageKind:
    if kind not in IMAGE_KINDS:
        raise ConfigError(f"image data set {kind!r}: choose one of {', '.join(IMAGE_KINDS)}")
    return IMAGE_KINDS[kind]


@cache
def class_file(kind: str) -> dict:
    """The kind's class file (`ovbench/data/classes/<kind>.json`): names in id order, its
    source, and the raw-id table of the conversion where the kind has one."""
    text = resources.files("ovbench.data").joinpath("classes", f"{image_kind(kind).name}.json").read_text()
    return json.loads(text)


def image_class_names(kind: str) -> list[str]:
    return list(class_file(kind)["names"])


def image_path(root: Path, kind: ImageKind, subset: str, stem: str) -> Path:
    return root / "images" / subset / f"{stem}{kind.image_suffix}"


def label_path(root: Path, subset: str, stem: str) -> Path:
    return root / "labels" / subset / f"{stem}.png"


def read_manifest(root: str | Path) -> dict | None:
    """The finished manifest of a prepared root, or None when there is none."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: cannot read the manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != LAYOUT_FORMAT:
        raise DataError(f"{path}: not an ovbench prepared-images manifest")
    return manifest


def recognise_prepared(root: str | Path) -> str | None:
    """The kinds table's recogniser: the kind a prepared root's manifest names; a root whose
    preparation has not finished (it has `images/` and would look like VIPSeg) is one line."""
    root = Path(root)
    found = detect_image_kind(root)
    if found is None and (root / STARTED).is_file():
        raise DataError(f"{root}: a half-prepared image root: run the same `ovbench data prepare` again to finish it")
    return found


def detect_image_kind(root: str | Path) -> str | None:
    """The kind a prepared root holds (from its manifest), or None for another layout; the
    kinds table must ask this before its `images/` test (VIPSeg's layout has one too)."""
    manifest = read_manifest(root)
    return None if manifest is None else str(manifest.get("kind"))


_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S.*)$")


def parse_checksums(text: str, where: str) -> dict[str, str]:
    """`sha256sum` lines -> {relative path: hex digest}; a malformed line is a DataError."""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match:
            raise DataError(f"{where}:{number}: not a 'sha256  path' line")
        found[match.group(2)] = match.group(1)
    return found


@lru_cache(maxsize=8)
def _stems(root: Path) -> dict[str, list[str]]:
    """Subset -> sorted image stems, from the checksum list of the labels written."""
    path = root / CHECKSUMS
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(f"{path}: cannot read the checksum list ({e.strerror})") from None
    stems: dict[str, list[str]] = {}
    for rel in parse_checksums(text, str(path)):
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "labels" and parts[2].endswith(".png"):
            stems.setdefault(parts[1], []).append(parts[2][: -len(".png")])
    return {subset: sorted(names) for subset, names in stems.items()}


def read_label_png(path: Path, kind: ImageKind) -> np.ndarray:
    """A prepared label file as (H, W) uint8 or uint16; a missing, damaged or wrongly typed
    file is a DataError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            array = np.array(img)
    except FileNotFoundError:
        raise DataError(f"{path}: label file missing") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: cannot read label png: {e}") from None
    wanted = ("I;16", "I;16B", "I") if kind.wide else ("L", "P")
    if mode not in wanted or array.ndim != 2:
        raise DataError(f"{path}: label png of mode {mode}, expected {'16-bit' if kind.wide else '8-bit'} grey")
    return array.astype(kind.label_dtype, copy=False)


def read_image(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB; a missing or damaged file is a DataError naming it."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image missing") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: cannot read image: {e}") from None


class PreparedImages:
    """A prepared root of one image kind, offering the VideoDataset interface: every image is
    a video of one frame named by its stem. `for_kind` binds it to one kind (the kinds table's
    reader of that kind); unbound, it reads whatever kind the manifest names."""

    KIND: str | None = None

    @classmethod
    def for_kind(cls, kind: str) -> type[PreparedImages]:
        """The reader class of one kind (made once per kind)."""
        return _bound_reader(cls, kind)

    @classmethod
    def class_names(cls) -> list[str]:
        if cls.KIND is None:
            raise ConfigError("PreparedImages.class_names: a reader bound to one kind has them (PreparedImages.for_kind)")
        return image_class_names(cls.KIND)

    @classmethod
    def background_names(cls) -> list[str]:
        """The prompts that count as the kind's background class (its last), where it has them."""
        return list(class_file(cls.KIND).get("background_names", [])) if cls.KIND else []

    def __init__(self, root: str | Path, kind: str | None = None):
        kind = kind or self.KIND
        self.root = Path(root)
        manifest = read_manifest(self.root)
        if manifest is None:
            raise DataError(f"{self.root}: not a prepared image root (no {MANIFEST}; "
                            f"run `ovbench data prepare`)")
        found = str(manifest.get("kind"))
        if kind is not None and found != kind:
            raise DataError(f"{self.root} holds {found}, not {kind}: pass a {kind} root")
        self.kind = image_kind(found)
        self.manifest = manifest
        self._subset_of: dict[str, str] = {}

    def label_files(self, subset: str) -> list[Path]:
        """The checksum list names the content of every prepared label and image."""
        return [self.root / CHECKSUMS]

    def videos(self, subset: str) -> list[str]:
        if subset not in self.manifest.get("subsets", {}):
            raise DataError(f"{self.root}: prepared subsets are {', '.join(self.manifest.get('subsets', {}))}, "
                            f"not {subset!r}")
        return list(_stems(self.root.resolve()).get(subset, []))

    def _subset(self, video: str) -> str:
        """The subset holding an image (the table is built once, on first use)."""
        if not self._subset_of:
            self._subset_of = {stem: subset for subset, stems in _stems(self.root.resolve()).items()
                               for stem in stems}
        if video not in self._subset_of:
            raise DataError(f"{self.root}: no image {video}")
        return self._subset_of[video]

    def frames(self, video: str) -> list[str]:
        return [video]

    def frame_dir(self, video: str) -> Path:
        return self.root / "images" / self._subset(video)

    def frame_path(self, video: str, stem: str) -> Path:
        return image_path(self.root, self.kind, self._subset(video), stem)

    def mask_path(self, video: str, stem: str) -> Path:
        return label_path(self.root, self._subset(video), stem)

    def read_frame(self, video: str, stem: str) -> np.ndarray:
        return read_image(self.frame_path(video, stem))

    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None:
        """(height, width) from the image header, without decoding it."""
        try:
            with Image.open(self.frame_path(video, stem)) as img:
                return img.height, img.width
        except (OSError, ValueError, SyntaxError):
            return None

    def read_mask(self, video: str, stem: str) -> np.ndarray:
        """Class ids 0..N-1 and the kind's ignore value (255 in uint8, 65535 in uint16)."""
        return read_label_png(self.mask_path(video, stem), self.kind)


@functools.cache
def _bound_reader(cls: type, kind: str) -> type:
    return type(f"{cls.__name__}[{kind}]", (cls,), {"KIND": kind})
