"""Official VSPW metrics (mIoU family and VC_n), exact-integer and mergeable."""

from ovbench.metrics.accumulator import VideoSegMetrics
from ovbench.metrics.confusion import LabelError, confusion_matrix, segmentation_scores
from ovbench.metrics.consistency import VideoConsistency

__all__ = ["LabelError", "VideoConsistency", "VideoSegMetrics", "confusion_matrix", "segmentation_scores"]
