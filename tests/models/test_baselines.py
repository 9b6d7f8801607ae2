"""The two CLIP baselines against references written from their definitions, on the tiny
random-init CLIPs (no downloads)."""

import dataclasses
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import torch.nn.functional as F
from ovbench.models.clip_baseline import ENSEMBLE_TEMPLATES, class_scores
from ovbench.models.clip_dense import ClipDense, window_starts
from ovbench.models.clip_loading import create_clip, encode_prompts
from ovbench.models.clip_twostage import ClipTwoStage, merge_similar

from ovbench.errors import ConfigError, WeightsError
from ovbench.modelargs import parse_model_args
from ovbench.registry import get_model_class

CPU = torch.device("cpu")
NAMES = ["wall", "handrail_or_fence", "sky"]


def build(cls, **args):
    spec = {**cls.sample_args, **{k: str(v) for k, v in args.items()}}
    return cls(parse_model_args(cls.Args, spec), CPU)


def random_frames(batch=2, height=67, width=117, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator)


@pytest.fixture(scope="module")
def dense():
    return build(ClipDense, input_size=64, stride=32)


@pytest.fixture(scope="module")
def twostage():
    return build(ClipTwoStage)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Local weight files for both tiny archs, so that cache keys have a hash to carry."""
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for arch in ("ovbench-tiny-vit", "ovbench-tiny-rn"):
        model, _ = create_clip(arch, "none")
        paths[arch] = folder / f"{arch}.pt"
        torch.save(model.state_dict(), paths[arch])
    return paths


def test_registered():
    assert get_model_class("clip-dense") is ClipDense
    assert get_model_class("clip-twostage") is ClipTwoStage


def test_twostage_is_listed_as_what_it_is(capsys):
    """Its proposals are superpixels, not a trained mask generator: `ovbench ls models` says so."""
    from ovbench.cli import main

    assert main(["ls", "models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("clip-twostage "))
    assert "two-stage CLIP (superpixel proposals)" in line


@pytest.mark.parametrize("model_fixture", ["dense", "twostage"])
def test_encode_text_parts_and_templates(model_fixture, request):
    model = request.getfixturevalue(model_fixture)
    text = model.encode_text(NAMES)
    assert text.shape == (3, 2, model.clip.text_projection.shape[1])
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3, 2))
    torch.testing.assert_close(text[0, 0], text[0, 1])  # one-part class padded with itself
    for part, name in enumerate(["handrail", "fence"]):
        prompts = [template.format(name) for template in ENSEMBLE_TEMPLATES]
        expected = F.normalize(encode_prompts(model.clip, model.tokenizer, prompts).mean(dim=0), dim=0)
        torch.testing.assert_close(text[1, part], expected)


def test_class_scores_take_the_max_over_parts():
    text = F.normalize(torch.randn(3, 2, 8), dim=-1)
    features = F.normalize(torch.randn(5, 8), dim=-1)
    expected = torch.tensor([[max(float(f @ text[c, p]) for p in range(2)) for c in range(3)] for f in features])
    torch.testing.assert_close(class_scores(features, text), expected)


@pytest.mark.slow
def test_text_cache_key(weight_files):
    random_key = build(ClipDense).text_cache_key()  # the seeded random init is identified by seed and versions
    assert "random-init:seed0" in random_key and random_key == build(ClipDense).text_cache_key()

    def key(cls, arch, templates):
        return build(cls, clip=arch, pretrained=weight_files[arch], templates=templates).text_cache_key()

    vit = key(ClipDense, "ovbench-tiny-vit", "ensemble")
    assert vit == key(ClipDense, "ovbench-tiny-vit", "ensemble")
    assert vit == key(ClipTwoStage, "ovbench-tiny-vit", "ensemble")  # same text encoder: shareable
    assert vit != key(ClipDense, "ovbench-tiny-vit", "single")
    assert vit != key(ClipTwoStage, "ovbench-tiny-rn", "ensemble")
    assert build(ClipDense, pretrained=weight_files["ovbench-tiny-vit"]).weights().sha256 in vit


@pytest.mark.parametrize("model_fixture", ["dense", "twostage"])
def test_predict_is_finite_and_deterministic(model_fixture, request):
    model = request.getfixturevalue(model_fixture)
    text = model.encode_text(NAMES)
    frames = random_frames()
    scores = model.predict(frames, text)
    assert scores.dtype == torch.float32 and scores.device == frames.device
    assert scores.shape[:2] == (2, 3) and scores.isfinite().all()
    assert torch.equal(scores, model.predict(frames.clone(), text))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as the runner runs bf16
        low = model.predict(frames, text)
    assert low.dtype == torch.float32 and low.shape == scores.shape and low.isfinite().all()


def test_dense_value_path_matches_a_literal_reimplementation(dense):
    """At CLIP's native size, per patch: the last block's input (from open_clip's own forward)
    -> LN1 -> value projection -> output projection -> residual -> MLP -> ln_post -> proj."""
    visual = dense.clip.visual
    block = visual.transformer.resblocks[-1]
    captured = {}
    hook = block.register_forward_pre_hook(lambda module, inputs: captured.setdefault("x", inputs[0]))
    pixels = dense.normalize(random_frames(1, 64, 64).float())
    with torch.no_grad():
        visual(pixels)
    hook.remove()
    x = captured["x"][0, 1:].double()  # (patches, width), class token dropped

    def layer_norm(t, norm):
        return F.layer_norm(t, t.shape[-1:], norm.weight.double(), norm.bias.double(), norm.eps)

    width = x.shape[-1]
    weight, bias = block.attn.in_proj_weight.double(), block.attn.in_proj_bias.double()
    value = layer_norm(x, block.ln_1) @ weight[2 * width :].T + bias[2 * width :]
    y = x + value @ block.attn.out_proj.weight.double().T + block.attn.out_proj.bias.double()
    hidden = F.gelu(layer_norm(y, block.ln_2) @ block.mlp.c_fc.weight.double().T + block.mlp.c_fc.bias.double())
    y = y + hidden @ block.mlp.c_proj.weight.double().T + block.mlp.c_proj.bias.double()
    expected = F.normalize(layer_norm(y, visual.ln_post) @ visual.proj.double(), dim=-1)

    with torch.no_grad():
        got = dense.patch_embeddings(pixels)
    assert got.shape == (1, 4, 4, expected.shape[-1])
    torch.testing.assert_close(got.view(16, -1).double(), expected, rtol=1e-4, atol=1e-5)
    # and it is not CLIP's ordinary token output (full attention in the last block)
    visual.output_tokens = True
    try:
        with torch.no_grad():
            _, tokens = visual(pixels)
    finally:
        visual.output_tokens = False
    assert not torch.allclose(F.normalize(tokens[0] @ visual.proj, dim=-1).double(), expected, atol=1e-3)


@pytest.mark.parametrize("batch_first", [True, False])
def test_dense_reads_the_block_layout_and_refuses_an_unknown_one(batch_first):
    """open_clip before 2.26 built its blocks sequence-first: the layout comes from the blocks'
    own attention, never assumed; blocks of another kind are one clear error."""
    from ovbench.models.clip_dense import block_layout

    blocks = torch.nn.ModuleList([torch.nn.Module() for _ in range(2)])
    for block in blocks:
        block.attn = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    assert block_layout(blocks) is batch_first
    blocks[1].attn = torch.nn.MultiheadAttention(8, 2, batch_first=not batch_first)
    with pytest.raises(ConfigError, match="open_clip .*nn.MultiheadAttention"):
        block_layout(blocks)
    blocks[1].attn = torch.nn.Linear(8, 8)  # a future open_clip's own attention
    with pytest.raises(ConfigError, match="open_clip_torch >="):
        block_layout(blocks)


def test_dense_sequence_first_blocks_give_the_same_embeddings(dense):
    """The same weights run as sequence-first blocks (open_clip < 2.26) give the same patch
    embeddings: frames of a batch never attend to each other."""
    import copy

    pixels = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        expected = dense.patch_embeddings(pixels)
        old = copy.deepcopy(dense)
        for block in old.clip.visual.transformer.resblocks:
            block.attn.batch_first = False
        old.batch_first = False
        torch.testing.assert_close(old.patch_embeddings(pixels), expected)


def test_dense_positional_embedding_resizing(dense):
    visual = dense.clip.visual
    assert dense.positional_embedding(4, 4) is visual.positional_embedding
    resized = dense.positional_embedding(4, 8)
    assert resized.shape == (1 + 32, visual.positional_embedding.shape[1])
    torch.testing.assert_close(resized[0], visual.positional_embedding[0])


def test_dense_sliding_windows_average_overlaps():
    assert window_starts(800, 448, 224) == [0, 224, 352]
    assert window_starts(448, 448, 224) == [0]
    slide = build(ClipDense, input_size=64, stride=32, window="slide")
    text = slide.encode_text(NAMES)
    frames = random_frames(1, 60, 120)  # resized to 64 x 128: windows at x = 0, 32, 64
    got = slide.predict(frames, text)
    pixels = slide.normalize(slide.resize(frames))
    assert pixels.shape[-2:] == (64, 128)
    total, count = torch.zeros(3, 4, 8), torch.zeros(4, 8)
    for left in (0, 32, 64):
        with torch.no_grad():
            embeddings = slide.patch_embeddings(pixels[:, :, :, left : left + 64])[0]
        for row in range(4):
            for col in range(4):
                total[:, row, left // 16 + col] += class_scores(embeddings[row, col][None], text)[0]
                count[row, left // 16 + col] += 1
    torch.testing.assert_close(got[0], total / count)
    # a frame that is one window gives the same scores in both modes
    square = random_frames(1, 64, 64)
    whole = slide.predict(square, text)
    slide.args = dataclasses.replace(slide.args, window="whole")
    torch.testing.assert_close(slide.predict(square, text), whole)


def test_twostage_one_clip_forward_per_proposal(twostage, monkeypatch):
    frames = random_frames()
    proposal, frame_of = twostage.propose(frames)
    images = []
    original = twostage.clip.encode_image
    monkeypatch.setattr(twostage.clip, "encode_image", lambda x: images.append(len(x)) or original(x))
    text = twostage.encode_text(NAMES)
    scores = twostage.predict(frames, text)
    assert sum(images) == len(frame_of) > 2
    monkeypatch.setattr(twostage.args, "crop_batch", 5)
    images.clear()
    torch.testing.assert_close(twostage.predict(frames, text), scores)
    assert images[:-1] == [5] * (len(images) - 1) and sum(images) == len(frame_of)


def test_twostage_proposals_partition_the_frame(twostage):
    frames = random_frames()
    proposal, frame_of = twostage.propose(frames)
    assert proposal.shape == (2, 67, 117)
    assert torch.equal(torch.unique(proposal), torch.arange(len(frame_of)))  # ids 0..N-1, all used
    for index, frame in enumerate(frame_of.tolist()):
        assert (proposal[frame] == index).any() and not (proposal[1 - frame] == index).any()
    assert len(frame_of) <= 2 * twostage.args.proposals
    scores = twostage.predict(frames, twostage.encode_text(NAMES))
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(2, 67, 117))  # every pixel painted once


@pytest.mark.parametrize("proposal_size", [120, 30])
def test_twostage_two_flat_halves_give_two_proposals(proposal_size):
    model = build(ClipTwoStage, proposal_size=proposal_size)
    frames = torch.zeros(1, 3, 67, 117, dtype=torch.uint8)
    frames[:, :, :, :50] = torch.tensor([200, 40, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    frames[:, :, :, 50:] = torch.tensor([20, 90, 180], dtype=torch.uint8).view(1, 3, 1, 1)
    proposal, _ = model.propose(frames)
    sizes = torch.bincount(proposal.flatten()).float() / proposal.numel()
    assert (sizes > 0.02).sum() == 2 and sizes.topk(2).values.sum() > 0.97
    if proposal_size == 120:  # full resolution: the split is exactly the colour edge
        assert len(sizes) == 2
        assert (proposal[0, :, :50] == proposal[0, 0, 0]).all() and (proposal[0, :, 50:] != proposal[0, 0, 0]).all()


def test_twostage_masked_crop_and_painting():
    """A red square on a blue frame: its crop is the square, grown by `context`, on grey; the
    square's pixels get softmax(logit_scale * max-part cosine) of that crop's embedding."""
    model = build(ClipTwoStage, context=0.25)
    frames = torch.empty(1, 3, 80, 120, dtype=torch.uint8)
    frames[:] = torch.tensor([20, 40, 200], dtype=torch.uint8).view(1, 3, 1, 1)
    frames[:, :, 20:60, 30:70] = torch.tensor([220, 30, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    proposal, frame_of = model.propose(frames)
    square = int(proposal[0, 40, 50])
    assert (proposal[0, 20:60, 30:70] == square).all() and (proposal == square).sum() == 40 * 40
    boxes = model.crop_boxes(proposal, frame_of, frames.shape[-2:])
    torch.testing.assert_close(boxes[square], torch.tensor([0.0, 20.0, 10.0, 80.0, 70.0]))
    crop = model.masked_crops(frames, proposal, boxes, torch.tensor([square]))[0]
    rgb = crop * model._std[0] + model._mean[0]
    grey = (rgb - 128).abs().amax(dim=0) < 1e-3
    red = ~grey
    assert (rgb[0][red] > rgb[2][red]).all()  # inside: the square (bilinear at its edge)
    side = model.crop_size[0]
    assert abs(red.float().mean() - (40 / 60) ** 2) < 2 / side  # the square fills 40/60 of each side

    text = model.encode_text(NAMES)
    with torch.no_grad():
        embedding = F.normalize(model.clip.encode_image(crop[None]), dim=-1)[0]
    logits = torch.tensor([max(float(embedding @ text[c, p]) for p in range(2)) for c in range(3)])
    expected = (model.clip.logit_scale.exp().detach() * logits).softmax(dim=0)
    scores = model.predict(frames, text)
    torch.testing.assert_close(scores[0, :, 40, 50], expected, rtol=1e-4, atol=1e-5)


def test_merge_similar_joins_adjacent_similar_superpixels():
    labels = torch.tensor([[[0, 1, 2], [3, 4, 5]]])  # 0-1-2 over 3-4-5, 4-neighbour adjacency
    colours = torch.tensor([[[0.0, 0, 0], [0.01, 0, 0], [1, 1, 1], [0.02, 0, 0], [1, 0, 0], [0.99, 1, 1]]])
    # 0~1 and 0~3 close and adjacent; 2~5 close and adjacent; 3~1 close but not adjacent
    proposal, frame_of = merge_similar(labels, colours, threshold=0.05)
    assert proposal.tolist() == [[[0, 0, 1], [0, 2, 1]]]
    assert frame_of.tolist() == [0, 0, 0]
    unmerged, _ = merge_similar(labels, colours, threshold=0.0)
    assert unmerged.tolist() == labels.tolist()


@pytest.mark.parametrize(
    ("cls", "spec", "word"),
    [
        (ClipDense, "windw=slide", "windw"),
        (ClipDense, "window=tiles", "window"),
        (ClipDense, "input_size=-16", "input_size"),
        (ClipDense, "stride=x", "stride"),
        (ClipTwoStage, "proposals=0", "proposals"),
        (ClipTwoStage, "background=black", "background"),
        (ClipTwoStage, "merge=-1", "merge"),
        (ClipTwoStage, "templates=all", "templates"),
    ],
)
def test_bad_arguments(cls, spec, word):
    with pytest.raises(ConfigError, match=word):
        parse_model_args(cls.Args, spec)


def test_bad_model_configurations():
    with pytest.raises(ConfigError, match="input_size=72"):
        build(ClipDense, input_size=72)  # not whole 16-pixel patches
    with pytest.raises(ConfigError, match="clip-dense needs a CLIP ViT"):
        build(ClipDense, clip="ovbench-tiny-rn")
    with pytest.raises(ConfigError, match="ovbench-tiny-vt"):
        build(ClipTwoStage, clip="ovbench-tiny-vt")


@pytest.mark.parametrize("cls", [ClipDense, ClipTwoStage])
def test_missing_weights_file(cls):
    with pytest.raises(WeightsError) as error:
        build(cls, pretrained="/nonexistent.pt")
    assert "/nonexistent.pt" in str(error.value) and "\n" not in str(error.value)
