"""The SAN adapter's loading and bookkeeping: the authors' key map checked against their key
lists (ViT-B/16 and ViT-L/14-336, written by their code in a sandbox, see test_san_reference.py),
variant detection from tensor shapes, parameter counts without downloading, the one-line
refusals, .safetensors files, CLIP weights from clip_pretrained, and the tiny variant on the
synthetic sample from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from ovbench.models.san.adapter import SAN, san_class_name
from ovbench.models.san.checkpoint import detect_config
from ovbench.models.san.config import load_config
from ovbench.models.san.network import meta_network

from ovbench.errors import ConfigError
from ovbench.modelargs import parse_model_args

DATA = Path(__file__).parents[1] / "data" / "san"
KEY_LISTS = {"vit-b16": "reference_vit_b16.json", "vit-l14-336": "keys_vit_l14_336.json"}
BUFFERS = {"ov_classifier.attn_mask", "criterion.empty_weight"}
PUBLISHED_PARAMETERS = {"vit-b16": 157.84e6, "vit-l14-336": 436.67e6}  # model_zoo.md, the authors' model counted


def authors_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    return {key: tuple(shape) for key, shape, _ in json.loads((DATA / KEY_LISTS[variant]).read_text())["keys"]}


def authors_key(key: str, split: int) -> str:
    """ovbench's network key -> the authors' (the inverse of checkpoint.rename, written apart)."""
    if key.startswith("clip.visual.transformer.resblocks."):
        index, rest = key[len("clip.visual.transformer.resblocks.") :].split(".", 1)
        block = int(index)
        return f"clip_visual_extractor.resblocks.{block}.{rest}" if block < split else f"clip_rec_head.resblocks.{block - split}.{rest}"
    for ours, theirs in (("clip.visual.ln_post", "clip_rec_head.ln_post"), ("clip.visual.proj", "clip_rec_head.proj"),
                         ("clip.visual.", "clip_visual_extractor."), ("clip.", "ov_classifier."), ("bg_embed", "ov_classifier.bg_embed"),
                         ("side_adapter.vit.", "side_adapter_network.vit_model."), ("side_adapter.", "side_adapter_network.")):
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    return key


def as_authors_state(network_state: dict[str, torch.Tensor], split: int) -> dict[str, torch.Tensor]:
    state = {authors_key(key, split): value for key, value in network_state.items()}
    state["ov_classifier.attn_mask"] = torch.full((77, 77), float("-inf")).triu(1)
    state["criterion.empty_weight"] = torch.ones(2)
    return state


@pytest.mark.parametrize("variant", ["vit-b16", "vit-l14-336"])
def test_network_has_the_authors_keys_shapes_and_size(variant):
    """Every authors' tensor but two buffers maps onto the network with its shape; the parameter
    count is the published one; the variant is detected from the shapes alone."""
    config = load_config(variant)
    network = meta_network(config)
    ours = {authors_key(k, config.feature_last_layer): tuple(v.shape) for k, v in network.state_dict().items()}
    theirs = authors_shapes(variant)
    assert ours == {k: v for k, v in theirs.items() if k not in BUFFERS}
    assert sum(p.numel() for p in network.parameters()) == pytest.approx(PUBLISHED_PARAMETERS[variant], rel=1e-4)
    assert detect_config({k: torch.empty(s, device="meta") for k, s in theirs.items()}, Path("x.pth")).id == variant


@pytest.fixture(scope="module")
def tiny_model() -> SAN:
    torch.set_num_threads(1)
    return SAN(parse_model_args(SAN.Args, "checkpoint=none,config=tiny,test_size=64"), torch.device("cpu"))


@pytest.fixture(scope="module")
def tiny_file(tiny_model, tmp_path_factory) -> Path:
    """The tiny network written in the authors' format."""
    path = tmp_path_factory.mktemp("san") / "tiny.pth"
    torch.save({"model": as_authors_state(tiny_model.network.state_dict(), tiny_model.config.feature_last_layer)}, path)
    return path


def frames() -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, 45, 70), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


def scores(model: SAN, names=("person", "handrail_or_fence", "sky")) -> torch.Tensor:
    return model.predict(frames(), model.encode_text(list(names)))


