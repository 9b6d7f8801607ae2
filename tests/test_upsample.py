"""`upsampled_argmax` must return exactly the plain path's labels (bilinear
`F.interpolate` to the ground-truth size, then argmax), frame by frame, for every input."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovbench import upsample
from ovbench.upsample import exact_path_available, plain_upsampled_argmax, upsampled_argmax


def reference(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The brief's definition: one interpolate of the whole batch, then argmax."""
    scores = scores.float()
    if tuple(scores.shape[-2:]) != tuple(size):
        scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
    return scores.argmax(dim=1)


def check(scores: torch.Tensor, size: tuple[int, int], batch_reference: bool = True) -> torch.Tensor:
    labels = upsampled_argmax(scores, size)
    plain = plain_upsampled_argmax(scores, size)
    assert labels.dtype == (torch.uint8 if scores.shape[1] <= 256 else torch.int64)
    assert labels.shape == (scores.shape[0], *size)
    assert torch.equal(labels, plain)
    if batch_reference:
        assert torch.equal(labels.long(), reference(scores, size))
    return labels


def check_fast(frame: torch.Tensor, size: tuple[int, int]) -> None:
    """The exact path itself (no fallback) on one (1, C, h, w) float32 frame."""
    labels = upsample._fast_frame(frame, size)
    assert labels is not None, "the exact path fell back"
    assert torch.equal(labels.long(), reference(frame, size)[0])


def smooth_scores(classes: int, height: int, width: int, seed: int, noise: float = 0.3) -> torch.Tensor:
    """A blurred random segmentation plus noise (few classes per cell, like real models)."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, classes, (1, 1, -(-height // 6), -(-width // 6)), generator=g).float()
    segmentation = F.interpolate(blocks, scale_factor=6, mode="nearest")[0, 0, :height, :width].long()
    one_hot = F.one_hot(segmentation, classes).permute(2, 0, 1).float()[None]
    return 4 * F.avg_pool2d(one_hot, 5, 1, 2) + noise * torch.randn(1, classes, height, width, generator=g)


@pytest.fixture
def no_fallback(monkeypatch):
    """Disable the cost-based fallback, so that pure noise also takes the exact path."""
    if not exact_path_available():
        pytest.skip("this build's bilinear kernel is not reproduced exactly: plain path only")
    monkeypatch.setattr(upsample, "_SAFETY", 1e-12)


SIZES = [((30, 54), (120, 214)), ((17, 29), (67, 117)), ((13, 7), (50, 40)), ((5, 6), (23, 29)), ((9, 11), (64, 77))]


@pytest.mark.parametrize("classes", [1, 2, 12, 124])
@pytest.mark.parametrize("low,size", SIZES)
def test_random_scores_match(classes, low, size):
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        check(torch.randn(1, classes, *low, generator=g), size)
        check(smooth_scores(classes, *low, seed), size)


@pytest.mark.parametrize("classes", [2, 12, 124])
@pytest.mark.parametrize("low,size", SIZES[:4])
def test_exact_path_on_noise_and_smooth(no_fallback, classes, low, size):
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        check_fast(torch.randn(1, classes, *low, generator=g), size)
        check_fast(smooth_scores(classes, *low, seed), size)


def test_full_size_frames():
    """VSPW-like: 120x213 -> 480x853, also after the bf16 round trip of mixed precision."""
    scores = smooth_scores(124, 120, 213, seed=0)
    labels = check(scores, (480, 853))
    assert labels.unique().numel() > 10
    check(scores.bfloat16(), (480, 853), batch_reference=False)
    check(smooth_scores(12, 120, 213, seed=1), (480, 853))


def test_full_size_exact_path_noise(no_fallback):
    check_fast(torch.randn(1, 12, 120, 213, generator=torch.Generator().manual_seed(3)), (480, 853))


def test_batch_of_frames():
    frames = [smooth_scores(12, 30, 54, seed) for seed in range(3)]
    frames.append(torch.randn(1, 12, 30, 54))
    frames.append(torch.zeros(1, 12, 30, 54))
    check(torch.cat(frames), (120, 214))


def test_ties_resolve_to_lowest_class(no_fallback):
    base = smooth_scores(6, 17, 29, seed=0)
    tied = torch.cat([base[:, :2], base[:, 1:2], base[:, 2:], base[:, :1]], dim=1)  # 1 == 2, 0 == 7
    labels = check(tied, (67, 117))
    assert not (labels == 2).any() and not (labels == 7).any()
    check_fast(tied, (67, 117))
    quantized = (base * 2).round() / 2  # many exact ties between and within interpolated values
    check(quantized, (67, 117))
    check_fast(quantized, (67, 117))


def test_constant_scores():
    for value in (0.0, 1.0, -3.5, 1e30):
        labels = check(torch.full((2, 7, 8, 9), value), (40, 41))
        assert (labels == 0).all()


@pytest.mark.parametrize("scale", [1e-40, 1e-30, 1e-6, 1e10, 1e30, 1e37])
def test_magnitudes(no_fallback, scale):
    scores = smooth_scores(9, 17, 29, seed=2) * scale
    check(scores, (67, 117))
    check_fast(scores, (67, 117))
    check_fast(-scores, (67, 117))


def test_near_ties_exceed_any_cap():
    """Every class within a few ulps of the others: every cell is ambiguous (cost fallback
    by default, exact path when forced)."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 1, 17, 29, generator=g)
    scores = base + 1e-7 * torch.randint(-3, 4, (1, 40, 17, 29), generator=g).float()
    check(scores, (67, 117))
    assert upsample._fast_frame(scores, (67, 117)) is None  # too many candidates: plain path


