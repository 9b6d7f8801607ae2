"""fc-clip's loading, variants and contract: the tiny random variant on the synthetic sample,
checkpoints in the authors' format (refused in one line when their keys do not fit), the
variant read off a checkpoint's shapes, the full ConvNeXt-L variant by shape and parameter
count (meta tensors, nothing downloaded), and the text tensor being self-contained."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch
from ovbench.models.fc_clip import FCCLIP
from ovbench.models.fc_clip.detect import meta_network
from ovbench.models.fc_clip.vocabulary import is_seen, split_text

from ovbench import evaluate
from ovbench.api import parse_model_args
from ovbench.errors import ConfigError, WeightsError

TINY = {"config": "tiny", "checkpoint": "none", "clip_pretrained": "none"}
TINY_WORDS = ",".join(f"{k}={v}" for k, v in TINY.items())
# parameters of the authors' ConvNeXt-L model (random init, with the CLIP text tower),
# docs model_zoo.md section 0: 372.49 M = CLIP 351.77 M + head 20.72 M
CONVNEXT_LARGE_PARAMETERS = 372.49e6


def build(**args: str) -> FCCLIP:
    return FCCLIP(parse_model_args(FCCLIP.Args, args), torch.device("cpu"))


@pytest.fixture(scope="module")
def tiny() -> FCCLIP:
    torch.set_num_threads(1)
    return build(**TINY)


# ovbench's names -> the authors' (bytedance/fc-clip state-dict names, model_zoo.md 1.3),
# written independently of the adapter's map so that this test checks it
TO_AUTHORS = (
    (r"^taps\.clip\.", "backbone.clip_model."),
    (r"^pixel_decoder\.level_embed$", "sem_seg_head.pixel_decoder.transformer.level_embed"),
    (r"^pixel_decoder\.encoder\.", "sem_seg_head.pixel_decoder.transformer.encoder.layers."),
    (r"^pixel_decoder\.lateral_conv\.0\.", "sem_seg_head.pixel_decoder.adapter_1."),
    (r"^pixel_decoder\.lateral_conv\.1\.", "sem_seg_head.pixel_decoder.adapter_1.norm."),
    (r"^pixel_decoder\.output_conv\.0\.", "sem_seg_head.pixel_decoder.layer_1."),
    (r"^pixel_decoder\.output_conv\.1\.", "sem_seg_head.pixel_decoder.layer_1.norm."),
    (r"^pixel_decoder\.", "sem_seg_head.pixel_decoder."),
    (r"^decoder\.cross\.(\d+)\.attn\.", r"sem_seg_head.predictor.transformer_cross_attention_layers.\1.multihead_attn."),
    (r"^decoder\.cross\.", "sem_seg_head.predictor.transformer_cross_attention_layers."),
    (r"^decoder\.self_attn\.(\d+)\.attn\.", r"sem_seg_head.predictor.transformer_self_attention_layers.\1.self_attn."),
    (r"^decoder\.self_attn\.", "sem_seg_head.predictor.transformer_self_attention_layers."),
    (r"^decoder\.ffn\.", "sem_seg_head.predictor.transformer_ffn_layers."),
    (r"^decoder\.", "sem_seg_head.predictor."),
    (r"^mask_pooling_proj\.", "sem_seg_head.predictor._mask_pooling_proj."),
    (r"^(class_embed\.|logit_scale$)", r"sem_seg_head.predictor.\1"),
)


def authors_name(key: str) -> str:
    for pattern, replacement in TO_AUTHORS:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return key  # void_embedding.weight


def authors_checkpoint(model: FCCLIP, path, drop: int = 0, extra: dict | None = None):
    """The tiny network's weights under the authors' names, saved as the release is (a
    torch.save dict with "model"), without the last `drop` entries, plus `extra` ones."""
    state = {authors_name(key): value for key, value in model.network.state_dict().items()}
    kept = dict(list(state.items())[: len(state) - drop])
    torch.save({"model": {**kept, **(extra or {})}, "iteration": 0}, path)
    return path


def test_tiny_runs_on_the_synthetic_sample(tmp_path):
    record = evaluate("fc-clip", "vspw_unseen", out_dir=tmp_path, log=lambda *a: None, model_args=TINY_WORDS, limit_videos=1)
    assert record["model"]["random_init"] is True
    assert record["model"]["args"]["config"] == "tiny" and record["model"]["args"]["test_size"] == 128


def test_predict_returns_scores_at_frame_size(tiny):
    text = tiny.encode_text(["person", "handrail_or_fence", "escalator"])
    assert text.shape[:2] == (3, 2)
    frames = torch.randint(0, 256, (2, 3, 45, 70), dtype=torch.uint8)
    scores = tiny.predict(frames, text)
    assert scores.shape == (2, 3, 45, 70) and torch.isfinite(scores).all()


def test_text_tensor_carries_synonyms_and_the_seen_flag(tiny):
    text = tiny.encode_text(["person", "escalator", "stairway_or_stairs"])
    parts, owner, seen = split_text(text)
    assert seen.tolist() == [True, False, True]  # "stairs" is a COCO name, "stairway" is not
    assert owner.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(parts[0], parts[1])  # padding repeats the first synonym
    assert is_seen("couch_or_sofa") and not is_seen("chandelier")


def test_text_cache_key_names_weights_templates_and_vocabulary(tiny):
    key = tiny.text_cache_key()
    assert key is not None and "vild14:" in key and "coco:" in key and "random-init" in key


def test_missing_checkpoint_names_the_release():
    with pytest.raises(WeightsError, match="fcclip_cocopan.pth from drive.google.com"):
        build()
    with pytest.raises(WeightsError, match="download fcclip_cocopan.pth"):
        build(checkpoint="/nowhere/fcclip_cocopan.pth")


def test_authors_format_checkpoint_loads_and_variant_is_read_off_shapes(tiny, tmp_path):
    path = authors_checkpoint(tiny, tmp_path / "tiny.pth", extra={"criterion.empty_weight": torch.ones(8)})
    loaded = build(checkpoint=str(path), clip_pretrained="none")
    assert loaded.args.config == "tiny"
    assert loaded.weights().sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not loaded.weights().random_init
    frames = torch.randint(0, 256, (1, 3, 40, 50), dtype=torch.uint8)
    text = tiny.encode_text(["person", "escalator"])
    assert torch.allclose(loaded.predict(frames, text), tiny.predict(frames, text))


def test_checkpoint_with_wrong_keys_is_one_line(tiny, tmp_path):
    path = authors_checkpoint(tiny, tmp_path / "bad.pth", drop=1, extra={"sem_seg_head.predictor.bogus": torch.ones(2)})
    with pytest.raises(ConfigError) as caught:
        build(checkpoint=str(path), config="tiny", clip_pretrained="none")
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "missing void_embedding.weight" in message and "unexpected decoder.bogus" in message
    with pytest.raises(ConfigError, match="fits none of the shipped variants"):
        build(checkpoint=str(path), clip_pretrained="none")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.ones(1)}, "cfg": object()}, path)
    with pytest.raises(WeightsError, match="pickled Python objects"):
        build(checkpoint=str(path))


def test_convnext_large_has_the_authors_shapes_and_parameter_count():
    network = meta_network("convnext-large")
    total = sum(p.numel() for p in network.parameters())
    assert abs(total - CONVNEXT_LARGE_PARAMETERS) < 0.01e6
    state = network.state_dict()
    assert state["pixel_decoder.input_proj.0.0.weight"].shape == (256, 1536, 1, 1)  # res5 of ConvNeXt-L
    assert state["decoder.query_feat.weight"].shape == (250, 256)
    assert state["class_embed.layers.2.weight"].shape == (768, 256)
    assert network.taps.channels == [192, 384, 768, 1536]


def test_variants_list_release_licences_and_published_numbers():
    variants = {v.id: v for v in FCCLIP.variants()}
    assert set(variants) == {"convnext-large", "rn50", "tiny"}
    large = variants["convnext-large"]
    assert large.checkpoint_file == "fcclip_cocopan.pth" and "drive.google.com" in large.checkpoint_host
    assert large.published["A-847"] == 14.8 and large.published["A-150"] == 34.1 and "README" in large.published_source
    assert large.code_licence.startswith("Apache-2.0")
    assert variants["tiny"].checkpoint_file is None
