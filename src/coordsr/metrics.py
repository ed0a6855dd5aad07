"""The evaluation protocol's metrics (DESIGN.md section 5), as pure functions.

Numbers are only comparable with published ones on the field's exact convention:

- ground truth mod-cropped to a multiple of the scale (:func:`modcrop`);
- low-resolution input made by MATLAB-style bicubic ``imresize(HR, 1/s)`` and stored as 8-bit
  levels like MATLAB's ``uint8`` output (:func:`make_lr`, :func:`quantize`); the method's output
  is quantized the same way before it is scored;
- PSNR and SSIM on the ITU-R BT.601 luma ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (RGB in
  [0, 1], so Y in [16, 235]), ``ceil(scale)`` pixels shaved from each border, float64
  (:func:`psnr_y`, :func:`ssim_y`), then averaged over images by the caller.

Grey images: a one-channel image *is* its luma, Y = 255 * grey, not 16 + 219 * grey. That is
what the published Set14 numbers used (SRCNN's MATLAB code converts to YCbCr only when the
image has three channels): bicubic on Set14 then gives 30.24 / 27.54 / 26.00 dB against the
published 30.24 / 27.55 / 26.00, whereas expanding ``bridge`` to three equal channels and
applying BT.601 compresses its range by 219/255, adds 1.32 dB on that image and gives
30.33 / 27.63 / 26.09. Alpha channels are dropped: (H, W, 2) is grey + alpha, (H, W, 4) is
RGB + alpha.

>>> import numpy as np
>>> float(rgb_to_y(np.ones((1, 1, 3)))[0, 0])
235.0
>>> modcrop(np.zeros((7, 10, 3)), 3).shape
(6, 9, 3)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from coordsr.resize import imresize_np

BT601 = np.array([65.481, 128.553, 24.966])
"""Weights of R, G, B in [0, 1] for the luma Y in [16, 235] (ITU-R BT.601, MATLAB's rgb2ycbcr)."""

SSIM_SIGMA = 1.5
"""Gaussian window of the SSIM: sigma 1.5, truncated at 3.5 sigma, i.e. 11 x 11 (Wang et al. 2004)."""
SSIM_WINDOW = 11


def _hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1..4, got shape {image.shape}")
    return image


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Luma Y in [16, 235] (float64, (H, W)) of an image with values in [0, 1].

    Three or four channels: BT.601 on R, G, B (alpha dropped). One or two channels: the grey
    channel is the luma, ``255 * grey`` (alpha dropped), as in the published Set14 numbers.

    >>> float(rgb_to_y(np.zeros((1, 1, 3)))[0, 0])
    16.0
    >>> float(rgb_to_y(np.array([[[1.0, 0.0, 0.0, 0.5]]]))[0, 0])
    81.481
    >>> float(rgb_to_y(np.full((1, 1), 0.5))[0, 0])
    127.5
    """
    image = _hwc(image).astype(np.float64, copy=False)
    if image.shape[2] <= 2:
        return 255.0 * image[:, :, 0]
    return 16.0 + image[:, :, :3] @ BT601


def crop_multiple(scale: float) -> int:
    """The HR side must be a multiple of this for ``HR / scale`` to be a whole number of pixels.

    >>> crop_multiple(4), crop_multiple(2.5), crop_multiple(1.5)
    (4, 5, 3)
    """
    frac = Fraction(scale).limit_denominator(1000)
    if frac <= 1:
        raise ValueError(f"scale must be greater than 1, got {scale}")
    return frac.numerator


def lr_size(hr_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(h, w) of the LR image made from a mod-cropped HR of size ``hr_size``.

    >>> lr_size((10, 15), 2.5)
    (4, 6)
    """
    frac = Fraction(scale).limit_denominator(1000)
    return tuple(int(n * frac.denominator // frac.numerator) for n in hr_size[:2])


def modcrop(image: np.ndarray, scale: float) -> np.ndarray:
    """Crop the bottom and right so that height and width are multiples of the scale.

    For a fractional scale p/q the sides become multiples of p, so that LR = HR * q / p exactly.

    >>> modcrop(np.zeros((13, 11)), 2.5).shape
    (10, 10)
    """
    m = crop_multiple(scale)
    h, w = image.shape[0] // m * m, image.shape[1] // m * m
    if h == 0 or w == 0:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} is smaller than one block of {m}x{m}")
    return image[:h, :w]


def shave_for(scale: float) -> int:
    """Border pixels left out of the scores: ``scale`` (rounded up when fractional).

    >>> shave_for(3), shave_for(2.5)
    (3, 3)
    """
    return int(math.ceil(scale - 1e-9))


def quantize(image: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels like MATLAB's uint8 conversion: round half up of clip(x) * 255, / 255.

    >>> quantize(np.array([0.5, -0.2, 1.3, 2.5 / 255])).tolist() == [128 / 255, 0.0, 1.0, 3 / 255]
    True
    """
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5) / 255.0


def make_lr(hr: np.ndarray, scale: float) -> np.ndarray:
    """The benchmark's input: MATLAB-style bicubic ``imresize(hr, 1/scale)`` quantized to 8 bits.

    ``hr`` (H, W, C) in [0, 1] must already be mod-cropped; returns float64 (h, w, C).

    >>> make_lr(np.ones((8, 8, 3)), 4).shape
    (2, 2, 3)
    """
    hr = _hwc(hr)
    size = lr_size(hr.shape, scale)
    if hr.shape[0] % crop_multiple(scale) or hr.shape[1] % crop_multiple(scale):
        raise ValueError(f"HR of {hr.shape[1]}x{hr.shape[0]} is not mod-cropped for scale {scale:g}")
    return quantize(imresize_np(hr, size, scale=1.0 / scale))


def _shaved_y(sr: np.ndarray, hr: np.ndarray, shave: int) -> tuple[np.ndarray, np.ndarray]:
    sr, hr = _hwc(sr), _hwc(hr)
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"sizes differ: {sr.shape[1]}x{sr.shape[0]} vs {hr.shape[1]}x{hr.shape[0]}")
    ys, yh = rgb_to_y(sr), rgb_to_y(hr)
    if shave > 0:
        if min(ys.shape) <= 2 * shave:
            raise ValueError(f"image of {ys.shape[1]}x{ys.shape[0]} has nothing left after a {shave}-pixel shave")
        ys, yh = ys[shave:-shave, shave:-shave], yh[shave:-shave, shave:-shave]
    return ys, yh


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB between the lumas of two images in [0, 1], ``shave`` border pixels left out.

    Peak 255, computed in float64; ``inf`` when identical.

    >>> hr = np.zeros((4, 4, 1)); sr = hr.copy(); sr[0, 0] = 1 / 255
    >>> round(psnr_y(sr, hr), 3)  # MSE = 1/16 of a level squared: 10 log10(255^2 * 16)
    60.172
    >>> psnr_y(sr, hr, shave=1)
    inf
    """
    ys, yh = _shaved_y(sr, hr, shave)
    mse = float(np.mean((ys - yh) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """SSIM between the lumas of two images in [0, 1], ``shave`` border pixels left out.

    Wang et al.'s definition as their MATLAB code computes it: 11 x 11 Gaussian window with
    sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, population (not sample) covariances, the
    mean taken over the positions where the window fits inside the (shaved) image.

    >>> y = np.linspace(0, 1, 400).reshape(20, 20)
    >>> ssim_y(y, y)
    1.0
    """
    from skimage.metrics import structural_similarity

    ys, yh = _shaved_y(sr, hr, shave)
    if min(ys.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the shave, "
                         f"got {ys.shape[1]}x{ys.shape[0]}")
    return float(structural_similarity(ys, yh, data_range=255.0, gaussian_weights=True,
                                       sigma=SSIM_SIGMA, use_sample_covariance=False))


# ---------------------------------------------------------------- drawings (DESIGN.md section 5)

GMSD_C = 170.0
"""GMSD's stability constant for luma on 0..255 (Xue et al. 2014)."""


def composite(image: np.ndarray, background: float) -> np.ndarray:
    """(H, W, 3) float64: ``image`` (straight alpha, C in 1..4, values in [0, 1]) over a plain
    grey ``background`` level (0 black, 1 white). No alpha: the image itself (grey as RGB).

    >>> composite(np.array([[[1.0, 0.0, 0.0, 0.25]]]), 1.0).tolist()
    [[[1.0, 0.75, 0.75]]]
    """
    image = _hwc(image).astype(np.float64, copy=False)
    c = image.shape[2]
    rgb = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    if c in (2, 4):
        a = image[:, :, -1:]
        return rgb * a + background * (1.0 - a)
    return rgb


def alpha_of(image: np.ndarray) -> np.ndarray:
    """(H, W) alpha of an image (ones where it has none)."""
    image = _hwc(image)
    return image[:, :, -1].astype(np.float64) if image.shape[2] in (2, 4) else np.ones(image.shape[:2])


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB over every pixel and channel of two equally shaped arrays; ``inf`` when equal.

    >>> round(psnr(np.zeros((2, 2)), np.full((2, 2), 0.1)), 3)
    20.0
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def _conv_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """MATLAB's conv2(x, k, 'same') (zero padding) for a small kernel, in numpy (no SciPy dependency)."""
    kh, kw = k.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2  # conv2's 'same' keeps the centre part of 'full'
    p = np.pad(x, ((kh - 1 - top, top), (kw - 1 - left, left)))
    out = np.zeros_like(x)
    kf = k[::-1, ::-1]  # convolution flips the kernel
    for i in range(kh):
        for j in range(kw):
            out += kf[i, j] * p[i:i + x.shape[0], j:j + x.shape[1]]
    return out


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient magnitude similarity deviation (Xue et al., IEEE TIP 2014) between two RGB (or
    grey) images in [0, 1]: lower is better, 0 for equal images. As the authors' MATLAB code: luma
    0.299 R + 0.587 G + 0.114 B on 0..255, a 2 x 2 mean filter and every second pixel, Prewitt
    gradients (/3), similarity (2 m1 m2 + c) / (m1^2 + m2^2 + c) with c = 170, its standard
    deviation.

    >>> y = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    >>> gmsd(y, y)
    0.0
    """
    def luma(x):
        x = _hwc(x).astype(np.float64, copy=False)
        x = x[:, :, :3] if x.shape[2] >= 3 else np.repeat(x[:, :, :1], 3, axis=2)
        return 255.0 * (x @ np.array([0.299, 0.587, 0.114]))

    ya, yb = luma(a), luma(b)
    if ya.shape != yb.shape:
        raise ValueError(f"sizes differ: {ya.shape[1]}x{ya.shape[0]} vs {yb.shape[1]}x{yb.shape[0]}")
    mean2 = np.full((2, 2), 0.25)
    dx = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
    maps = []
    for y in (ya, yb):
        y = _conv_same(y, mean2)[::2, ::2]
        maps.append(np.hypot(_conv_same(y, dx), _conv_same(y, dx.T)))
    gms = (2 * maps[0] * maps[1] + GMSD_C) / (maps[0] ** 2 + maps[1] ** 2 + GMSD_C)
    return float(np.std(gms, ddof=1)) if gms.size > 1 else 0.0


def drawing_scores(sr: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    """The drawing protocol's scores of an output ``sr`` against the large drawing ``hr`` (both
    straight alpha, C in 1..4, [0, 1], same size; quantize first, as files are): PSNR on RGB over
    all pixels composited on white and on black and their mean, SSIM (on the BT.601 luma of each
    composite, mean of the two), GMSD (mean of the two composites) and the PSNR of alpha alone
    (None when neither image has alpha)."""
    out: dict[str, float] = {}
    ssims, gms = [], []
    for name, bg in (("white", 1.0), ("black", 0.0)):
        cs, ch = composite(sr, bg), composite(hr, bg)
        out[f"psnr_{name}"] = psnr(cs, ch)
        ssims.append(ssim_y(cs, ch))
        gms.append(gmsd(cs, ch))
    out["psnr"] = (out["psnr_white"] + out["psnr_black"]) / 2
    out["ssim"] = float(np.mean(ssims))
    out["gmsd"] = float(np.mean(gms))
    has_alpha = _hwc(sr).shape[2] in (2, 4) or _hwc(hr).shape[2] in (2, 4)
    out["alpha_psnr"] = psnr(alpha_of(sr), alpha_of(hr)) if has_alpha else None
    return out


__all__ = ["rgb_to_y", "modcrop", "crop_multiple", "lr_size", "shave_for", "quantize", "make_lr",
           "psnr_y", "ssim_y", "composite", "alpha_of", "psnr", "gmsd", "drawing_scores"]
