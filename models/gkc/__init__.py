"""GKC (Global Knowledge Calibration, ICCV 2023), reimplemented: the network (backbone, pixel
decoder, transformer decoder, open-vocabulary heads), its checkpoints and the benchmark adapter
here; the training losses, matcher and loop beside them."""

from ovbench.models.gkc.adapter import GKC, GKCBase

__all__ = ["GKC", "GKCBase"]
