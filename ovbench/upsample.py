"""Exact, fast `bilinear upsample -> argmax over classes` for class scores on CPU.

`upsampled_argmax(scores, size)` returns exactly what the runner's plain path returns,

    F.interpolate(scores[b:b+1].float(), size, mode="bilinear", align_corners=False).argmax(1)

(frame by frame; no interpolation at all when `size` already is the scores' size), but on
CPU it skips most of the work:

* Every output pixel interpolates the 2x2 low-resolution neighbours of its cell with
  non-negative weights, so its value for class c lies within [min, max] of the class's four
  neighbour scores (up to a few float32 roundings, covered by a margin). Per cell, L = max_c
  min_k s_c(k) bounds the winning value from below, and only classes whose max_k s_c(k)
  reaches L can win. Cells with a single candidate (the inside of regions: most cells of
  real score maps) get their label without computing any interpolated value.
* The remaining cells (boundaries) compute the interpolated scores of their few candidates
  with *exactly* PyTorch's CPU arithmetic and take the first maximum in class order, as
  `torch.argmax` does.

Bit-exactness. The CPU kernels of `upsample_bilinear2d` (float32) evaluate, with fused
multiply-adds where GCC contracted the C++ expressions (float32 everywhere; a fused
multiply-add rounds once):

  generic kernel (NCHW and strided inputs):
      src  = scale * (dst + 0.5) - 0.5       scale = float(in) / out, no FMA; clamp at 0
      i0 = min(floor(src), in-1); i1 = i0 + (i0 < in-1); l1 = clamp(src - i0, 0, 1); l0 = 1 - l1
      t_r  = fma(x[r, c0], w0, x[r, c1] * w1)               for r in (r0, r1)
      out  = fma(t_r0, h0, t_r1 * h1)
  channels-last kernel (channels-last inputs with C > 3, outputs with H + W <= 128, and
  C == 3 on one thread):
      src  = fma(scale, dst + 0.5, -0.5)     (otherwise as above)
      w00 = h0*w0, w01 = h0*w1, w10 = h1*w0, w11 = h1*w1
      out  = fma(x00, w00, fma(x01, w01, fma(x11, w11, x10 * w10)))   channels in whole vectors
      out  = fma(x11, w11, fma(x10, w10, fma(x00, w00, x01 * w01)))   the last C % V channels
  (V = the kernel's vector length in floats: 8 on this machine).

That is what this machine's build does; another build or CPU could contract differently.
So nothing is assumed: before the first use of each formula, a probe compares the
emulation with `F.interpolate` on random scores (several sizes, non-integer scales, both
layouts); a formula that does not reproduce it bit for bit is never used and every call
takes the plain path. fma(a, b, c) is emulated exactly: a*b is exact in float64, the float64
sum is rounded to odd (its error recovered with TwoSum), and rounding that to float32 is then
correctly rounded (53 >= 2*24 + 2).

The plain path is used on CUDA (and any non-CPU device), for downscaling, small outputs,
non-finite or huge (|s| > 2**126) scores, and whenever the candidate count makes the exact
path costlier than the plain one (e.g. pure noise with many classes).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["upsampled_argmax", "plain_upsampled_argmax", "exact_path_available"]

# Relative margin (2**-20 = 16 float32 ulps of the largest |score|) around the per-cell
# [min, max] bounds; the float32 evaluation error of the interpolation is below 8 ulps.
_MARGIN = 2.0**-20
_ABS_MARGIN = 2.0**-120  # covers subnormal rounding (absolute errors of a few 2**-149)
_MAX_ABS = 2.0**126  # larger scores could overflow inside the interpolation: plain path

# Cost model (fitted on a 2-core AMD EPYC, torch 2.15): the plain path costs about
# (60 + 3 C) ns per output pixel; the exact path, once its bounds are known, about 15 ns per
# candidate pixel of its ambiguous cells ("work"). It goes on only when that is at least
# `_SAFETY` times cheaper, else it falls back to the plain path.
_PLAIN_NS_PIXEL = 60.0
_PLAIN_NS_CLASS_PIXEL = 3.0
_FAST_NS_WORK = 15.0
_SAFETY = 2.0
_SAMPLE_STEP = 8  # a first estimate of the work from every 8th row of cells
# The float32 filter's values are within 16 ulps of the largest |score| of the kernel's; a
# lead of twice that (2 * 2**-19 relative, with slack) decides a pixel without exact arithmetic.
_FILTER = 2.0**-19
_CHUNK_BYTES = 1 << 22  # classes per pass of the bound computation: about 4 MiB of scores
_MIN_UNITS = 256  # a candidate width with fewer units is evaluated with the next larger one


def plain_upsampled_argmax(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The reference: the runner's per-frame float32 interpolate + argmax."""
    frames = scores.shape[0]
    labels = torch.empty((frames, *size), dtype=_label_dtype(scores.shape[1]), device=scores.device)
    for b in range(frames):
        labels[b] = _plain_frame(scores[b : b + 1].float(), tuple(size))
    return labels


