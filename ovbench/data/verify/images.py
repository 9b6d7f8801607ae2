"""Check a prepared image root (`ovbench.data.images`) before a run trusts it.

The manifest says which kind the root holds; the check then lists every defect, one line
each, in the report `data verify` prints for the video layouts: a subset with another number
of images than the full release (A-150 2000, A-847 2000, PC-59/459 5104, VOC 1449, Cityscapes
500, COCO-Stuff 5000), a file missing, damaged, changed since it was written (SHA256SUMS) or
not listed, an image and label of different sizes, a label value that is neither a class id of
the kind nor its ignore value.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ovbench.data.images import (
    CHECKSUMS,
    ImageKind,
    image_kind,
    image_path,
    label_path,
    parse_checksums,
    read_image,
    read_label_png,
    read_manifest,
)
from ovbench.data.verify.report import VerifyReport, run_tasks
from ovbench.errors import DataError


def verify_images(root: str | Path, workers: int = 1, progress: bool | None = None,
                  full_counts: bool | None = None) -> VerifyReport:
    """Check every file of a prepared root; `full_counts`: a subset must hold as many images
    as the full release (None: unless the manifest says the root is synthetic)."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(f"{root}: not a prepared image root (no ovbench_prepared.json)")
    report = VerifyReport(root, kind=image_kind(str(manifest.get("kind"))).name)
    run_tasks(report, list_tasks(root, report, full_counts), workers, progress)
    return report


def list_tasks(root: Path, report: VerifyReport, full_counts: bool | None = None) -> list[tuple]:
    """The kinds table's entry: one task per listed image of the root (which must hold the
    kind of `report`); count, list and orphan problems go to the report."""
    try:
        manifest = read_manifest(root)
    except DataError as e:
        report.problems.append(str(e))
        return []
    if manifest is None:
        report.problems.append(f"{root}: not a prepared image root (no ovbench_prepared.json; run `ovbench data prepare`)")
        return []
    if manifest.get("kind") != report.kind:
        report.problems.append(f"{root / 'ovbench_prepared.json'}: the root holds {manifest.get('kind')}, not {report.kind}")
        return []
    spec = image_kind(report.kind)
    listed = _checksums(root, manifest, report)
    full = not manifest.get("synthetic", False) if full_counts is None else full_counts
    return _tasks(root, spec, manifest, listed, report, full)


def _checksums(root: Path, manifest: dict, report: VerifyReport) -> dict[str, str]:
    path = root / CHECKSUMS
    try:
        text = path.read_text()
        listed = parse_checksums(text, str(path))
    except (OSError, UnicodeDecodeError, DataError) as e:
        report.problems.append(f"{path}: cannot read the checksum list: {e}")
        return {}
    if hashlib.sha256(text.encode()).hexdigest() != manifest.get("checksums", {}).get("sha256"):
        report.problems.append(f"{path}: differs from the list the manifest was written with")
    return listed


def _tasks(root: Path, spec: ImageKind, manifest: dict, listed: dict[str, str], report: VerifyReport,
           full_counts: bool) -> list[tuple]:
    """One task per listed image; count and orphan problems go to the report."""
    tasks = []
    for subset, count in manifest.get("subsets", {}).items():
        stems = sorted(rel.split("/")[2][:-4] for rel in listed if rel.startswith(f"labels/{subset}/"))
        if len(stems) != count:
            report.problems.append(f"{root / 'labels' / subset}: {len(stems)} images listed, the manifest says {count}")
        expected = dict(spec.counts).get(subset)
        if full_counts and expected is not None and len(stems) != expected:
            report.problems.append(f"{root / 'labels' / subset}: {len(stems)} images, the full {spec.title} "
                                   f"{subset} set has {expected}")
        for stem in stems:
            files = (image_path(root, spec, subset, stem), label_path(root, subset, stem))
            tasks.append((spec.name, str(root), stem, (subset, tuple(listed.get(_rel(root, f), "") for f in files))))
        _orphans(root, spec, subset, set(stems), report)
    return tasks


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _orphans(root: Path, spec: ImageKind, subset: str, stems: set[str], report: VerifyReport) -> None:
    for folder, suffix in (("images", spec.image_suffix), ("labels", ".png")):
        extra = sorted(p.name for p in (root / folder / subset).glob("*")
                       if not (p.name.endswith(suffix) and p.name[: -len(suffix)] in stems))
        if extra:
            more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
            report.problems.append(f"{root / folder / subset}: {len(extra)} file(s) not in {CHECKSUMS}: "
                                   f"{', '.join(extra[:5])}{more}")


def check_task(root: str, stem: str, detail: tuple[str, tuple[str, str]], report: VerifyReport) -> None:
    """One image (a pool runs it): its files' checksums, sizes and label values."""
    (subset, sums), spec, before = detail, image_kind(report.kind), len(report.problems)
    report.frames_total += 1
    files = (image_path(Path(root), spec, subset, stem), label_path(Path(root), subset, stem))
    for path, expected in zip(files, sums):
        if not expected:
            report.problems.append(f"{path}: not listed in {CHECKSUMS}")
            continue
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
                report.problems.append(f"{path}: changed since it was prepared (its sha256 differs from {CHECKSUMS})")
        except OSError as e:
            report.problems.append(f"{path}: cannot read ({e.strerror})")
    if len(report.problems) == before:
        _check_pixels(spec, files, report)
    report.frames_ok += len(report.problems) == before


def _check_pixels(spec: ImageKind, files: tuple[Path, Path], part: VerifyReport) -> None:
    try:
        image = read_image(files[0])
        label = read_label_png(files[1], spec)
    except DataError as e:
        part.problems.append(str(e))
        return
    if image.shape[:2] != label.shape:
        part.problems.append(f"{files[1]}: label is {label.shape[1]}x{label.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]} (width x height)")
    bad = np.unique(label[(label >= spec.num_classes) & (label != spec.ignore)])
    if bad.size:
        shown = ", ".join(map(str, bad[:5].tolist()))
        part.problems.append(f"{files[1]}: label values {shown} outside the {spec.num_classes} classes "
                             f"0..{spec.num_classes - 1} and ignore {spec.ignore}")
