"""GKC's matcher, losses, synonyms and training data against hand-made cases and slow
references written from the definitions (Mask2Former's costs and losses, gkc.md's TGKD)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ovbench.models.clip_loading import create_clip, encode_prompts
from ovbench.models.gkc.losses import (
    GKCCriterion,
    KDRegions,
    LossConfig,
    StepTargets,
    classification_loss,
    dice_points,
    masked_crops,
    region_dropout,
    select_regions,
    sigmoid_ce_points,
    tgkd_loss,
    uncertain_point_coords,
)
from ovbench.models.gkc.matcher import match_image, pairwise_dice, pairwise_sigmoid_ce, point_sample
from ovbench.models.gkc.synonyms import SynonymBank, SynonymFilter, load_synonyms, rebuild_vocabulary
from ovbench.models.gkc.train_data import Augment, StreamSampler, augment, segment_targets

from ovbench.api import class_name_parts
from ovbench.data.vspw import load_class_names

REPO = Path(__file__).resolve().parents[2]


def bce(logit: float, label: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


# --- matcher ---------------------------------------------------------------------------------


def test_pairwise_costs_match_their_formulas():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(3, 5, generator=g), (torch.rand(2, 5, generator=g) > 0.5).float()
    ce, dice = pairwise_sigmoid_ce(logits, targets), pairwise_dice(logits, targets)
    for q, n in itertools.product(range(3), range(2)):
        x, t = logits[q].tolist(), targets[n].tolist()
        assert ce[q, n].item() == pytest.approx(sum(bce(a, b) for a, b in zip(x, t)) / 5, rel=1e-5)
        p = [1 / (1 + math.exp(-a)) for a in x]
        expected = 1 - (2 * sum(a * b for a, b in zip(p, t)) + 1) / (sum(p) + sum(t) + 1)
        assert dice[q, n].item() == pytest.approx(expected, rel=1e-5)


def test_hungarian_matching_finds_the_known_optimum():
    """Three queries, two segments: query 2 has segment 0's mask, query 0 has segment 1's mask
    but is unsure of its class, query 1 predicts segment 1's class with the wrong mask. The
    optimum is {2->0, 0->1}: mask and dice costs (weight 5 each) outweigh class cost (weight 2)."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    left, top = (xx < 8).float(), (yy < 5).float()
    targets = torch.stack([left, top])
    labels = torch.tensor([3, 1])
    masks = torch.stack([top, 1 - top, left]) * 20 - 10  # logits
    logits = torch.full((3, 5), -5.0)
    logits[0, [1, 4]] = 0.0  # unsure between class 1 and no object
    logits[1, 1] = 5.0
    logits[2, 3] = 5.0
    queries, segments = match_image(logits, masks, labels, targets, num_points=2048)
    assert queries.tolist() == [0, 2] and segments.tolist() == [1, 0]
    # the class cost decides when the masks cannot: two queries with identical masks
    masks = torch.stack([left, left]) * 20 - 10
    logits = torch.tensor([[0.0, 0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, -4.0, 0.0]])
    queries, segments = match_image(logits, masks, labels[:1], targets[:1], num_points=512)
    assert queries.tolist() == [0] and segments.tolist() == [0]


def test_matching_without_segments_is_empty():
    queries, segments = match_image(torch.zeros(4, 3), torch.zeros(4, 8, 8), torch.empty(0, dtype=torch.long), torch.zeros(0, 16, 16), 64)
    assert queries.numel() == 0 and segments.numel() == 0


# --- mask losses ------------------------------------------------------------------------------


def test_point_mask_losses_match_their_formulas():
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(2, 6, generator=g), (torch.rand(2, 6, generator=g) > 0.5).float()
    num_masks = 3.0
    expected_bce = sum(sum(bce(a, b) for a, b in zip(x, t)) / 6 for x, t in zip(logits.tolist(), labels.tolist())) / num_masks
    assert sigmoid_ce_points(logits, labels, num_masks).item() == pytest.approx(expected_bce, rel=1e-5)
    expected_dice = 0.0
    for x, t in zip(logits.tolist(), labels.tolist()):
        p = [1 / (1 + math.exp(-a)) for a in x]
        expected_dice += 1 - (2 * sum(a * b for a, b in zip(p, t)) + 1) / (sum(p) + sum(t) + 1)
    assert dice_points(logits, labels, num_masks).item() == pytest.approx(expected_dice / num_masks, rel=1e-5)


