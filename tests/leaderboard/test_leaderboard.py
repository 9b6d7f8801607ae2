"""Leaderboard: tables from hand-made run records, layouts, bootstrap intervals, plots, and the
HTML page in a real headless Chromium.

Golden files live in tests/golden/leaderboard/; after an intended change, regenerate them with
OVBENCH_UPDATE_GOLDEN=1 and read the diff before keeping it.
"""

from __future__ import annotations

import argparse
import base64
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ovbench.leaderboard.bootstrap import video_bootstrap
from ovbench.leaderboard.command import configure_parser, run
from ovbench.leaderboard.layouts import load_layout
from ovbench.leaderboard.records import find_runs
from PIL import Image

from ovbench.errors import ConfigError, DataError
from ovbench.palette import PALETTE

GOLDEN = Path(__file__).parents[1] / "golden" / "leaderboard"
CHROMIUM = Path("/usr/bin/chromium")
CLASSES = {"wall": True, "ceiling": True, "pillar": False, "ice": False}  # name -> seen
H100 = "NVIDIA H100 80GB HBM3"
EVIL = "my_net & co 100% <script>alert(1)</script>"


# ----------------------------------------------------------------------------- records


def split_hash(name: str, version: int = 1, salt: str = "") -> str:
    return "sha256:" + hashlib.sha256(f"{name}/v{version}{salt}".encode()).hexdigest()


def per_class_for(split: str) -> dict:
    form = split.rsplit("_", 1)[-1]
    names = [n for n, seen in CLASSES.items() if form not in ("seen", "unseen") or seen == (form == "seen")]
    return {
        n: {"iou": None if n == "ice" else 0.1 + 0.2 * i, "acc": None if n == "ice" else 0.2 + 0.2 * i,
            "gt_pixels": 0 if n == "ice" else 100 * (i + 1), "seen": CLASSES[n]}
        for i, n in enumerate(names)
    }


def make_record(model: str = "gkc", split: str = "vspw_all", metrics: dict | None = None, *,
                weights: str = "builtin:gkc-tiny-sample", args: dict | None = None, backbone: str = "RN50",
                dataset: str = "vspw", created: str = "2026-11-24T16:00:00+00:00", fps: float | None = 25.0,
                device: str = H100, version: int = 1, hash_salt: str = "", protocol: str = "vspw",
                skipped: list | None = None, per_class: dict | None = None, per_video: dict | None = None,
                convention: str = "vspw", random_init: bool = False, limit_videos: int | None = None,
                processes: int | None = None, batch_size: int | None = None) -> dict:
    """A complete run record as `ovbench run` writes it (contract in ovbench/records/schema.py)."""
    per_class = per_class if per_class is not None else per_class_for(split)
    return {
        "schema_version": 1, "ovbench_version": "0.1.0", "kind": "run" if fps is not None else "score",
        "git": {"commit": "abc123", "dirty": False}, "created": created,
        "model": {"id": model, "args": args or {}, "weights": weights,
                  "weights_sha256": hashlib.sha256(weights.encode()).hexdigest(), "random_init": random_init,
                  "backbone": backbone},
        "split": {"name": split, "protocol": protocol, "version": version, "hash": split_hash(split, version, hash_salt),
                  "vocabulary_size": len(per_class), "subset": "train" if "train" in split else "val"},
        "dataset": {"name": dataset, "root": "/data/VSPW_480p", "videos": 2, "frames": 60, "skipped": skipped or []},
        "options": {"miou_convention": convention, "min_video_frames": 0, "vc_windows": [8, 16],
                    **({} if limit_videos is None else {"limit_videos": limit_videos}),
                    **({} if batch_size is None else {"batch_size": batch_size})},
        "metrics": metrics or {},
        "per_class": per_class,
        "per_video": per_video or {},
        "timing": None if fps is None else {"frames": 60, "seconds": 60 / fps, "fps_model": 1.25 * fps,
                                            "fps_end_to_end": fps, "text_seconds": 0.1,
                                            **({} if processes is None else {"processes": processes})},
        "env": {"torch": "2.15.0", "cuda": "13.0", "device": device, "precision": "bf16", "python": "3.11.7"},
    }


def all_metrics(seen: float, unseen: float, **more: float) -> dict:
    """Metrics of an all-class run; hIoU from S and U as the metrics code defines it."""
    return {"mIoU": (seen + unseen) / 2, "mIoU_seen": seen, "mIoU_unseen": unseen,
            "hIoU": 2 * seen * unseen / (seen + unseen), **more}


def write(folder: Path, name: str, payload) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return write_scenario(tmp_path / "runs")


def write_scenario(d: Path) -> Path:
    """The main scenario: every rule of the generator has a record that exercises it."""
    write(d, "h100/gkc__vspw_all.json", make_record(
        "gkc", metrics=all_metrics(0.452, 0.213, VC8=0.861, VC16=0.80), fps=25.3))
    write(d, "old/gkc__vspw_all.json", make_record(  # older run of the same config: superseded
        "gkc", metrics=all_metrics(0.40, 0.10, VC8=0.8, VC16=0.7), fps=20.0, created="2026-11-20T10:00:00+00:00"))
    write(d, "h100/gkc__vspw_train_seen.json", make_record("gkc", "vspw_train_seen", {"mIoU": 0.7}))  # not shown
    write(d, "h100/clip-dense__vspw_all.json", make_record(  # no VC: shown as "-"
        "clip-dense", metrics=all_metrics(0.30, 0.2134), weights="openai", backbone="ViT-B-16", fps=40.1))
    # separate seen-only / unseen-only vocabulary runs: fallback with a marker
    write(d, "h100/clip-twostage__vspw_seen.json", make_record(
        "clip-twostage", "vspw_seen", {"mIoU": 0.41, "VC8": 0.5}, weights="openai", backbone="ViT-B-16", fps=3.2))
    write(d, "h100/clip-twostage__vspw_unseen.json", make_record(
        "clip-twostage", "vspw_unseen", {"mIoU": 0.25}, weights="openai", backbone="ViT-B-16", fps=3.2))
    # VC16 0.8004 prints 80.0 like gkc's 0.80: a tie, both bold
    write(d, "h100/gkc-base__vspw_all.json", make_record(
        "gkc-base", metrics=all_metrics(0.47, 0.15, VC8=0.85, VC16=0.8004), weights="/ckpt/gkc-base.safetensors",
        fps=25.3, batch_size=8))
    # newer partial runs of shown configurations: never displace them (rows of their own with --include-partial)
    write(d, "partial/gkc-base__vspw_all.json", make_record(
        "gkc-base", metrics=all_metrics(0.6, 0.6, VC8=0.9, VC16=0.9), weights="/ckpt/gkc-base.safetensors",
        fps=25.3, skipped=[{"video": "1001_x", "error": "unreadable frame 00000012.jpg"}],
        created="2026-11-25T10:00:00+00:00"))
    write(d, "smoke/gkc__vspw_all.json", make_record(
        "gkc", metrics=all_metrics(0.9, 0.9, VC8=0.9, VC16=0.9), fps=90.0, limit_videos=1,
        created="2026-11-26T10:00:00+00:00"))
    write(d, "h100/gkc-base__vspw_unseen.json", make_record(  # another definition of vspw_unseen: left out
        "gkc-base", "vspw_unseen", {"mIoU": 0.3}, weights="/ckpt/gkc-base.safetensors", hash_salt="edited",
        created="2026-11-01T10:00:00+00:00"))
    # text to escape, two configs of one model that differ in an argument, a score record (no timing)
    write(d, "score/evil-a.json", make_record(
        EVIL, metrics=all_metrics(0.10, 0.05), args={"note": "50% a_b & <script>x</script>"},
        weights="/ckpt/my_net&v2.pt", backbone="R_50", fps=None))
    write(d, "score/evil-b.json", make_record(
        EVIL, metrics=all_metrics(0.11, 0.06), args={"note": "plain"}, weights="/ckpt/my_net&v2.pt", backbone="R_50", fps=None))
    write(d, "synthetic/gkc__vspw_all.json", make_record(  # the synthetic sample: never beside VSPW
        "gkc", metrics=all_metrics(0.9, 0.9), dataset="vspw-synthetic"))
    write(d, "ov2vss/gkc__ov2vss_all.json", make_record(  # another protocol
        "gkc", "ov2vss_all", all_metrics(0.5, 0.1), protocol="ov2vss"))
    write(d, "v0/clip-dense__vspw_all.json", make_record(  # an older definition of the protocol
        "clip-dense", metrics=all_metrics(0.9, 0.9), weights="openai", backbone="ViT-B-16", version=0))
    write(d, "broken/bad.json", make_record("gkc", metrics={"mIoU": 1.5}))  # invalid: not a fraction
    write(d, "layouts/not-a-record.json", {"columns": []})  # other JSON: ignored
    return d


