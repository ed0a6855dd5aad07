"""The denoising protocol (DESIGN.md section 5, denoising), as pure functions.

The field's convention, which the published rows (CBM3D, DnCNN, FFDNet, DRUNet) use:

- clean image: 8-bit RGB scaled to [0, 1] (Kodak24: 500 x 500);
- noise: additive white Gaussian, standard deviation ``sigma / 255`` with sigma in 8-bit levels,
  drawn in float64 from a fixed seed, **not clipped and not quantized** (:func:`add_noise`);
- score: the denoised image quantized to 8 bits (what a saved result holds), then PSNR on RGB
  over all pixels and channels, no border shaved, peak 1 (:func:`psnr_rgb`); SSIM as for SR, on
  the BT.601 luma (:func:`coordsr.metrics.ssim_y`, no shave).

A CLI user's noisy file is 8-bit, so its noise *is* clipped and quantized: that is a separate,
named variant (:func:`add_noise_8bit`, ``variant='8bit'`` in the benchmark), never mixed with the
first in one table.

>>> import numpy as np
>>> clean = np.full((4, 4, 3), 0.5)
>>> noisy = add_noise(clean, 25, seed=0)
>>> bool(np.array_equal(noisy, add_noise(clean, 25, seed=0)))  # fixed seed: the same noise
True
>>> round(psnr_rgb(clean + 1 / 255, clean), 2)  # one level everywhere: 20 log10(255)
48.13
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from coordsr.metrics import psnr, quantize, ssim_y

SIGMA_MAX = 100.0
"""Largest noise level accepted (8-bit levels); the published rows go to 50, FFDNet to 75."""
CLEAN_SIGMA = 0.5
"""Below this many levels an image is treated as clean: denoisers return it unchanged."""
VARIANTS = ("float", "8bit")
"""'float': the protocol (noise neither clipped nor quantized); '8bit': a saved noisy file."""


def check_sigma(sigma: float) -> float:
    """``sigma`` in 8-bit levels, validated: a ValueError naming the range otherwise.

    >>> check_sigma(25)
    25.0
    """
    value = float(sigma)
    if not math.isfinite(value) or not 0.0 <= value <= SIGMA_MAX:
        raise ValueError(f"sigma must be between 0 and {SIGMA_MAX:g} (8-bit levels), got {sigma}")
    return value


def noise_seed(name: str, sigma: float, seed: int = 0) -> list[int]:
    """The seed of one (image, sigma) cell: fixed, and different for every image and level.

    >>> noise_seed('kodim01.png', 25) == noise_seed('kodim01.png', 25)
    True
    """
    return [int(seed), zlib.crc32(name.encode()), int(round(float(sigma) * 100))]


def add_noise(clean: np.ndarray, sigma: float, seed: int | list[int] = 0) -> np.ndarray:
    """``clean + N(0, (sigma/255)^2)`` in float64, not clipped, not quantized (the protocol)."""
    sigma = check_sigma(sigma)
    rng = np.random.default_rng(seed)
    clean = np.asarray(clean, dtype=np.float64)
    return clean + rng.standard_normal(clean.shape) * (sigma / 255.0)


def add_noise_8bit(clean: np.ndarray, sigma: float, seed: int | list[int] = 0) -> np.ndarray:
    """The named 8-bit variant: :func:`add_noise`, then clipped to [0, 1] and rounded to 8 bits,
    as in a noisy PNG a user hands to ``coordsr denoise``."""
    return quantize(add_noise(clean, sigma, seed))


def make_noisy(clean: np.ndarray, sigma: float, seed, variant: str = "float") -> np.ndarray:
    """The benchmark's input for ``variant`` ('float' or '8bit')."""
    if variant == "float":
        return add_noise(clean, sigma, seed)
    if variant == "8bit":
        return add_noise_8bit(clean, sigma, seed)
    raise ValueError(f"unknown noise variant {variant!r}; valid: {', '.join(VARIANTS)}")


def psnr_rgb(out: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB over all pixels and channels, peak 1, float64, no shave; ``inf`` if identical.

    >>> psnr_rgb(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)))
    inf
    """
    return psnr(out, clean)


def score(out: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """The protocol's scores of a denoised image: quantized to 8 bits, then RGB PSNR and Y SSIM."""
    q = quantize(out)
    return {"psnr": psnr_rgb(q, clean), "ssim": ssim_y(q, clean)}


def estimate_sigma(noisy: np.ndarray) -> float:
    """The noise level in 8-bit levels, from the image alone: scikit-image's wavelet MAD
    estimator (Donoho), averaged over the colour channels (alpha excluded by the caller)."""
    from skimage.restoration import estimate_sigma as mad_sigma

    noisy = np.asarray(noisy, dtype=np.float64)
    if noisy.ndim == 2:
        noisy = noisy[:, :, None]
    return 255.0 * float(mad_sigma(noisy, channel_axis=-1, average_sigmas=True))


__all__ = ["SIGMA_MAX", "CLEAN_SIGMA", "VARIANTS", "check_sigma", "noise_seed", "add_noise",
           "add_noise_8bit", "make_noisy", "psnr_rgb", "score", "estimate_sigma"]