def test_importance_sampling_puts_its_share_of_points_on_uncertain_pixels():
    """Logits are 0 (maximally uncertain) on columns 6..9 of 16 and 20 elsewhere: the 75%
    importance points are all where the sampled |logit| is below 20 (the band, its bilinear
    rim, and the zero-padded frame edge), the uniform quarter mostly is not."""
    torch.manual_seed(0)
    logits = torch.full((1, 16, 16), 20.0)
    logits[..., 6:10] = 0.0
    coords = uncertain_point_coords(logits, num_points=400, oversample_ratio=3.0, importance_ratio=0.75)
    assert coords.shape == (1, 400, 2)
    certainty = point_sample(logits, coords)[0].abs()
    assert (certainty[:300] < 19.99).all()
    assert (certainty[300:] >= 19.99).float().mean() > 0.4


def test_point_sample_reads_bilinear_values_in_normalised_coordinates():
    masks = torch.arange(16.0).view(1, 4, 4)
    coords = torch.tensor([[[0.125, 0.125], [0.375, 0.625], [0.25, 0.125]]])  # pixel centres (0,0), (1,2), between (0,0)-(1,0)
    assert point_sample(masks, coords).tolist() == [[0.0, 9.0, 0.5]]


# --- classification --------------------------------------------------------------------------


def test_region_dropout_drops_exactly_half_of_the_matched_regions():
    torch.manual_seed(0)
    flags = region_dropout([3, 4, 1, 0], 0.5)
    assert [len(f) for f in flags] == [3, 4, 1, 0]
    assert int(torch.cat(flags).sum()) == 4
    assert int(torch.cat(region_dropout([5], 0.5)).sum()) == 2
    assert not torch.cat(region_dropout([3, 4], 0.0)).any()
    draws = torch.stack([torch.cat(region_dropout([3, 4, 1], 0.5)) for _ in range(400)]).float().mean(0)
    assert torch.all((draws > 0.35) & (draws < 0.65))  # every region is dropped about half the time


def test_classification_loss_weights_no_object_and_ignores_dropped_regions():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 4, generator=g)  # B=2, Q=3, C=3 (+ no object)
    indices = [(torch.tensor([0, 2]), torch.tensor([1, 0])), (torch.tensor([1]), torch.tensor([0]))]
    labels = [torch.tensor([2, 0]), torch.tensor([1])]
    dropped = [torch.tensor([False, True]), torch.tensor([False])]
    loss = classification_loss(logits, indices, labels, dropped, no_object_weight=0.1)
    # by hand: image 0: query 0 -> segment 1 (class 0), query 2 dropped, query 1 no object;
    # image 1: query 1 -> class 1, queries 0 and 2 no object
    terms = [(0, 0, 0, 1.0), (0, 1, 3, 0.1), (1, 0, 3, 0.1), (1, 1, 1, 1.0), (1, 2, 3, 0.1)]
    nll = lambda b, q, c: -torch.log_softmax(logits[b, q], 0)[c].item()
    expected = sum(w * nll(b, q, c) for b, q, c, w in terms) / sum(w for *_, w in terms)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# --- TGKD ------------------------------------------------------------------------------------


