"""Is a photo clean, or compressed and noisy? What ``--degradation auto`` reads off an input.

Three measurements, each cheap and each shown in the CLI's line when it decides:

- a JPEG file's own quantization tables give the quality it was saved at (the IJG scaling of
  the standard luminance table that fits them best: how libjpeg, Pillow, browsers and most
  cameras write them);
- block artefacts left in any file (a JPEG later saved as PNG): the mean luma step across the
  8-pixel block boundaries against the mean step inside the blocks;
- noise: the wavelet estimate of ``skimage.restoration.estimate_sigma`` (Donoho's) on 16 x 16
  tiles of the colour differences R - G and B - G, the 20th percentile over the tiles (texture in photos is
  mostly in luma and on some tiles only; sensor noise is in every channel and on every tile),
  and on luma with a higher threshold for grey noise.

The thresholds were set on the training photos (T91 + BSD200, made 2-4x smaller by bicubic,
then saved as JPEG or given noise; ``benchmarks/degradation_check.py`` prints the rates) and
never on the benchmark sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHOICES = ("auto", "clean", "real")
"""``--degradation``: detected, the clean-photo model, or the blind model for real inputs."""

# The standard luminance quantization table (ITU-T T.81, Annex K.1), in natural order.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)

JPEG_CLEAN_FROM = 90
"""A JPEG saved at this quality or above is taken as clean: its artefacts are below what the
clean model sharpens into view."""
BLOCKY = 1.2
"""Block-boundary steps this many times the steps inside blocks: JPEG artefacts (clean photos
made smaller: 95% below 1.12; saved at quality 40: 95% above 1.18)."""
CHROMA_NOISE = 3.0
"""Noise in the colour differences, 8-bit levels (clean: 95% below 1.3, all but 1% below 3.0; Gaussian
sigma 5 per channel: 95% above 4.0)."""
LUMA_NOISE = 10.0
"""Noise in luma, 8-bit levels, for noise that is the same in every channel (clean: 95% below 6.1)."""
TILE = 16
TILE_PERCENTILE = 20
MEASURE_SIDE = 1024
"""Images larger than this are measured on their central crop of this side (time bound)."""


def jpeg_quality_from_tables(tables: dict) -> int | None:
    """The IJG quality (1-100) whose scaled standard luminance table fits table 0 of ``tables``
    (Pillow's ``Image.quantization``) best; None without one. Order-free (sorted values are
    compared), so zigzag and natural order read the same."""
    table = tables.get(0) if tables else None
    if table is None or len(table) != 64:
        return None
    have = np.sort(np.asarray(table, dtype=np.float64))
    best, err = None, np.inf
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        want = np.clip(np.floor((STD_LUMA * scale + 50) / 100), 1, 255)
        e = float(np.abs(np.sort(want) - have).mean())
        if e < err:
            best, err = q, e
    return best


def _luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W) luma in 8-bit levels of (H, W, C) floats in [0, 1]."""
    x = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114) * 255


def _central(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    t, l = max(0, (h - MEASURE_SIDE) // 2), max(0, (w - MEASURE_SIDE) // 2)
    t, l = t // 8 * 8, l // 8 * 8  # keep the JPEG block grid where it was
    return pixels[t:t + MEASURE_SIDE, l:l + MEASURE_SIDE]


def blockiness(luma: np.ndarray) -> float:
    """Mean |step| across 8-pixel block boundaries over the mean |step| inside blocks, the two
    directions averaged; 1.0 for images too small to tell (under 16 pixels a side)."""
    ratios = []
    for a in (luma, luma.T):
        if a.shape[1] < 16:
            continue
        d = np.abs(np.diff(a, axis=1)).mean(axis=0)  # d[j]: the step from column j to j + 1
        at = d[7::8]
        inside = np.delete(d, np.arange(7, len(d), 8))
        ratios.append(float(at.mean() / (inside.mean() + 1e-3)))
    return float(np.mean(ratios)) if ratios else 1.0


def tile_noise(channel: np.ndarray) -> float:
    """Noise in 8-bit levels: Donoho's wavelet estimate (median |finest diagonal db2 detail| /
    0.6745, as ``skimage.restoration.estimate_sigma`` computes it) on each 16 x 16 tile, the 20th
    percentile over the tiles; flat tiles (all details 0) are left out. One transform of the
    whole channel, cut into tiles afterwards: skimage's call per tile took a second on a
    768 x 512 photo."""
    import pywt

    _, (_, _, detail) = pywt.dwt2(channel, "db2", mode="periodization")
    t = TILE // 2
    h, w = detail.shape[0] // t, detail.shape[1] // t
    if h == 0 or w == 0:
        return 0.0
    tiles = np.abs(detail[:h * t, :w * t]).reshape(h, t, w, t).transpose(0, 2, 1, 3).reshape(h * w, t * t)
    sigma = np.median(tiles, axis=1) / 0.6745
    sigma = sigma[tiles.max(axis=1) > 1e-9]
    return float(np.percentile(sigma, TILE_PERCENTILE)) if len(sigma) else 0.0


@dataclass(frozen=True)
class Assessment:
    """What an input looks like: ``kind`` 'clean' or 'real' (compressed or noisy), why in plain
    words, and the measurements."""

    kind: str
    reason: str
    jpeg_quality: int | None = None
    blockiness: float | None = None
    chroma_noise: float | None = None
    luma_noise: float | None = None


def assess(pixels: np.ndarray, jpeg_q: int | None = None) -> Assessment:
    """'clean' or 'real' for an (H, W, C) image of floats in [0, 1]; ``jpeg_q`` is the quality its
    file was saved at, when it is a JPEG (``coordsr.images.ImageData.jpeg_quality``)."""
    if jpeg_q is not None and jpeg_q < JPEG_CLEAN_FROM:
        return Assessment("real", f"JPEG quality {jpeg_q}", jpeg_quality=jpeg_q)
    x = _central(np.asarray(pixels, dtype=np.float64))
    y = _luma(x)
    block = blockiness(y)
    chroma = 0.0
    if x.shape[2] >= 3:
        r, g, b = (x[..., i] * 255 for i in range(3))
        chroma = min(tile_noise((r - g) / np.sqrt(2)), tile_noise((b - g) / np.sqrt(2)))
    luma = tile_noise(y)
    found = dict(jpeg_quality=jpeg_q, blockiness=block, chroma_noise=chroma, luma_noise=luma)
    why = []
    if block >= BLOCKY:
        why.append(f"JPEG blocks (boundary steps {block:.2f}x the others)")
    if chroma >= CHROMA_NOISE or luma >= LUMA_NOISE:
        why.append(f"noise (about {max(chroma, luma / 0.668):.0f} levels)")  # luma: sigma * 0.668 of RGB
    if why:
        return Assessment("real", " and ".join(why), **found)
    saved = f"JPEG quality {jpeg_q}, " if jpeg_q is not None else ""
    return Assessment("clean", f"{saved}no blocks or noise found", **found)


def check_degradation(value: str) -> str:
    """``value`` when it is one of CHOICES; ValueError naming them otherwise."""
    if value not in CHOICES:
        raise ValueError(f"degradation must be one of {', '.join(CHOICES)}, got {value!r}")
    return value


def given(kind: str) -> Assessment:
    """The degradation a user named (``--degradation real``): nothing measured."""
    return Assessment(kind, f"as --degradation {kind} asked")
