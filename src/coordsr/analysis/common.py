"""What every analysis shares: the luma of an image and the positions of the input's pixel
centres on a denser grid drawn over the same [-1, 1]^2 (DESIGN.md section 1).

An input of n pixels drawn at integer scale s has its pixel centre j at dense index
s j + (s - 1) / 2: on a dense pixel for odd s, half-way between two for even s.

>>> center_index(3, 4)
5.5
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 luma weights on R, G, B in [0, 1] (the protocol's Y without its offset and range)."""


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 luma in [0, 1] units of an (H, W[, C]) image: BT.601 on RGB(A), the grey
    channel of L(A).

    >>> float(luma(np.ones((1, 1, 3)))[0, 0])
    1.0
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    if image.shape[2] >= 3:
        return image[:, :, :3] @ LUMA
    return image[:, :, 0]


def center_index(j: int | np.ndarray, scale: int) -> float | np.ndarray:
    """Dense index (fractional) of input pixel centre ``j`` on a grid ``scale`` times finer."""
    return scale * j + (scale - 1) / 2


def sample_at(dense: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``dense`` along ``axis`` at fractional indices ``pos``
    (exact where ``pos`` is a whole number)."""
    pos = np.asarray(pos, dtype=np.float64)
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    hi = np.minimum(lo + 1, dense.shape[axis] - 1)
    a, b = np.take(dense, lo, axis=axis), np.take(dense, hi, axis=axis)
    shape = [1] * dense.ndim
    shape[axis] = len(pos)
    frac = frac.reshape(shape)
    return (1 - frac) * a + frac * b