def upsampled_argmax(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) floating scores -> (B, H, W) labels (uint8 if C <= 256 else int64),
    equal to `F.interpolate(scores[b:b+1].float(), size, mode="bilinear",
    align_corners=False).argmax(1)` for every frame b (plain argmax when size == (h, w))."""
    if scores.dim() != 4 or not scores.is_floating_point():
        raise ValueError(f"expected floating scores (B, C, h, w), got {tuple(scores.shape)} {scores.dtype}")
    size = (int(size[0]), int(size[1]))
    frames, classes, height, width = scores.shape
    labels = torch.empty((frames, *size), dtype=_label_dtype(classes), device=scores.device)
    if labels.numel() == 0:
        return labels
    for b in range(frames):  # one frame at a time: C x H x W floats can be large
        frame = scores[b : b + 1].float()  # as the runner: keeps the memory format
        result = None
        if classes == 1:
            result = 0  # argmax over a single class (whatever its scores)
        elif frame.device.type == "cpu" and size != (height, width):
            result = _fast_frame(frame, size)
        if result is None:
            result = _plain_frame(frame, size)
        labels[b] = result
    return labels


def exact_path_available(channels_last: bool = False) -> bool:
    """Whether this build's CPU kernel (generic, or channels-last) is reproduced exactly."""
    return _calibrated("cl" if channels_last else "generic") is not None


# --------------------------------------------------------------------------------------
# plain path


def _label_dtype(classes: int) -> torch.dtype:
    return torch.uint8 if classes <= 256 else torch.int64