def test_tgkd_loss_is_the_pairwise_plus_self_term_of_gkc():
    g = torch.Generator().manual_seed(3)
    unit = lambda n: F.normalize(torch.randn(n, 5, generator=g), dim=-1)
    V, R, T = unit(3), unit(3), unit(3)
    s = torch.tensor(1.7)
    pair = sum((s.item() * (T[i] @ T[j]).item() - (V[i] @ R[j]).item()) ** 2 for i in range(3) for j in range(3)) / 9
    own = sum(((V[i] - R[i]) ** 2).sum().item() for i in range(3)) / 3
    assert tgkd_loss(V, R, T, s).item() == pytest.approx(pair + own, rel=1e-5)
    two = tgkd_loss(V[:2], R[:2], T[:2], torch.tensor(1.0)).item()
    pair2 = sum(((T[i] @ T[j]).item() - (V[i] @ R[j]).item()) ** 2 for i in range(2) for j in range(2)) / 4
    assert two == pytest.approx(pair2 + sum(((V[i] - R[i]) ** 2).sum().item() for i in range(2)) / 2, rel=1e-5)


def test_masked_crop_paints_outside_grey_and_crops_to_the_box():
    g = torch.Generator().manual_seed(4)
    image = torch.randint(0, 256, (3, 10, 12), dtype=torch.uint8, generator=g)
    mask = torch.zeros(10, 12, dtype=torch.bool)
    mask[3:7, 5:9] = True  # box rows 3..6, cols 5..8: 4 x 4
    mask[3, 5] = mask[6, 8] = False  # corners outside the mask stay inside the box
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    crop = masked_crops(image, mask[None], 4, mean, std)[0]
    reference = image[:, 3:7, 5:9].numpy().astype(np.float64)
    reference[:, 0, 0] = reference[:, 3, 3] = 128
    reference = (reference / 255 - mean.numpy()[:, None, None]) / std.numpy()[:, None, None]
    np.testing.assert_allclose(crop.numpy(), reference, atol=1e-5)
    # a resized crop: a uniform grey mask region stays the normalised grey everywhere outside
    big = torch.zeros(10, 12, dtype=torch.bool)
    big[0:10, 0:2] = True
    out = masked_crops(torch.full((3, 10, 12), 128, dtype=torch.uint8), big[None], 6, mean, std)
    assert out.shape == (1, 3, 6, 6)
    np.testing.assert_allclose(out[0].numpy(), ((128 / 255 - mean) / std).view(3, 1, 1).expand(3, 6, 6).numpy(), atol=1e-5)


def test_select_regions_caps_the_batch_and_keeps_small_batches_whole():
    torch.manual_seed(0)
    chosen = select_regions([150, 100, 7], 200)
    assert sum(len(c) for c in chosen) == 200
    assert all(len(set(c.tolist())) == len(c) and (c < n).all() for c, n in zip(chosen, [150, 100, 7]))
    assert [c.tolist() for c in select_regions([3, 0, 2], 200)] == [[0, 1, 2], [], [0, 1]]


def test_criterion_distils_the_matched_query_on_every_layer():
    """One segment, two queries: query 1 has its mask, so V is query 1's kd_embed on both
    layers; the KD term equals tgkd_loss on that pair, once per layer."""
    torch.manual_seed(0)
    target = torch.zeros(1, 16, 16)
    target[0, :, :8] = 1
    pred_masks = torch.stack([1 - target[0], target[0]])[None] * 20 - 10
    kd = F.normalize(torch.randn(1, 2, 4), dim=-1)
    layer = {"pred_logits": torch.zeros(1, 2, 3), "pred_masks": pred_masks, "pred_embed": kd, "kd_embed": kd}
    outputs = {**layer, "aux_outputs": [dict(layer)]}
    R, T = F.normalize(torch.randn(1, 4), dim=-1), F.normalize(torch.randn(1, 4), dim=-1)
    step = StepTargets([{"labels": torch.tensor([1]), "masks": target}], 1.0, kd=[KDRegions(torch.tensor([0]), R, T)])
    cfg = LossConfig(ce_weight=0, syn_weight=0, kd_weight=2.0, num_points=256)
    criterion = GKCCriterion(cfg)
    losses = criterion(outputs, step, classify=None, num_classes=2)
    expected = 2 * 2.0 * tgkd_loss(kd[0, 1:], R, T, torch.tensor(1.0)).item()
    assert losses["kd"].item() == pytest.approx(expected, rel=1e-5)
    assert set(losses) == {"mask", "dice", "kd", "loss"}  # switched-off terms are not computed
    losses["loss"].backward()
    assert criterion.kd_scale.grad is not None  # s is learned