@pytest.fixture
def cli(capsys):
    """Run `ovbench leaderboard WORDS...` through the command's own parser; (code, stdout, stderr)."""

    def invoke(*words: str) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="ovbench leaderboard")
        configure_parser(parser)
        code = run(parser.parse_args(list(words)))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OVBENCH_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}: run with OVBENCH_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"output differs from {path}"


def md_rows(markdown: str) -> dict[str, list[str]]:
    """Markdown table body -> {first cell: cells}."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return {row[0]: row for row in cells}


# ----------------------------------------------------------------------------- tables


def test_tables_match_golden_files(results, cli):
    outputs = {}
    for fmt, suffix in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        code, outputs[fmt], err = cli("--results", str(results), "--format", fmt)
        assert code == 0
        check_golden(f"default.{suffix}", outputs[fmt])

    rows = md_rows(outputs["md"])
    assert set(rows) == {"clip-dense", "clip-twostage", "gkc", "gkc-base",
                         escape_md(EVIL) + " (note=50% a\\_b & \\<script\\>x\\</script\\>)",
                         escape_md(EVIL) + " (note=plain)"}
    header = [c.strip() for c in outputs["md"].splitlines()[0].strip("|").split("|")]
    col = {name: i for i, name in enumerate(header)}
    # the newest complete gkc run wins; the newer one-video smoke test does not displace it
    assert rows["gkc"][col["Seen"]] == "45.2" and rows["gkc"][col["hIoU"]] == "**29.0**"
    assert rows["gkc"][col["mIoU"]] == "**33.2**"  # overall mIoU column
    # no hIoU from separate seen-only / unseen-only runs
    assert rows["clip-twostage"][col["hIoU"]] == "-"
    # every number ties as printed (0.80 and 0.8004 -> 80.0): no bold; otherwise only the best
    assert rows["gkc"][col["VC16"]] == rows["gkc-base"][col["VC16"]] == "80.0"
    assert rows["gkc-base"][col["Seen"]] == "**47.0**" and rows["gkc"][col["Seen"]] == "45.2"
    # process count and batch size beside frames/s (an old record without them: 1 process, batch unknown)
    assert rows["gkc-base"][col["Procs"]] == "1" and rows["gkc-base"][col["Batch"]] == "8"
    assert rows["gkc"][col["Batch"]] == "-"
    # missing metrics are "-", never 0 or NaN
    assert rows["clip-dense"][col["VC8"]] == "-" and rows["clip-dense"][col["VC16"]] == "-"
    assert "nan" not in outputs["md"].lower() and "nan" not in outputs["csv"].lower()
    # separate-vocabulary fallback is marked
    assert rows["clip-twostage"][col["Seen"]] == "41.0†"
    assert "separate seen-only and unseen-only" in outputs["md"]
    # the score record has no timing: no frames/s, no device
    assert rows[escape_md(EVIL) + " (note=plain)"][col["FPS"]] == "-"

    # escaping: LaTeX and markdown specials, and no live markup
    assert r"my\_net \& co 100\% \textless{}script\textgreater{}alert(1)" in outputs["latex"]
    assert "<script>" not in outputs["latex"] and "<script>" not in outputs["md"]
    assert r"\toprule" in outputs["latex"] and r"\bottomrule" in outputs["latex"]
    assert r"\textbf{47.0}" in outputs["latex"] and r"\textbf{80.0}" not in outputs["latex"]
    assert "my_net & co 100% <script>alert(1)</script> (note=plain)" in outputs["csv"]  # csv quoting, no escapes


def escape_md(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_|<>[]" else c for c in text)


def test_notes_name_every_record_left_out(results, cli):
    _, _, err = cli("--results", str(results))
    lines = err.splitlines()

    def note_for(fragment: str) -> str:
        found = [line for line in lines if fragment in line]
        assert found, f"no note names {fragment}:\n{err}"
        return found[0]

    assert "not a fraction" in note_for("broken/bad.json")
    assert "data set 'vspw-synthetic'" in note_for("synthetic/gkc__vspw_all.json")
    assert "protocol 'ov2vss'" in note_for("ov2vss/gkc__ov2vss_all.json")
    assert "different definition hash" in note_for("gkc-base__vspw_unseen.json")
    assert "superseded" in note_for("old/gkc__vspw_all.json")
    assert "--limit-videos 1): a complete run of the same configuration is shown" in note_for("smoke/gkc__vspw_all.json")
    assert "1 of 3 videos skipped" in note_for("partial/gkc-base__vspw_all.json")
    assert "older split version (this table uses version 1)" in note_for("v0/clip-dense__vspw_all.json")
    assert "vspw_train_seen" in note_for("gkc__vspw_train_seen.json")
    assert "not run records" not in err  # other JSON beside records is normal


def test_all_runs_keeps_both_runs(results, cli):
    _, out, err = cli("--results", str(results), "--all-runs")
    rows = md_rows(out)
    assert rows["gkc (run of 2026-11-24 16:00)"][4] == "45.2"
    assert rows["gkc (run of 2026-11-20 10:00)"][4] == "40.0"
    assert "superseded" not in err


def test_invalid_record_is_fatal_with_strict(results, cli):
    with pytest.raises(DataError, match=r"bad\.json: metric mIoU = 1\.5"):
        cli("--results", str(results), "--strict")


def test_dataset_choice(results, cli):
    _, out, err = cli("--results", str(results), "--dataset", "vspw-synthetic")
    assert list(md_rows(out)) == ["gkc"] and "90.0" in out
    assert "data set 'vspw'" in err
    with pytest.raises(ConfigError, match="did you mean vspw"):
        cli("--results", str(results), "--dataset", "vspv")


def test_protocol_choice_from_option_or_layout(results, tmp_path, cli):
    _, out, err = cli("--results", str(results), "--protocol", "ov2vss")
    assert list(md_rows(out)) == ["gkc"] and "protocol ov2vss: ov2vss\\_all" in out
    layout = write(tmp_path, "ov2vss-table.json", {"protocol": "ov2vss", "columns": [
        {"label": "Method", "field": "label"}, {"label": "Unseen", "metric": "mIoU_unseen"}]})
    _, out, _ = cli("--results", str(results), "--table", str(layout))
    assert md_rows(out) == {"gkc": ["gkc", "10.0"]}
    with pytest.raises(ConfigError, match=r"--protocol 'ov2vs': no run records on that protocol \(did you mean ov2vss"):
        cli("--results", str(results), "--protocol", "ov2vs")


def test_only_synthetic_records_are_tabulated_without_choosing(tmp_path, cli):
    write(tmp_path, "a.json", make_record("gkc", metrics=all_metrics(0.5, 0.25), dataset="vspw-synthetic"))
    _, out, err = cli("--results", str(tmp_path))
    assert "vspw-synthetic" in out and err == ""


def test_frames_per_second_on_different_devices_is_not_bolded(tmp_path, cli):
    write(tmp_path, "a.json", make_record("gkc", metrics=all_metrics(0.5, 0.25), fps=30.0))
    write(tmp_path, "b.json", make_record("clip-dense", metrics=all_metrics(0.4, 0.25), fps=10.0, device="NVIDIA A100"))
    _, out, err = cli("--results", str(tmp_path))
    rows = md_rows(out)
    assert rows["gkc"][9] == "30.0" and rows["gkc"][4] == "**50.0**"
    assert "FPS not bolded: frames/s measured on different devices (NVIDIA A100, NVIDIA H100 80GB HBM3)" in err


def test_no_records(tmp_path, cli):
    write(tmp_path, "state/fingerprint.json", {"model": "gkc"})
    with pytest.raises(DataError, match="no valid run records"):
        cli("--results", str(tmp_path))
    assert find_runs(tmp_path) == ([], [f"ignored 1 JSON file(s) under {tmp_path} that are not run records"])
    with pytest.raises(DataError, match="no such folder"):
        cli("--results", str(tmp_path / "missing"))


# ----------------------------------------------------------------------------- layouts


def test_gkc_video_layout(results, cli):
    _, out, _ = cli("--results", str(results), "--table", "gkc-video")
    check_golden("gkc-video.md", out)
    assert [label[:12] for label in md_rows(out)] == [
        "Dense CLIP (", "Two-stage CL", "GKC-base", "GKC", "my\\_net & co", "my\\_net & co"]
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert header == ["Method", "Backbone", "Seen", "Unseen", "hIoU", "VC8", "VC16", "FPS"]


def ablation_results(folder: Path) -> Path:
    variants = [("gkc-base", "/ckpt/gkc-base.safetensors", 0.40, 0.10), ("gkc", "/ckpt/gkc_text_div.safetensors", 0.41, 0.14),
                ("gkc", "/ckpt/gkc_distill.safetensors", 0.42, 0.15), ("gkc", "/ckpt/gkc_full.safetensors", 0.43, 0.18),
                ("clip-dense", "openai", 0.3, 0.2)]
    for model, weights, seen, unseen in variants:
        write(folder, f"{Path(weights).stem}.json", make_record(
            model, metrics=all_metrics(seen, unseen, VC8=0.8, VC16=0.7), weights=weights))
    return folder


def test_ablation_layout(tmp_path, cli):
    results = ablation_results(tmp_path)
    _, md, err = cli("--results", str(results), "--table", "ablation")
    _, tex, _ = cli("--results", str(results), "--table", "ablation", "--format", "latex")
    check_golden("ablation.md", md)
    check_golden("ablation.tex", tex)
    rows = md_rows(md)
    assert list(rows) == ["GKC-base", "+ text diversification", "+ distillation", "Full (GKC)"]
    assert [rows[k][2] for k in rows] == ["10.0", "14.0", "15.0", "**18.0**"]
    assert "left out clip-dense (weights openai): matches no row of layout ablation" in err


def test_user_layout_file(results, tmp_path, cli):
    layout = write(tmp_path, "layouts/my-paper.json", {
        "title": "My table",
        "columns": [
            {"label": "Method", "field": "label"},
            {"label": "Args", "field": "args"},
            {"label": "Unseen vocab.", "metric": "mIoU", "split": "unseen"},
            {"label": "All-class mIoU", "metric": "mIoU"},
            {"label": "Model fps", "metric": "fps", "split": "all", "better": "lower"},
        ],
    })
    _, out, err = cli("--results", str(results), "--table", str(layout))
    check_golden("user-layout.md", out)
    rows = md_rows(out)
    assert rows["clip-twostage"][2] == "25.0" and rows["clip-twostage"][3] == "-"
    assert rows[escape_md(EVIL)][1] == "note=plain"  # the Args column tells the two apart: no label suffix
    assert rows["gkc"][4] == "**25.3**" and rows["clip-dense"][4] == "40.1"  # lower is better here
    assert "layout my-paper" in err  # unused records are named with the layout's id


@pytest.mark.parametrize(("payload", "message"), [
    ({"columns": [{"label": "A", "metrik": "hIoU"}]}, r"unknown key 'metrik' \(did you mean metric"),
    ({"columns": [{"label": "A", "metric": "hIOU"}]}, r"unknown metric 'hIOU' \(did you mean hIoU"),
    # issue 23.10f: the same typo with a split used to render a column of "-" in silence
    ({"columns": [{"label": "A", "metric": "mIOU", "split": "all"}]}, r"unknown metric 'mIOU' of split 'all' \(did you mean mIoU"),
    ({"columns": [{"label": "A", "field": "label", "metric": "hIoU"}]}, "exactly one of 'field', 'metric' or 'published'"),
    ({"columns": []}, "non-empty list"),
    ({"columns": [{"label": "A", "field": "label"}], "rows": [{"label": "x"}]}, r"rows\[0\] should be an object"),
])
def test_layout_errors_name_the_file_and_key(tmp_path, payload, message):
    path = write(tmp_path, "bad-layout.json", payload)
    with pytest.raises(ConfigError, match=message) as caught:
        load_layout(str(path))
    assert "bad-layout.json" in str(caught.value)


def test_unknown_builtin_layout_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"did you mean gkc-video, gkc-vipseg, gkc-image\?\); built-in: ablation, default, gkc-image, gkc-video, gkc-vipseg,"):
        load_layout("gkc-vidoe")


# ----------------------------------------------------------------------------- bootstrap


def iou_reference(matrix: list[list[int]]) -> list[Fraction | None]:
    """IoU per class straight from the definition; None for a class without gt pixels."""
    k = len(matrix)
    result = []
    for c in range(k):
        row, col = sum(matrix[c]), sum(matrix[r][c] for r in range(k))
        result.append(Fraction(matrix[c][c], row + col - matrix[c][c]) if row else None)
    return result


def summary_reference(matrix: list[list[int]], seen: list[bool]) -> dict[str, Fraction]:
    iou = iou_reference(matrix)

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    out = {"mIoU": mean(iou), "mIoU_seen": mean(v for v, s in zip(iou, seen) if s),
           "mIoU_unseen": mean(v for v, s in zip(iou, seen) if not s)}
    if out["mIoU_seen"] is not None and out["mIoU_unseen"] is not None:
        s, u = out["mIoU_seen"], out["mIoU_unseen"]
        out["hIoU"] = 2 * s * u / (s + u) if s + u else Fraction(0)
    return {k: v for k, v in out.items() if v is not None}


def dense(triples: list[list[int]], k: int) -> list[list[int]]:
    matrix = [[0] * k for _ in range(k)]
    for g, p, n in triples:
        matrix[g][p] += n
    return matrix


def bootstrap_record(videos: dict[str, list[list[int]]], seen: dict[str, bool], **kwargs) -> dict:
    """An all-class record whose metrics are those of the summed per-video matrices."""
    k = len(seen)
    total = dense([t for triples in videos.values() for t in triples], k)
    metrics = {key: float(v) for key, v in summary_reference(total, list(seen.values())).items()}
    per_class = {name: {"iou": None, "acc": None, "gt_pixels": 0, "seen": s} for name, s in seen.items()}
    per_video = {name: {"frames": 30, "confusion": triples} for name, triples in videos.items()}
    return make_record(metrics=metrics, per_class=per_class, per_video=per_video, **kwargs)


TWO_VIDEOS = {
    "a": [[0, 0, 10], [1, 1, 5], [1, 0, 5]],  # wall: 10/15, pillar: 5/10
    "b": [[0, 0, 10], [0, 1, 10]],  # wall: 10/20 ... no pillar gt
}
TWO_CLASSES = {"wall": True, "pillar": False}


def test_bootstrap_of_identical_videos_has_zero_width():
    videos = {f"v{i}": [[0, 0, 7], [0, 1, 3], [1, 1, 4], [1, 0, 2], [2, 2, 5], [2, 0, 1]] for i in range(4)}
    record = bootstrap_record(videos, {"wall": True, "ceiling": True, "pillar": False})
    intervals = video_bootstrap(record, resamples=200, seed=3)
    assert set(intervals) == {"mIoU", "mIoU_seen", "mIoU_unseen", "hIoU"}
    for key, (low, high) in intervals.items():
        assert low == pytest.approx(record["metrics"][key], abs=1e-12)
        assert high == pytest.approx(record["metrics"][key], abs=1e-12)


def test_bootstrap_of_two_videos_matches_enumeration():
    record = bootstrap_record(TWO_VIDEOS, TWO_CLASSES)
    # Every resample of two videos is aa, ab, ba or bb (probability 1/4, 1/2, 1/4): with 1000
    # draws the 2.5% and 97.5% quantiles are the smallest and largest defined values.
    outcomes: dict[str, list[Fraction]] = {}
    for picks in itertools.product(TWO_VIDEOS, repeat=2):
        matrix = dense([t for v in picks for t in TWO_VIDEOS[v]], 2)
        for key, value in summary_reference(matrix, [True, False]).items():
            outcomes.setdefault(key, []).append(value)
    by_hand = {  # the same numbers written out: a, b, a+b
        "mIoU": (Fraction(23, 56), Fraction(7, 12)),  # (4/7 + 1/4)/2 .. (2/3 + 1/2)/2
        "mIoU_seen": (Fraction(1, 2), Fraction(2, 3)),
        "mIoU_unseen": (Fraction(1, 4), Fraction(1, 2)),  # b alone has no pillar pixels: undefined
        "hIoU": (Fraction(8, 23), Fraction(4, 7)),
    }
    assert {k: (min(v), max(v)) for k, v in outcomes.items()} == by_hand
    intervals = video_bootstrap(record, resamples=1000, seed=0)
    assert set(intervals) == set(by_hand)
    for key, (low, high) in by_hand.items():
        assert intervals[key] == pytest.approx((float(low), float(high)), abs=1e-12)
    assert video_bootstrap(record, resamples=1000, seed=0) == intervals  # seeded


def test_bootstrap_leaves_out_videos_below_min_video_frames():
    record = bootstrap_record(TWO_VIDEOS, TWO_CLASSES)
    record["options"]["min_video_frames"] = 16
    record["per_video"]["short"] = {"frames": 12, "confusion": [[1, 0, 500]]}  # listed, not in the total
    assert video_bootstrap(record) == video_bootstrap(bootstrap_record(TWO_VIDEOS, TWO_CLASSES))
    record["options"]["min_video_frames"] = 0
    with pytest.raises(DataError, match="per-video confusion matrices give mIoU"):
        video_bootstrap(record)


@pytest.mark.slow
def test_ci_in_tables(tmp_path, cli):
    write(tmp_path, "gkc.json", bootstrap_record(TWO_VIDEOS, TWO_CLASSES))
    broken = bootstrap_record(TWO_VIDEOS, TWO_CLASSES, model="clip-dense", weights="openai")
    broken["metrics"]["mIoU_seen"] = 0.9  # per-video matrices no longer give the record's number
    write(tmp_path, "clip.json", broken)
    _, md, err = cli("--results", str(tmp_path), "--ci")
    rows = md_rows(md)
    assert rows["gkc"][4] == "57.1 [50.0, 66.7]"
    assert rows["gkc"][6] == "34.8 [34.8, 57.1]"  # tied with clip-dense (no interval): every row ties, no bold
    assert rows["clip-dense"][4] == "**90.0**"  # no interval
    assert "clip.json: its per-video confusion matrices give mIoU_seen 0.571429 but the record says 0.900000" in err
    assert "95% bootstrap interval over videos" in md
    _, csv, _ = cli("--results", str(tmp_path), "--ci", "--format", "csv")
    assert csv.splitlines()[0].startswith("Model,Weights,Backbone,mIoU,mIoU low,mIoU high,Seen,Seen low,Seen high")
    # full precision: 4/7 and 2/3 of the hand-computed enumeration above
    assert csv.splitlines()[2].startswith("gkc,builtin:gkc-tiny-sample,RN50,41.0714285714286,41.0714285714286,"
                                          "58.3333333333333,57.1428571428571,50,66.6666666666667,25,25,50,")
    _, tex, _ = cli("--results", str(tmp_path), "--ci", "--format", "latex")
    assert r"57.1\,{\scriptsize[50.0, 66.7]}" in tex
    cli("--results", str(tmp_path), "--ci", "--out", str(tmp_path / "page.html"))
    assert '57.1</td>' not in (page := (tmp_path / "page.html").read_text())
    assert '<span class="interval">[50.0, 66.7]</span>' in page


# ----------------------------------------------------------------------------- plots


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["acc-fps", "per-class"])
def test_plots_are_valid_png(results, tmp_path, cli, kind):
    out = tmp_path / f"{kind}.png"
    code, stdout, err = cli("--results", str(results), "--plot", kind, "--out", str(out))
    assert code == 0 and stdout == ""
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 10  # not a blank canvas
    if kind == "acc-fps":
        assert "has no frames/s; not plotted" in err  # the score records


def test_plot_needs_out(results, cli):
    with pytest.raises(ConfigError, match="--plot needs --out"):
        cli("--results", str(results), "--plot", "acc-fps")


# ----------------------------------------------------------------------------- HTML


@pytest.mark.slow
def test_html_is_self_contained_and_escaped(results, tmp_path, cli):
    out = tmp_path / "board.html"
    cli("--results", str(results), "--out", str(out), "--include-partial")  # format from the suffix
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert page.count('src="data:image/png;base64,') == 1 + 8  # the scatter plot and one chart per row
    assert 'class="number best" data-sort="0.47"' in page  # bold best with its raw value to sort on
    assert "skipped video" in page and "unreadable frame 00000012.jpg" in page  # run metadata
    assert "<dt>partial run</dt><dd>1 of 3 videos skipped</dd>" in page
    assert "superseded" in page and "bad.json" in page  # notes on records left out or skipped


@dataclasses.dataclass
class Browser:
    page: Any  # playwright.sync_api.Page
    problems: list[str]  # console errors and warnings, uncaught exceptions, requests that are not file: or data:


def _record_problems(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning", "assert") else None)
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on("request", lambda r: problems.append(f"network request: {r.url}")
            if not r.url.startswith(("file:", "data:", "about:")) else None)


@pytest.fixture
def chromium():
    """A page in the system's headless Chromium, driven by Playwright (its Python package brings
    only the driver; no browser is downloaded). Skips where either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            problems: list[str] = []
            _record_problems(page, problems)
            yield Browser(page, problems)
        finally:
            browser.close()


