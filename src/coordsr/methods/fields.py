"""Per-image fields: one network fitted to one image, then drawn at the output size.

Each preset reproduces its family's published defaults (architecture, activation and its
initialisation, learning rate); the observation model is a setting (``fit``), so every family
can be measured both ways: 'point' (the seed's method) and 'consistent' (through the
degradation operator).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import torch

from coordsr.coords import CONVENTIONS
from coordsr.errors import StopEarly
from coordsr.field import Field, FieldConfig, ImageMeta
from coordsr.fit import OBSERVATIONS, FitConfig, FitResult, fit, parse_until
from coordsr.methods.base import MAX_SEED, Upscaler, check_image, check_size, need, resolve_device
from coordsr.precision import check_precision, resolve_precision
from coordsr.progress import ProgressCallback
from coordsr.render import AREA_SUPERSAMPLE, TILE_PIXELS, footprint_of_fit, render_field, render_field_rows
from coordsr.resize import KERNELS

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

# Floats a training point keeps per encoding output / per hidden unit of a layer until the
# backward pass: a grid gathers 4 corners (index, weight, features) per level; Fourier features
# keep the projection, its sine and cosine; an activation keeps its input and output, and
# the Gabor wavelet its window and sine too, with two more during its backward pass
# (networks._GaborFunction; autograd's chain kept more before it, and 10 was kept as a bound).
# Rough upper bounds, read off the code (a memory check must not refuse what fits, nor let
# through what cannot).
_ENCODING_FLOATS = {"MultiresGrid": 12, "FourierFeatures": 3, "RawCoords": 2}
_ACTIVATION_FLOATS = {"relu": 3, "tanh": 3, "sine": 5, "gabor": 10}


@dataclass
class FieldUpscaler(Upscaler):
    """Base of the per-image presets: fit a Field to the image, render it at the output size."""

    family = "per-image"
    fits_field = True

    steps: int = 2000
    """Most Adam steps of the fit (the cap of ``until``)."""
    until: str = "auto"
    """When the fit is done: 'auto' (when the drawn output stops changing visibly; 'auto:LEVELS'
    with its own threshold in 8-bit levels, default 2), 'steps' (all ``steps``) or 'psnr:DB'
    (when the PSNR on the input reaches DB dB)."""
    lr: float = 1e-3
    """Peak learning rate."""
    fit: str = "point"
    """Observation model: 'point' (pixel centres, the seed's), 'area' (each pixel the field's mean
    over its cell; the output is drawn the same way), 'mip' (area at the input's pixels and at its
    2x2, 4x4 and 8x8 block means: drawn smaller without aliasing) or 'consistent' (through the kernel)."""
    kernel: str = "cubic"
    """Degradation kernel of the consistent model: 'cubic', 'box' or 'gaussian'."""
    batch: int = 0
    """Input pixels per step (random pixels, or a square crop when consistent); 0 = whole image."""
    tv_weight: float = 0.0
    """Total-variation weight on the drawn output (consistent model only)."""
    patience: int = 0
    """Early stop after this many steps without improvement (0 = off)."""
    target_psnr: float = 0.0
    """Stop once the fit reaches this PSNR (dB) on the input's own pixels (0 = run all steps)."""
    precision: str = "auto"
    """Compute precision of fitting and drawing: 'auto' (bfloat16 where this machine runs it
    faster and the preset allows it, see ``auto_bf16``), 'fp32' or 'bf16'."""
    seed: int = 0
    """Seed of the initialisation and sampling: the same seed gives the same field."""
    convention: str = "cell"
    """Input coordinates: 'cell' (the house's, DESIGN.md), or one of the seed's normalisations,
    which span the whole grid and so misalign sizes by up to half an input pixel: 'seed'
    ([0, 1]), 'centred' ([-1, 1]), 'standard' (unit variance). BENCHMARKS.md "Coordinate
    normalisations" measures them."""

    auto_bf16: ClassVar[bool] = False
    """Whether 'auto' may pick bfloat16 for this preset: its measured PSNR change is negligible
    (BENCHMARKS.md, "Precision")."""
    streams: ClassVar[bool] = True
    """The fitted field is drawn a row of tiles at a time into streamed outputs."""

    def field_config(self, meta: ImageMeta, out_size: tuple[int, int]) -> FieldConfig:
        raise NotImplementedError

    def validate(self) -> None:
        parse_until(self.until)  # bad words fail here, before any work
        check_precision(self.precision)
        need(self.steps >= 1, "steps", self.steps, "at least 1")
        need(self.lr > 0, "lr", self.lr, "positive")
        need(self.fit in OBSERVATIONS, "fit", self.fit, f"one of {', '.join(OBSERVATIONS)}")
        need(self.kernel in KERNELS, "kernel", self.kernel, f"one of {', '.join(KERNELS)}")
        need(self.batch >= 0, "batch", self.batch, "0 (all pixels) or more")
        need(self.tv_weight >= 0, "tv_weight", self.tv_weight, "0 or more")
        need(self.patience >= 0, "patience", self.patience, "0 (off) or more")
        need(self.target_psnr >= 0, "target_psnr", self.target_psnr, "0 (off) or more")
        need(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"between 0 and {MAX_SEED}")
        need(self.convention in CONVENTIONS, "convention", self.convention, ", ".join(CONVENTIONS))
        if self.fit in ("consistent", "mip"):
            need(self.convention == "cell", "convention", self.convention, f"'cell' for fit={self.fit}")
        for name in ("hidden", "layers"):  # every preset has them
            need(getattr(self, name) >= 1, name, getattr(self, name), "at least 1")

    def peak_bytes(self, in_shape, size):
        """The fit's working set (activations of the pixels drawn in one step, for the backward
        pass; the consistent model's axis operators), the parameters with their gradients and
        Adam's two moments, and the render's output with one tile's activations."""
        (h, w, c), (H, W) = in_shape, size
        meta = ImageMeta(height=h, width=w, channels=c, mode=MODES[c])
        with torch.device("meta"):  # the real modules' sizes, nothing allocated
            field = Field(self.field_config(meta, size), meta)
        params = sum(p.numel() for p in field.parameters())
        cfg = field.cfg
        row = 4 * (_ENCODING_FLOATS.get(cfg.encoding, 3) * field.encoding.out_dim  # bytes a point
                   + _ACTIVATION_FLOATS.get(cfg.activation, 4) * self.layers * self.hidden + 4 * c)
        if self.fit in ("point", "area", "mip"):
            rows, operators = (min(self.batch, h * w) if self.batch else h * w), 0
            if self.fit != "point" and not field.has_footprint:  # supersampled cells
                rows *= AREA_SUPERSAMPLE ** 2
            if self.fit == "mip":  # the reduced copies: a third more pixels at most
                rows += rows // 3 + 1
        else:  # consistent: the output pixels under the input crop, and the dense (in, out) operators
            side = math.isqrt(self.batch) if self.batch else max(h, w)
            rows = min(H, math.ceil(min(side, h) * H / h) + 8) * min(W, math.ceil(min(side, w) * W / w) + 8)
            operators = (4 + 8) * (h * H + w * W)  # float32 copies + resize's float64 cache
        fit_bytes = rows * row + operators + 4 * 4 * params
        render_bytes = TILE_PIXELS * row // 4  # no autograd: a fraction of the training rows
        return super().peak_bytes(in_shape, size) + 4 * c * h * w * 2 + fit_bytes + render_bytes

    def fit_config(self) -> FitConfig:
        return FitConfig(steps=self.steps, until=self.until, precision=self.precision_word(), lr=self.lr, observation=self.fit, kernel=self.kernel,
                         batch=self.batch, tv_weight=self.tv_weight, patience=self.patience,
                         target_psnr=self.target_psnr, seed=self.seed, adam_eps=self.adam_eps())

    def adam_eps(self) -> float:
        return 1e-8

    def compute_dtype(self) -> torch.dtype:
        """The dtype ``precision`` resolves to on this method's device."""
        return resolve_precision(self.precision, resolve_device(self.device), allow_auto_bf16=self.auto_bf16)

    def precision_word(self) -> str:
        return "bf16" if self.compute_dtype() == torch.bfloat16 else "fp32"

    def settings(self) -> dict:
        """The dataclass fields as a plain dict (stored in field files)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def fit_field(self, image: np.ndarray, size: tuple[int, int], *, bit_depth: int = 8,
                  progress: ProgressCallback | None = None) -> tuple[Field, FitResult]:
        """Fit a field to ``image`` for drawing at ``size``; returns the field and the fit's record.

        ``progress`` may raise ``StopEarly`` to end the fit there and keep the field as it is."""
        image = check_image(image)
        size = check_size(size)
        h, w, c = image.shape
        meta = ImageMeta(height=h, width=w, channels=c, mode=MODES[c], bit_depth=bit_depth)
        torch.manual_seed(self.seed)
        cfg = self.field_config(meta, size)
        field = Field(cfg, meta).to(resolve_device(self.device))
        start = time.perf_counter()
        try:
            result = fit(field, image, self.fit_config(), out_size=size, convention=cfg.convention,
                         progress=progress)
        except StopEarly as stop:  # the caller asked to keep the field as it is now
            result = FitResult(steps=stop.step, psnr=stop.psnr, seconds=time.perf_counter() - start)
        field.eval()
        return field, result

    def _upscale(self, image, size, progress):
        field, _ = self.fit_field(image, size, progress=progress)
        return render_field(field, size, compute_dtype=self.compute_dtype(), footprint=self.footprint())

    def footprint(self) -> str:
        """What an output pixel shows of the fitted field: its cell's mean when the input's
        pixels were fitted that way (``fit='area'``), else its centre's value."""
        return footprint_of_fit(self.fit)

    def stream_peak_bytes(self, in_shape, size):
        """``peak_bytes`` with one row of render tiles (float32 and quantized) instead of the output."""
        (h, w, c), (H, W) = in_shape, size
        band = min(H, 256) * W * c * (4 + 2)
        return self.peak_bytes(in_shape, size) - super().peak_bytes(in_shape, size) + band

    def _upscale_rows(self, image, size, bit_depth, progress):
        """Fit, then draw the field a row of tiles at a time (``coordsr.render.render_rows``)."""
        field, _ = self.fit_field(image, size, progress=progress)
        yield from render_field_rows(field, size, dtype=np.uint16 if bit_depth == 16 else np.uint8,
                                     compute_dtype=self.compute_dtype(), footprint=self.footprint())