def test_near_ties_exact_path(no_fallback):
    g = torch.Generator().manual_seed(1)
    base = smooth_scores(5, 17, 29, seed=4)
    for eps in (1e-7, 1e-6, 1e-5):
        scores = base + eps * torch.randint(-2, 3, base.shape, generator=g).float()
        check_fast(scores, (67, 117))
    ulps = base.repeat(1, 3, 1, 1)
    ulps[:, 5:10] = torch.nextafter(ulps[:, 5:10], torch.tensor(float("inf")))
    ulps[:, 10:] = torch.nextafter(ulps[:, 10:], torch.tensor(float("-inf")))
    check_fast(ulps, (67, 117))


def test_non_finite_and_huge_scores_fall_back():
    scores = smooth_scores(6, 17, 29, seed=0)
    for value in (float("nan"), float("inf"), float("-inf"), 3e38):
        bad = scores.clone()
        bad[0, 3, 5, 7] = value
        assert upsample._fast_frame(bad, (67, 117)) is None
        check(bad, (67, 117))


def test_memory_layouts(no_fallback):
    """Channels-last inputs go through PyTorch's other CPU kernel (other arithmetic, and a
    vector/scalar split of the channels), strided ones through the generic kernel."""
    for classes in (4, 5, 13, 37, 124):
        scores = smooth_scores(classes, 17, 29, seed=classes)
        noisy = scores + torch.randn(scores.shape)
        for x in (scores, noisy) if classes < 100 else (scores,):
            last = x.contiguous(memory_format=torch.channels_last)
            check(last, (67, 117))
            check_fast(last, (67, 117))
            strided = x.transpose(2, 3).contiguous().transpose(2, 3)
            check(strided, (67, 117))
            check_fast(strided, (67, 117))
            check(x[:, :, 1:-1, 2:], (67, 117))  # a crop: strided rows
    wide = torch.randn(1, 30, 17, 29)[:, ::2]  # channel-strided view
    check(wide, (67, 117))
    # batch of channels-last frames, as the CLIP adapter returns (view + permute)
    frames = torch.randn(3, 17, 29, 40).permute(0, 3, 1, 2)
    check(frames, (67, 117))


def test_half_precision_inputs():
    scores = smooth_scores(20, 30, 54, seed=5)
    for dtype in (torch.bfloat16, torch.float16):
        check(scores.to(dtype), (120, 214))
        check(scores.to(dtype).contiguous(memory_format=torch.channels_last), (120, 214))


