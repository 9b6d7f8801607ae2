"""The layering contracts of pyproject.toml hold, and they can fail: import-linter run on a
copy of the package as the wheel lays it out (models/, splits/ and leaderboard/ under ovbench/),
once as it is, once with an upward import and an import cycle planted in the copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.argv[1:] = ['--no-cache', sys.argv[1]]; lint_imports_command()"

pytest.importorskip("importlinter")


def wheel_layout(into: Path) -> Path:
    """ovbench/ with the mapped top-level folders copied to their import paths."""
    package = shutil.copytree(REPO / "ovbench", into / "ovbench", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("models", "splits", "leaderboard"):
        shutil.copytree(REPO / folder, package / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, str(REPO / "pyproject.toml")], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_contracts_hold_and_fail_on_a_planted_violation(tmp_path):
    clean = lint(wheel_layout(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in clean.stdout
    planted = wheel_layout(tmp_path / "planted")
    with open(planted / "ovbench" / "constants.py", "a") as leaf:
        leaf.write("\nimport ovbench.cli  # a leaf importing the top layer\n")
    with open(planted / "ovbench" / "run" / "clock.py", "a") as module:
        module.write("\nimport ovbench.run.orchestration  # a cycle inside run/\n")
    broken = lint(planted)
    assert broken.returncode != 0
    assert "ovbench.constants is not allowed to import ovbench.cli" in broken.stdout
    assert "Contracts: 0 kept, 2 broken." in broken.stdout
