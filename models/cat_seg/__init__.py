"""CAT-Seg (Cho et al., CVPR 2024) from the authors' released checkpoints: `--model cat-seg`."""

from .adapter import CATSeg, CATSegArgs

__all__ = ["CATSeg", "CATSegArgs"]