@dataclass
class cppn(FieldUpscaler):
    """The seed's network: a plain tanh MLP on (x, y, r), fitted to the pixel centres."""

    steps: int = 2000
    until: str = "auto:0.5"
    """As the other presets', at a stricter threshold: a slow learner whose last steps still add
    a tenth of a dB at 'auto''s 2 levels (0.5 chosen on BSD200 trajectories: BENCHMARKS.md, "Stopping")."""
    lr: float = 1e-3
    hidden: int = 64
    """Width of the hidden layers."""
    layers: int = 6
    """Number of hidden layers."""

    def field_config(self, meta, out_size):
        return FieldConfig(encoding="RawCoords", encoding_args={"radius": True}, activation="tanh",
                           hidden=self.hidden, layers=self.layers, convention=self.convention,
                           aspect=self.convention == "cell")


@dataclass
class fourier(FieldUpscaler):
    """Gaussian random Fourier features + ReLU MLP (Tancik et al. 2020, sigma 10 on [0,1], 4x256)."""

    steps: int = 2000
    until: str = "auto:0.5"
    """As cppn's and siren's: at the default 2 levels it lost 0.051 dB on Set14 x4 (0.047 on six BSD200
    training images, where 0.5 lost 0.014 dB with 46% of the steps saved; Set5 / Set14 x4 at 0.5:
    -0.005 / -0.013 dB; BENCHMARKS.md, "Stopping, other families")."""
    lr: float = 1e-3
    sigma: float = 5.0
    """Standard deviation of the random frequencies per unit of [-1, 1] field coordinates (the
    paper's sigma = 10 on [0, 1] coordinates is 5 here)."""
    features: int = 256
    """Number of random frequencies (the encoding has twice as many outputs)."""
    hidden: int = 256
    layers: int = 4

    def validate(self) -> None:
        super().validate()
        need(self.sigma > 0, "sigma", self.sigma, "positive")
        need(self.features >= 1, "features", self.features, "at least 1")

    def field_config(self, meta, out_size):
        return FieldConfig(encoding="FourierFeatures",
                           encoding_args={"n_features": self.features, "sigma": self.sigma, "seed": self.seed},
                           activation="relu", hidden=self.hidden, layers=self.layers,
                           convention=self.convention)