def _plain_frame(frame: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(frame.shape[-2:]) != size:
        frame = F.interpolate(frame, size=size, mode="bilinear", align_corners=False)
    return frame.argmax(dim=1)[0]


# --------------------------------------------------------------------------------------
# PyTorch's index/weight computation and arithmetic, emulated exactly


def _kernel_of(frame: torch.Tensor, size: tuple[int, int]) -> str:
    """Which CPU kernel F.interpolate picks for this (1, C, h, w) float32 frame
    (see _use_vectorized_kernel_cond_2d and upsample_bilinear2d_kernel_impl_float)."""
    classes = frame.shape[1]
    if (frame.is_contiguous(memory_format=torch.channels_last) and classes > 3) or size[0] + size[1] <= 128:
        return "cl"
    if classes == 3 and torch.get_num_threads() == 1:
        return "cl"
    return "generic"


def _fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 fused multiply-add a*b + c with a single rounding (tensors broadcast)."""
    p = a.double() * b.double()  # exact: 24 + 24 bits
    c = c.double()
    s = p + c
    # TwoSum: p + c == s + e exactly
    bp = s - p
    e = (p - (s - bp)) + (c - bp)
    # round s to odd: if inexact and s has an even last bit, step to the odd neighbour on e's side
    bits = s.view(torch.int64)
    fix = (e != 0) & ((bits & 1) == 0)
    if bool(fix.any()):
        step = torch.where((e > 0) == (s > 0), 1, -1)
        s = torch.where(fix, (bits + step).view(torch.float64), s)
    return s.float()


@functools.lru_cache(maxsize=256)
def _axis(n_in: int, n_out: int, fused: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per output index along one axis: i0, i1 (int64) and weights l0, l1 (float32), as
    compute_source_index_and_lambda computes them (align_corners=False, no scale given)."""
    if n_in == n_out:
        i0 = torch.arange(n_out)
        return i0, i0.clone(), torch.ones(n_out), torch.zeros(n_out)
    scale = torch.tensor(float(n_in), dtype=torch.float32) / torch.tensor(float(n_out), dtype=torch.float32)
    dst = torch.arange(n_out, dtype=torch.float32) + 0.5
    if fused:
        src = _fma(scale, dst, torch.tensor(-0.5))
    else:
        src = scale * dst - 0.5
    src = src.clamp_min(0)
    i0 = src.floor().long().clamp_max(n_in - 1)
    l1 = (src - i0.float()).clamp(0, 1)
    l0 = 1 - l1
    i1 = torch.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, l0, l1


def _emulate(x: torch.Tensor, size: tuple[int, int], kernel: str, vector: int = 0) -> torch.Tensor:
    """Full emulated interpolation of (C, h, w) float32 scores (used by the probe)."""
    fused = kernel == "cl"
    r0, r1, h0, h1 = _axis(x.shape[1], size[0], fused)
    c0, c1, w0, w1 = _axis(x.shape[2], size[1], fused)
    rows0, rows1 = x[:, r0], x[:, r1]
    x00, x01, x10, x11 = rows0[:, :, c0], rows0[:, :, c1], rows1[:, :, c0], rows1[:, :, c1]
    tail = torch.arange(x.shape[0])[:, None, None] >= _vector_end(x.shape[0], vector)
    return _combine(x00, x01, x10, x11, h0[:, None], h1[:, None], w0, w1, kernel, tail)


def _vector_end(classes: int, vector: int) -> int:
    """Channels below this index take the channels-last kernel's vector formula."""
    return classes - classes % vector if vector else 0


def _combine(x00, x01, x10, x11, h0, h1, w0, w1, kernel: str, tail=None) -> torch.Tensor:
    """Interpolated values with the kernel's exact float32 arithmetic; `tail` (bool,
    broadcastable) marks the channels-last kernel's scalar remainder channels."""
    if kernel == "generic":
        t0 = _fma(x00, w0, x01 * w1)
        t1 = _fma(x10, w0, x11 * w1)
        return _fma(t0, h0, t1 * h1)
    w00, w01, w10, w11 = h0 * w0, h0 * w1, h1 * w0, h1 * w1
    values = _fma(x00, w00, _fma(x01, w01, _fma(x11, w11, x10 * w10)))
    if tail is not None and bool(tail.any()):
        scalar = _fma(x11, w11, _fma(x10, w10, _fma(x00, w00, x01 * w01)))
        values = torch.where(tail, scalar, values)
    return values


# (classes, h, w, H, W, channels-last input): small, but with non-integer scales, edge
# cells, both kernels, and the channels-last kernel's vector/scalar split of the channels
_PROBE_CASES = [
    (5, 17, 29, 67, 117, False),
    (2, 13, 21, 50, 83, False),
    (3, 4, 9, 9, 130, False),
    (2, 30, 54, 120, 214, False),
    (13, 17, 29, 67, 117, True),
    (37, 7, 5, 29, 23, True),
    (20, 8, 9, 30, 31, False),
    (2, 7, 5, 29, 23, False),
    (6, 1, 6, 3, 131, True),
]
_VECTOR_SIZES = (8, 16, 4, 32, 64)
_calibration: dict[tuple[str, str], int | None] = {}


def _calibrated(kernel: str) -> int | None:
    """None if this build's `kernel` is not reproduced exactly; else 0 for the generic
    kernel and the vector length in floats for the channels-last kernel."""
    key = (kernel, torch.backends.cpu.get_cpu_capability())
    if key not in _calibration:
        if kernel == "generic":
            _calibration[key] = 0 if _probe(kernel, 0) else None
        else:
            _calibration[key] = next((v for v in _VECTOR_SIZES if _probe(kernel, v)), None)
    return _calibration[key]


def _probe(kernel: str, vector: int) -> bool:
    generator = torch.Generator().manual_seed(1234)
    for classes, h, w, H, W, channels_last in _PROBE_CASES:
        x = torch.randn(1, classes, h, w, generator=generator) * 3
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if _kernel_of(x, (H, W)) != kernel:
            continue
        with torch.no_grad():
            expected = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)[0]
        if not torch.equal(_emulate(x[0].contiguous(), (H, W), kernel, vector), expected):
            return False
    return True


