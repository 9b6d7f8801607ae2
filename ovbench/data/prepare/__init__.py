"""`prepare(kind, raw, out)`: turn the release a user downloaded into ovbench's prepared image
layout (`ovbench.data.images`), with exactly the labels the peers' preparation scripts give.

One module per raw release says where its files are (`items`) and how one image and its label
convert (`convert`); this driver runs the conversions in worker processes, writes every file
atomically (`ovbench.fileio`), and appends each finished image's checksums to a progress list.
An interrupted preparation run again continues from that list (an image is redone only if its
line is missing, and a file is written before its line, so a listed file is there). Raw images
the layout keeps as they are become hard links to the release's files where the file system
allows, copies elsewhere. The
manifest, written last, makes the root a prepared one: readers and `verify` refuse a root
without it.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import import_module
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench import __version__
from ovbench.data.images import (
    CHECKSUMS,
    LAYOUT_FORMAT,
    LAYOUT_VERSION,
    MANIFEST,
    STARTED,
    ImageKind,
    image_kind,
    image_path,
    label_path,
    parse_checksums,
    read_manifest,
)
from ovbench.data.prepare import archives
from ovbench.data.prepare.common import Converted, Item
from ovbench.errors import ConfigError, DataError
from ovbench.fileio import write_bytes, write_json, write_text

RELEASES = {"ade150": "ade_challenge", "ade847": "ade_full", "pc59": "pascal_context", "pc459": "pascal_context",
            "voc20": "voc2012", "voc21": "voc2012", "voc20b": "voc2012", "cityscapes": "cityscapes",
            "cocostuff171": "cocostuff"}
PROGRESS = "ovbench_prepared.progress"  # sha256sum lines of the images finished so far
WRITERS = 8  # threads writing files: an fsync waits on the disk, not on a core


def release(kind: str):
    """The module that converts `kind`'s raw release."""
    return import_module(f"{__name__}.{RELEASES[image_kind(kind).name]}")


def relative_paths(spec: ImageKind, item: Item) -> tuple[str, str]:
    root = Path(".")
    return (image_path(root, spec, item.subset, item.stem).as_posix(),
            label_path(root, item.subset, item.stem).as_posix())


def prepare(kind: str, raw: str | Path, out: str | Path, workers: int = 1, progress: bool | None = None,
            subsets: tuple[str, ...] | None = None) -> Path:
    """Prepare `subsets` (val by default) of `kind` from the release folder (or single
    archive) `raw` into `out`
    (new, or a half-prepared root of the same kind and release, which continues) with
    `workers` processes; returns `out`."""
    spec, raw, out = image_kind(kind), Path(raw), Path(out)
    subsets = tuple(subsets or ("val",))
    wrong = [s for s in subsets if s not in spec.subsets]
    if wrong:
        raise ConfigError(f"{kind} has subsets {', '.join(spec.subsets)}, not {', '.join(wrong)}")
    if not raw.is_dir() and not archives.is_archive(raw):
        raise DataError(f"{raw}: release folder or archive not found ({release(kind).RELEASE})")
    finished = read_manifest(out)
    if finished is not None:
        if finished.get("kind") == kind and sorted(finished.get("subsets", {})) == sorted(subsets):
            return out
        raise DataError(f"{out} is already a prepared {finished.get('kind')} root of subsets "
                        f"{', '.join(finished.get('subsets', {}))}: choose another --out")
    _start(out, kind, raw, subsets)
    folder = archives.unpack(raw, out) if archives.is_archive(raw) else raw
    work = [item for subset in subsets for item in release(kind).items(folder, kind, subset)]
    done = _read_progress(out)
    todo = [item for item in work if not all(rel in done for rel in relative_paths(spec, item))]
    _convert_all(kind, out, todo, workers, progress, len(work))
    _finish(out, spec, raw, work, subsets)
    return out


def _start(out: Path, kind: str, raw: Path, subsets: tuple[str, ...]) -> None:
    """Record what is being prepared; a half-prepared root of something else is refused."""
    started = {"kind": kind, "raw": str(raw.resolve()), "subsets": list(subsets)}
    path = out / STARTED
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read ({e}); remove {out} and prepare again") from None
        if before != started:
            raise DataError(f"{out} holds a half-prepared {before.get('kind')} from {before.get('raw')}: "
                            f"finish that one, or choose another --out")
        return
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: not empty and not a half-prepared root: choose another --out")
    write_json(path, started)


def _read_progress(out: Path) -> dict[str, str]:
    """The finished files' checksums; a last line cut short by an interruption is dropped."""
    path = out / PROGRESS
    if not path.is_file():
        return {}
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(len(whole))
    return parse_checksums(whole.decode("utf-8"), str(path))


