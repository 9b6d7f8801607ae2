"""Official VSPW metrics (mIoU family, VC_n under the official and CFFM conventions, TC's
counts), exact-integer and mergeable. Torch-free: TC's flow and warp are in
`ovbench.metrics.temporal`, imported only when TC is asked for."""

from ovbench.metrics.accumulator import VC_CONVENTIONS, VideoSegMetrics
from ovbench.metrics.confusion import LabelError, confusion_matrix, segmentation_scores
from ovbench.metrics.consistency import VideoConsistency
from ovbench.metrics.tc import TC_SUBSETS, TCMetrics, tc_subset

__all__ = ["TC_SUBSETS", "VC_CONVENTIONS", "LabelError", "TCMetrics", "VideoConsistency", "VideoSegMetrics",
           "confusion_matrix", "segmentation_scores", "tc_subset"]