def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ["OVBENCH_ARTIFACTS"]) if os.environ.get("OVBENCH_ARTIFACTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_html_page_in_chromium(results, tmp_path, cli, chromium):
    page = tmp_path / "board.html"
    cli("--results", str(results), "--format", "html", "--out", str(page), "--ci")
    browser = chromium.page
    labels = "() => Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.cells[0].innerText.trim())"
    hiou = "() => Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.cells[6].dataset.sort)"

    browser.goto(page.as_uri())
    before = browser.evaluate(labels)
    assert before[:4] == ["clip-dense", "clip-twostage", "gkc", "gkc-base"]
    assert browser.locator("#leaderboard tbody tr").count() == 6
    assert browser.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 100)")

    browser.click("#leaderboard th[data-key='hIoU']")  # a real mouse click; numbers: best first
    after = browser.evaluate(labels)
    assert after != before
    assert after[:3] == ["gkc", "clip-dense", "gkc-base"]
    values = browser.evaluate(hiou)
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True) and all(values[: len(numbers)])  # missing ("-") last
    assert browser.get_attribute("#leaderboard th[data-key='hIoU']", "aria-sort") == "descending"
    browser.click("#leaderboard th[data-key='hIoU']")  # second click: ascending
    ranked = after[: len(numbers)]
    assert [label for label in browser.evaluate(labels) if label in ranked] == ranked[::-1]

    browser.click("#leaderboard th[data-key='VC8']")  # missing values sort last either way
    by_vc8 = browser.evaluate(labels)
    assert by_vc8[:2] == ["gkc", "gkc-base"] and set(by_vc8[2:]) == {"clip-dense", "clip-twostage", before[4], before[5]}

    browser.evaluate("() => { document.getElementById('model-2').open = true; }")
    screenshot = artifacts_dir(tmp_path) / "leaderboard.png"
    browser.screenshot(path=str(screenshot), full_page=True)
    with Image.open(screenshot) as image:
        assert image.width >= 1280 and image.height > 1000

    # an address with #sort=Seen:asc sorts on load
    browser.goto("about:blank")
    browser.goto(page.as_uri() + "#sort=Seen:asc")
    seen = [float(v) for v in browser.evaluate(
        "() => Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.cells[4].dataset.sort)")]
    assert seen == sorted(seen) and len(seen) == 6
    assert chromium.problems == []


