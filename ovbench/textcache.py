"""Text embeddings cached on disk, so a vocabulary is encoded once per (encoder, weights,
templates, names), not once per run: an 80-template ensemble of 124 names costs minutes of CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from .api import SegmentationModel
from .fileio import write_bytes


def cache_root() -> Path:
    """$OVBENCH_CACHE, else the user cache dir ($XDG_CACHE_HOME/ovbench or ~/.cache/ovbench)."""
    if os.environ.get("OVBENCH_CACHE"):
        return Path(os.environ["OVBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ovbench"


@dataclass
class CacheEntry:
    path: Path
    bytes: int
    model_key: str
    classes: int


class TextCache:
    """Content-addressed store: file name = sha256 of the model's cache key and the names."""

    def __init__(self, root: Path | None = None):
        self.root = (root or cache_root()) / "text"

    def key(self, model_key: str, names: Sequence[str]) -> str:
        payload = json.dumps({"model": model_key, "names": list(names)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def embed(self, model: SegmentationModel, names: Sequence[str]) -> tuple[torch.Tensor, float]:
        """The vocabulary's embedding (on CPU) and the seconds spent getting it."""
        start = time.perf_counter()
        model_key = model.text_cache_key()
        if model_key is None:
            with torch.inference_mode():
                return model.encode_text(list(names)).detach().float().cpu(), time.perf_counter() - start
        path = self.root / f"{self.key(model_key, names)}.safetensors"
        if path.is_file():
            return load_file(path)["text"], time.perf_counter() - start
        with torch.inference_mode():
            text = model.encode_text(list(names)).detach().float().cpu().contiguous()
        write_bytes(path, save({"text": text}, metadata={"model_key": model_key, "classes": str(len(names))}))
        return text, time.perf_counter() - start

    def entries(self) -> list[CacheEntry]:
        found = []
        for path in sorted(self.root.glob("*.safetensors")):
            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
            found.append(CacheEntry(path, path.stat().st_size, meta.get("model_key", "?"), int(meta.get("classes", 0))))
        return found

    def clear(self) -> int:
        entries = list(self.root.glob("*.safetensors"))
        for path in entries:
            path.unlink()
        return len(entries)