def load(checkpoint: Path, extra: str = "") -> SAN:
    return SAN(parse_model_args(SAN.Args, f"checkpoint={checkpoint},test_size=64{extra}"), torch.device("cpu"))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_authors_format_file_loads_to_the_same_model(tiny_model, tiny_file, tmp_path, suffix):
    path = tiny_file
    if suffix == ".safetensors":
        path = tmp_path / "tiny.safetensors"
        safetensors.torch.save_file(torch.load(tiny_file, weights_only=True)["model"], path)
    model = load(path)
    assert model.config.id == "tiny"
    assert model.weights().sha256 and not model.weights().random_init
    assert scores(model).shape == (2, 3, 45, 70)
    torch.testing.assert_close(scores(model), scores(tiny_model))


def test_mismatched_file_is_one_line_naming_file_and_keys(tiny_file, tmp_path):
    state = torch.load(tiny_file, weights_only=True)["model"]
    state["side_adapter_network.query_emb"] = state.pop("side_adapter_network.query_embed")
    path = tmp_path / "renamed.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "missing side_adapter.query_embed" in message and "unexpected side_adapter.query_emb" in message


def test_missing_checkpoint_names_the_published_files(tmp_path):
    for spec in ("", str(tmp_path / "san_vit_b_16.pth")):
        with pytest.raises(ConfigError) as caught:
            SAN(parse_model_args(SAN.Args, {"checkpoint": spec} if spec else {}), torch.device("cpu"))
        message = str(caught.value)
        assert "\n" not in message
        assert "san_vit_b_16.pth" in message and "san_vit_large_14.pth" in message and "huggingface.co/Mendel192/san" in message


def test_clip_weights_the_file_lacks_come_from_clip_pretrained(tiny_model, tiny_file, tmp_path):
    """A checkpoint without the text tower takes it from clip_pretrained, and the text cache key
    names those weights."""
    clip_file = tmp_path / "tiny_clip.pt"
    torch.save(tiny_model.network.clip.state_dict(), clip_file)
    state = {k: v for k, v in torch.load(tiny_file, weights_only=True)["model"].items()
             if not k.startswith("ov_classifier.") or k == "ov_classifier.bg_embed"}
    path = tmp_path / "no_text.pth"
    torch.save({"model": state}, path)
    model = load(path, f",clip_pretrained={clip_file}")
    torch.testing.assert_close(scores(model), scores(tiny_model))
    assert "clip:sha256:" in model.text_cache_key()
    with pytest.raises(ConfigError):
        load(path, ",clip_pretrained=none")


def test_synonyms_in_san_form_and_the_text_is_cached(tiny_model, tmp_path):
    """'a_or_b' is SAN's 'a, b'; the text tensor is (C, D) unit rows, as the adapter API asks,
    so the runner's cache keeps it: the second embedding of a vocabulary encodes nothing (a
    (C+1, D) classifier was once refused by the cache as damaged and encoded on every run)."""
    from ovbench.run.textcache import TextCache

    assert san_class_name("billboard_or_Bulletin_Board") == "billboard, bulletin board"
    text = tiny_model.encode_text(["person", "sky"])
    assert text.shape == (2, 32)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    cache, heard = TextCache(root=tmp_path, note=lambda message: heard.append(message)), []
    for _ in range(2):
        cache.embed(tiny_model, ["person", "sky"], report=heard.append)
    assert [m for m in heard if "encoding" in m or "damaged" in m] == ["encoding 2 class names: cache miss"]


def test_tiny_runs_on_the_synthetic_sample(tmp_path):
    from ovbench.cli import main

    argv = ["run", "--model", "san", "--model-args", "config=tiny,checkpoint=none", "--split", "vspw_unseen",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["model"]["args"]["test_size"] == 64 and record["model"]["random_init"] is True


def test_record_names_the_detected_variant_and_test_size(tiny_file):
    model = SAN(parse_model_args(SAN.Args, f"checkpoint={tiny_file}"), torch.device("cpu"))
    assert (model.args.config, model.args.test_size, model.args.max_size) == ("tiny", 64, 2560)
