"""SAN (Side Adapter Network, CVPR 2023), native: the network, the authors' checkpoints and the
benchmark adapter."""

from ovbench.models.san.adapter import SAN

__all__ = ["SAN"]