# --------------------------------------------------------------------------------------
# the fast path


@functools.lru_cache(maxsize=256)
def _segments(n_in: int, n_out: int, fused: bool):
    """Group the output indices of one axis by their low-resolution cell i0 into segments of
    at most `span` consecutive indices (padded by repeating the last one). Returns
    (cell (S,), index (S, span), l0 (S, span), l1 (S, span), i1 (S,), map (n_out,) = i0)."""
    i0, i1, l0, l1 = _axis(n_in, n_out, fused)
    bounds = torch.nonzero(torch.diff(i0)).flatten().add(1).tolist()
    starts = [0] + bounds
    ends = bounds + [n_out]
    runs = [end - start for start, end in zip(starts, ends)]
    # the span that pads least (e.g. 4, not 5, for 213 -> 853 where a few runs have 5)
    ratio = n_out / n_in
    span = min({max(1, math.floor(ratio)), max(1, math.ceil(ratio))}, key=lambda s: (sum(-(-n // s) * s for n in runs), s))
    cells, index = [], []
    for start, end in zip(starts, ends):
        for s in range(start, end, span):
            e = min(s + span, end)
            idx = list(range(s, e)) + [e - 1] * (span - (e - s))
            cells.append(int(i0[s]))
            index.append(idx)
    cell = torch.tensor(cells, dtype=torch.int64)
    index = torch.tensor(index, dtype=torch.int64)
    return cell, index, l0[index], l1[index], i1[index[:, 0]], i0


def _cell_min(x: torch.Tensor, op) -> torch.Tensor:
    """op-reduction (minimum or maximum) of every 2x2 cell: cell (r, c) covers rows r and
    min(r + 1, h - 1) and columns c and min(c + 1, w - 1)."""
    rows = torch.empty_like(x)
    if x.shape[1] > 1:
        op(x[:, :-1], x[:, 1:], out=rows[:, :-1])
    rows[:, -1] = x[:, -1]
    cells = torch.empty_like(x)
    if x.shape[2] > 1:
        op(rows[:, :, :-1], rows[:, :, 1:], out=cells[:, :, :-1])
    cells[:, :, -1] = rows[:, :, -1]
    return cells


def _fast_frame(frame: torch.Tensor, size: tuple[int, int]) -> torch.Tensor | None:
    """Labels of one (1, C, h, w) float32 CPU frame, or None where the plain path is the
    better (or the only exact) choice."""
    _, classes, height, width = frame.shape
    out_h, out_w = size
    if out_h < height or out_w < width:
        return None  # downscaling: the plain path is cheaper
    if out_h * out_w < 4 * height * width:
        return None  # too little upscaling to repay the per-cell bounds
    kernel = _kernel_of(frame, size)
    vector = _calibrated(kernel)
    if vector is None:
        return None
    x = frame[0].contiguous()
    low, high = (float(v) for v in torch.aminmax(x))
    bound = max(high, -low)
    if not bound <= _MAX_ABS:  # also catches NaN and infinities
        return None
    margin = bound * _MARGIN + _ABS_MARGIN
    fused = kernel == "cl"
    rcell, rindex, rl0, rl1, ri1, rmap = _segments(height, out_h, fused)
    ccell, cindex, cl0, cl1, ci1, cmap = _segments(width, out_w, fused)
    span = rindex.shape[1] * cindex.shape[1]
    budget = (_PLAIN_NS_PIXEL + _PLAIN_NS_CLASS_PIXEL * classes) * out_h * out_w / (_FAST_NS_WORK * _SAFETY)
    if height >= 2 * _SAMPLE_STEP:  # give up early on hopeless frames (pure noise, ...)
        rows = torch.arange(0, height, _SAMPLE_STEP)
        top, bottom = x.index_select(1, rows), x.index_select(1, (rows + 1).clamp_max(height - 1))
        low_s, high_s = torch.minimum(top, bottom), torch.maximum(top, bottom)  # (C, n, w)
        low_s = torch.minimum(low_s[:, :, :-1], low_s[:, :, 1:])
        high_s = torch.maximum(high_s[:, :, :-1], high_s[:, :, 1:])
        counts_s = _count(high_s >= low_s.amax(dim=0) - 2 * margin)
        several = counts_s[counts_s > 1].long()
        estimate = float(_pow2(several).clamp_max(classes).sum()) * (height / rows.shape[0]) * span
        if estimate > 2 * budget:
            return None
    # per cell: the best class minimum over the 4 neighbours; candidates: classes whose
    # maximum reaches it (in chunks of classes, so that the intermediates stay in cache)
    chunk = max(1, _CHUNK_BYTES // (4 * height * width))
    threshold = None
    for start in range(0, classes, chunk):
        best = _cell_min(x[start : start + chunk], torch.minimum).amax(dim=0)
        threshold = best if threshold is None else torch.maximum(threshold, best, out=threshold)
    threshold -= 2 * margin
    candidate = torch.empty((classes, height, width), dtype=torch.bool)
    for start in range(0, classes, chunk):
        torch.ge(_cell_min(x[start : start + chunk], torch.maximum), threshold, out=candidate[start : start + chunk])
    small = classes <= 255
    counts = _count(candidate)  # >= 1
    ids = torch.arange(classes, dtype=torch.uint8 if small else torch.int32)[:, None, None]
    single = (candidate.view(torch.uint8) * ids).sum(dim=0, dtype=ids.dtype)  # the class where counts == 1
    seg_counts = counts[rcell][:, ccell].to(torch.int64)  # (Sy, Sx)
    units = (seg_counts > 1).nonzero()  # (n, 2): segment pairs whose cell has several candidates
    dtype = _label_dtype(classes)
    if units.shape[0]:
        widths = _bucket(seg_counts[units[:, 0], units[:, 1]], classes)
        if float(widths.sum()) * span > budget:
            return None
    labels = single.to(dtype).index_select(1, cmap).index_select(0, rmap)
    if units.shape[0] == 0:
        return labels
    flat = x.view(-1)
    plane = height * width
    # classes that are a candidate somewhere (often few of a large vocabulary)
    active = candidate.view(torch.uint8).view(classes, -1).amax(dim=1).nonzero()[:, 0]
    if active.shape[0] < classes:
        candidate = candidate.index_select(0, active)
    order = torch.arange(active.shape[0], 0, -1, dtype=torch.int32)[:, None]
    for k in torch.unique(widths).tolist():
        chosen = widths == k
        sy, sx = units[chosen, 0], units[chosen, 1]
        r, c, r1, c1 = rcell[sy], ccell[sx], ri1[sy], ci1[sx]
        # the candidates in class order, then (up to k) non-candidates, which cannot win
        cls = (candidate[:, r, c] * order).topk(min(k, order.shape[0]), dim=0).indices.T.contiguous()  # (n, k)
        if active.shape[0] < classes:
            cls = active[cls]
        base = cls * plane
        corners = [flat[base + (rr * width + cc)[:, None]] for rr, cc in ((r, c), (r, c1), (r1, c), (r1, c1))]
        h0, h1 = rl0[sy], rl1[sy]  # (n, span_y)
        w0, w1 = cl0[sx], cl1[sx]  # (n, span_x)
        winner = _block_argmax(corners, cls, h0, h1, w0, w1, 2 * _FILTER * bound + _ABS_MARGIN, kernel, vector, classes)
        labels[rindex[sy][:, :, None], cindex[sx][:, None, :]] = winner.to(dtype)
    return labels


def _count(mask: torch.Tensor) -> torch.Tensor:
    """Number of True along dim 0 (as bytes, much faster than a bool sum; in uint8 only
    where it cannot wrap around)."""
    return mask.view(torch.uint8).sum(dim=0, dtype=torch.uint8 if mask.shape[0] <= 255 else torch.int32)


def _pow2(counts: torch.Tensor) -> torch.Tensor:
    """The next power of two, at least 2 (log2 is exact on powers of two)."""
    return torch.exp2(torch.ceil(torch.log2(counts.double().clamp_min(2)))).long()


def _bucket(counts: torch.Tensor, classes: int) -> torch.Tensor:
    """Candidate widths: the next power of two (at least 2), at most the class count; a
    width used by few units is merged into the next one (fewer, larger batches)."""
    widths = _pow2(counts).clamp_max(classes)
    values, sizes = torch.unique(widths, return_counts=True)
    for value, larger, size in zip(values.tolist(), values.tolist()[1:], sizes.tolist()):
        if size < _MIN_UNITS:
            widths[widths == value] = larger
    return widths


def _block_argmax(corners, cls, h0, h1, w0, w1, gap, kernel, vector, classes):
    """First-maximum class over the k candidates `cls` (n, k) of each (n, span_y, span_x)
    block. A float32 evaluation (error < 16 ulps of the largest score) decides every pixel
    whose best candidate leads the others by more than `gap`; the rest are evaluated with
    the kernel's exact arithmetic."""
    x00, x01, x10, x11 = (v[:, :, None] for v in corners)  # (n, k, 1)
    a0, a1 = w0[:, None, :], w1[:, None, :]  # (n, 1, span_x)
    t0 = x00 * a0 + x01 * a1  # (n, k, span_x)
    t1 = x10 * a0 + x11 * a1
    values = t0[:, :, None, :] * h0[:, None, :, None] + t1[:, :, None, :] * h1[:, None, :, None]  # (n, k, sy, sx)
    best = values.amax(dim=1, keepdim=True)
    near = values >= best - gap
    n_near = _count(near.transpose(0, 1))  # (n, sy, sx), >= 1
    winner = (near * cls[:, :, None, None].to(torch.int32)).sum(dim=1, dtype=torch.int32)  # right where n_near == 1
    close = (n_near > 1).nonzero()  # (m, 3): unit, row, column
    if close.shape[0]:
        unit, row, col = close.unbind(1)
        y00, y01, y10, y11 = (v[unit] for v in corners)  # (m, k)
        b0, b1 = w0[unit, col][:, None], w1[unit, col][:, None]
        g0, g1 = h0[unit, row][:, None], h1[unit, row][:, None]
        cand = cls[unit]
        tail = cand >= _vector_end(classes, vector) if kernel == "cl" else None
        exact = _combine(y00, y01, y10, y11, g0, g1, b0, b1, kernel, tail)  # (m, k)
        winner[unit, row, col] = cand.gather(1, exact.argmax(dim=1, keepdim=True))[:, 0].to(torch.int32)
    return winner
