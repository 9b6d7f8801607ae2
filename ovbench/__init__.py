"""ovbench: an honest benchmark for open-vocabulary video semantic segmentation on VSPW."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`ovbench.evaluate`, imported on first use so that `import ovbench` stays light (no torch)."""
    if name == "evaluate":
        from .python_api import evaluate

        return evaluate
    raise AttributeError(f"module 'ovbench' has no attribute {name!r}")
