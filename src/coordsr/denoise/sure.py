"""Stein's unbiased risk estimate (SURE) of a blend of two denoisers, and its best weight.

For white Gaussian noise of known level sigma, y = x + n, the mean squared error of a denoiser
f against the clean x, which is never seen, has an unbiased estimate from y alone (Stein 1981):

    SURE(f) = |y - f(y)|^2 - N sigma^2 + 2 sigma^2 div f(y),   div f = sum_i d f_i / d y_i

The divergence is estimated by Monte Carlo (Ramani, Blu and Unser 2008): one probe b ~ N(0, I),
div f ~ b . (f(y + eps b) - f(y)) / eps. For the blend b(y) + w (a(y) - b(y)) of two denoisers
SURE is a parabola in w, so its minimiser has a closed form (:func:`blend_weight`). No library
offers this for arbitrary denoisers (scikit-image's SURE is inside its wavelet shrinkage), so it
is written here: a few lines of numpy.
"""

from __future__ import annotations

import numpy as np


def mc_divergence(out: np.ndarray, out_probed: np.ndarray, probe: np.ndarray, eps: float) -> float:
    """Monte Carlo divergence of a denoiser from its outputs at y and at y + eps * probe."""
    return float(np.sum(probe * (out_probed.astype(np.float64) - out)) / eps)


def blend_weight(noisy: np.ndarray, a: np.ndarray, b: np.ndarray, div_a: float, div_b: float,
                 sigma: float) -> float:
    """The weight w in [0, 1] of ``a`` that minimises SURE of ``b + w (a - b)``.

    ``noisy`` the input y, ``a`` and ``b`` the two denoised images, ``div_a`` and ``div_b`` their
    divergences at y, ``sigma`` the noise level in the images' units.

    >>> y = np.array([0.0, 1.0]); a = np.array([0.0, 1.0]); b = np.array([0.5, 0.5])
    >>> blend_weight(y, a, b, div_a=0.0, div_b=0.0, sigma=0.1)  # a is y itself, and free of divergence
    1.0
    """
    y, a, b = (np.asarray(v, np.float64) for v in (noisy, a, b))
    d = a - b
    dd = float(np.sum(d * d))
    if dd == 0.0:
        return 0.5  # the two agree: any weight gives the same image
    w = (float(np.sum((y - b) * d)) - sigma ** 2 * (div_a - div_b)) / dd
    return float(np.clip(w, 0.0, 1.0))


def sure(noisy: np.ndarray, out: np.ndarray, div: float, sigma: float) -> float:
    """SURE of ``out`` (mean squared error per value, the images' units squared)."""
    r = np.asarray(noisy, np.float64) - out
    return float(np.mean(r * r) - sigma ** 2 + 2 * sigma ** 2 * div / r.size)


__all__ = ["blend_weight", "mc_divergence", "sure"]