# ----------------------------------------------------------------------------- trust (issue 11.4)


def test_partial_run_never_displaces_a_complete_one(tmp_path, cli):
    write(tmp_path, "full.json", make_record("gkc", metrics=all_metrics(0.4, 0.2), created="2026-11-20T10:00:00+00:00"))
    write(tmp_path, "smoke.json", make_record(  # newer, one video, better numbers
        "gkc", metrics=all_metrics(0.9, 0.9), limit_videos=1, created="2026-11-24T10:00:00+00:00"))
    write(tmp_path, "other.json", make_record("clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai"))
    write(tmp_path, "broken-videos.json", make_record(  # only a partial run of this configuration
        "gkc-base", metrics=all_metrics(0.8, 0.8), skipped=[{"video": "v1", "error": "unreadable"}]))
    _, out, err = cli("--results", str(tmp_path))
    rows = md_rows(out)
    assert list(rows) == ["clip-dense", "gkc"] and rows["gkc"][4] == "**40.0**"
    assert "smoke.json (--limit-videos 1): a complete run of the same configuration is shown" in err
    assert "broken-videos.json (1 of 3 videos skipped): show partial runs, marked, with --include-partial" in err

    _, out, err = cli("--results", str(tmp_path), "--include-partial")
    rows = md_rows(out)
    assert list(rows) == ["clip-dense", "gkc", "gkc‡", "gkc-base‡"]
    assert rows["gkc"][4] == "**40.0**" and rows["gkc‡"][4] == "90.0"  # never bold: not comparable
    assert rows["gkc-base‡"][4] == "80.0" and "‡ partial run: not every video" in out
    assert "run of" not in out  # the marker tells the complete and the partial row apart


