"""CAT-Seg (Cho et al., CVPR 2024) from the authors' released checkpoints: `--model cat-seg`.

Download `model_base.pth` (ViT-B/16) or `model_large.pth` (ViT-L/14-336) from the Hugging Face
space hamacojr/CAT-Seg-weights (huggingface.co/spaces/hamacojr/CAT-Seg-weights) and pass the file:

    ovbench run --model cat-seg --model-args checkpoint=/path/to/model_base.pth --split vspw_all

The variant is read off the file's tensor shapes (or `config=vit-b16|vit-l14-336`); the
published protocol's settings (`test_size=640,crop=384,stride=256,global_view=true`) are model
arguments and go into the run record. `config=tiny,checkpoint=none` is a random-init model of a
few million parameters on the same code paths, for tests and the built-in sample.
"""

from ovbench.models.cat_seg.adapter import CATSeg, CATSegArgs

__all__ = ["CATSeg", "CATSegArgs"]
