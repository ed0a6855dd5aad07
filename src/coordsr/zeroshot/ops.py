"""The degradation operator and its inverses on (C, H, W) tensors, plus the 8-fold self-ensemble.

The benchmark's LR image is ``D(HR)`` with ``D`` MATLAB's bicubic ``imresize`` (antialiased),
separable: ``D(x) = Mh x Mw^T`` with ``Mh`` (h, H) and ``Mw`` (w, W) from
:func:`coordsr.resize.resize_matrix`. Everything here is exact matrix algebra on those factors.

>>> import torch
>>> x = torch.rand(3, 12, 18)
>>> y = downscale(x, (6, 9))
>>> z = back_project(torch.zeros(3, 12, 18), y)
>>> bool((downscale(z, (6, 9)) - y).abs().max() < 1e-4)
True
"""

from __future__ import annotations

import torch

from coordsr.resize import resize_matrix


def operator(n_hr: int, n_lr: int, kernel: str = "cubic", device=None, dtype=torch.float32) -> torch.Tensor:
    """(n_lr, n_hr) matrix taking one axis of the HR grid down to the LR grid."""
    return resize_matrix(n_hr, n_lr, n_lr / n_hr, kernel=kernel, device=device, dtype=dtype)


def downscale(x: torch.Tensor, size: tuple[int, int], kernel: str = "cubic") -> torch.Tensor:
    """``D(x)``: (..., H, W) -> (..., h, w), antialiased like MATLAB's imresize."""
    H, W = x.shape[-2:]
    mh = operator(H, size[0], kernel, x.device, x.dtype)
    mw = operator(W, size[1], kernel, x.device, x.dtype)
    return mh @ x @ mw.T


def upscale_bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB bicubic interpolation (..., h, w) -> (..., H, W)."""
    h, w = x.shape[-2:]
    mh = resize_matrix(h, size[0], size[0] / h, device=x.device, dtype=x.dtype)
    mw = resize_matrix(w, size[1], size[1] / w, device=x.device, dtype=x.dtype)
    return mh @ x @ mw.T


def _pinv_rows(m: torch.Tensor, damping: float) -> torch.Tensor:
    """``m^T (m m^T + damping I)^-1``: (n_hr, n_lr), the (damped) right pseudo-inverse of m."""
    m64 = m.double()
    if m.shape[0] > m.shape[1]:  # more LR than HR samples on this axis: least squares
        return torch.linalg.pinv(m64).to(m.dtype)
    gram = m64 @ m64.T
    gram = gram + damping * torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram, m64).T.to(m.dtype)


def back_project(x: torch.Tensor, y: torch.Tensor, kernel: str = "cubic", damping: float = 0.0) -> torch.Tensor:
    """The HR image nearest to ``x`` (least squares) whose downscale is ``y``: x + D^+ (y - D x).

    ``D`` is separable, so its pseudo-inverse is the Kronecker product of the two axes'
    pseudo-inverses. ``damping`` > 0 trades exact consistency for less amplification of the
    LR image's quantisation noise (0 = exact projection).
    """
    H, W = x.shape[-2:]
    h, w = y.shape[-2:]
    mh = operator(H, h, kernel, x.device, x.dtype)
    mw = operator(W, w, kernel, x.device, x.dtype)
    ph, pw = _pinv_rows(mh, damping), _pinv_rows(mw, damping)
    return x + ph @ (y - mh @ x @ mw.T) @ pw.T


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips/rotations of the last two dims (k = 0 is the identity)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def undihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of :func:`dihedral`."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    if k >= 4:
        x = x.flip(-1)
    return x


def dihedral_size(size: tuple[int, int], k: int) -> tuple[int, int]:
    """(H, W) of an image of ``size`` after :func:`dihedral` k."""
    return (size[1], size[0]) if k % 2 else (size[0], size[1])


ENSEMBLE_ORDER = (0, 4, 2, 6, 1, 5, 3, 7)
"""The self-ensemble's transforms (:func:`dihedral`): identity, mirror, the two 180 degree turns,
then the 90 degree ones; an ensemble of n uses the first n."""
ENSEMBLES = (1, 2, 4, 8)


def self_ensemble(fn, x: torch.Tensor, n: int) -> torch.Tensor:
    """The mean of ``fn`` (a same-size image map) over the first ``n`` (1, 2, 4 or 8) transforms
    of ENSEMBLE_ORDER of ``x``, each mapped back. ``fn`` must return a new tensor (not ``x`` or a
    view of it): the passes are summed into its first result in place."""
    if n not in ENSEMBLES:
        raise ValueError(f"ensemble must be 1, 2, 4 or 8, got {n}")
    out = fn(x)
    for k in ENSEMBLE_ORDER[1:n]:
        out += undihedral(fn(dihedral(x, k)), k)
    return out / n if n > 1 else out
