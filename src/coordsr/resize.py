"""MATLAB-compatible, differentiable resampling (DESIGN.md section 2).

``imresize`` reproduces MATLAB's ``imresize`` (bicubic with antialiasing by default): the
benchmark's LR images are made with it, and the "consistent" observation model fits a field
through it, so it must be exact and differentiable. Each axis is resampled from the taps
MATLAB's ``contributions`` computes (kernel stretched by the scale when shrinking, symmetric
padding folded into the indices): an output pixel is a weighted sum of the few input pixels
its kernel covers, gathered a tap at a time (``resample_axis``), so memory is the images and
(out, taps) tables, never an (out, in) matrix: a 16000-wide row doubled is 6 taps per output
pixel, not 32000 x 16000 weights. Exact, differentiable, on any device. ``resize_matrix``
still gives the dense operator for code that wants one (the consistent fit, on its crops).

Written here rather than taken from a library because none offers MATLAB's exact kernels,
antialiasing and boundary handling as a differentiable operator over arbitrary scales with
box and Gaussian kernels too (the test suite checks it against the independent
``bicubic-pytorch`` package and a literal transcription of MATLAB's algorithm).

>>> x = torch.arange(16.).reshape(1, 1, 4, 4)
>>> imresize(x, scale=0.5).shape
torch.Size([1, 1, 2, 2])
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Iterable, Iterator

import torch

Kernel = Callable[[torch.Tensor], torch.Tensor]


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def box(x: torch.Tensor) -> torch.Tensor:
    """Box kernel (MATLAB's 'box'): area averaging when shrinking by an integer factor."""
    return ((x >= -0.5) & (x < 0.5)).to(x.dtype)


def triangle(x: torch.Tensor) -> torch.Tensor:
    """Triangle kernel (MATLAB's 'bilinear')."""
    return (1 - x.abs()).clamp(min=0)


def lanczos3(x: torch.Tensor) -> torch.Tensor:
    """Lanczos kernel with a = 3 (MATLAB's 'lanczos3')."""
    return torch.sinc(x) * torch.sinc(x / 3) * (x.abs() < 3)


def gaussian(x: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """Gaussian kernel, sigma in pixels of the coarser grid (an optical blur model)."""
    return torch.exp(-0.5 * (x / sigma) ** 2)


# name -> (kernel, support width in pixels of the coarser grid)
KERNELS: dict[str, tuple[Kernel, float]] = {
    "cubic": (cubic, 4.0),
    "box": (box, 1.0),
    "triangle": (triangle, 2.0),
    "lanczos3": (lanczos3, 6.0),
    "gaussian": (gaussian, 4.0),  # +-4 sigma at the default sigma = 0.5
}


def _check_kernel(kernel: str) -> tuple[Kernel, float]:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")
    return KERNELS[kernel]


def contributions(n_in: int, n_out: int, scale: float, kernel: str = "cubic",
                  antialias: bool = True, outputs: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's contributions(): for each output pixel, the input pixels it reads (n_out, taps)
    long, symmetric padding folded in, and their weights (n_out, taps) float64, summing to 1.
    ``outputs`` (o0, o1): those output pixels' rows only (the same values)."""
    fn, width = _check_kernel(kernel)
    if scale < 1 and antialias:
        h = lambda t: scale * fn(scale * t)  # noqa: E731  stretched kernel: MATLAB's antialiasing
        width = width / scale
    else:
        h = fn
    o0, o1 = outputs or (0, n_out)
    x = torch.arange(o0 + 1, o1 + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input pixel units (1-based)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # (n_out, taps)
    w = h(u[:, None] - idx)
    w = w / w.sum(dim=1, keepdim=True)
    # Symmetric padding: index sequence 1..n, n..1 repeated (MATLAB's aux array).
    i0 = (idx - 1).long()
    period = 2 * n_in
    m = torch.remainder(i0, period)
    m = torch.where(m >= n_in, period - 1 - m, m)
    return m, w


def _n_taps(scale: float, kernel: str, antialias: bool) -> int:
    width = _check_kernel(kernel)[1]
    return int(math.ceil(width / scale if scale < 1 and antialias else width)) + 2


def taps(n_in: int, n_out: int, scale: float | None = None, *, kernel: str = "cubic", antialias: bool = True,
         device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, weights), each (n_out, taps): output pixel i of one axis is
    ``sum_t weights[i, t] * input[indices[i, t]]``, as MATLAB's imresize computes it; the taps
    whose weight is 0 for every output pixel are left out (MATLAB drops them too).

    >>> idx, w = taps(4, 8)
    >>> tuple(idx.shape), bool(torch.allclose(w.sum(1), torch.ones(8, dtype=torch.float64)))
    ((8, 4), True)
    """
    scale = n_out / n_in if scale is None else float(scale)
    m, w = contributions(int(n_in), int(n_out), scale, kernel, bool(antialias))
    used = (w != 0).any(dim=0)
    used[0] |= not bool(used.any())
    return m[:, used].to(device), w[:, used].to(device=device, dtype=dtype)


CHUNK = 48
"""Fewest output pixels of one axis resampled by one small dense block, unless a block would be
larger than ``BLOCK_ELEMENTS`` (measured best on a 2-core CPU for a 3 x 1024-row image: 32-64;
a 256 -> 1024 bicubic 105 -> 38-53 ms against the whole dense matrix). Thin images take more
a block (``CHUNK_WORK``): fewer, larger products."""
CHUNK_WORK = 1 << 22
"""Multiply-adds one block's product may reach when the chunk grows past ``CHUNK``."""
BLOCK_ELEMENTS = 1 << 18
"""Most weights in one block (2 MB in float64; the taps it is made from, a fraction of that):
fewer output pixels a block when each reads very many input pixels (a big shrink)."""
CACHED_PLAN_ELEMENTS = 1 << 18
"""Plans of at most this many weights (2 MB) are kept for the next call (small images, training)."""


def _chunk(n_in: int, n_out: int, n_taps: int, lines: int) -> int:
    """Output pixels a block: ``CHUNK``, doubled while the block and its product (``lines`` rows
    of the other axes) stay within ``BLOCK_ELEMENTS`` and ``CHUNK_WORK``, halved while the block
    is over ``BLOCK_ELEMENTS``."""
    def size(k: int) -> int:  # weights of a block of k outputs: k x the input run they read
        return k * min(n_in, math.ceil(k * n_in / n_out) + n_taps)

    k = CHUNK
    while k < n_out and size(2 * k) <= BLOCK_ELEMENTS and lines * size(2 * k) <= CHUNK_WORK:
        k *= 2
    while k > 1 and size(k) > BLOCK_ELEMENTS:
        k //= 2
    return max(1, min(k, n_out))


def _blocks(n_in: int, n_out: int, scale: float, kernel: str, antialias: bool,
            chunk: int) -> Iterator[tuple[int, int, int, torch.Tensor]]:
    """(o0, lo, hi, block), made one at a time: output pixels [o0, o0 + len(block)) of an axis
    are ``block`` (a dense (chunk, hi - lo) float64 matrix of their ``contributions``; a repeated
    index adds its weights) times input pixels [lo, hi)."""
    for o0 in range(0, n_out, chunk):
        o1 = min(n_out, o0 + chunk)
        m, w = contributions(n_in, n_out, scale, kernel, antialias, outputs=(o0, o1))
        read = m[w != 0]
        lo, hi = (int(read.min()), int(read.max()) + 1) if read.numel() else (0, 1)
        block = torch.zeros(o1 - o0, hi - lo, dtype=torch.float64)
        block.scatter_add_(1, (m - lo).clamp_(0, hi - lo - 1), torch.where(w != 0, w, 0.0))
        yield o0, lo, hi, block


@lru_cache(maxsize=64)
def _cached_plan(n_in: int, n_out: int, scale: float, kernel: str, antialias: bool, chunk: int):
    return list(_blocks(n_in, n_out, scale, kernel, antialias, chunk))


def plan(n_in: int, n_out: int, scale: float | None = None, *, kernel: str = "cubic", antialias: bool = True,
         lines: int = 1, device=None, dtype=torch.float64) -> Iterator[tuple[int, int, int, torch.Tensor]]:
    """The blocks ``resample_axis`` multiplies by, for one axis of ``n_in`` pixels resampled to
    ``n_out``, in an image of ``lines`` pixels along the other axes (see ``_blocks``). Small plans
    are cached; larger ones are made a block at a time, as they are used."""
    scale = n_out / n_in if scale is None else float(scale)
    n_taps = _n_taps(scale, kernel, antialias)
    key = (int(n_in), int(n_out), scale, kernel, bool(antialias))
    chunk = _chunk(key[0], key[1], n_taps, max(1, int(lines)))
    if chunk * key[0] + key[1] * n_taps <= CACHED_PLAN_ELEMENTS:
        blocks = iter(_cached_plan(*key, chunk))
    else:
        blocks = _blocks(*key, chunk)
    return ((o0, lo, hi, b.to(device=device, dtype=dtype)) for o0, lo, hi, b in blocks)


def resample_axis(x: torch.Tensor, dim: int, n_out: int,
                  blocks: Iterable[tuple[int, int, int, torch.Tensor]]) -> torch.Tensor:
    """Resample ``x`` along ``dim`` (-2: rows, -1: columns) to ``n_out`` pixels by the ``blocks``
    of ``plan``: a chunk of output pixels reads a short run of input pixels and is one small
    dense matrix product with it (BLAS-fast, exact), so memory is the output and one block,
    never an (n_out, n_in) matrix. Differentiable in ``x``."""
    if dim not in (-1, -2, x.dim() - 1, x.dim() - 2):
        raise ValueError(f"resample_axis works on the last two dims, got dim={dim}")
    rows = dim in (-2, x.dim() - 2)
    if torch.is_grad_enabled() and x.requires_grad:
        parts = [torch.matmul(b, x.narrow(-2, lo, hi - lo)) if rows else torch.matmul(x.narrow(-1, lo, hi - lo), b.T)
                 for _, lo, hi, b in blocks]
        return torch.cat(parts, dim=-2 if rows else -1)
    shape = list(x.shape)
    shape[-2 if rows else -1] = n_out
    out = x.new_empty(shape)
    for o0, lo, hi, b in blocks:
        if rows:
            torch.matmul(b, x.narrow(-2, lo, hi - lo), out=out.narrow(-2, o0, b.shape[0]))
        else:
            out.narrow(-1, o0, b.shape[0]).copy_(torch.matmul(x.narrow(-1, lo, hi - lo), b.T))
    return out


def imresize_bytes(shape: tuple[int, ...], size: tuple[int, int], *, kernel: str = "cubic",
                   antialias: bool = True, itemsize: int = 8) -> int:
    """Peak bytes of ``imresize`` of an (..., h, w) tensor of ``itemsize``-byte floats to
    ``size``, besides its input: the half-way image, the output, and one block with its product
    and the taps it is made from (``contributions``, about 96 bytes a tap with its temporaries):
    what a memory estimate counts (without autograd; with it, the output twice).

    >>> imresize_bytes((3, 2, 16000), (4, 32000)) < 64 * 2**20  # not 32000 x 16000 x 8 bytes = 4 GB
    True
    """
    *lead, h, w = shape
    oh, ow = int(size[0]), int(size[1])
    c = math.prod(lead) if lead else 1
    sy, sx = oh / h, ow / w
    if sy <= sx:  # rows first, then columns of oh rows
        mid, lines = c * oh * w, c * oh
    else:
        mid, lines = c * h * ow, c * h
    product = min(lines * ow, max(lines * CHUNK, CHUNK_WORK))  # a columns block's product, before its copy
    taps_bytes = 96 * BLOCK_ELEMENTS  # one block's contributions, with their temporaries
    return itemsize * (mid + c * oh * ow + product) + 8 * BLOCK_ELEMENTS + taps_bytes


def imresize_rows(x: torch.Tensor, size: tuple[int, int], rows: tuple[int, int], *, kernel: str = "cubic",
                  antialias: bool = True) -> torch.Tensor:
    """Rows [r0, r1) of ``imresize(x, size, scale=size / x's size)`` for a 2-D ``x`` (h, w), from
    the kernels' taps alone: memory of the rows asked for, not of the (H, h) and (W, w)
    operators (the same values, up to the order of float additions)."""
    h, w = x.shape
    (oh, ow), (r0, r1) = size, rows
    m, wt = contributions(h, oh, oh / h, kernel, antialias)
    m, wt = m[r0:r1], wt[r0:r1].to(x.dtype)
    part = x.new_zeros(r1 - r0, w)  # the rows axis, a tap at a time
    for t in range(m.shape[1]):
        part += wt[:, t, None] * x[m[:, t]]
    m, wt = contributions(w, ow, ow / w, kernel, antialias)
    wt = wt.to(x.dtype)
    out = x.new_zeros(r1 - r0, ow)
    for t in range(m.shape[1]):
        out += part[:, m[:, t]] * wt[:, t]
    return out


def resize_matrix(n_in: int, n_out: int, scale: float | None = None, *, kernel: str = "cubic",
                  antialias: bool = True, device=None, dtype=torch.float32) -> torch.Tensor:
    """The dense (n_out, n_in) matrix that resamples one axis like MATLAB's imresize (built
    from ``taps`` in float64 each call, not kept: n_out x n_in x 8 bytes while it is made)."""
    m, w = taps(n_in, n_out, scale, kernel=kernel, antialias=antialias)
    mat = torch.zeros(int(n_out), int(n_in), dtype=torch.float64)
    mat.scatter_add_(1, m, w)
    return mat.to(device=device, dtype=dtype)


def output_size(h: int, w: int, scale: float | tuple[float, float]) -> tuple[int, int]:
    """MATLAB's rule: ceil(in * scale) on each axis."""
    sy, sx = (scale, scale) if isinstance(scale, (int, float)) else scale
    return int(math.ceil(h * sy - 1e-9)), int(math.ceil(w * sx - 1e-9))


def imresize(x: torch.Tensor, size: tuple[int, int] | None = None, *,
             scale: float | tuple[float, float] | None = None, kernel: str = "cubic",
             antialias: bool = True) -> torch.Tensor:
    """Resize the last two dims (H, W) of ``x`` like MATLAB's ``imresize``; differentiable.

    Give ``size`` (out_h, out_w), ``scale`` (a factor, or (sy, sx)), or both: with both, the
    kernel uses ``scale`` and the output has ``size`` (MATLAB's behaviour when the factor is
    given is size = ceil(in * scale)). Works on any leading dims, dtype and device.
    """
    if x.dim() < 2:
        raise ValueError(f"imresize needs at least 2 dims (H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    _check_kernel(kernel)
    if scale is None and size is None:
        raise ValueError("imresize needs size or scale")
    if scale is not None:
        sy, sx = (float(scale), float(scale)) if isinstance(scale, (int, float)) else map(float, scale)
        if sy <= 0 or sx <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if size is None:
            size = output_size(h, w, (sy, sx))
    else:
        sy, sx = size[0] / h, size[1] / w
    oh, ow = int(size[0]), int(size[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"output size must be at least 1x1, got {oh}x{ow}")
    dtype = x.dtype if x.dtype.is_floating_point else torch.float32
    x = x.to(dtype)

    def rows(x):
        if (oh, sy) == (h, 1.0):
            return x
        return resample_axis(x, -2, oh, plan(h, oh, sy, kernel=kernel, antialias=antialias,
                                             lines=x.numel() // max(h, 1), device=x.device, dtype=dtype))

    def cols(x):
        if (ow, sx) == (w, 1.0):
            return x
        return resample_axis(x, -1, ow, plan(w, ow, sx, kernel=kernel, antialias=antialias,
                                             lines=x.numel() // max(w, 1), device=x.device, dtype=dtype))

    # MATLAB resizes the axis with the smaller scale first; the order only matters for speed
    # here (float arithmetic, no rounding in between), so shrink first to keep the middle small.
    return cols(rows(x)) if sy <= sx else rows(cols(x))


def downsample(x: torch.Tensor, size: tuple[int, int], kernel: str = "cubic") -> torch.Tensor:
    """The observation operator: HR (..., H, W) -> LR (..., h, w) through ``kernel``."""
    h, w = x.shape[-2:]
    return imresize(x, size, scale=(size[0] / h, size[1] / w), kernel=kernel, antialias=True)


def imresize_np(img, size=None, *, scale=None, kernel: str = "cubic", antialias: bool = True):
    """imresize for an (H, W, C) or (H, W) numpy float array; returns float64, unclipped."""
    import numpy as np

    a = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
    chw = a.permute(2, 0, 1) if a.dim() == 3 else a
    out = imresize(chw, size, scale=scale, kernel=kernel, antialias=antialias)
    out = out.permute(1, 2, 0) if a.dim() == 3 else out
    return out.numpy()
