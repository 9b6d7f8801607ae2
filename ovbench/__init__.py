"""ovbench: an honest benchmark for open-vocabulary video semantic segmentation on VSPW."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """The Python API, imported on first use so `import ovbench` (and `ovbench --help`) stays light."""
    if name == "load_records":
        from .records import load_records

        return load_records
    raise AttributeError(f"module 'ovbench' has no attribute {name!r}")