def test_only_partial_runs_need_include_partial(tmp_path, cli):
    write(tmp_path, "smoke.json", make_record("gkc", metrics=all_metrics(0.9, 0.9), limit_videos=2))
    with pytest.raises(DataError, match="are partial runs; show them, marked, with --include-partial"):
        cli("--results", str(tmp_path))
    _, out, _ = cli("--results", str(tmp_path), "--include-partial")
    assert list(md_rows(out)) == ["gkc‡"]


def random_init_results(folder: Path) -> Path:
    write(folder, "trained.json", make_record("clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai"))
    write(folder, "random.json", make_record(
        "clip-dense", metrics=all_metrics(0.01, 0.0), weights="none", random_init=True, backbone="ViT-B-16"))
    old = make_record("gkc", metrics=all_metrics(0.02, 0.0), weights="none")
    del old["model"]["random_init"]  # an older record: weights "none" is how it said so
    write(folder, "old-random.json", old)
    return folder


def test_random_init_weights_are_marked_in_every_format(tmp_path, cli):
    results = random_init_results(tmp_path)
    _, md, _ = cli("--results", str(results))
    assert set(md_rows(md)) == {"clip-dense", "clip-dense§", "gkc§"}
    assert "§ random (untrained) weights" in md
    _, tex, _ = cli("--results", str(results), "--format", "latex")
    assert r"clip-dense\textsuperscript{\S} &" in tex and r"\textsuperscript{\S} random (untrained) weights" in tex
    _, csv_text, _ = cli("--results", str(results), "--format", "csv")
    by_weights = {row["Weights"]: row for row in csv.DictReader(io.StringIO(csv_text))}
    assert by_weights["none"]["Footnotes"].startswith("random (untrained) weights")
    assert by_weights["openai"]["Footnotes"] == ""
    page = tmp_path / "page.html"
    cli("--results", str(results), "--out", str(page))
    assert "random (untrained) weights" in page.read_text() and "<sup>§</sup>" in page.read_text()


def test_frames_per_second_is_per_process(tmp_path, cli):
    write(tmp_path, "one.json", make_record("gkc", metrics=all_metrics(0.4, 0.2), fps=58.0, batch_size=4))
    write(tmp_path, "torchrun.json", make_record(  # 2 processes side by side: 110 frames/s in total
        "clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai", fps=110.0, processes=2, batch_size=8))
    _, out, _ = cli("--results", str(tmp_path))
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    col = {name: i for i, name in enumerate(header)}
    rows = md_rows(out)
    assert rows["clip-dense"][col["FPS"]] == "55.0" and rows["gkc"][col["FPS"]] == "**58.0**"
    assert (rows["clip-dense"][col["Procs"]], rows["clip-dense"][col["Batch"]]) == ("2", "8")
    assert (rows["gkc"][col["Procs"]], rows["gkc"][col["Batch"]]) == ("1", "4")


