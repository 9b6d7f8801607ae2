"""What a GKC run record says the model is: the image backbone the network really runs (CLIP's
ResNet trunk for gkc-r50, torchvision's ResNet-101 for gkc-r101) and, as its own field, the
CLIP text tower that classifies. gkc-r101 records used to name the CLIP arch (RN50) as their
backbone."""

from __future__ import annotations

import json

import pytest
import torch
from ovbench.models.gkc.adapter import GKC
from ovbench.models.gkc.checkpoint import save_checkpoint
from ovbench.models.gkc.config import CONFIG_DIR, load_config
from ovbench.models.gkc.network import GKCNetwork

from ovbench.modelargs import parse_model_args
from ovbench.run.fingerprint import describe_model

CPU = torch.device("cpu")


def _checkpoint(tmp_path, config_file) -> GKC:
    """An adapter on a random checkpoint of `config_file`, with a random-init tiny CLIP text tower."""
    trainer = GKC(parse_model_args(GKC.Args, f"config={config_file},clip_pretrained=none"), CPU)
    clip, info = trainer.load_clip()
    torch.manual_seed(0)
    network = GKCNetwork(trainer.config).half()  # fp16 halves the file; loading casts back to fp32
    path = save_checkpoint(tmp_path / f"{trainer.config.id}.safetensors", network, clip, info, steps=0)
    return GKC(parse_model_args(GKC.Args, f"checkpoint={path}"), CPU)


def test_shipped_configs_name_their_own_image_backbone():
    assert load_config("gkc-r50").image_backbone == "RN50"  # CLIP RN50's visual trunk
    assert load_config("gkc-r101").image_backbone == "ResNet-101 (torchvision)"
    assert load_config("gkc-r101").clip_arch == "RN50"  # its text tower is still CLIP's


@pytest.mark.slow
def test_a_gkc_r101_record_names_resnet101_and_its_clip_text_tower(tmp_path):
    """gkc-r101's trunk with the tiny CLIP and decoder sizes (the trunk is full size: ~90 MB)."""
    sizes = json.loads((CONFIG_DIR / "gkc-tiny.json").read_text())
    config = tmp_path / "gkc-r101.json"
    config.write_text(json.dumps({**sizes, "backbone": "torchvision-resnet101", "frozen_backbone_bn": True}))
    described = describe_model("gkc", _checkpoint(tmp_path, config))
    assert described["backbone"] == "ResNet-101 (torchvision)"
    assert described["text_encoder"] == "ovbench-tiny-rn"


def test_a_gkc_record_with_a_clip_trunk_names_that_clip(tmp_path):
    described = describe_model("gkc", _checkpoint(tmp_path, "gkc-tiny"))
    assert described["backbone"] == described["text_encoder"] == "ovbench-tiny-rn"


def test_models_without_a_separate_text_tower_keep_their_record_fields():
    """text_encoder is added only where it says something new, so the fingerprints (and the
    reusable records) of the other models stay as they were."""
    from toy_adapters import ToyColour

    described = describe_model("toy-colour", ToyColour(parse_model_args(ToyColour.Args, ""), CPU))
    assert set(described) == {"id", "class", "source_sha256", "args", "weights", "weights_sha256", "random_init", "backbone"}
