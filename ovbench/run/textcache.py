"""Text embeddings cached on disk, so a vocabulary is encoded once per (encoder, weights,
templates, names), not once per run: an 80-template ensemble of 124 names costs minutes of CPU.

An entry's key is the adapter's `text_cache_key()` AND what the run's identity knows of the
model: the source of the adapter class (an edited prompt in a plugin is a new entry even when
its author forgot to change the key), its arguments and its weights' hash.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from ovbench.api import SegmentationModel
from ovbench.errors import first_line
from ovbench.fileio import write_bytes
from ovbench.modelargs import args_to_dict
from ovbench.resolve import cache_root
from ovbench.run.fingerprint import adapter_source_sha256


def model_identity(model: SegmentationModel) -> dict:
    """What a run's fingerprint knows of a model that can change its text embedding."""
    return {"source": adapter_source_sha256(type(model)), "args": args_to_dict(model.args), "weights": model.weights().sha256}


def _to_stderr(message: str) -> None:
    print(f"ovbench: note: {message}", file=sys.stderr)


@dataclass
class CacheEntry:
    path: Path
    bytes: int
    model_key: str
    classes: int
    damaged: str | None = None  # why the entry cannot be read; the next run that needs it re-encodes it


class TextCache:
    """Content-addressed store: file name = sha256 of the model's cache key and the names.

    Entries are only ever read with safetensors (never unpickled). A damaged entry (a crash
    mid-copy, a full disk) is re-encoded with a one-line note; a cache that cannot be written
    costs time, never the run."""

    def __init__(self, root: Path | None = None, note: Callable[[str], None] = _to_stderr):
        self.root = (root or cache_root()) / "text"
        self.note = note

    def key(self, model: SegmentationModel, names: Sequence[str]) -> str:
        """The entry's name: a hash of the adapter's cache key, the model's identity and the names."""
        payload = json.dumps({"model": model.text_cache_key(), **model_identity(model), "names": list(names)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def embed(
        self, model: SegmentationModel, names: Sequence[str], report: Callable[[str], None] | None = None
    ) -> tuple[torch.Tensor, float]:
        """The vocabulary's embedding (on CPU) and the seconds spent getting it. `report` hears
        about an encoding before it starts: a large template ensemble can take a minute."""
        start = time.perf_counter()
        report = report or (lambda message: None)
        model_key = model.text_cache_key()
        if model_key is None:
            report(f"encoding {len(names)} class names (this model is not cached)")
            return self._encode(model, names), time.perf_counter() - start
        path = self.root / f"{self.key(model, names)}.safetensors"
        if path.is_file():
            text, problem = _read_entry(path, len(names))
            if text is not None:
                return text, time.perf_counter() - start
            self.note(f"text cache entry {path} is damaged ({problem}); encoding the vocabulary again")
        report(f"encoding {len(names)} class names: cache miss")
        text = self._encode(model, names)
        self._store(path, text, model_key, len(names))
        return text, time.perf_counter() - start

    @staticmethod
    def _encode(model: SegmentationModel, names: Sequence[str]) -> torch.Tensor:
        with torch.inference_mode():
            return model.encode_text(list(names)).detach().float().cpu().contiguous()

    def _store(self, path: Path, text: torch.Tensor, model_key: str, classes: int) -> None:
        try:
            write_bytes(path, save({"text": text}, metadata={"model_key": model_key, "classes": str(classes)}))
        except OSError as err:
            self.note(f"cannot write the text cache in {self.root} ({err.strerror or err}); continuing without it")

    def entries(self) -> list[CacheEntry]:
        found = []
        for path in sorted(self.root.glob("*.safetensors")):
            try:
                with safe_open(str(path), "pt") as handle:
                    meta = handle.metadata() or {}
                found.append(CacheEntry(path, path.stat().st_size, meta.get("model_key", "?"), int(meta.get("classes", 0))))
            except Exception as err:  # safetensors raises its own error types for a bad header
                found.append(CacheEntry(path, path.stat().st_size, "?", 0, damaged=first_line(err, typed=True)))
        return found

    def clear(self) -> int:
        entries = list(self.root.glob("*.safetensors"))
        for path in entries:
            path.unlink()
        return len(entries)


def _read_entry(path: Path, classes: int) -> tuple[torch.Tensor | None, str]:
    """The cached embedding, or None and why it is unusable (unreadable, or not C rows of floats)."""
    try:
        text = load_file(path).get("text")
    except Exception as err:  # safetensors raises its own error types for a bad header
        return None, first_line(err, typed=True)
    if text is None or text.dim() == 0 or text.shape[0] != classes or not text.is_floating_point():
        return None, f"no float tensor of {classes} rows"
    return text, ""
