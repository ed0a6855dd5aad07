"""MATLAB-compatible, differentiable resampling (DESIGN.md section 2).

``imresize`` reproduces MATLAB's ``imresize`` (bicubic with antialiasing by default): the
benchmark's LR images are made with it, and the "consistent" observation model fits a field
through it, so it must be exact and differentiable. Each axis is resampled by a dense
(out, in) weight matrix built the way MATLAB's ``contributions`` builds it (kernel stretched
by the scale when shrinking, symmetric padding folded into the matrix), so the operator is a
pair of matrix products: exact, differentiable, fast on CPU and GPU.

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
from typing import Callable

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
                  antialias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's contributions(): for each output pixel, the input pixels it reads (n_out, taps)
    long, symmetric padding folded in, and their weights (n_out, taps) float64, summing to 1."""
    fn, width = _check_kernel(kernel)
    if scale < 1 and antialias:
        h = lambda t: scale * fn(scale * t)  # noqa: E731  stretched kernel: MATLAB's antialiasing
        width = width / scale
    else:
        h = fn
    x = torch.arange(1, n_out + 1, dtype=torch.float64)
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


@lru_cache(maxsize=64)
def _weights_cpu(n_in: int, n_out: int, scale: float, kernel: str, antialias: bool) -> torch.Tensor:
    """MATLAB's contributions() as a dense (n_out, n_in) float64 matrix."""
    m, w = contributions(n_in, n_out, scale, kernel, antialias)
    mat = torch.zeros(n_out, n_in, dtype=torch.float64)
    mat.scatter_add_(1, m, w)
    return mat


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
    """The (n_out, n_in) matrix that resamples one axis like MATLAB's imresize."""
    if scale is None:
        scale = n_out / n_in
    mat = _weights_cpu(int(n_in), int(n_out), float(scale), kernel, bool(antialias))
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
    # MATLAB resizes the axis with the smaller scale first; the order only matters for speed
    # here (float arithmetic, no rounding in between), so shrink first to keep the middle small.
    if sy <= sx:
        if (oh, sy) != (h, 1.0):
            x = torch.matmul(resize_matrix(h, oh, sy, kernel=kernel, antialias=antialias,
                                           device=x.device, dtype=dtype), x)
        if (ow, sx) != (w, 1.0):
            x = torch.matmul(x, resize_matrix(w, ow, sx, kernel=kernel, antialias=antialias,
                                              device=x.device, dtype=dtype).T)
    else:
        if (ow, sx) != (w, 1.0):
            x = torch.matmul(x, resize_matrix(w, ow, sx, kernel=kernel, antialias=antialias,
                                              device=x.device, dtype=dtype).T)
        if (oh, sy) != (h, 1.0):
            x = torch.matmul(resize_matrix(h, oh, sy, kernel=kernel, antialias=antialias,
                                           device=x.device, dtype=dtype), x)
    return x


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