def convert_item(task: tuple[str, Item]) -> list[tuple[str, bytes | Path]]:
    """One image's prepared files as (relative path, bytes, or the raw file kept as it is);
    a pool runs it."""
    kind, item = task
    spec = image_kind(kind)
    converted = release(kind).convert(kind, item)
    image = converted.image if isinstance(converted.image, Path) else _jpeg(converted.image)
    _check_sizes(image, converted, item)
    label = io.BytesIO()
    # zlib level 1: twice as fast as PIL's default 6 on label maps, for files a little larger
    Image.fromarray(converted.label.astype(spec.label_dtype, copy=False)).save(label, format="PNG", compress_level=1)
    image_rel, label_rel = relative_paths(spec, item)
    return [(image_rel, image), (label_rel, label.getvalue())]


def _jpeg(pixels: np.ndarray) -> bytes:
    """PIL's default JPEG encoding (quality 75), as the peers' `Image.save(...jpg)`."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _check_sizes(image: bytes | Path, converted: Converted, item: Item) -> None:
    try:
        with Image.open(image if isinstance(image, Path) else io.BytesIO(image)) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{item.image}: cannot read image: {e}") from None
    if converted.label.shape != (height, width):
        raise DataError(f"{item.label}: label is {converted.label.shape[1]}x{converted.label.shape[0]} "
                        f"but the image {item.image} is {width}x{height}")


def _keep(source: Path, target: Path) -> str:
    """Put a raw file in the layout as it is: a hard link where the file system allows (no
    second copy of COCO's 18 GB), made under a temporary name and renamed, else an atomic
    copy; its sha256."""
    data = source.read_bytes()
    temporary = target.with_name(f".{target.name}.link")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        os.link(source, temporary)
        os.replace(temporary, target)
    except OSError:
        write_bytes(target, data)
    return hashlib.sha256(data).hexdigest()


def _write_files(out: Path, files: list[tuple[str, bytes | Path]]) -> str:
    """Write one image's files atomically; their checksum lines, for the progress list."""
    lines = []
    for rel, data in files:
        if isinstance(data, Path):
            digest = _keep(data, out / rel)
        else:
            write_bytes(out / rel, data)
            digest = hashlib.sha256(data).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines)


def _convert_all(kind: str, out: Path, todo: list[Item], workers: int, progress: bool | None, total: int) -> None:
    from tqdm import tqdm

    disable = None if progress is None else not progress  # None: a bar only on a terminal
    tasks = [(kind, item) for item in todo]
    pending: deque[Future] = deque()
    with (tqdm(total=total, initial=total - len(todo), unit="image", desc=f"prepare {kind}", disable=disable) as bar,
          open(out / PROGRESS, "a", encoding="utf-8") as log, ThreadPoolExecutor(WRITERS) as writers):

        def record(future: Future) -> None:
            log.write(future.result())  # flushed by the buffer and at the end: a lost line is redone
            bar.update(1)

        try:
            for files in _results(tasks, workers):
                pending.append(writers.submit(_write_files, out, files))
                while pending and (pending[0].done() or len(pending) > 2 * WRITERS):
                    record(pending.popleft())
        finally:
            while pending:  # what was written before an error or an interruption stays done
                record(pending.popleft())


def _results(tasks: list[tuple[str, Item]], workers: int):
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            yield from pool.imap_unordered(convert_item, tasks, chunksize=4)
    else:
        yield from map(convert_item, tasks)


def _finish(out: Path, spec: ImageKind, raw: Path, work: list[Item], subsets: tuple[str, ...]) -> None:
    """The checksum list of every file, then the manifest that makes the root a prepared one."""
    done = _read_progress(out)
    wanted = sorted(rel for item in work for rel in relative_paths(spec, item))
    text = "".join(f"{done[rel]}  {rel}\n" for rel in wanted)
    write_text(out / CHECKSUMS, text)
    counts = {subset: sum(item.subset == subset for item in work) for subset in subsets}
    write_json(out / MANIFEST, {
        "format": LAYOUT_FORMAT, "format_version": LAYOUT_VERSION, "kind": spec.name, "title": spec.title,
        "num_classes": spec.num_classes,
        "labels": f"{'16' if spec.wide else '8'}-bit PNG of class ids 0..{spec.num_classes - 1}, ignore {spec.ignore}",
        "subsets": counts, "full_release_counts": dict(spec.counts),
        "source": {"release": release(spec.name).RELEASE, "path": str(raw.resolve())},
        "checksums": {"file": CHECKSUMS, "files": len(wanted), "sha256": hashlib.sha256(text.encode()).hexdigest()},
        "ovbench_version": __version__,
    })
    (out / PROGRESS).unlink()
    (out / STARTED).unlink()
    archives.remove_unpacked(out)