def test_bold_only_singles_something_out(tmp_path, cli):
    for name, unseen in (("a", 0.2), ("b", 0.2004), ("c", 0.1)):  # a and b print 20.0
        write(tmp_path, f"{name}.json", make_record(name, metrics=all_metrics(0.5, unseen)))
    _, out, _ = cli("--results", str(tmp_path))
    rows = md_rows(out)
    assert [rows[k][5] for k in "abc"] == ["**20.0**", "**20.0**", "10.0"]  # a tie at the top: both best
    assert [rows[k][4] for k in "abc"] == ["50.0", "50.0", "50.0"]  # every row ties: nothing is best


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_neutralises_formulas(tmp_path, cli, text):
    write(tmp_path, "a.json", make_record(text, metrics=all_metrics(0.5, 0.25), weights=text, backbone=text))
    layout = write(tmp_path, "layouts/t.json", {"columns": [
        {"label": "Model", "field": "label"}, {"label": "Backbone", "field": "backbone"},
        {"label": text, "metric": "hIoU"}]})
    _, out, _ = cli("--results", str(tmp_path), "--format", "csv", "--table", str(layout))
    (header, row), = [list(csv.reader(io.StringIO(out)))]
    neutral = "'" + text.replace("\r", " ")  # a line break inside a cell is a space, as in md and LaTeX
    assert header[2] == neutral
    assert row[:2] == [neutral, neutral] and row[2] == "33.3333333333333"


def test_csv_keeps_full_precision(tmp_path, cli):
    metrics = {"mIoU": 0.123456789012, "mIoU_seen": 0.2, "mIoU_unseen": 1 / 3, "hIoU": 0.25}
    write(tmp_path, "a.json", make_record("gkc", metrics=metrics, fps=12.345678))
    _, out, _ = cli("--results", str(tmp_path), "--format", "csv")
    row = next(csv.DictReader(io.StringIO(out)))
    assert float(row["mIoU"]) == pytest.approx(12.3456789012, abs=1e-12)
    assert float(row["Unseen"]) == pytest.approx(100 / 3, abs=1e-12) and row["Seen"] == "20"
    assert float(row["FPS"]) == pytest.approx(12.345678, abs=1e-12)
    assert row["VC8"] == "" and row["Batch"] == ""  # not measured: an empty cell, not "-"