# --- synonyms --------------------------------------------------------------------------------


def test_rebuilt_vocabulary_puts_the_drawn_synonym_in_its_class_slot():
    text = torch.eye(4)  # parts: class 0, class 1 (two parts), class 2
    owner = torch.tensor([0, 1, 1, 2])
    synonym = torch.tensor([[0.0, 0.6, 0.8, 0.0]])
    new_text, new_owner = rebuild_vocabulary(text, owner, torch.tensor([1]), synonym)
    assert sorted(new_owner.tolist()) == [0, 1, 2]
    assert torch.equal(new_text[new_owner == 1], synonym)
    assert torch.equal(new_text[new_owner == 0], text[:1]) and torch.equal(new_text[new_owner == 2], text[3:])
    # a classifier over the rebuilt vocabulary scores class 1 by the synonym alone
    query = torch.tensor([0.0, 0.0, 1.0, 0.0])
    scores = torch.full((3,), -1.0).scatter_reduce(0, new_owner, new_text @ query, "amax")
    assert scores.tolist() == pytest.approx([0.0, 0.8, 0.0])


def test_synonym_bank_draws_only_kept_synonyms():
    names = ["handrail_or_fence", "sky"]
    bank = SynonymBank(names, lambda words: torch.arange(len(words), dtype=torch.float32)[:, None])
    assert bank.synonyms[0][:2] == ["handrail", "fence"]
    torch.manual_seed(0)
    rows = torch.stack([bank.draw(torch.tensor([0, 1]), [[2], None]) for _ in range(50)])
    assert (rows[:, 0] == 2).all()  # class 0, kept synonym 2
    assert (rows[:, 1] == bank.starts[1]).all()  # "sky" has no WordNet synonym left: itself
    free = torch.stack([bank.draw(torch.tensor([0]), [None]) for _ in range(300)])[:, 0]
    assert set(free.tolist()) == set(range(len(bank.synonyms[0])))


def test_synonym_filter_keeps_synonyms_above_the_clip_probability_threshold():
    clip, _ = create_clip("ovbench-tiny-rn", "none")
    import open_clip

    tokenizer = open_clip.get_tokenizer("ovbench-tiny-rn")
    synonyms = [["alpha", "beta", "gamma", "delta"], ["epsilon"]]
    filt = SynonymFilter(clip, tokenizer, synonyms)
    prompts = encode_prompts(clip, tokenizer, [f"a photo of {s}" for s in synonyms[0]])
    crop = F.normalize(prompts[2] + 0.3 * prompts[0], dim=-1)
    probs = (clip.logit_scale.exp().item() * prompts @ crop).softmax(0)
    expected = [k for k in range(4) if probs[k] > 0.1] or [int(probs.argmax())]
    kept = filt.keep(torch.stack([crop, crop]), torch.tensor([0, 1]))
    assert kept == [expected, [0]]
    assert 2 in kept[0]


def test_packaged_synonyms_start_with_the_class_name_parts_and_are_not_shared():
    names = load_class_names()
    table = load_synonyms(names)
    assert len(table) == 124
    owners: dict[str, int] = {}
    for index, (name, synonyms) in enumerate(zip(names, table)):
        assert synonyms[: len(class_name_parts(name))] == class_name_parts(name)
        assert len(set(synonyms)) == len(synonyms)
        for word in synonyms:
            assert owners.setdefault(word, index) == index, f"{word!r} names two classes"
    assert "instrument" not in table[names.index("tool")]  # an unseen class name never leaks
    assert load_synonyms(["my_new_class"]) == [["my new class"]]


