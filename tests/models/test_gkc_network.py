"""The GKC network against slow references written from the definitions (Deformable DETR's
sampling, Mask2Former's masked attention and semantic inference, GKC's classifier)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from ovbench.models.clip_loading import create_clip
from ovbench.models.gkc.backbone import CLIPResNetTrunk
from ovbench.models.gkc.checkpoint import load_checkpoint, load_network_state, save_checkpoint
from ovbench.models.gkc.config import GKCConfig, load_config
from ovbench.models.gkc.network import GKCNetwork
from ovbench.models.gkc.pixel_decoder import MSDeformAttn, MSDeformAttnPixelDecoder
from ovbench.models.gkc.transformer_decoder import CrossAttentionLayer, MaskedAttentionDecoder, masked_attention_mask

from ovbench.errors import ConfigError, WeightsError


@pytest.fixture(scope="module")
def tiny() -> GKCConfig:
    return load_config("gkc-tiny")


@pytest.fixture(scope="module")
def clip_model(tiny):
    model, info = create_clip(tiny.clip_arch, "none")
    return model


def make_network(config: GKCConfig, seed: int, clip_model=None) -> GKCNetwork:
    torch.manual_seed(seed)
    return GKCNetwork(config, clip_model).eval()


def random_text(parts: int, dim: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(parts, dim, generator=generator), dim=-1)


# --- slow references -------------------------------------------------------------------------


def bilinear_zero_padded(image: torch.Tensor, px: float, py: float) -> torch.Tensor:
    """Value of image (D, H, W) at pixel coordinates (px, py), where pixel i covers [i, i+1)
    and its centre is i + 0.5 (so px = x * W - 0.5); outside pixels count as 0."""
    _, height, width = image.shape
    x0, y0 = math.floor(px), math.floor(py)
    fx, fy = px - x0, py - y0
    out = torch.zeros(image.shape[0], dtype=image.dtype)
    for xi, wx in ((x0, 1 - fx), (x0 + 1, fx)):
        for yi, wy in ((y0, 1 - fy), (y0 + 1, fy)):
            if 0 <= xi < width and 0 <= yi < height:
                out += wx * wy * image[:, yi, xi]
    return out


def reference_deformable_attention(module: MSDeformAttn, query, reference, value_input, shapes):
    """Deformable DETR eq. 3 with explicit loops over batch, queries, heads, levels, points."""
    n, queries, channels = query.shape
    heads, levels, points = module.heads, module.levels, module.points
    dim = channels // heads
    value = module.value_proj(value_input)
    offsets = module.sampling_offsets(query).view(n, queries, heads, levels, points, 2)
    logits = module.attention_weights(query).view(n, queries, heads, levels * points)
    out = torch.zeros(n, queries, channels)
    for b in range(n):
        for q in range(queries):
            for m in range(heads):
                weights = torch.softmax(logits[b, q, m], dim=0).view(levels, points)
                start = 0
                for level, (height, width) in enumerate(shapes):
                    image = value[b, start : start + height * width, m * dim : (m + 1) * dim].t().reshape(dim, height, width)
                    start += height * width
                    for p in range(points):
                        x = reference[b, q, level, 0] + offsets[b, q, m, level, p, 0] / width
                        y = reference[b, q, level, 1] + offsets[b, q, m, level, p, 1] / height
                        sample = bilinear_zero_padded(image, float(x) * width - 0.5, float(y) * height - 0.5)
                        out[b, q, m * dim : (m + 1) * dim] += weights[level, p] * sample
    return module.output_proj(out)


# --- tests -----------------------------------------------------------------------------------


def test_deformable_attention_matches_slow_reference():
    torch.manual_seed(0)
    shapes = [(3, 4), (2, 3), (1, 2)]
    module = MSDeformAttn(dim=8, levels=3, heads=2, points=2)
    with torch.no_grad():  # random offsets, some far outside the maps, and non-uniform weights
        module.sampling_offsets.weight.normal_(0, 1.5)
        module.attention_weights.weight.normal_(0, 1.0)
    tokens = sum(h * w for h, w in shapes)
    query = torch.randn(2, 5, 8)
    reference = torch.rand(2, 5, 3, 2)
    value = torch.randn(2, tokens, 8)
    with torch.no_grad():
        fast = module(query, reference, value, shapes)
        slow = reference_deformable_attention(module, query, reference, value, shapes)
    assert fast.shape == (2, 5, 8)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_backbone_strides_channels_and_clip_weights(tiny, clip_model):
    trunk = CLIPResNetTrunk(tiny.backbone_layers, tiny.backbone_width, frozen_bn=False)
    trunk.load_clip_visual(clip_model.visual)
    visual = clip_model.visual.state_dict()
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, visual[key]), key
    assert not any(key.startswith("attnpool") for key in trunk.state_dict())
    features = trunk.eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(32, 16, 24), (64, 8, 12), (128, 4, 6), (256, 2, 3)]


def test_frozen_bn_is_not_trained(tiny):
    trunk = CLIPResNetTrunk(tiny.backbone_layers, tiny.backbone_width, frozen_bn=True).train()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    trunk(torch.randn(2, 3, 64, 64)).pop().sum().backward()  # a training step's forward
    after = trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched
    owners = {trunk.get_submodule(name.rsplit(".", 1)[0]) for name, p in trunk.named_parameters() if p.requires_grad}
    assert owners and all(isinstance(module, torch.nn.Conv2d) for module in owners)
    unfrozen = CLIPResNetTrunk(tiny.backbone_layers, tiny.backbone_width, frozen_bn=False).train()
    statistics = unfrozen.bn1.running_mean.clone()
    unfrozen(torch.randn(2, 3, 64, 64))
    assert not torch.equal(statistics, unfrozen.bn1.running_mean)


def test_pixel_decoder_and_decoder_shapes(tiny):
    torch.manual_seed(0)
    features = [torch.randn(2, c, 32 // s, 64 // s) for c, s in zip((32, 64, 128, 256), (4, 8, 16, 32))]
    decoder = MSDeformAttnPixelDecoder([32, 64, 128, 256], 64, 48, layers=2, ffn_dim=96, heads=4, points=2)
    mask_features, encoded = decoder(features)
    assert mask_features.shape == (2, 48, 8, 16)
    assert [tuple(e.shape) for e in encoded] == [(2, 64, 1, 2), (2, 64, 2, 4), (2, 64, 4, 8)]
    transformer = MaskedAttentionDecoder(64, heads=4, ffn_dim=96, layers=4, queries=7, mask_dim=48)
    predictions = transformer(encoded, mask_features)
    assert len(predictions) == 5
    for embedding, masks in predictions:
        assert embedding.shape == (2, 7, 64) and masks.shape == (2, 7, 8, 16)


def test_attention_mask_threshold_heads_and_empty_rows():
    logits = torch.tensor([[[[2.0, -1.0], [-3.0, 0.5]], [[-1.0, -2.0], [-0.1, -5.0]]]])  # (1, 2 queries, 2, 2)
    logits = torch.cat([logits, -logits])  # a second image
    mask = masked_attention_mask(logits, (2, 2), heads=3)
    assert mask.shape == (6, 2, 4) and mask.dtype == torch.bool
    image0 = torch.tensor([[False, True, True, False], [False, False, False, False]])  # query 1 would block all
    image1 = torch.tensor([[True, False, False, True], [False, False, False, False]])
    for head in range(3):
        assert torch.equal(mask[head], image0)
        assert torch.equal(mask[3 + head], image1)


def test_masked_cross_attention_ignores_features_outside_the_mask():
    torch.manual_seed(0)
    layer = CrossAttentionLayer(dim=8, heads=2).eval()
    logits = torch.full((1, 2, 2, 3), -4.0)
    logits[0, 0, 0, :2] = 4.0  # query 0 sees region A = positions 0 and 1 only
    mask = masked_attention_mask(logits, (2, 3), heads=2)  # query 1 would see nothing: sees all
    tgt, memory, pos, query_pos = torch.randn(1, 2, 8), torch.randn(1, 6, 8), torch.randn(1, 6, 8), torch.randn(1, 2, 8)
    with torch.no_grad():
        base = layer(tgt, memory, mask, pos, query_pos)
        outside = memory.clone()
        outside[:, 2:] = torch.randn(1, 4, 8)
        changed_outside = layer(tgt, outside, mask, pos, query_pos)
        inside = memory.clone()
        inside[:, 1] = torch.randn(8)
        changed_inside = layer(tgt, inside, mask, pos, query_pos)
    torch.testing.assert_close(changed_outside[:, 0], base[:, 0])
    assert not torch.allclose(changed_outside[:, 1], base[:, 1])
    assert not torch.allclose(changed_inside[:, 0], base[:, 0])


def test_network_output_contract_on_odd_size(tiny, clip_model):
    network = make_network(tiny, 0, clip_model)
    text, owner = random_text(5, tiny.text_dim), torch.tensor([0, 1, 1, 2, 3])
    images = torch.randn(2, 3, 67, 117)
    with torch.no_grad():
        out = network(images, text, owner, 4)
        padded = network(F.pad(images, (0, 128 - 117, 0, 96 - 67)), text, owner, 4)
    q, d = tiny.num_queries, tiny.text_dim
    assert out["pred_logits"].shape == (2, q, 5)
    assert out["pred_masks"].shape == (2, q, 24, 32)  # the padded canvas 96 x 128 at stride 4
    assert out["pred_embed"].shape == (2, q, d) and out["kd_embed"].shape == (2, q, d)
    torch.testing.assert_close(out["pred_embed"].norm(dim=-1), torch.ones(2, q))
    torch.testing.assert_close(out["kd_embed"].norm(dim=-1), torch.ones(2, q))
    assert len(out["aux_outputs"]) == tiny.decoder_layers
    for aux in out["aux_outputs"]:
        assert {k: v.shape for k, v in aux.items()} == {k: out[k].shape for k in aux}
    # padding happens inside the network, with zeros; the masks cover the padded canvas
    torch.testing.assert_close(out["pred_masks"], padded["pred_masks"])
    torch.testing.assert_close(out["pred_logits"], padded["pred_logits"])


def test_classifier_is_max_over_parts_plus_no_object(tiny):
    network = make_network(tiny, 1)
    with torch.no_grad():
        network.logit_scale.fill_(math.log(20.0))
    embed = F.normalize(torch.randn(2, 3, tiny.text_dim), dim=-1)
    text, owner = random_text(6, tiny.text_dim), torch.tensor([2, 0, 2, 1, 2, 0])
    with torch.no_grad():
        logits = network.classify(embed, text, owner, 4)  # class 3 has no part
    assert logits.shape == (2, 3, 5)
    void = F.normalize(network.no_object_embed[0].detach(), dim=-1)
    for b in range(2):
        for q in range(3):
            for c in range(3):
                best = max(20.0 * float(embed[b, q] @ text[p]) for p in range(6) if owner[p] == c)
                assert float(logits[b, q, c]) == pytest.approx(best, abs=1e-4)
            assert logits[b, q, 3] == float("-inf")
            assert float(logits[b, q, 4]) == pytest.approx(20.0 * float(embed[b, q] @ void), abs=1e-4)


def test_logit_scale_starts_at_clip_temperature_and_is_clamped(tiny):
    network = make_network(tiny, 2)
    assert float(network.logit_scale.detach().exp()) == pytest.approx(1 / 0.07)
    with torch.no_grad():
        network.logit_scale.fill_(10.0)
    embed = F.normalize(torch.ones(1, 1, tiny.text_dim), dim=-1)
    with torch.no_grad():
        assert float(network.classify(embed, embed[0], torch.tensor([0]), 1)[0, 0, 0]) == pytest.approx(100.0, abs=1e-3)


def upsampled_value(grid: torch.Tensor, y: int, x: int, factor: int) -> float:
    """Value at output pixel (y, x) of a (h, w) grid upsampled by `factor` as bilinear with
    pixel centres (i + 0.5) and edge clamping: source = (i + 0.5) / factor - 0.5, floored at 0."""
    height, width = grid.shape
    sy, sx = max((y + 0.5) / factor - 0.5, 0.0), max((x + 0.5) / factor - 0.5, 0.0)
    y0, x0 = min(int(sy), height - 1), min(int(sx), width - 1)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    fy, fx = sy - y0, sx - x0
    top = (1 - fx) * float(grid[y0, x0]) + fx * float(grid[y0, x1])
    bottom = (1 - fx) * float(grid[y1, x0]) + fx * float(grid[y1, x1])
    return (1 - fy) * top + fy * bottom


def test_semantic_inference_literal_formula():
    """Masks upsampled x4 to the padded canvas (12 x 20), cropped to the image (10 x 17), then
    sum over queries of softmax probability x sigmoid of the upsampled logit."""
    torch.manual_seed(0)
    logits, masks = torch.randn(2, 4, 4), torch.randn(2, 4, 3, 5) * 4  # 3 classes + no object
    scores = GKCNetwork.semantic_inference(logits, masks, (10, 17), (10, 17))
    assert scores.shape == (2, 3, 10, 17)
    for b in range(2):
        for c in range(3):
            for y in range(10):
                for x in range(17):
                    expected = 0.0
                    for q in range(4):
                        p = math.exp(logits[b, q, c]) / sum(math.exp(v) for v in logits[b, q].tolist())
                        expected += p / (1 + math.exp(-upsampled_value(masks[b, q], y, x, 4)))
                    assert float(scores[b, c, y, x]) == pytest.approx(expected, abs=1e-5)


def test_cpu_bf16_autocast_runs(tiny):
    network = make_network(tiny, 3)
    text = random_text(3, tiny.text_dim)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = network(torch.randn(1, 3, 40, 70), text, torch.arange(3), 3)
    assert torch.isfinite(out["pred_masks"].float()).all() and torch.isfinite(out["pred_logits"].float()).all()


def test_checkpoint_round_trip_is_bit_identical(tmp_path, tiny, clip_model):
    from ovbench.api import WeightsInfo

    network = make_network(tiny, 4)
    with torch.no_grad():
        for param in network.parameters():  # away from init, so a missed tensor would show
            param.add_(0.01 * torch.randn_like(param))
    info = WeightsInfo(source="openai", sha256="ab" * 32, backbone=tiny.clip_arch)
    path = save_checkpoint(tmp_path / "c.safetensors", network, clip_model, info, steps=7, extra={"split": "x"})
    checkpoint = load_checkpoint(path)
    assert checkpoint.config == tiny and checkpoint.steps == 7 and checkpoint.metadata["split"] == "x"
    assert checkpoint.text_tower is None and checkpoint.clip_weights.sha256 == "ab" * 32
    restored = make_network(tiny, 5)
    load_network_state(restored, checkpoint)
    images, text = torch.randn(1, 3, 45, 61), random_text(4, tiny.text_dim)
    with torch.no_grad():
        a = network(images, text, torch.arange(4), 4)
        b = restored(images, text, torch.arange(4), 4)
    for key in ("pred_logits", "pred_masks", "pred_embed", "kd_embed"):
        assert torch.equal(a[key], b[key]), key


def test_checkpoint_that_does_not_fit_names_file_and_key(tmp_path, tiny, clip_model):
    from ovbench.api import WeightsInfo

    path = save_checkpoint(tmp_path / "small.safetensors", make_network(tiny, 6), clip_model, WeightsInfo("openai", "00"), 0)
    other = make_network(dataclasses.replace(tiny, num_queries=tiny.num_queries + 1), 7)
    with pytest.raises(WeightsError, match=r"small\.safetensors.*decoder\.query_feat\.weight has shape"):
        load_network_state(other, load_checkpoint(path))
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match="builtin:"):
        load_checkpoint("builtin:no-such-sample")


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="gkc-tiny"):
        load_config("gkc-tiyn")
    bad = tmp_path / "mine.json"
    bad.write_text('{"clip_arch": "ovbench-tiny-rn", "hiden_dim": 64}')
    with pytest.raises(ConfigError, match="hiden_dim.*hidden_dim"):
        load_config(str(bad))
    bad.write_text('{"clip_arch": "ovbench-tiny-vit"}')
    with pytest.raises(ConfigError, match="not a CLIP ResNet"):
        load_config(str(bad))
    r50 = load_config("gkc-r50")
    assert (r50.clip_arch, r50.text_dim, r50.hidden_dim, r50.num_queries, r50.decoder_layers) == ("RN50", 1024, 256, 100, 9)


@pytest.mark.slow
def test_r101_trunk_is_torchvision_resnet101_with_its_imagenet_file(tmp_path):
    """gkc-r101's backbone loads torchvision's state dict by name and computes torchvision's
    res2..res5 (batch norms frozen = eval mode); ImageNet statistics normalise its input."""
    import torchvision
    from ovbench.models.gkc.backbone import TorchvisionResNetTrunk

    torch.manual_seed(0)
    reference = torchvision.models.resnet101(weights=None).eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # away from the init, so a missed load shows
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    path = tmp_path / "resnet101-63fe2227.pth"
    torch.save(reference.state_dict(), path)
    trunk = TorchvisionResNetTrunk()
    trunk.load_pretrained(None, path)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        got = trunk.train()(x)  # frozen norms: training mode changes nothing
        y = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        expected = []
        for layer in (reference.layer1, reference.layer2, reference.layer3, reference.layer4):
            y = layer(y)
            expected.append(y)
    assert [f.shape[1] for f in got] == trunk.channels == [256, 512, 1024, 2048]
    for a, b in zip(got, expected):  # FrozenBN folds the norm into one scale: float rounding only
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * float(b.abs().max()))
    assert not any(p.requires_grad for m in trunk.modules() if type(m).__name__ == "FrozenBatchNorm2d" for p in m.parameters())
    assert load_config("gkc-r101").pixel_statistics == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class PickledObject:  # weights_only loading must refuse it
    pass


@pytest.mark.slow
def test_r101_never_starts_from_random_weights(tmp_path):
    from ovbench.models.gkc.backbone import TorchvisionResNetTrunk

    trunk = TorchvisionResNetTrunk()
    with pytest.raises(WeightsError, match=r"nowhere\.pth.*nothing is downloaded.*backbone_weights="):
        trunk.load_pretrained(None, tmp_path / "nowhere.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other\.pth: not torchvision's ResNet-101"):
        trunk.load_pretrained(None, tmp_path / "other.pth")
    torch.save({"x": PickledObject()}, tmp_path / "pickled.pth")
    with pytest.raises(WeightsError, match=r"pickled\.pth"):
        trunk.load_pretrained(None, tmp_path / "pickled.pth")
