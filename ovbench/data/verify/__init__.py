"""`ovbench data verify`: check a data root before spending hours of GPU time on it."""

from __future__ import annotations

from pathlib import Path

from ovbench.data.kinds import data_kind, detect_kind, layouts
from ovbench.data.verify.report import VerifyReport, run_tasks
from ovbench.errors import DataError


def verify_dataset(root: str | Path, kind: str | None = None, workers: int = 1,
                   progress: bool | None = None) -> VerifyReport:
    """Check a root of `kind` (recognised from its layout when None). Videos are decoded in
    `workers` processes; the report is the same for any number of them (ordered results)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found")
    found = detect_kind(root)
    if kind is not None and found is not None and found != kind:
        raise DataError(f"{root} is a {data_kind(found).title} root, not {data_kind(kind).title} (--dataset {kind});"
                        f" leave --dataset out to check it as {found}")
    kind = kind or found
    if kind is None:
        raise DataError(f"{root}: not a {layouts()} root (use --dataset to say which)")
    report = VerifyReport(root, kind=data_kind(kind).name)
    tasks = data_kind(kind).load("verifier").list_tasks(root, report)
    run_tasks(report, tasks, workers, progress)
    return report
