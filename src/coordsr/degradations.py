"""How photos really arrive: blur, downscaling, noise and compression, composed at random.

Used to train the blind upscaler (``blind``: ``python -m coordsr.liif.train --degradation real``)
and to make the degraded benchmark (``coordsr bench --degrade jpeg40``). Each degradation is a
small frozen dataclass that says what it does (``str``) and applies it to a (3, H, W) float image
in [0, 1]; a chain is a list of them. ``random_chain`` composes one the way the blind-SR
literature does: Real-ESRGAN's two stages (blur, resize, noise, JPEG, then again, weaker; Wang
et al. 2021) with BSRGAN's shuffled order of blur, resize and noise (Zhang et al. 2021). A file
is written last, so compression always ends its stage.

Resizing is ``coordsr.resize`` (MATLAB's bicubic with antialiasing, the benchmark's operator, and
its triangle and box kernels for bilinear and area); JPEG and WebP are Pillow's real codecs;
blur is a torch convolution; noise is numpy's generator.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from coordsr.resize import imresize

RESIZE_KERNELS = {"bicubic": "cubic", "bilinear": "triangle", "area": "box"}
"""``Resize.method`` -> coordsr.resize kernel (antialiased); ``nearest`` picks pixels instead."""


def gaussian_kernel(sigma_x: float, sigma_y: float | None = None, theta: float = 0.0,
                    size: int | None = None) -> torch.Tensor:
    """A normalised (size, size) Gaussian, anisotropic when ``sigma_y`` differs, its x axis turned
    by ``theta`` radians; ``size`` defaults to an odd 2 * ceil(3 sigma) + 1."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if size is None:
        size = 2 * math.ceil(3 * max(sigma_x, sigma_y)) + 1
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    k = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).float()


def disk_kernel(radius: float) -> torch.Tensor:
    """A normalised defocus disk: each tap weighted by the share of its pixel inside the circle
    (4 x 4 supersampled, so small radii are round, not a cross)."""
    n = 2 * math.ceil(radius) + 1
    sub = (torch.arange(4 * n, dtype=torch.float64) + 0.5) / 4 - n / 2
    y, x = torch.meshgrid(sub, sub, indexing="ij")
    inside = ((x ** 2 + y ** 2) <= radius ** 2).double()
    k = inside.reshape(n, 4, n, 4).mean(dim=(1, 3))
    return (k / k.sum()).float()


def convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(C, H, W) convolved with a (k, k) kernel per channel, borders mirrored."""
    k = kernel.to(x.dtype)
    p = k.shape[-1] // 2
    c = x.shape[0]
    pad = min(p, x.shape[-1] - 1, x.shape[-2] - 1)
    y = F.pad(x[None], (pad,) * 4, mode="reflect") if pad else x[None]
    if pad < p:  # a kernel wider than the image: replicate the rest
        y = F.pad(y, (p - pad,) * 4, mode="replicate")
    return F.conv2d(y, k.expand(c, 1, *k.shape), groups=c)[0]


@dataclass(frozen=True)
class Blur:
    """Optical blur: ``gaussian`` (sigma_y = sigma_x is isotropic; else turned by ``theta``) or
    ``defocus`` (a disk of radius ``sigma_x``)."""

    sigma_x: float
    sigma_y: float | None = None
    theta: float = 0.0
    kind: str = "gaussian"

    def kernel(self) -> torch.Tensor:
        if self.kind == "defocus":
            return disk_kernel(self.sigma_x)
        return gaussian_kernel(self.sigma_x, self.sigma_y, self.theta)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return convolve(x, self.kernel())

    def __str__(self) -> str:
        if self.kind == "defocus":
            return f"defocus r={self.sigma_x:.2f}"
        if self.sigma_y is None or self.sigma_y == self.sigma_x:
            return f"blur sigma={self.sigma_x:.2f}"
        return f"blur sigma={self.sigma_x:.2f}x{self.sigma_y:.2f} theta={math.degrees(self.theta):.0f}"


@dataclass(frozen=True)
class Resize:
    """Resampling to ``size`` (h, w) by ``bicubic``, ``bilinear``, ``area`` or ``nearest``."""

    size: tuple[int, int]
    method: str = "bicubic"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        oh, ow = self.size
        if (oh, ow) == (h, w):
            return x
        if self.method == "nearest":
            return F.interpolate(x[None], size=(oh, ow), mode="nearest-exact")[0]
        return imresize(x, (oh, ow), scale=(oh / h, ow / w), kernel=RESIZE_KERNELS[self.method])

    def __str__(self) -> str:
        return f"{self.method} to {self.size[1]}x{self.size[0]}"


@dataclass(frozen=True)
class GaussianNoise:
    """Additive white Gaussian noise of ``sigma`` in 8-bit levels; ``grey``: the same in every channel."""

    sigma: float
    grey: bool = False
    seed: int = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rng = np.random.default_rng(self.seed)
        shape = (1, *x.shape[1:]) if self.grey else tuple(x.shape)
        n = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * (self.sigma / 255)
        return x + n.to(x.dtype)

    def __str__(self) -> str:
        return f"{'grey ' if self.grey else ''}noise sigma={self.sigma:.1f}"


@dataclass(frozen=True)
class PoissonNoise:
    """Shot noise: counts ~ Poisson(``photons`` * value), so darker pixels are relatively noisier;
    ``grey``: drawn once on the luma and added to every channel."""

    photons: float
    grey: bool = False
    seed: int = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rng = np.random.default_rng(self.seed)
        v = x.clamp(0, 1).double().numpy()
        if self.grey:
            luma = (0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2])[None]
            n = rng.poisson(luma * self.photons) / self.photons - luma
        else:
            n = rng.poisson(v * self.photons) / self.photons - v
        return x + torch.from_numpy(n).to(x.dtype)

    def __str__(self) -> str:
        return f"{'grey ' if self.grey else ''}shot noise photons={self.photons:.0f}"


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) floats -> (H, W, 3) uint8, clipped and rounded as a saved file is."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def from_uint8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float() / 255


@dataclass(frozen=True)
class Compress:
    """A round trip through a real codec: ``jpeg`` (Pillow's libjpeg, 4:2:0 as cameras and the web
    save it) or ``webp``, at ``quality``; the JPEG block grid starts ``offset`` (dy, dx) pixels
    before the image's corner, as when a crop of a larger JPEG is seen."""

    quality: int
    codec: str = "jpeg"
    offset: tuple[int, int] = (0, 0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        dy, dx = self.offset
        a = to_uint8(x)
        if dy or dx:
            a = np.pad(a, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
        buf = io.BytesIO()
        if self.codec == "jpeg":
            Image.fromarray(a).save(buf, format="JPEG", quality=int(self.quality), subsampling=2)
        else:
            Image.fromarray(a).save(buf, format="WEBP", quality=int(self.quality))
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB"))
        return from_uint8(out[dy:, dx:]).to(x.dtype)

    def __str__(self) -> str:
        return f"{self.codec} q{self.quality}"


@dataclass(frozen=True)
class Quantize:
    """Stored as 8 bits: clipped to [0, 1] and rounded to 1/255."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.clamp(0, 1) * 255).round() / 255

    def __str__(self) -> str:
        return "8-bit"


Degradation = Blur | Resize | GaussianNoise | PoissonNoise | Compress | Quantize


def apply(x: torch.Tensor, chain: list) -> torch.Tensor:
    """``x`` through each degradation of ``chain`` in order."""
    for d in chain:
        x = d(x)
    return x


def describe(chain: list) -> str:
    return ", ".join(str(d) for d in chain) or "none"


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _random_blur(rng: np.random.Generator, sigma_max: float) -> Blur:
    u = rng.random()
    if u < 0.1:
        return Blur(float(rng.uniform(0.5, max(0.6, sigma_max))), kind="defocus")
    sx = float(rng.uniform(0.2, sigma_max))
    if u < 0.55:
        return Blur(sx)
    return Blur(sx, float(rng.uniform(0.2, sigma_max)), float(rng.uniform(0, math.pi)))


def _random_noise(rng: np.random.Generator, sigma_max: float):
    grey = bool(rng.random() < 0.4)
    seed = int(rng.integers(2 ** 62))
    if rng.random() < 0.6:
        return GaussianNoise(float(rng.uniform(1, sigma_max)), grey, seed)
    # photons per unit: 10 is very noisy (sigma ~ 40 levels at mid grey), 3000 nearly clean
    return PoissonNoise(_log_uniform(rng, 25, 3000), grey, seed)


def _random_compress(rng: np.random.Generator, q_min: int) -> Compress:
    offset = (int(rng.integers(8)), int(rng.integers(8)))
    if rng.random() < 0.1:
        return Compress(int(rng.integers(q_min, 96)), "webp")
    return Compress(int(rng.integers(q_min, 96)), "jpeg", offset)


@dataclass(frozen=True)
class Odds:
    """How often ``random_chain`` uses each degradation. The default is the shipped blind model's
    second run; ``FIRST_RUN`` was its first (more blur and more two-stage chains: on held-out
    crops it stopped improving after 500 steps, 0.3 dB short of the second on JPEG 40 at x4;
    docs/research/blind-model.md)."""

    clean: float = 0.1
    two_stage: float = 0.3
    blur: float = 0.35
    blur_sigma: float = 0.5
    """Largest first-stage blur sigma, in LR pixels (times the scale in HR pixels)."""
    noise: float = 0.5
    compress: float = 0.85


FIRST_RUN = Odds(two_stage=0.5, blur=0.5, blur_sigma=0.6, compress=0.8)


def random_chain(rng: np.random.Generator, hr_size: tuple[int, int], lr_size: tuple[int, int],
                 odds: Odds = Odds()) -> list:
    """A random chain from an HR crop of ``hr_size`` to a degraded, 8-bit LR of ``lr_size``.

    One in ten is clean (bicubic only: the blind model must not damage a clean input); of the rest,
    ``odds.two_stage`` take two stages (blur, resize, noise, compression, then again, the first
    resizing to a size between HR and LR), the others one. Within the first stage, blur, resize
    and noise come in a shuffled order three times in ten. Blur sigmas are in HR pixels, scaled
    with the zoom so that the blur seen on the LR grid has the same range at every scale."""
    (H, W), (h, w) = hr_size, lr_size
    s = max(H / h, W / w)
    if rng.random() < odds.clean:
        return [Resize((h, w), "bicubic"), Quantize()]
    methods, p = ["bicubic", "bilinear", "area", "nearest"], [0.55, 0.2, 0.2, 0.05]

    def method() -> str:
        return str(rng.choice(methods, p=p))

    two = rng.random() < odds.two_stage
    if two:
        k = float(rng.uniform(1, s))
        mid = (max(h, round(H / k)), max(w, round(W / k)))
    else:
        mid = (h, w)
    first = []
    if rng.random() < odds.blur:
        first.append(_random_blur(rng, max(0.3, odds.blur_sigma * s)))
    first.append(Resize(mid, method()))
    if rng.random() < odds.noise:
        first.append(_random_noise(rng, 20))
    if rng.random() < 0.3:
        order = rng.permutation(len(first))
        first = [first[i] for i in order]
    chain = first
    if rng.random() < odds.compress:
        chain.append(_random_compress(rng, 30 if two else 20))
    if two:
        if rng.random() < 0.3:
            chain.append(_random_blur(rng, max(0.3, 0.4 * mid[0] / h)))
        chain.append(Resize((h, w), method()))
        if rng.random() < 0.4:
            chain.append(_random_noise(rng, 12))
        if rng.random() < odds.compress:
            chain.append(_random_compress(rng, 20))
    chain.append(Quantize())
    return chain


def parse(spec: str, *, scale: float, seed: int = 0) -> list:
    """A benchmark's named degradation of an LR image, applied after the bicubic downscale
    (``blur`` before it): comma-separated ``jpegQ``, ``webpQ``, ``noiseS`` (Gaussian, 8-bit
    levels), ``blurS`` / ``blur`` (Gaussian sigma S in LR pixels, default 0.4, on the HR image
    before it is made smaller). Returns (before the downscale, after it).

    ``scale`` turns an LR blur sigma into HR pixels; ``seed`` seeds the noise."""
    before, after = [], []
    for i, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        m = re.fullmatch(r"(jpeg|webp|noise|blur)(\d+(?:\.\d+)?)?", part)
        if not m or (m.group(2) is None and m.group(1) != "blur"):
            raise ValueError(f"unknown degradation {part!r} (use jpegQ, webpQ, noiseS or blurS, e.g. noise10,jpeg70)")
        kind, value = m.group(1), m.group(2)
        if kind in ("jpeg", "webp"):
            q = int(float(value))
            if not 1 <= q <= 100:
                raise ValueError(f"quality must be 1-100 in {part!r}")
            after.append(Compress(q, kind))
        elif kind == "noise":
            after.append(GaussianNoise(float(value), seed=seed + i))
        else:
            before.append(Blur((float(value) if value else 0.4) * scale))
    return before, after
