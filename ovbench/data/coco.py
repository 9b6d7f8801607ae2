"""Read COCO Panoptic (GKC's image stage) as one-frame videos with semantic targets.

Layout: `{train,val}2017/<stem>.jpg`, `annotations/panoptic_{train,val}2017.json` and the PNG
folders beside them, where a pixel's segment id is R + 256 G + 256^2 B (0 = unlabeled). Each
image is a video of one frame named by its stem, so the runner, `score` and the metrics need
nothing new; VC cannot be measured on one frame and is absent.

Semantic targets follow the panoptic-to-semantic conversion of the Mask2Former family: a
segment's category becomes its index in the id-sorted list of the 133 categories, crowd
segments keep their category, unlabeled pixels are 255. The annotation file is parsed once per
(root, subset) and kept as small numpy arrays per image, so reader copies in loader workers
share it instead of parsing 118k annotations each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench.constants import IGNORE
from ovbench.data.files import header_size, open_image, read_rgb
from ovbench.errors import DataError

SUBSETS = ("train", "val")


@cache
def load_categories() -> tuple[dict, ...]:
    """The 133 COCO Panoptic categories ({id, name, isthing}) sorted by their original id."""
    text = resources.files("ovbench.data").joinpath("coco_panoptic_categories.json").read_text()
    return tuple(sorted(json.loads(text), key=lambda c: c["id"]))


@cache
def _category_index() -> dict[int, int]:
    return {c["id"]: i for i, c in enumerate(load_categories())}


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours -> int64 segment ids, id = R + 256 G + 256^2 B (panopticapi's)."""
    rgb = np.asarray(rgb).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """The inverse of `rgb2id`: int segment ids (< 2^24) -> (..., 3) uint8 colours."""
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1).astype(np.uint8)


@dataclass(frozen=True)
class Segments:
    """One image's annotation: its png and, per segment, id, category index, thing and crowd."""

    png: str
    ids: np.ndarray  # int64, sorted
    category: np.ndarray  # int64 index into load_categories()
    isthing: np.ndarray  # bool
    iscrowd: np.ndarray  # bool
    error: str = ""  # why the annotation cannot be used (reading the image raises it)


def parse_annotation(ann: dict, where: str) -> Segments:
    """One entry of the JSON's `annotations`; a category outside the 133, or an entry missing
    one of its fields, is a DataError naming it (a bad annotation spoils its image only)."""
    try:
        return _parse_annotation(ann, where)
    except (KeyError, TypeError) as err:
        raise DataError(f"{where}: malformed annotation ({type(err).__name__}: {err})") from None


def _parse_annotation(ann: dict, where: str) -> Segments:
    index, categories = _category_index(), load_categories()
    info = sorted(ann.get("segments_info", []), key=lambda s: s["id"])
    for s in info:
        if s["category_id"] not in index:
            raise DataError(f"{where}: segment {s['id']} has category id {s['category_id']}, "
                            f"not one of the 133 COCO Panoptic categories")
    category = np.array([index[s["category_id"]] for s in info], dtype=np.int64)
    return Segments(
        png=ann["file_name"],
        ids=np.array([s["id"] for s in info], dtype=np.int64),
        category=category,
        isthing=np.array([bool(categories[c]["isthing"]) for c in category], dtype=bool),
        iscrowd=np.array([bool(s.get("iscrowd", 0)) for s in info], dtype=bool),
    )


def read_segment_png(path: Path) -> np.ndarray:
    """int64 (H, W) segment ids of an RGB-encoded panoptic png."""
    with open_image(path, "panoptic png") as img:
        if img.mode != "RGB":
            raise DataError(f"{path}: panoptic png must be RGB, got mode {img.mode}")
        return rgb2id(np.array(img))


def annotation_path(root: Path, subset: str) -> Path:
    return root / "annotations" / f"panoptic_{subset}2017.json"


@lru_cache(maxsize=4)
def _load_subset(root: Path, subset: str) -> dict[str, Segments]:
    """Image stem -> its segments, in the JSON's order."""
    path = annotation_path(root, subset)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: cannot read annotations: {e}") from None
    try:
        jpg = {im["id"]: Path(im["file_name"]).stem for im in data["images"]}
        return {jpg.get(a["image_id"], Path(a["file_name"]).stem): _parse_or_error(a, f"{path} image {a['image_id']} ({a['file_name']})")
                for a in data["annotations"]}
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: not a COCO panoptic annotation file (missing {e})") from None


