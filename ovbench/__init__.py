"""ovbench: an honest benchmark for open-vocabulary video semantic segmentation on VSPW."""

__version__ = "0.1.0"
