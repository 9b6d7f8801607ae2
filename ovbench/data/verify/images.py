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
import multiprocessing
from contextlib import nullcontext
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
from ovbench.data.verify.report import VerifyReport
from ovbench.errors import DataError


def verify_images(root: str | Path, workers: int = 1, progress: bool | None = None,
                  full_counts: bool = True) -> VerifyReport:
    """Check every file of a prepared root; `full_counts`: a subset must hold as many images
    as the full release (off for partial or synthetic releases)."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(f"{root}: not a prepared image root (no ovbench_prepared.json)")
    spec = image_kind(str(manifest.get("kind")))
    report = VerifyReport(root, kind=spec.name)
    listed = _checksums(root, manifest, report)
    tasks = _tasks(root, spec, manifest, listed, report, full_counts)
    _run(report, tasks, workers, progress)
    return report


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
            tasks.append((spec.name, str(root), subset, stem, tuple(listed.get(_rel(root, f), "") for f in files)))
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


def check_image(task: tuple) -> VerifyReport:
    """One image's report (a pool runs it): its files' checksums, sizes and label values."""
    kind, root, subset, stem, sums = task
    spec, root = image_kind(kind), Path(root)
    part = VerifyReport(root, kind=kind, frames_total=1)
    files = (image_path(root, spec, subset, stem), label_path(root, subset, stem))
    for path, expected in zip(files, sums):
        if not expected:
            part.problems.append(f"{path}: not listed in {CHECKSUMS}")
            continue
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
                part.problems.append(f"{path}: changed since it was prepared (its sha256 differs from {CHECKSUMS})")
        except OSError as e:
            part.problems.append(f"{path}: cannot read ({e.strerror})")
    if not part.problems:
        _check_pixels(spec, files, part)
    part.frames_ok = int(not part.problems)
    return part


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


def _run(report: VerifyReport, tasks: list[tuple], workers: int, progress: bool | None) -> None:
    """Fold in each image's report, in order (the same report for any number of workers)."""
    from tqdm import tqdm

    disable = None if progress is None else not progress
    parallel = workers > 1 and len(tasks) > 1
    with (tqdm(total=len(tasks), unit="image", disable=disable, leave=False) as bar,
          multiprocessing.get_context("spawn").Pool(workers) if parallel else nullcontext() as pool):
        for part in pool.imap(check_image, tasks, chunksize=8) if parallel else map(check_image, tasks):
            report.add_video(part)
            bar.update(1)