def _parse_or_error(ann: dict, where: str) -> Segments:
    """A bad annotation spoils its image only: the error is kept and raised when it is read."""
    try:
        return parse_annotation(ann, where)
    except DataError as e:
        empty = np.zeros(0, dtype=np.int64)
        return Segments(ann["file_name"], empty, empty, empty.astype(bool), empty.astype(bool), error=str(e))


def semantic_from_segments(segment_ids: np.ndarray, seg: Segments, where: str) -> np.ndarray:
    """Segment id map -> uint8 category indices, 255 where unlabeled (id 0, as panopticapi's
    VOID); a segment id of the png that the JSON does not list is a DataError."""
    present, inverse = np.unique(segment_ids, return_inverse=True)
    category_of = dict(zip(seg.ids.tolist(), seg.category.tolist()))
    missing = [i for i in present.tolist() if i != 0 and i not in category_of]
    if missing:
        raise DataError(f"{where}: segment id {missing[0]} is in the png but not in the JSON")
    table = np.array([IGNORE if i == 0 else category_of[i] for i in present.tolist()], dtype=np.uint8)
    return table[inverse].reshape(segment_ids.shape)


def _checked(seg: Segments) -> Segments:
    """The annotation, or its DataError if it names a category outside the 133."""
    if seg.error:
        raise DataError(seg.error)
    return seg


class COCOPanoptic:
    """One COCO root (`train2017/`, `val2017/`, `annotations/`): every image a one-frame video."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "annotations").is_dir():
            raise DataError(f"{self.root}: not a COCO root (no annotations/ folder)")
        self._resolved = self.root.resolve()  # the key of the parsed annotation tables, once
        # the annotation files there are, the smaller val first (looked up for every frame)
        self._present = [subset for subset in ("val", "train") if annotation_path(self.root, subset).is_file()]

    @staticmethod
    def class_names() -> list[str]:
        return [c["name"] for c in load_categories()]

    def label_files(self, subset: str) -> list[Path]:
        """The annotation file decides every label (a segment's category) and the images."""
        return [annotation_path(self.root, subset)]

    def _subset(self, subset: str) -> dict[str, Segments]:
        if subset not in SUBSETS:
            raise DataError(f"{self.root}: COCO Panoptic has subsets {', '.join(SUBSETS)}, not {subset!r}")
        return _load_subset(self._resolved, subset)

    def _locate(self, video: str) -> tuple[str, Segments]:
        """(subset, segments) of an image; the val file is smaller, so it is searched first."""
        for subset in self._present:
            table = self._subset(subset)
            if video in table:
                return subset, table[video]
        raise DataError(f"{self.root}: image {video} is in neither annotation file")

    def videos(self, subset: str) -> list[str]:
        return list(self._subset(subset))

    def frames(self, video: str) -> list[str]:
        return [video]

    def frame_dir(self, video: str) -> Path:
        return self.root / f"{self._locate(video)[0]}2017"

    def frame_path(self, video: str, stem: str) -> Path:
        return self.frame_dir(video) / f"{stem}.jpg"

    def mask_path(self, video: str, stem: str) -> Path:
        return self._png(*self._locate(video))

    def _png(self, subset: str, seg: Segments) -> Path:
        return self.root / "annotations" / f"panoptic_{subset}2017" / seg.png

    def read_frame(self, video: str, stem: str) -> np.ndarray:
        return read_rgb(self.frame_path(video, stem))

    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None:
        return header_size(self.frame_path(video, stem))

    def read_mask(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W) category indices 0..132, 255 = unlabeled."""
        subset, seg = self._locate(video)  # once: a lookup in the annotation tables
        path = self._png(subset, seg)
        return semantic_from_segments(read_segment_png(path), _checked(seg), str(path))

def write_panoptic_png(path: Path, segment_ids: np.ndarray) -> None:
    """Save segment ids as an RGB-encoded panoptic png (for synthetic sets and tests)."""
    Image.fromarray(id2rgb(segment_ids)).save(path)