@dataclass
class siren(FieldUpscaler):
    """SIREN: sine activations with w0 = 30 and their initialisation (Sitzmann et al. 2020, 3x256)."""

    steps: int = 2000
    until: str = "auto:0.5"
    """As the other presets', at a stricter threshold: in float32 its output settles sooner than in
    bfloat16 and the default 2 levels lost 0.05 dB on BSD200 trajectories (0.5: 0.010, with 39% of
    the fit saved; BENCHMARKS.md, "Stopping, other families")."""
    lr: float = 1e-4
    w0: float = 30.0
    """Frequency of the sine activations."""
    hidden: int = 256
    layers: int = 3

    auto_bf16: ClassVar[bool] = True
    """Measured on Set5 with the default stop: bfloat16 +0.23 dB at x3 and +0.10 dB at x4, with
    half the fit time (x2 not measured: hours at one thread). BENCHMARKS.md "Precision"."""

    def validate(self) -> None:
        super().validate()
        need(self.w0 > 0, "w0", self.w0, "positive")

    def field_config(self, meta, out_size):
        return FieldConfig(encoding="RawCoords", activation="sine", activation_args={"w0": self.w0},
                           hidden=self.hidden, layers=self.layers, convention=self.convention)


@dataclass
class wire(FieldUpscaler):
    """WIRE: Gabor-wavelet activations (Saragadam et al. 2023, omega0 = 20, s0 = 10)."""

    steps: int = 2000
    lr: float = 5e-3
    omega0: float = 20.0
    """Frequency of the Gabor wavelet."""
    s0: float = 10.0
    """Inverse width of the Gabor wavelet's Gaussian envelope."""
    hidden: int = 256
    layers: int = 3

    def validate(self) -> None:
        super().validate()
        need(self.omega0 > 0, "omega0", self.omega0, "positive")
        need(self.s0 > 0, "s0", self.s0, "positive")

    def field_config(self, meta, out_size):
        return FieldConfig(encoding="RawCoords", activation="gabor",
                           activation_args={"omega0": self.omega0, "s0": self.s0},
                           hidden=self.hidden, layers=self.layers, convention=self.convention)


