"""The cat-seg adapter: checkpoint files in the authors' format (read, refused in one line,
variant read off the shapes), the full-size variants by shape and parameter count without
weights, text handling, protocol arguments and a run on the synthetic sample."""

from __future__ import annotations

import pickle

import pytest
import safetensors.torch
import torch
from ovbench.models.cat_seg.adapter import CATSeg, CATSegArgs
from ovbench.models.cat_seg.checkpoint import PACKED, QKV, authors_name, expected_shapes
from ovbench.models.cat_seg.config import detect_variant, load_config
from ovbench.models.cat_seg.network import CATSegNetwork

import ovbench
from ovbench.errors import ConfigError
from ovbench.modelargs import parse_model_args

CPU = torch.device("cpu")
HOST = "huggingface.co/spaces/hamacojr/CAT-Seg-weights"


def build(spec: str) -> CATSeg:
    torch.set_num_threads(1)
    return CATSeg(parse_model_args(CATSegArgs, spec), CPU)


def authors_format(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights under the authors' names, q/k/v stored apart, with the masks."""
    state = {}
    for key, value in network.state_dict().items():
        name = authors_name(key)
        if name.endswith(PACKED) and key.startswith("clip."):
            state.update(zip((name[: -len(PACKED)] + qkv for qkv in QKV), value.chunk(3)))
        else:
            state[name] = value
    for key, buffer in network.named_buffers():
        if key.startswith("aggregator.") and key.endswith("attn_mask") and buffer is not None:
            state[authors_name(key)] = buffer
    return state


@pytest.fixture(scope="module")
def tiny():
    return build("config=tiny,checkpoint=none")


@pytest.fixture(scope="module")
def frames():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (1, 3, 45, 70), dtype=torch.uint8, generator=generator)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_file_in_the_authors_format_loads_and_names_its_variant(tiny, frames, tmp_path, suffix):
    state = authors_format(tiny.network)
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save({"model": state}, path)
    else:
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = build(f"checkpoint={path}")
    assert loaded.config.id == "tiny"
    assert loaded.weights().sha256 and not loaded.weights().random_init
    text = tiny.encode_text(["person", "sky"])
    torch.testing.assert_close(loaded.predict(frames, text), tiny.predict(frames, text), rtol=0, atol=1e-6)


def test_a_file_with_other_keys_is_refused_in_one_line(tiny, tmp_path):
    state = authors_format(tiny.network)
    state["sem_seg_head.predictor.transformer.extra.weight"] = state.pop("upsample1.weight")
    path = tmp_path / "model_base.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ConfigError) as err:
        build(f"checkpoint={path},config=tiny")
    message = one_line(err)
    assert str(path) in message and "missing 1 (upsample1.weight)" in message
    assert "unexpected 1 (sem_seg_head.predictor.transformer.extra.weight)" in message


def test_a_file_of_no_known_variant_or_with_objects_is_refused(tiny, tmp_path):
    state = authors_format(tiny.network)
    state["sem_seg_head.predictor.transformer.conv1.weight"] = torch.zeros(5, 1, 7, 7)
    torch.save({"model": state}, tmp_path / "odd.pth")
    with pytest.raises(ConfigError) as err:
        build(f"checkpoint={tmp_path / 'odd.pth'}")
    assert "match no CAT-Seg variant" in one_line(err)
    torch.save({"model": {}, "trainer": pickle.PickleError("an object")}, tmp_path / "objects.pth")
    with pytest.raises(ConfigError) as err:
        build(f"checkpoint={tmp_path / 'objects.pth'}")
    assert "pickled Python objects" in one_line(err)


