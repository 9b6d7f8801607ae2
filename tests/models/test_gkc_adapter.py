"""The GKC adapter end to end on a tiny random checkpoint: vocabulary in, per-class scores out,
no CLIP image encoder kept, clear errors for missing or mismatched weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ovbench.models.clip_loading import encode_class_names
from ovbench.models.gkc.adapter import GKC, GKCBase
from ovbench.models.gkc.checkpoint import save_checkpoint
from ovbench.models.gkc.network import GKCNetwork, normalize_pixels

from ovbench.api import WeightsInfo
from ovbench.errors import ConfigError, WeightsError
from ovbench.modelargs import parse_model_args
from ovbench.registry import get_model_class

NAMES = ["wall", "handrail_or_fence", "billboard_or_Bulletin_Board", "sky"]
CPU = torch.device("cpu")


def build(spec: str, cls=GKC, device=CPU) -> GKC:
    return cls(parse_model_args(cls.Args, spec), device)


@pytest.fixture(scope="module")
def trainer() -> GKC:
    """An adapter in training mode (no checkpoint), as `ovbench train` builds it."""
    return build("config=gkc-tiny,clip_pretrained=none")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, trainer):
    clip, info = trainer.load_clip()
    torch.manual_seed(0)
    network = GKCNetwork(trainer.config, clip)
    path = save_checkpoint(tmp_path_factory.mktemp("gkc") / "tiny.safetensors", network, clip, info, steps=3)
    return path, network.eval(), clip


@pytest.fixture(scope="module")
def model(tiny_checkpoint) -> GKC:
    return build(f"checkpoint={tiny_checkpoint[0]}")


def test_registered_ids_and_training_defaults():
    assert get_model_class("gkc") is GKC and get_model_class("gkc-base") is GKCBase
    assert GKCBase.default_train_options == {"syn_weight": "0", "kd_weight": "0"}
    assert GKC.default_train_options == {}
    assert GKC.sample_args == {"checkpoint": "builtin:gkc-tiny-sample"}


def test_encode_text_and_predict_contract(model, tiny_checkpoint):
    text = model.encode_text(NAMES)
    assert text.shape == (4, 2, model.config.text_dim)  # two parts at most
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(4, 2))
    frames = torch.randint(0, 256, (2, 3, 67, 117), dtype=torch.uint8)
    with torch.inference_mode():
        scores = model.predict(frames, text)
    assert scores.shape == (2, 4, 67, 117) and scores.dtype == torch.float32  # the frame's size
    assert torch.isfinite(scores).all() and (scores >= 0).all()


def test_predict_equals_the_network_on_unpadded_parts(model, tiny_checkpoint):
    """The (C, K, D) padding must not change the classes' max over parts."""
    _, network, clip = tiny_checkpoint
    frames = torch.randint(0, 256, (1, 3, 40, 70), dtype=torch.uint8)
    parts, owner = encode_class_names(clip, model.tokenizer, NAMES)
    with torch.inference_mode():
        out = network(normalize_pixels(frames), parts, owner, len(NAMES))
        expected = GKCNetwork.semantic_inference(out["pred_logits"], out["pred_masks"], (40, 70), (40, 70))
        got = model.predict(frames, model.encode_text(NAMES))
    torch.testing.assert_close(got, expected)


def test_autocast_copy_computes_what_autocast_would(model):
    """predict under autocast runs a copy with pre-cast matmul weights: same numbers as
    autocast over the fp32 network, and the fp32 network itself is left as it was."""
    frames = torch.randint(0, 256, (1, 3, 40, 70), dtype=torch.uint8)
    text = model.encode_text(NAMES)
    parts, owner = text.flatten(0, 1), torch.arange(len(NAMES)).repeat_interleave(text.shape[1])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model.predict(frames, text)
        out = model.network(normalize_pixels(frames), parts, owner, len(NAMES))
        expected = GKCNetwork.semantic_inference(out["pred_logits"], out["pred_masks"], (40, 70), (40, 70))
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    assert all(p.dtype == torch.float32 for p in model.network.parameters())