def load_make_synonyms():
    spec = importlib.util.spec_from_file_location("make_synonyms", REPO / "scripts" / "make_synonyms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_synonyms_reads_wordnet_files(tmp_path):
    """A fake WordNet: index/data/exception files in WordNet 3.0's format. Only the senses of
    the first visible sense's kind are kept (tool: the artifacts, not the person or the body
    part), and blocklisted words go whatever their sense."""
    (tmp_path / "index.noun").write_text(
        "  1 license header line\n"
        "textile n 1 1 @ 1 0 00000100  \n"
        "fabric n 1 1 @ 1 0 00000100  \n"
        "sky n 3 1 @ 3 0 00000400 00000200 00000300  \n"
        "tool n 4 1 @ 4 0 00000500 00000600 00000700 00000800  \n"
    )
    (tmp_path / "data.noun").write_text(
        "  1 license header line\n"
        "00000100 06 n 03 fabric 0 cloth 0 textile 0 000 | a woven material\n"
        "00000200 17 n 01 sky 0 000 | the atmosphere\n"
        "00000300 17 n 02 Sky_Blue 0 wall 0 000 | fake sense naming another class\n"
        "00000400 15 n 02 sky 0 heaven 0 000 | a location: not a visible kind, never decides\n"
        "00000500 06 n 02 tool 0 implement 0 000 | an artifact\n"
        "00000600 18 n 02 tool 0 puppet 0 000 | a person\n"
        "00000700 08 n 02 tool 0 pecker 0 000 | a body part\n"
        "00000800 06 n 02 tool 0 putz 0 000 | an artifact sense holding a blocklisted word\n"
    )
    (tmp_path / "noun.exc").write_text("mice mouse\n")
    table = load_make_synonyms().make_synonyms(tmp_path)
    assert table["textiles"] == ["textiles", "cloth", "fabric", "textile"]  # plural -> lemma
    assert table["sky"] == ["sky", "sky blue"]  # "wall" is another class's name; heaven another kind
    assert table["wall"] == ["wall"]
    assert table["tool"] == ["tool", "implement"]


# vulgar, offensive, drug and clearly wrong senses once in the shipped list (never again)
UNWANTED = {"arse", "ass", "butt", "buttocks", "cock", "dick", "pecker", "prick", "putz", "piss", "pee", "urine",
            "testicle", "bollock", "ballock", "meth", "methamphetamine", "shabu", "mary jane", "weed", "dope",
            "puppet", "hombre", "guy", "bozo", "george sand", "oliver stone", "natalie wood", "lucille ball",
            "john cage", "president", "chairman", "sur", "computed tomography"}


def test_shipped_synonyms_hold_no_unwanted_word():
    table = json.loads((REPO / "splits" / "synonyms" / "vspw.json").read_text())["synonyms"]
    assert not {word for words in table.values() for word in words} & UNWANTED
    assert load_make_synonyms().BLOCKLIST.isdisjoint(w for name in table for w in table[name][len(class_name_parts(name)):])


def test_shipped_synonym_file_is_sorted_json():
    path = REPO / "splits" / "synonyms" / "vspw.json"
    payload = json.loads(path.read_text())
    assert list(payload["synonyms"]) == sorted(payload["synonyms"])
    for name, synonyms in payload["synonyms"].items():
        extra = synonyms[len(class_name_parts(name)) :]
        assert extra == sorted(extra)


# --- training data ---------------------------------------------------------------------------


def test_augment_pads_with_ignore_and_targets_cover_the_present_classes():
    image = np.full((20, 30, 3), 7, dtype=np.uint8)
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[:, 15:] = 4
    labels[0, 0] = 255
    aug = Augment(crop=(32, 32), short_min=16, short_max=16, pad_rgb=(1, 2, 3))
    out_image, out_labels = augment(image, labels, aug, np.random.default_rng(0))
    assert out_image.shape == (32, 32, 3) and out_labels.shape == (32, 32)
    padding = out_labels == 255
    assert padding.sum() >= 32 * 32 - 16 * 24  # the 16 x 24 frame inside a 32 x 32 crop
    assert (out_image[padding.nonzero()[0][-1], padding.nonzero()[1][-1]] == (1, 2, 3)).all()
    classes, masks = segment_targets(out_labels)
    assert classes.tolist() == [0, 4]
    assert torch.equal(masks.sum(0) == 1, torch.from_numpy(out_labels != 255))


def test_default_video_crops_of_a_vspw_frame_hold_no_padding():
    """The authors' video settings (short side 360-480) on a 480 x 853 frame: the default crop
    (352 x 512) is always filled by the frame, never by ignore padding."""
    from ovbench.models.gkc.adapter import GKC
    from ovbench.models.gkc.train_args import parse_train_args

    args = parse_train_args(GKC, "")
    assert args.crop_size() == (352, 512) and (args.short_min, args.short_max) == (360, 480)
    assert parse_train_args(GKC, "crop=48,short_min=40,crop_height=40").crop_size() == (40, 48)
    aug = Augment(args.crop_size(), args.short_min, args.short_max, pad_rgb=(1, 2, 3))
    labels = np.zeros((480, 853), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, out = augment(np.zeros((480, 853, 3), dtype=np.uint8), labels, aug, rng)
        assert out.shape == (352, 512) and not (out == 255).any()


def test_sample_stream_resumes_at_any_step_and_ranks_are_disjoint():
    take = lambda sampler, n: list(itertools.islice(iter(sampler), n))
    full = take(StreamSampler(10, 4, seed=3, start_step=0, rank=0, world=1), 24)
    resumed = take(StreamSampler(10, 4, seed=3, start_step=2, rank=0, world=1), 16)
    assert resumed == full[8:]
    assert sorted(index for index, _, _ in full[:10]) == list(range(10))  # an epoch is a permutation
    rank0 = take(StreamSampler(10, 2, seed=3, start_step=0, rank=0, world=2), 4)
    rank1 = take(StreamSampler(10, 2, seed=3, start_step=0, rank=1, world=2), 4)
    assert rank0 + rank1 == [full[i] for i in (0, 1, 4, 5, 2, 3, 6, 7)]


def test_one_masked_crop_helper_with_its_two_box_rules():
    """GKC's teacher (tight box) and the two-stage baseline (square grown by `context`) crop
    through ovbench.models.masked_crops; boxes come in frame pixels from a map at any scale."""
    from ovbench.models.masked_crops import crop_regions, region_boxes

    regions = torch.full((1, 10, 12), -1)
    regions[0, 3:7, 5:9] = 0
    regions[0, 0:2, 0:12] = 1
    torch.testing.assert_close(region_boxes(regions, 2, (10, 12)), torch.tensor([[5.0, 3, 9, 7], [0, 0, 12, 2]]))
    # square: side max(4, 4) grown by 0.25 on each side around the centre (7, 5)
    torch.testing.assert_close(region_boxes(regions, 2, (10, 12), context=0.25)[0], torch.tensor([4.0, 2, 10, 8]))
    torch.testing.assert_close(region_boxes(regions, 2, (20, 24))[0], torch.tensor([10.0, 6, 18, 14]))  # a coarser map
    image = torch.arange(3 * 10 * 12, dtype=torch.float32).view(1, 3, 10, 12)
    boxes = region_boxes(regions, 2, (10, 12), context=0.25)
    crop = crop_regions(image, regions, torch.tensor([0]), torch.tensor([0]), boxes[:1], (6, 6), torch.full((3,), -1.0))[0]
    # the 6 x 6 square starting at (4, 2): pixels copied where the region is, fill elsewhere
    for y in range(6):
        for x in range(6):
            inside = 3 <= y + 2 < 7 and 5 <= x + 4 < 9
            expected = image[0, :, y + 2, x + 4] if inside else torch.full((3,), -1.0)
            torch.testing.assert_close(crop[:, y, x], expected)
    # masked_crops (the teacher's) is that helper with the tight box and GKC's grey
    mean, std = torch.zeros(3), torch.ones(3)
    teacher = masked_crops(image[0].to(torch.uint8), regions[0][None] == 0, 4, mean, std)[0] * 255
    torch.testing.assert_close(teacher, crop_regions(image.to(torch.uint8).float(), regions, torch.tensor([0]), torch.tensor([0]),
                                                      region_boxes(regions, 2, (10, 12))[:1], (4, 4), torch.full((3,), 128.0))[0])
