"""FC-CLIP (Yu et al., NeurIPS 2023) from the authors' released checkpoints, native: torch and
open_clip, no detectron2. See adapter.py for the arguments."""

from ovbench.models.fc_clip.adapter import FCCLIP

__all__ = ["FCCLIP"]