def test_no_checkpoint_names_what_the_authors_publish(tmp_path):
    with pytest.raises(ConfigError) as err:
        build("")
    message = one_line(err)
    assert "model_base.pth" in message and "model_large.pth" in message and HOST in message
    with pytest.raises(ConfigError) as err:
        build(f"checkpoint={tmp_path / 'model_large.pth'},config=vit-l14-336")
    message = one_line(err)
    assert str(tmp_path / "model_large.pth") in message and f"model_large.pth at {HOST}" in message
    with pytest.raises(ConfigError, match="needs config="):
        build("checkpoint=none")


@pytest.mark.parametrize(
    "variant, parameters",
    # ViT-B: the authors' model measured with random init (model_zoo.md 2.5: 154.29 M);
    # ViT-L: 427.94 M CLIP + 2.64 M aggregator + 3.15 M deconvolutions computed from parts there
    [("vit-b16", 154.29e6), ("vit-l14-336", 433.7e6)],
)
def test_full_size_variants_by_shape_and_parameter_count(variant, parameters):
    with torch.device("meta"):
        network = CATSegNetwork(load_config(variant))
    assert sum(p.numel() for p in network.parameters()) == pytest.approx(parameters, rel=1e-3)
    state = {key: torch.empty(shape, device="meta") for key, shape in expected_shapes(network).items()}
    assert detect_variant(state, "checkpoint").id == variant


def test_text_is_the_template_on_the_first_synonym(tiny):
    torch.testing.assert_close(tiny.encode_text(["handrail_or_fence"]), tiny.encode_text(["handrail"]))
    assert not torch.allclose(tiny.encode_text(["handrail_or_fence"]), tiny.encode_text(["fence"]))
    key = tiny.text_cache_key()
    assert "A photo of a {} in the scene" in key and "first-synonym" in key and "random-init" in key


def test_protocol_arguments(frames):
    with pytest.raises(ConfigError, match="test_size=320"):
        build("config=tiny,checkpoint=none,test_size=320")
    small = build("config=tiny,checkpoint=none,test_size=480,global_view=false")
    scores = small.predict(frames, small.encode_text(["person", "sky", "road"]))
    assert scores.shape == (1, 3, 45, 70) and torch.isfinite(scores).all()
    assert ((scores > 0) & (scores < 1)).all()


def test_tiny_runs_on_the_synthetic_sample(tmp_path):
    record = ovbench.evaluate(
        "cat-seg", "vspw_unseen", model_args="config=tiny,checkpoint=none", limit_videos=1, out_dir=tmp_path, log=lambda *a: None
    )
    assert record["model"]["random_init"] is True and record["model"]["backbone"] == "CLIP ViT of CAT-Seg tiny"
    args = record["model"]["args"]
    assert (args["test_size"], args["crop"], args["stride"], args["global_view"]) == (640, 384, 256, True)


def test_variants_describe_their_file_licences_and_published_numbers():
    lines = {variant.id: variant.describe() for variant in CATSeg.variants()}
    assert set(lines) == {"tiny", "vit-b16", "vit-l14-336"}
    line = lines["vit-b16"]
    assert f"model_base.pth from {HOST}" in line and "code MIT" in line and "A-150 31.8" in line and "README" in line
    assert "no published checkpoint" in lines["tiny"]


def test_more_classes_than_the_aggregator_attends_over(frames):
    """Above 256 classes each view keeps its top 256; the others score sigmoid(-100) there.
    (test_size 384: one crop and the global view, to keep 260 full-size score maps cheap.)"""
    names = [f"thing {index}" for index in range(260)]
    model = build("config=tiny,checkpoint=none,test_size=384")
    scores = model.predict(frames, model.encode_text(names))
    assert scores.shape == (1, 260, 45, 70) and torch.isfinite(scores).all()
    assert (scores.amax(dim=(2, 3)) < 1e-6).any()  # left out of every view


def test_half_precision_autocast_runs(frames):
    model = build("config=tiny,checkpoint=none,test_size=384")
    text = model.encode_text(["person", "sky", "road"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model.predict(frames, text)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    torch.testing.assert_close(scores, model.predict(frames, text), rtol=0, atol=0.02)