@dataclass
class hashgrid(FieldUpscaler):
    """Multiresolution hash grid + tiny ReLU MLP (Instant-NGP, 16 levels x 2 features, 2x64)."""

    steps: int = 1000
    lr: float = 1e-2
    levels: int = 16
    """Number of grid levels, geometric from base to finest resolution."""
    base_resolution: int = 16
    """Cells per side of the coarsest level."""
    finest: float = 1.0
    """Cells per side of the finest level, as a multiple of the input's longer side."""
    log2_table_size: int = 19
    """Entries per hashed level (2^T)."""
    hidden: int = 64
    layers: int = 2

    auto_bf16: ClassVar[bool] = True
    """'auto' may pick bfloat16: measured on Set5 x2 / x3 / x4, +0.010 / -0.009 / +0.008 dB
    against float32 (BENCHMARKS.md "Precision"); fits 1.45x and draws 1.3x faster idle here."""

    def adam_eps(self) -> float:
        return 1e-15

    def validate(self) -> None:
        super().validate()
        need(1 <= self.levels <= 64, "levels", self.levels, "between 1 and 64")
        need(self.base_resolution >= 1, "base_resolution", self.base_resolution, "at least 1")
        need(self.finest > 0, "finest", self.finest, "positive")
        need(1 <= self.log2_table_size <= 30, "log2_table_size", self.log2_table_size, "between 1 and 30")

    def field_config(self, meta, out_size):
        finest = max(self.base_resolution, round(self.finest * max(meta.height, meta.width)))
        return FieldConfig(encoding="MultiresGrid",
                           encoding_args={"n_levels": self.levels, "base_resolution": self.base_resolution,
                                          "finest_resolution": finest,
                                          "log2_table_size": self.log2_table_size},
                           activation="relu", hidden=self.hidden, layers=self.layers, convention=self.convention)
