"""ovbench: an honest benchmark for open-vocabulary video semantic segmentation (VSPW, VIPSeg, COCO Panoptic)."""

__version__ = "0.2.0"


def __getattr__(name: str):
    """The Python API (`evaluate`, `load_records`), imported on first use so that `import ovbench`
    (and `ovbench --help`) stays light: no torch, no pandas."""
    if name == "evaluate":
        from ovbench.evaluator import evaluate

        return evaluate
    if name == "load_records":
        from ovbench.records.read import load_records

        return load_records
    raise AttributeError(f"module 'ovbench' has no attribute {name!r}")
