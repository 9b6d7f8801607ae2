"""SAN (Side Adapter Network, CVPR 2023), native: the network, the authors' checkpoints and the
benchmark adapter."""

from .adapter import SAN

__all__ = ["SAN"]
