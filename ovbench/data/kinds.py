"""The data set kinds ovbench reads: ONE table, and the one place a reader is opened.

A split names its kind (`"dataset"` in its file); runs, scoring, training, `data verify` and
`data synth` find everything about a kind in its row here: its title, how its root is
recognised, its reader, its checker, its synthetic writer, whether each sample is one image.
Adding a data set is one reader module, one checker module, one synthetic writer and one row;
modules are named as "module:attribute" strings and imported only when used, so listing the
kinds costs nothing. `open_dataset(kind, root)` checks the root's layout against the kind
first, so a VSPW root given for a VIPSeg split is one line, not a missing-file error three
layers down.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ovbench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from ovbench.data.reader import VideoDataset


@dataclass(frozen=True)
class DataKind:
    """One row of the table. `markers` are paths (relative to a root) any of which recognises
    the layout (rows are tried in order), `layout` says in words what a root holds; `reader`, `verifier` and
    `synthetic` are "module:attribute" names: the VideoDataset class, the checker module (with
    `list_tasks(root, report)` and `check_task(root, video, detail, report)`), the writer."""

    name: str
    title: str
    markers: tuple[str, ...]
    layout: str
    reader: str
    verifier: str
    synthetic: str
    image: bool = False  # each sample is one image: a "video" of one frame (no VC, flat predictions)
    recognise: str = ""  # "module:function": root -> the kind its own file says it holds (asked before markers)
    bound: bool = False  # reader and writer serve several kinds: bound to this row's (reader.for_kind, writer(kind, ...))

    def load(self, attribute: str) -> Any:
        loaded = _load(getattr(self, attribute))
        if self.bound and attribute == "reader":
            return loaded.for_kind(self.name)
        if self.bound and attribute == "synthetic":
            return functools.partial(loaded, self.name)
        return loaded


def _load(spec: str) -> Any:
    """The module, or its attribute, a "module:attribute" string names."""
    module, _, name = spec.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


PREPARED_MANIFEST = "ovbench_prepared.json"  # ovbench.data.images.MANIFEST, named here without importing numpy

KINDS: dict[str, DataKind] = {kind.name: kind for kind in (
    DataKind("vspw", "VSPW_480p", ("data",), "data/<video>/origin, data/<video>/mask",
             "ovbench.data.vspw:VSPW", "ovbench.data.verify.vspw", "ovbench.data.synthetic.vspw:write_synthetic_vspw"),
    DataKind("vipseg", "VIPSeg_720P", ("panomasks", "images"), "images/<video>, panomasks/<video>",
             "ovbench.data.vipseg:VIPSeg", "ovbench.data.verify.vipseg", "ovbench.data.synthetic.panoptic:write_synthetic_vipseg"),
    DataKind("coco", "COCO Panoptic", ("annotations",), "annotations/panoptic_{train,val}2017.json",
             "ovbench.data.coco:COCOPanoptic", "ovbench.data.verify.coco", "ovbench.data.synthetic.panoptic:write_synthetic_coco",
             image=True),
    *(DataKind(name, title, (PREPARED_MANIFEST,), "images/val, labels/val, ovbench_prepared.json (`ovbench data prepare`)",
               "ovbench.data.images:PreparedImages", "ovbench.data.verify.images",
               "ovbench.data.synthetic.prepared:write_prepared", image=True,
               recognise="ovbench.data.images:recognise_prepared", bound=True)
      for name, title in (
          ("ade150", "ADE20K-150"), ("ade847", "ADE20K-847"), ("pc59", "PASCAL Context-59"), ("pc459", "PASCAL Context-459"),
          ("voc20", "PASCAL VOC-20"), ("voc21", "PASCAL VOC-21"), ("voc20b", "PASCAL VOC-20b"),
          ("cityscapes", "Cityscapes-19"), ("cocostuff171", "COCO-Stuff-171"))),
)}


def data_kind(name: str) -> DataKind:
    """The row of `name`, or one line naming the kinds."""
    if name not in KINDS:
        raise ConfigError(f"data set {name!r}: choose one of {', '.join(KINDS)}")
    return KINDS[name]


def detect_kind(root: str | Path) -> str | None:
    """The kind whose layout `root` has, or None: a layout that names its kind in a file of
    its own (a prepared image root's manifest) is asked first, as its folders may look like
    another layout's (VIPSeg's `images/`); then the first row one of whose markers it holds."""
    root = Path(root)
    for recognise in dict.fromkeys(kind.recognise for kind in KINDS.values() if kind.recognise):
        found = _load(recognise)(root)
        if found is not None:
            return data_kind(found).name
    return next((kind.name for kind in KINDS.values() if any((root / m).exists() for m in kind.markers)), None)


def prepared_kinds() -> list[str]:
    """The kinds `ovbench data prepare` writes from a downloaded release (a root of theirs is
    recognised by its manifest)."""
    return [kind.name for kind in KINDS.values() if PREPARED_MANIFEST in kind.markers]


def layouts() -> str:
    """The titles of every kind, for messages about a root of no known layout."""
    titles = [kind.title for kind in KINDS.values()]
    return ", ".join(titles[:-1]) + " or " + titles[-1]


def open_dataset(kind: str, root: str | Path) -> VideoDataset:
    """The reader for `kind` on `root`, after checking that `root` has that layout."""
    root, row = Path(root), data_kind(kind)
    if not root.is_dir():
        raise DataError(f"{root}: {row.title} root not found")
    found = detect_kind(root)
    if found is None:
        raise DataError(f"{root}: not a {row.title} root (expected {row.layout})")
    if found != kind:
        raise DataError(f"{root} is a {KINDS[found].title} root, but this split needs {row.title} data: "
                        f"pass a {row.title} root with --data-root")
    return row.load("reader")(root)


def background_names(kind: str) -> list[str]:
    """Names a model is prompted with besides the class names, all of which mean the kind's
    last class, its background (CAT-Seg's PAS-20b: 39 PC-59 names); empty for most kinds."""
    reader = data_kind(kind).load("reader")
    return list(reader.background_names()) if hasattr(reader, "background_names") else []


def class_names(kind: str) -> list[str]:
    """The names of the kind's classes in the order of its converted ids."""
    return data_kind(kind).load("reader").class_names()