def test_small_outputs_use_the_channels_last_kernel(no_fallback):
    """PyTorch takes its channels-last kernel when H + W <= 128, whatever the layout."""
    for classes in (2, 3, 9, 17):
        scores = torch.randn(1, classes, 8, 9)
        check(scores, (30, 31))
        check_fast(scores, (30, 31))


def test_three_classes_on_one_thread():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # PyTorch then takes the channels-last kernel for C == 3
        check(smooth_scores(3, 17, 29, seed=1) + torch.randn(1, 3, 17, 29), (67, 117))
    finally:
        torch.set_num_threads(threads)


def test_degenerate_sizes():
    check(torch.randn(2, 7, 1, 1), (33, 47))  # 1x1 input
    check(torch.randn(1, 124, 1, 1), (120, 214))
    check(torch.randn(1, 5, 1, 9), (40, 50))
    check(torch.randn(1, 5, 9, 1), (40, 50))
    scores = torch.randn(2, 12, 30, 54)
    check(scores, (30, 54))  # same size: argmax only
    check(scores, (15, 27))  # downscale
    check(scores, (17, 100))  # mixed
    check(scores, (30, 216))  # one axis unchanged
    check(scores, (120, 54))
    inf = scores.clone()
    inf[0, 0, 0, 0] = float("inf")  # same size: no interpolation, like the runner
    assert torch.equal(upsampled_argmax(inf, (30, 54)), plain_upsampled_argmax(inf, (30, 54)))
    assert upsampled_argmax(torch.randn(0, 3, 4, 5), (8, 9)).shape == (0, 8, 9)


def test_label_dtypes():
    check(smooth_scores(256, 9, 11, seed=0), (40, 41))
    labels = check(smooth_scores(300, 9, 11, seed=0), (40, 41))
    assert labels.dtype == torch.int64


def test_hundreds_of_tied_candidates(no_fallback):
    """256+ candidates per cell: no byte counter may wrap around."""
    for tied in (255, 256, 257, 300):
        scores = torch.zeros(1, 300, 9, 11)
        scores[:, 300 - tied :] = 1
        check_fast(scores, (40, 41))
        check_fast(scores + 1e-6 * torch.randn(scores.shape), (40, 41))


def test_fused_multiply_add_is_exact():
    """fma(a, b, c) rounds once, including where float64 would round twice."""
    one = 1 + 2.0**-12  # one * one = 1 + 2**-11 + 2**-24: halfway between two float32
    a = torch.tensor([one, one, one, -one], dtype=torch.float32)
    c = torch.tensor([2.0**-80, -(2.0**-80), 0.0, 2.0**-80], dtype=torch.float32)
    got = upsample._fma(a, a[:1].abs().expand(4), c).tolist()
    assert got == [1 + 2.0**-11 + 2.0**-23, 1 + 2.0**-11, 1 + 2.0**-11, -(1 + 2.0**-11)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2000, generator=g) * torch.exp2(torch.randint(-30, 30, (3, 2000), generator=g).float())
    got = upsample._fma(x[0], x[1], x[2])
    for i in range(0, 2000, 7):
        exact = Fraction(x[0, i].item()) * Fraction(x[1, i].item()) + Fraction(x[2, i].item())
        assert got[i].item() == nearest_float32(exact)


def nearest_float32(q: Fraction) -> float:
    guess = np.float32(float(q))
    options = [guess, np.nextafter(guess, np.float32(np.inf)), np.nextafter(guess, np.float32(-np.inf))]
    options.sort(key=lambda f: (abs(Fraction(float(f)) - q), int(np.array(f).view(np.int32)) & 1))
    return float(options[0])


def test_exact_path_is_calibrated_here():
    """On x86-64 builds of PyTorch the probe reproduces both CPU kernels bit for bit; where it
    does not, everything takes the plain path (still exact, only slower)."""
    assert exact_path_available() and exact_path_available(channels_last=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_takes_the_plain_path():
    scores = smooth_scores(20, 30, 54, seed=0).cuda()
    labels = upsampled_argmax(scores, (120, 214))
    assert labels.device.type == "cuda"
    assert torch.equal(labels, plain_upsampled_argmax(scores, (120, 214)))