GARBAGE = [
    (lambda r: r["per_class"]["wall"].update(iou="0.5"), "per_class['wall'].iou"),
    (lambda r: r["per_class"]["wall"].update(gt_pixels=1.5), "per_class['wall'].gt_pixels"),
    (lambda r: r.update(timing="fast"), "timing"),
    (lambda r: r["timing"].update(fps_end_to_end="25"), "timing.fps_end_to_end"),
    (lambda r: r["timing"].update(processes=0), "timing.processes"),
    (lambda r: r["timing"].update(processes=True), "timing.processes"),
    (lambda r: r["model"].update(weights=5), "model.weights"),
    (lambda r: r["model"].update(random_init="yes"), "model.random_init"),
    (lambda r: r["dataset"].update(skipped="none"), "dataset.skipped"),
    (lambda r: r["dataset"].update(skipped=["v1"]), "dataset.skipped[0]"),
    (lambda r: r["dataset"].update(videos="2"), "dataset.videos"),
    (lambda r: r["model"].update(id=None), "model.id"),
    (lambda r: r["env"].update(device=3), "env.device"),
    (lambda r: r["options"].update(batch_size="8"), "options.batch_size"),
    (lambda r: r["options"].update(limit_videos=[1]), "options.limit_videos"),
    (lambda r: r["per_video"].update(v1="x"), "per_video['v1']"),
    (lambda r: r["per_video"].update(v1={"frames": 3, "VC8": "high"}), "per_video['v1'].VC8"),
    (lambda r: r["per_video"].update(v1={"frames": 3, "confusion": [[0, "a", 1]]}), "per_video['v1'].confusion"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("spoil", "field"), GARBAGE)
def test_garbage_in_a_record_is_a_note_naming_file_and_field(tmp_path, cli, spoil, field):
    write(tmp_path, "good.json", make_record("clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai"))
    bad = make_record("gkc", metrics=all_metrics(0.4, 0.2))
    spoil(bad)
    write(tmp_path, "bad.json", bad)
    for fmt in ("md", "csv", "latex", "html"):
        code, out, err = cli("--results", str(tmp_path), "--format", fmt, "--ci")
        assert code == 0 and "clip-dense" in out
        assert f"skipped invalid record {tmp_path / 'bad.json'}: {field} = " in err
    with pytest.raises(DataError, match=re.escape(f"bad.json: {field} = ")):
        cli("--results", str(tmp_path), "--strict")


def test_acc_fps_plot_labels_do_not_overlap_and_scores_start_at_zero(tmp_path):
    from ovbench.leaderboard.plots import accuracy_fps_figure, text_box
    from ovbench.leaderboard.table import build_leaderboard

    zeros = {"mIoU": 0.0, "mIoU_seen": 0.0, "mIoU_unseen": 0.0, "hIoU": 0.0}
    for i in range(8):  # close numbers: the default offset puts every label on the others
        write(tmp_path, f"m{i}.json", make_record(f"model-with-a-long-name-{i}", metrics=zeros,
                                                   fps=20.0 + 0.2 * i))
    runs, _ = find_runs(tmp_path)
    figure, _ = accuracy_fps_figure(build_leaderboard(runs, load_layout("default")))
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    boxes = [text_box(text, renderer) for text in ax.texts]
    assert len(boxes) == 8
    overlapping = [(a, b) for a, b in itertools.combinations(range(8), 2) if boxes[a].overlaps(boxes[b])]
    assert overlapping == []
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 0  # every score is 0: no negative axis


# ----------------------------------------------------------------------------- load_records (issue 14.3)


def test_load_records_is_one_row_per_record(tmp_path):
    import ovbench
    from ovbench.records.read import COLUMNS

    write(tmp_path, "a/full.json", make_record("gkc", metrics=all_metrics(0.4, 0.2, VC8=0.8), fps=110.0, processes=2,
                                               batch_size=8))
    write(tmp_path, "b/smoke.json", make_record("gkc", metrics={"mIoU": 0.5}, limit_videos=1, fps=None,
                                                weights="none", random_init=True))
    write(tmp_path, "c/bad.json", make_record("gkc", metrics={"mIoU": "high"}))
    write(tmp_path, "c/layout.json", {"columns": []})  # other JSON: passed over
    with pytest.warns(UserWarning, match=r"bad\.json: metric mIoU = 'high'"):
        frame = ovbench.load_records(tmp_path)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 2
    full, smoke = (frame[frame["path"].str.endswith(name)].iloc[0] for name in ("full.json", "smoke.json"))
    assert full["model"] == "gkc" and full["split"] == "vspw_all" and full["dataset"] == "vspw"
    assert full["mIoU"] == pytest.approx(0.3) and full["VC8"] == pytest.approx(0.8) and np.isnan(full["VC16"])
    assert full["processes"] == 2 and full["batch_size"] == 8
    assert full["fps_per_process"] == pytest.approx(55.0) and full["fps_end_to_end"] == pytest.approx(110.0)
    assert not full["partial"] and not full["random_init"]
    assert smoke["partial"] and smoke["partial_reason"] == "--limit-videos 1" and smoke["random_init"]
    assert np.isnan(smoke["fps_per_process"]) and np.isnan(smoke["hIoU"]) and smoke["processes"] == 1
    assert str(frame["created"].dtype).startswith("datetime64") and frame["created"].dt.tz is not None
    assert frame["mIoU"].dtype == np.float64
    one = ovbench.load_records(tmp_path / "a" / "full.json")  # one file
    assert len(one) == 1 and one["hIoU"].iloc[0] == pytest.approx(0.4 * 0.2 * 2 / 0.6)
    with pytest.warns(UserWarning, match="not run records"):
        empty = ovbench.load_records(tmp_path / "c" / "layout.json")
    assert list(empty.columns) == list(COLUMNS) and len(empty) == 0
    with pytest.raises(DataError, match="bad.json"):
        ovbench.load_records(tmp_path, strict=True)
    with pytest.raises(DataError, match="no such file or folder"):
        ovbench.load_records(tmp_path / "missing")
    with pytest.raises(AttributeError):
        ovbench.no_such_function  # noqa: B018


# ----------------------------------------------------------------------------- per-video tables (issue 11.4)


def test_per_video_tables_show_where_a_model_fails(tmp_path, cli):
    per_video = {"good": {"frames": 30, "mIoU": 0.9, "VC8": 0.95, "VC16": 0.9},
                 "bad_one": {"frames": 12, "mIoU": 0.05, "VC8": 0.4},  # too short for VC16
                 "empty": {"frames": 3}}  # no mIoU: listed last
    write(tmp_path, "gkc.json", make_record("gkc", metrics=all_metrics(0.4, 0.2), per_video=per_video))
    write(tmp_path, "clip.json", make_record("clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai"))
    _, md, _ = cli("--results", str(tmp_path), "--per-video")
    sections = {block.splitlines()[0]: block for block in md.split("### ")[1:]}
    rows = md_rows(sections["Per video: gkc (vspw\\_all, gkc.json)"])
    assert list(rows) == ["bad\\_one", "good", "empty"]  # worst first
    assert rows["bad\\_one"] == ["bad\\_one", "12", "5.0", "40.0", "-"]
    assert rows["good"] == ["good", "30", "90.0", "95.0", "90.0"] and rows["empty"][2:] == ["-", "-", "-"]
    assert "### Per video: clip-dense\n\nNo per-video results in these runs." in md
    _, plain, _ = cli("--results", str(tmp_path))
    assert "Per video" not in plain  # only when asked for
    page = tmp_path / "page.html"
    cli("--results", str(tmp_path), "--out", str(page))
    html = page.read_text()
    assert "Per video on vspw_all, worst mIoU first" in html
    assert html.index('data-sort="bad_one"') < html.index('data-sort="good"') < html.index('data-sort="empty"')
    assert '<td class="number" data-sort="0.05">5.0</td>' in html
    with pytest.raises(ConfigError, match="--per-video adds tables to markdown"):
        cli("--results", str(tmp_path), "--per-video", "--format", "csv")


# ----------------------------------------------------------------------------- GKC's own tables (issue 13.4)


def test_gkc_vipseg_layout_follows_gkc_protocol(tmp_path, cli):
    def vipseg(model: str, split: str, metrics: dict, **kwargs) -> dict:
        return make_record(model, split, metrics, dataset="vipseg", protocol="vipseg", **kwargs)

    write(tmp_path, "gkc_seen.json", vipseg("gkc", "vipseg_seen", {"mIoU": 0.5}))
    write(tmp_path, "gkc_unseen.json", vipseg("gkc", "vipseg_unseen", {"mIoU": 0.3}))
    write(tmp_path, "gkc_all.json", vipseg("gkc", "vipseg_all", all_metrics(0.45, 0.2, VC8=0.8, VC16=0.7)))
    write(tmp_path, "clip_unseen.json", vipseg("clip-dense", "vipseg_unseen", {"mIoU": 0.1}, weights="openai"))
    write(tmp_path, "vspw.json", make_record("gkc", metrics=all_metrics(0.9, 0.9)))  # another data set
    _, out, err = cli("--results", str(tmp_path), "--table", "gkc-vipseg")
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert header == ["Method", "Backbone", "Base", "Novel", "hIoU (all-class run)", "VC8", "VC16"]
    rows = md_rows(out)
    # base and novel from the restricted-vocabulary runs; hIoU from the all-class run (27.7), not
    # the harmonic mean of the Base and Novel columns (37.5)
    assert rows["GKC"][2:] == ["50.0", "**30.0**", "27.7", "80.0", "70.0"]
    assert rows["Dense CLIP (MaskCLIP-style)"][2:] == ["-", "10.0", "-", "-", "-"]
    assert "Data set vipseg" in out
    assert "data set 'vspw'" in err and "vspw.json" in err


IMAGE_SPLITS = {"COCO": "coco_val", "PAS-20": "voc20_val", "Cityscapes": "cityscapes_val", "A-150": "ade150_val",
                "A-847": "ade847_val", "PC-59": "pc59_val", "PC-459": "pc459_val"}


def image_record(model: str, split: str, miou: float, **kwargs) -> dict:
    kind = split.removesuffix("_val")
    return make_record(model, split, {"mIoU": miou}, **{"dataset": kind, "protocol": kind, **kwargs})


def test_gkc_image_layout_reads_each_column_from_its_own_data_set(tmp_path, cli):
    for k, (label, split) in enumerate(IMAGE_SPLITS.items()):
        write(tmp_path, f"gkc_{split}.json", image_record("gkc", split, 0.1 + 0.05 * k,
                                                          convention="mmseg" if label == "PC-459" else "vspw"))
    write(tmp_path, "synthetic.json", image_record("gkc", "ade150_val", 0.99, dataset="ade150-synthetic-0123abcd"))
    write(tmp_path, "vspw.json", make_record("gkc", metrics=all_metrics(0.9, 0.9)))
    _, out, err = cli("--results", str(tmp_path), "--table", "gkc-image")
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert header == ["Method", "Backbone", *IMAGE_SPLITS]
    assert md_rows(out)["GKC"][2:] == ["10.0", "15.0", "20.0", "25.0", "30.0", "35.0", "40.0¶"]
    assert "¶ mIoU averaged also over classes predicted but absent" in out and "n/s" not in out
    assert "synthetic.json" in err and "vspw.json" in err


def test_zoo_image_layout_puts_published_numbers_beside_measured_ones(tmp_path, cli):
    write(tmp_path, "catseg.json", image_record("cat-seg", "ade150_val", 0.3175, backbone="CLIP ViT of CAT-Seg vit-b16"))
    write(tmp_path, "gkc.json", image_record("gkc", "ade847_val", 0.031, backbone="RN50"))
    _, out, _ = cli("--results", str(tmp_path), "--table", "zoo-image")
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert header[2:6] == ["A-847 paper", "A-847", "PC-459 paper", "PC-459"]
    rows = md_rows(out)
    cat_seg = dict(zip(header, rows["CAT-Seg ViT-B/16"]))
    assert (cat_seg["A-150 paper"], cat_seg["A-150"], cat_seg["A-847 paper"], cat_seg["A-847"]) == ("31.8", "31.8", "12.0", "-")
    assert cat_seg["PAS-20b paper"] == "77.3"
    gkc = dict(zip(header, rows["GKC CLIP R-50"]))
    assert (gkc["A-847 paper"], gkc["A-847"], gkc["COCO paper"]) == ("3.2°", "3.1", "49.8°")
    assert "° published number whose source does not say" in out


def test_a_published_column_or_row_must_name_what_the_file_has(tmp_path):
    columns = [{"label": "Method", "field": "label"}, {"label": "A", "published": "A-151"}]
    with pytest.raises(ConfigError, match="benchmark 'A-151' is not in leaderboard/published.json \\(did you mean A-150"):
        load_layout(str(write(tmp_path, "bad.json", {"columns": columns})))
    rows = [{"label": "x", "match": {"model.id": "x"}, "published": "CAT-Seg ViT-B/61"}]
    with pytest.raises(ConfigError, match="model variant 'CAT-Seg ViT-B/61'"):
        load_layout(str(write(tmp_path, "bad2.json", {"rows": rows, "columns": columns[:1]})))


def test_gkc_video_layout_claims_no_gkc_columns_it_does_not_have():
    description = load_layout("gkc-video").description
    assert "as in the video table" not in description
    assert "GKC's released code evaluates neither video consistency nor speed" in description


def test_a_run_over_fewer_videos_is_partial_even_when_its_record_does_not_say(tmp_path, cli):
    videos = {name: {"frames": 30, "mIoU": 0.4} for name in ("v1", "v2", "v3")}
    write(tmp_path, "full.json", make_record("gkc", metrics=all_metrics(0.4, 0.2), per_video=videos,
                                             created="2026-11-20T10:00:00+00:00"))
    write(tmp_path, "smoke.json", make_record(  # written before options.limit_videos existed
        "gkc", metrics=all_metrics(0.9, 0.9), per_video={"v1": videos["v1"]}, created="2026-11-24T10:00:00+00:00"))
    write(tmp_path, "other-args.json", make_record(  # another configuration: not compared
        "gkc", metrics=all_metrics(0.5, 0.5), per_video={"v1": videos["v1"]}, args={"input_size": 320}))
    _, out, err = cli("--results", str(tmp_path))
    assert {label: cells[4] for label, cells in md_rows(out).items()} == {"gkc (input\\_size=320)": "**50.0**",
                                                                          "gkc (input\\_size=null)": "40.0"}
    assert f"smoke.json (1 of the 3 videos of {tmp_path / 'full.json'}): a complete run of the same configuration is shown" in err


# ----------------------------------------------------------------------------- qualitative strip (issue 14.2)


def save_predictions(record_path: Path, videos: dict[str, np.ndarray], mode: str = "L") -> None:
    """Saved predictions as the runner lays them out: <record stem>.predictions/<video>/<frame>.png."""
    for video, ids in videos.items():
        folder = record_path.with_suffix(".predictions") / video
        folder.mkdir(parents=True, exist_ok=True)
        for frame in ("00000002", "00000001"):  # the strip shows each video's first frame
            image = Image.fromarray(ids if frame == "00000001" else np.zeros_like(ids), mode="L")
            if mode == "P":
                image = image.convert("P")  # palette PNG: the indices are still the class ids
            image.save(folder / f"{frame}.png")


def decode_data_url(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.mark.slow
def test_html_shows_a_strip_of_saved_predictions(tmp_path, cli, monkeypatch):
    from ovbench.leaderboard import strip

    videos = {f"video{i}": np.full((36, 64), i, dtype=np.uint8) for i in range(8)}  # video i predicts class i
    videos["video7"][:, 32:] = 255  # void in half of one frame
    path = write(tmp_path, "gkc.json", make_record("gkc", metrics=all_metrics(0.4, 0.2)))
    save_predictions(path, videos)
    clip = write(tmp_path, "clip.json", make_record("clip-dense", metrics=all_metrics(0.3, 0.1), weights="openai"))
    save_predictions(clip, {"video0": np.full((36, 64), 3, dtype=np.uint8)}, mode="P")
    broken = write(tmp_path, "twostage.json", make_record("clip-twostage", metrics=all_metrics(0.3, 0.1)))
    (broken.with_suffix(".predictions") / "video0").mkdir(parents=True)
    (broken.with_suffix(".predictions") / "video0" / "00000001.png").write_bytes(b"not a png")
    write(tmp_path, "nothing.json", make_record("gkc-base", metrics=all_metrics(0.3, 0.1)))  # none saved

    page = tmp_path / "page.html"
    _, _, err = cli("--results", str(tmp_path), "--out", str(page))
    html = page.read_text()
    strips = re.findall(r'<figure class="strip">\n<img src="(data:image/png;base64,[^"]+)"', html)
    assert len(strips) == 2  # gkc and clip-dense; the broken one is a note, the unsaved one nothing
    colours = PALETTE
    with decode_data_url(strips[1]) as image:  # gkc: 6 of 8 videos, evenly spread, first frames
        assert image.height == strip.THUMB_HEIGHT and image.width == 6 * 128 + 5 * 4
        pixels = np.asarray(image.convert("RGB"))
    shown = [0, 1, 3, 4, 6, 7]
    for slot, video in enumerate(shown):
        assert tuple(pixels[10, slot * 132 + 5]) == tuple(colours[video])
    assert tuple(pixels[10, 5 * 132 + 127]) == (0, 0, 0)  # void is black
    assert "video0/00000001, video1/00000001, video3/00000001" in html
    with decode_data_url(strips[0]) as image:  # clip-dense's palette PNG: same colour for class 3
        assert tuple(np.asarray(image.convert("RGB"))[10, 10]) == tuple(colours[3])
    assert f"no prediction strip for {broken}" in err

    monkeypatch.setattr(strip, "MAX_BYTES", 100)
    _, _, err = cli("--results", str(tmp_path), "--out", str(page))
    assert "over the page's cap of 100" in err and '<figure class="strip">' not in page.read_text()


def test_random_weights_are_never_bold(tmp_path, cli):
    """Issue 23.13: a random-init row topping VC (one class everywhere is perfectly consistent)
    is not bolded, nor is a row with a random part; the best trained row is."""
    write(tmp_path, "a.json", make_record("gkc", metrics=all_metrics(0.5, 0.25, VC8=0.7, VC16=0.6)))
    write(tmp_path, "b.json", make_record("clip-dense", metrics=all_metrics(0.1, 0.05, VC8=0.99, VC16=0.98), random_init=True,
                                          weights="none"))
    partly = make_record("gkc-base", metrics=all_metrics(0.2, 0.1, VC8=0.95, VC16=0.9), weights="sample.safetensors")
    partly["model"]["random_parts"] = ["CLIP text tower"]
    write(tmp_path, "c.json", partly)
    write(tmp_path, "d.json", make_record("clip-twostage", metrics=all_metrics(0.3, 0.2, VC8=0.5, VC16=0.4)))
    _, out, _ = cli("--results", str(tmp_path))
    rows = md_rows(out)
    assert rows["gkc"][7] == "**70.0**" and rows["gkc"][8] == "**60.0**"
    assert "**" not in "".join(rows["clip-dense§"][7:9]) and "**" not in "".join(rows["gkc-base"][7:9])
