"""Radially averaged power spectra, in cycles per input pixel, so that an image and its
upscales at any scale share one frequency axis (Rahaman et al. 2019's spectral bias, seen
where each upscaler adds or loses energy).

An image of n input pixels drawn at scale s has FFT bins k / (s n) cycles per drawn pixel, that
is k / n cycles per input pixel: the same bins at every scale, the finer drawings reaching
further (the input's Nyquist is 0.5, an x4 drawing's is 2). The luma, less its mean, is
windowed (Hann, separable) and ``|FFT|^2 / (sum w)^2`` is averaged over rings one bin wide; a
sine of amplitude A puts A^2 / 4 in each of its two bins, whatever the drawing's size.
"""

from __future__ import annotations

import numpy as np

from coordsr.analysis.common import luma


def power_spectrum(image: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D power of the windowed luma and its frequencies (fy, fx) in cycles per input pixel."""
    y = luma(image)
    h, w = y.shape
    win = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1])  # no zero rows at the ends
    spec = np.fft.fft2((y - y.mean()) * win)
    power = np.abs(spec) ** 2 / win.sum() ** 2
    return power, np.fft.fftfreq(h) * scale, np.fft.fftfreq(w) * scale


def radial_spectrum(image: np.ndarray, scale: float = 1.0, *, bin_width: float | None = None) -> dict:
    """Radial mean of the power in rings of ``bin_width`` cycles per input pixel (default: one
    FFT bin, 1 / the input's shorter side), out to the drawing's Nyquist (scale / 2).

    Returns ``freq`` (ring centres), ``power`` (mean per ring) and ``energy`` (sum per ring).

    >>> x = np.arange(64)
    >>> img = 0.5 + 0.25 * np.cos(2 * np.pi * 8 / 64 * x)[None, :].repeat(64, 0)
    >>> s = radial_spectrum(img)
    >>> float(s["freq"][np.argmax(s["power"])])
    0.125
    """
    power, fy, fx = power_spectrum(image, scale)
    h, w = power.shape
    radius = np.hypot(fy[:, None], fx[None, :])
    if bin_width is None:
        bin_width = scale / min(h, w)
    n_bins = int(np.floor(scale / 2 / bin_width + 0.5)) + 1
    idx = np.floor(radius / bin_width + 0.5).astype(int)  # ring k holds radii within half a bin of k
    keep = idx < n_bins
    energy = np.bincount(idx[keep], weights=power[keep], minlength=n_bins)
    count = np.bincount(idx[keep], minlength=n_bins)
    return {"freq": np.arange(n_bins) * bin_width, "power": energy / np.maximum(count, 1), "energy": energy}


def band_energy(spec: dict, lo: float, hi: float) -> float:
    """Energy of a radial spectrum in the rings with lo < frequency <= hi."""
    f = spec["freq"]
    return float(spec["energy"][(f > lo) & (f <= hi)].sum())
