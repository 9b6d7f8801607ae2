"""The model zoo: the published models ovbench loads from their authors' checkpoints, in one
table, so the zoo's benchmark, GPU check, tests and docs take a new model from one entry here
(its adapter lists its own variants through `SegmentationModel.variants()`).

Each entry names the model-args of its tiny random-init variant (CI, the synthetic sample), of
its full-size published variant with random weights (speed and FLOPs do not depend on the
weights), and the argument that sets the test-time short side, with the authors' value, so a
benchmark can run the published protocol and the frame's own 480p side by side."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ZooModel:
    id: str  # the registry id (`--model`)
    paper: str
    tiny_args: str  # a few million random parameters on the same code paths
    full_args: str  # the published ViT-B-class variant, random weights
    test_size_arg: str  # the model-arg that sets the test-time short side
    authors_test_size: int
    published_gflops: str  # what the paper or repository reports per image, in words ("not reported" where nothing is)
    full_parameters: int  # the official model's parameter count at full_args (model_zoo.md, measured on the authors' code)

    def args_at(self, variant_args: str, test_size: int) -> str:
        """`variant_args` with the test-time short side set to `test_size`."""
        return f"{variant_args},{self.test_size_arg}={test_size}"


ZOO: tuple[ZooModel, ...] = (
    ZooModel(
        id="fc-clip", paper="Yu et al., NeurIPS 2023", tiny_args="config=tiny,checkpoint=none,clip_pretrained=none",
        full_args="config=rn50,checkpoint=none,clip_pretrained=none", test_size_arg="test_size", authors_test_size=800,
        published_gflops="the paper compares with ODISE in relative terms (6.6x faster testing), no FLOPs per image",
        full_parameters=123_040_546,  # RN50 with both CLIP towers; ConvNeXt-L is 372.49 M (model_zoo.md)
    ),
    ZooModel(
        id="cat-seg", paper="Cho et al., CVPR 2024", tiny_args="config=tiny,checkpoint=none",
        full_args="config=vit-b16,checkpoint=none", test_size_arg="test_size", authors_test_size=640,
        published_gflops="not reported (no FLOPs, FPS or parameters in the README or paper tables read for model_zoo.md)",
        full_parameters=154_290_000,
    ),
    ZooModel(
        id="san", paper="Xu et al., CVPR 2023", tiny_args="config=tiny,checkpoint=none",
        full_args="config=vit-b16,checkpoint=none", test_size_arg="test_size", authors_test_size=640,
        published_gflops="not reported as a number in the repository (README: '19 times faster inference')",
        full_parameters=157_840_000,
    ),
)