def mask2former_semantic(pred_logits, pred_masks, image_size, output_size):
    """Mask2Former's inference transcribed (MaskFormer.forward with
    sem_seg_postprocess_before_inference, sem_seg_postprocess, semantic_inference): the
    padded canvas is the input rounded up to multiples of 32 (size_divisibility)."""
    padded = tuple(-(-s // 32) * 32 for s in image_size)
    mask_pred_results = F.interpolate(pred_masks, size=padded, mode="bilinear", align_corners=False)
    results = []
    for mask_cls, mask_pred in zip(pred_logits, mask_pred_results):
        mask_pred = mask_pred[:, : image_size[0], : image_size[1]].expand(1, -1, -1, -1)
        mask_pred = F.interpolate(mask_pred, size=output_size, mode="bilinear", align_corners=False)[0]
        mask_cls = F.softmax(mask_cls, dim=-1)[..., :-1]
        results.append(torch.einsum("qc,qhw->chw", mask_cls, mask_pred.sigmoid()))
    return torch.stack(results)


@pytest.mark.parametrize("height, width", [(480, 853), (480, 854), (479, 863), (33, 31), (1, 1)])
def test_predict_is_mask2former_inference_at_frame_size(model, height, width):
    """The scores the runner gets are Mask2Former's, at the frame's size: the stride-4 grid
    covers the padded canvas, not ceil(H/4) x ceil(W/4) stretched over the frame."""
    torch.manual_seed(height + width)
    frames = torch.randint(0, 256, (2, 3, height, width), dtype=torch.uint8)
    text = model.encode_text(NAMES)
    parts, owner = text.flatten(0, 1), torch.arange(len(NAMES)).repeat_interleave(text.shape[1])
    with torch.inference_mode():
        out = model.network(normalize_pixels(frames), parts, owner, len(NAMES), aux=False)
        got = model.predict(frames, text)
    assert out["pred_masks"].shape[-2:] == (-(-height // 32) * 8, -(-width // 32) * 8)
    assert got.shape == (2, len(NAMES), height, width)
    torch.testing.assert_close(got, mask2former_semantic(out["pred_logits"], out["pred_masks"], (height, width), (height, width)))


@pytest.mark.parametrize("image_size, output_size", [((480, 853), (480, 853)), ((479, 863), (480, 864)), ((360, 640), (480, 853))])
def test_semantic_inference_matches_mask2former_on_random_outputs(image_size, output_size):
    """Random logits, masks with sharp random edges; the image resized from the frame
    (input_size) is scored back at the frame's size."""
    torch.manual_seed(sum(image_size))
    grid = tuple(-(-s // 32) * 8 for s in image_size)
    logits = torch.randn(2, 7, 5) * 3
    masks = torch.randn(2, 7, *grid) * 20
    got = GKCNetwork.semantic_inference(logits, masks, image_size, output_size)
    torch.testing.assert_close(got, mask2former_semantic(logits, masks, image_size, output_size))


def test_input_size_scores_at_frame_size_as_mask2former(tiny_checkpoint):
    model = build(f"checkpoint={tiny_checkpoint[0]},input_size=40")
    frames = torch.randint(0, 256, (1, 3, 61, 97), dtype=torch.uint8)
    text = model.encode_text(NAMES)
    parts, owner = text.flatten(0, 1), torch.arange(len(NAMES)).repeat_interleave(text.shape[1])
    with torch.inference_mode():
        resized = F.interpolate(normalize_pixels(frames), size=(40, 64), mode="bilinear", align_corners=False, antialias=True)
        out = model.network(resized, parts, owner, len(NAMES), aux=False)
        got = model.predict(frames, text)
    torch.testing.assert_close(got, mask2former_semantic(out["pred_logits"], out["pred_masks"], (40, 64), (61, 97)))


def test_no_clip_image_encoder_kept(model):
    assert not hasattr(model.clip, "visual")
    assert not any(key.startswith("visual.") for key in model.clip.state_dict())


def test_weights_and_text_cache_key(model, tiny_checkpoint):
    from ovbench.fileio import file_sha256

    info = model.weights()
    assert info.sha256 == file_sha256(tiny_checkpoint[0]) and info.backbone == "ovbench-tiny-rn"
    assert not info.random_init
    key = model.text_cache_key()
    assert key and info.sha256 in key  # the stored random text tower is identified by its file


def test_input_size_resizes_short_side(tiny_checkpoint):
    model = build(f"checkpoint={tiny_checkpoint[0]},input_size=32")
    frames = torch.randint(0, 256, (1, 3, 64, 128), dtype=torch.uint8)
    with torch.inference_mode():
        assert model.predict(frames, model.encode_text(NAMES[:2])).shape == (1, 2, 64, 128)


def test_missing_checkpoint_is_a_weights_error_at_use():
    model = build("")  # construction works: `ovbench train` builds the model this way
    assert model.config.id == "gkc-r50"
    for call in (model.weights, lambda: model.encode_text(["wall"])):
        with pytest.raises(WeightsError, match="ovbench train --model gkc"):
            call()
    with pytest.raises(WeightsError, match="nowhere.safetensors"):
        build("checkpoint=/nowhere.safetensors")


def test_config_must_agree_with_checkpoint(tiny_checkpoint):
    with pytest.raises(ConfigError, match="gkc-tiny"):
        build(f"checkpoint={tiny_checkpoint[0]},config=gkc-r50")
    assert build(f"checkpoint={tiny_checkpoint[0]},config=gkc-tiny").config.id == "gkc-tiny"


def test_text_weights_must_be_those_trained_with(tmp_path, trainer, tiny_checkpoint):
    _, network, clip = tiny_checkpoint
    trained_on = WeightsInfo(source="openai", sha256="12" * 32, backbone="ovbench-tiny-rn")
    path = save_checkpoint(tmp_path / "openai.safetensors", network, clip, trained_on, steps=1)
    with pytest.raises(WeightsError, match="trained with CLIP text weights openai"):
        build(f"checkpoint={path},clip_pretrained=none")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_autocast_and_graphs_agree_with_fp32(tiny_checkpoint):
    eager = build(f"checkpoint={tiny_checkpoint[0]},cuda_graphs=false", device=torch.device("cuda"))
    graphed = build(f"checkpoint={tiny_checkpoint[0]}", device=torch.device("cuda"))
    text = eager.encode_text(NAMES).cuda()
    frames = torch.randint(0, 256, (4, 3, 120, 214), dtype=torch.uint8, device="cuda")
    with torch.inference_mode():
        full = eager.predict(frames, text)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = eager.predict(frames, text)
            replayed = [graphed.predict(frames, text), graphed.predict(frames[:2], text), graphed.predict(frames[1:3], text)]
            other_size = graphed.predict(frames[:1, :, :67, :117], text)
            expected_other = eager.predict(frames[:1, :, :67, :117], text)
    assert half.shape == full.shape == (4, 4, 120, 214)
    assert torch.isfinite(half).all()
    assert (half.float() - full).abs().max() <= 0.05 * full.abs().max()
    assert (half.argmax(1) == full.argmax(1)).float().mean() > 0.9
    torch.testing.assert_close(replayed[0], half)
    torch.testing.assert_close(replayed[1], half[:2])  # a smaller batch inside the captured one
    torch.testing.assert_close(replayed[2], half[1:3])
    torch.testing.assert_close(other_size, expected_other)
    assert len(graphed._graphs.entries) == 2


def test_gkc_base_refuses_weights_trained_with_gkc_losses():
    """Issue 23.3: the sample checkpoint was trained with synonym CE and distillation, so it is
    no GKC-base; gkc-base has no sample weights to fall back on."""
    with pytest.raises(ConfigError, match="trained with synonym_ce and tgkd .*no gkc-base checkpoint"):
        GKCBase(parse_model_args(GKCBase.Args, "checkpoint=builtin:gkc-tiny-sample"), torch.device("cpu"))
    assert GKCBase.sample_args == {}
    GKC(parse_model_args(GKC.Args, "checkpoint=builtin:gkc-tiny-sample"), torch.device("cpu"))  # GKC takes it
