"""Synthetic data sets in the released layouts, so every part of ovbench runs end to end
without a download: `scenes` draws learnable moving scenes, one writer per layout encodes
them (`vspw`, `panoptic` for VIPSeg and COCO), and `sample` keeps the built-in sample."""
