"""Denoisers: the registry's ``task = 'denoise'`` entries (issue 14).

The contract, the sibling of the upscaler's (base.py):

    noisy image (H, W, C) floats, C in 1..4  +  sigma (8-bit levels) or None  ->  (H, W, C) in [0, 1]

``sigma`` None means blind: the level is estimated from the image
(:func:`coordsr.denoise.protocol.estimate_sigma`). Only the colour channels are denoised; an
alpha channel (C = 2 or 4) is passed through unchanged. A level below ``CLEAN_SIGMA`` returns
the image as it is. Noisy values may lie outside [0, 1] (the protocol's noise is not clipped).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from coordsr.denoise.protocol import CLEAN_SIGMA, check_sigma, estimate_sigma
from coordsr.methods.base import Method, check_image, need, resolve_device, shipped_weights_file
from coordsr.progress import Progress, ProgressCallback
from coordsr.zeroshot.ops import ENSEMBLES

# An orthonormal colour transform (luma + two opponent axes): white noise of level sigma in RGB
# stays white with the same level in every new channel, so per-channel thresholds stay exact.
OPPONENT = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
OPPONENT /= np.linalg.norm(OPPONENT, axis=1, keepdims=True)


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour channels, alpha or None) of an (H, W, C) image, C in 1..4."""
    if image.shape[2] in (2, 4):
        return image[:, :, :-1], image[:, :, -1:]
    return image, None


@dataclass
class Denoiser(Method):
    """Base class of denoisers: subclasses set ``family`` and implement ``_denoise``."""

    task: ClassVar[str] = "denoise"
    family: ClassVar[str] = "classical"
    """One of 'classical', 'per-image', 'zero-shot', 'pretrained'."""

    def denoise(self, image: np.ndarray, sigma: float | None = None, *,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """The denoised ``image``, float32 in [0, 1]; ``sigma`` in 8-bit levels, None = estimate."""
        image = check_image(image)
        colour, alpha = split_alpha(image)
        level = estimate_sigma(colour) if sigma is None else check_sigma(sigma)
        if level < CLEAN_SIGMA:
            out = colour
        else:
            out = self._denoise(colour.astype(np.float64), level / 255.0, progress)
            out = np.asarray(out).reshape(colour.shape)  # scikit-image drops a single channel axis
        out = np.clip(out, 0.0, 1.0)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
        return out.astype(np.float32, copy=False)

    def _denoise(self, noisy: np.ndarray, sigma: float, progress: ProgressCallback | None) -> np.ndarray:
        """``noisy`` (H, W, C) float64 colour channels, ``sigma`` in [0, 1] units."""
        raise NotImplementedError


@dataclass
class nlmeans(Denoiser):
    """Non-local means (scikit-image, fast mode): averages of similar patches, noise level given."""

    h: float = 0.6
    """Filtering strength as a multiple of sigma (best of 0.6 / 0.8 / 1.0 on BSD200, NOTES.md)."""
    patch_size: int = 5
    """Side of the compared patches."""
    patch_distance: int = 6
    """Search radius for similar patches, in pixels."""

    def validate(self) -> None:
        need(self.h > 0, "h", self.h, "positive")
        need(self.patch_size >= 1, "patch_size", self.patch_size, "at least 1")
        need(self.patch_distance >= 1, "patch_distance", self.patch_distance, "at least 1")

    def _denoise(self, noisy, sigma, progress):
        from skimage.restoration import denoise_nl_means

        return denoise_nl_means(noisy, h=self.h * sigma, sigma=sigma, patch_size=self.patch_size,
                                patch_distance=self.patch_distance, fast_mode=True, channel_axis=-1)


@dataclass
class wavelet(Denoiser):
    """Wavelet shrinkage (scikit-image, BayesShrink, soft) in an orthonormal opponent colour space."""

    wavelet: str = "db2"
    """PyWavelets name of the wavelet."""
    levels: int = 0
    """Decomposition levels (0 = scikit-image's default: three fewer than the most possible)."""

    def validate(self) -> None:
        import pywt

        need(self.wavelet in pywt.wavelist(kind="discrete"), "wavelet", self.wavelet, "a discrete PyWavelets name")
        need(self.levels >= 0, "levels", self.levels, "0 (default) or more")

    def _denoise(self, noisy, sigma, progress):
        from skimage.restoration import denoise_wavelet

        colour = noisy.shape[2] == 3
        x = noisy @ OPPONENT.T if colour else noisy
        out = denoise_wavelet(x, sigma=sigma, wavelet=self.wavelet, mode="soft", method="BayesShrink",
                              wavelet_levels=self.levels or None, rescale_sigma=True,
                              channel_axis=-1)
        return out @ OPPONENT if colour else out


@dataclass
class tv(Denoiser):
    """Total-variation denoising (scikit-image, Chambolle), weight proportional to sigma."""

    weight: float = 0.75
    """Smoothing weight as a multiple of sigma (best of 0.5 - 2 on BSD200 at sigma 15 and 25, NOTES.md)."""

    def validate(self) -> None:
        need(self.weight > 0, "weight", self.weight, "positive")

    def _denoise(self, noisy, sigma, progress):
        from skimage.restoration import denoise_tv_chambolle

        return denoise_tv_chambolle(noisy, weight=self.weight * sigma, channel_axis=-1)


@dataclass
class zsn2n(Denoiser):
    """Zero-Shot Noise2Noise: a 2-layer conv net trained on the image's own downsampled pairs."""

    family: ClassVar[str] = "zero-shot"

    steps: int = 300
    """Adam steps."""
    lr: float = 2e-3
    """Peak learning rate (cosine to zero)."""
    channels: int = 48
    """Feature maps of the hidden convolutions."""
    crop: int = 192
    """Side of the random crop each step trains on (0 = whole image, as in the paper)."""
    seed: int = 0
    """Seed of the initialisation and the crops."""
    ensemble: int = 1
    """Average the denoised image over 1, 2, 4 or 8 of its flips and transposes."""

    def validate(self) -> None:
        need(self.ensemble in ENSEMBLES, "ensemble", self.ensemble, "1, 2, 4 or 8")
        need(self.steps >= 1, "steps", self.steps, "at least 1")
        need(self.lr > 0, "lr", self.lr, "positive")
        need(self.channels >= 1, "channels", self.channels, "at least 1")
        need(self.crop >= 0, "crop", self.crop, "0 (whole image) or more")
        need(self.seed >= 0, "seed", self.seed, "0 or more")

    def _denoise(self, noisy, sigma, progress):
        from coordsr.denoise.zsn2n import train_and_denoise

        return train_and_denoise(noisy, self._config(), resolve_device(self.device), self._on_step(progress))

    def _config(self):
        """The training and ensemble settings as a ``ZSN2NConfig``."""
        from coordsr.denoise.zsn2n import ZSN2NConfig

        return ZSN2NConfig(steps=self.steps, lr=self.lr, channels=self.channels, crop=self.crop,
                           seed=self.seed, ensemble=self.ensemble)

    @staticmethod
    def _on_step(progress):
        """The training's step callback: a Progress report every 25 steps and at the last."""
        start = time.perf_counter()

        def on_step(step, total, loss):
            if progress is not None and (step % 25 == 0 or step == total):
                progress(Progress(step=step, total=total, stage="train", loss=loss,
                                  elapsed=time.perf_counter() - start))

        return on_step


@dataclass
class zsnlm(zsn2n):
    """ZS-N2N (self-ensembled) and non-local means blended by SURE: two zero-shot denoisers whose errors differ."""

    ensemble: int = 8
    """As zsn2n's; 8 here (all flips and transposes)."""
    weight: str = "sure"
    """Weight of the network's output (non-local means gets the rest): 'sure', chosen per image
    by Stein's unbiased risk estimate from the noisy image alone (:mod:`coordsr.denoise.sure`),
    or a number in [0, 1] (0.4 was the best fixed weight on BSD200: docs/DENOISE.md)."""
    h: float = 0.6
    """Non-local means' strength as a multiple of sigma (as ``nlmeans``)."""
    probe_eps: float = 0.01
    """Size of the SURE divergence probe, as a fraction of the [0, 1] range."""

    last_weight: ClassVar[float | None] = None
    """The weight the last call used (set on the instance; for reports, not a setting)."""

    def validate(self) -> None:
        super().validate()
        need(self.weight == "sure" or _fraction(self.weight) is not None, "weight", self.weight,
             "'sure' or a number in [0, 1]")
        need(self.h > 0, "h", self.h, "positive")
        need(self.probe_eps > 0, "probe_eps", self.probe_eps, "positive")

    def _denoise(self, noisy, sigma, progress):
        from coordsr.denoise.sure import blend_weight, mc_divergence
        from coordsr.denoise.zsn2n import apply, train

        # The two are blended, not chained: each sees only the noisy image, so their errors stay
        # far apart (on BSD200 at sigma 25 a fixed average is 0.9 dB above either).
        net = train(noisy, self._config(), resolve_device(self.device), self._on_step(progress))
        classical = nlmeans(h=self.h)

        def both(y):  # scikit-image returns (H, W) for a grey image: reshaped to y's (H, W, 1)
            return apply(net, y, self.ensemble), np.reshape(classical._denoise(y, sigma, None), y.shape)

        learned, smooth = both(noisy)
        if self.weight != "sure":
            w = _fraction(self.weight)
        else:
            # The network is held fixed in the probe (its training on y + eps b is not redone):
            # 22 k weights fitted to hundreds of thousands of noisy values move little with one probe.
            probe = np.random.default_rng(self.seed).standard_normal(noisy.shape)
            learned_p, smooth_p = both(noisy + self.probe_eps * probe)
            w = blend_weight(noisy, learned, smooth, mc_divergence(learned, learned_p, probe, self.probe_eps),
                             mc_divergence(smooth, smooth_p, probe, self.probe_eps), sigma)
        self.last_weight = w
        return w * learned + (1.0 - w) * smooth


def _fraction(text) -> float | None:
    """``text`` as a number in [0, 1], or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


SHIPPED_DENOISER = "denoiser.safetensors"
"""File name of the trained denoiser's weights inside ``coordsr/weights``."""


def shipped_denoiser() -> str:
    """Path of the denoiser weights shipped inside the package."""
    return shipped_weights_file(SHIPPED_DENOISER)


@functools.lru_cache(maxsize=4)
def _load_denoiser(path: str, device: str):
    from coordsr.denoise.net import load_denoiser

    return load_denoiser(path, device=device)


@dataclass
class trained(Denoiser):
    """Trained CNN (shipped weights, T91 + BSD200, sigma 0-50): one pass with a noise-level map."""

    family: ClassVar[str] = "pretrained"

    weights: str | None = None
    """Weights file (safetensors from ``coordsr train-denoiser``); None: the ones shipped with coordsr."""
    tile: int = 1024
    """Tile side in pixels (overlapping tiles give the one-pass result with bounded memory)."""
    precision: str = "fp32"
    """Compute precision: 'fp32', 'bf16' (bfloat16 autocast) or 'auto'."""
    ensemble: int = 1
    """Average the passes over 1, 2, 4 or 8 flips and turns of the image (that many passes)."""

    def validate(self) -> None:
        from pathlib import Path

        from coordsr.errors import FieldFileError
        from coordsr.precision import check_precision

        check_precision(self.precision)
        need(self.ensemble in ENSEMBLES, "ensemble", self.ensemble, "1, 2, 4 or 8")
        need(self.tile >= 0, "tile", self.tile, "0 (whole image) or more")
        if self.weights is not None and not Path(self.weights).is_file():
            raise FieldFileError(f"{self.weights}: no such weights file")

    def _denoise(self, noisy, sigma, progress):
        import torch

        from coordsr.denoise.net import denoise_tensor
        from coordsr.precision import resolve_precision
        from coordsr.zeroshot.ops import self_ensemble

        device = resolve_device(self.device)
        model = _load_denoiser(self.weights or shipped_denoiser(), str(device))
        c = noisy.shape[2]
        # Trained on RGB: a grey image is denoised as three equal channels, then averaged.
        rgb = noisy if c == 3 else np.repeat(noisy[:, :, :1], 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
        compute = resolve_precision(self.precision, device)
        out = self_ensemble(lambda t: denoise_tensor(model, t, 255.0 * sigma, tile=self.tile, compute_dtype=compute),
                            x, self.ensemble)
        out = out[0].permute(1, 2, 0).cpu().numpy()
        return out if c == 3 else out.mean(axis=2, keepdims=True)


FIELD_DEFAULTS = {
    # A grid as fine as the input fits the noise within ~10 steps (23.7 dB on a kodim01 crop at
    # sigma 25); a finest level at a quarter of the input's side keeps the grid smooth enough for
    # the stop to matter (25.4 dB). 2^15 entries hold every level without hash collisions up to
    # 700 x 700 inputs, with far fewer parameters for Adam. BENCHMARKS.md, "Coordinate networks".
    "hashgrid": "finest=0.25,log2_table_size=15",
    # Fourier features at the upscalers' bandwidth (sigma 5) fit noise and image at once: 22.95 dB
    # at their best iterate on three BSD200 crops at sigma 25, 25.09 at sigma 2.
    # experiments/denoise/log_fourier_stop.txt.
    "fourier": "sigma=2",
}
"""Preset settings the field denoiser uses for a network when none are given."""

FIELD_TAU = {
    # Fourier features keep gaining on the image after their residual reaches the noise (their
    # best iterate comes 1.5-2x later): stopping at 0.9 sigma^2 lost 0.19 dB to that best iterate
    # on the BSD200 crops, the principle itself (1.0) 0.58. experiments/denoise/log_fourier_stop.txt.
    "fourier": 0.9,
}
"""The discrepancy level (``tau``) of a network when none is given; 1 (the principle) for others."""


@dataclass
class field(Denoiser):
    """A coordinate network fitted to the noisy image, stopped when its residual reaches the noise."""

    family: ClassVar[str] = "per-image"

    network: str = "hashgrid"
    """The per-image preset fitted (a registered per-image upscaler: siren, hashgrid, fourier, ...)."""
    steps: int = 300
    """Most Adam steps; the discrepancy stop usually ends the fit sooner."""
    tau: float = 0.0
    """Discrepancy principle: stop once the mean squared residual is below tau * sigma^2; 0 = the
    network's own level (FIELD_TAU; 1, the principle itself, for most)."""
    lr: float = 0.0
    """Peak learning rate; 0 = the preset's."""
    batch: int = 0
    """Pixels per step (0 = all: the residual the stop reads is then exact)."""
    settings: str = ""
    """More preset settings, 'name=value,name=value' (e.g. 'hidden=128,layers=2'); '' = the
    network's denoising defaults (FIELD_DEFAULTS)."""
    seed: int = 0
    """Seed of the initialisation and the sampling."""

    def validate(self) -> None:
        need(self.steps >= 1, "steps", self.steps, "at least 1")
        need(self.tau >= 0, "tau", self.tau, "0 (the network's) or positive")
        need(self.lr >= 0, "lr", self.lr, "0 (the preset's) or more")
        need(self.batch >= 0, "batch", self.batch, "0 (all pixels) or more")
        need(self.seed >= 0, "seed", self.seed, "0 or more")
        self.preset(0.1)  # the network and its settings: a bad name fails here, before any work

    def stop_level(self) -> float:
        """The tau this denoiser stops at: its own, or its network's (FIELD_TAU, else 1)."""
        return self.tau or FIELD_TAU.get(self.network, 1.0)

    def preset(self, sigma: float):
        """The per-image upscaler fitted to the pixel centres, with the discrepancy stop at ``sigma``
        ([0, 1] units) as its target PSNR on the input."""
        from coordsr.fit import psnr_from_mse
        from coordsr.methods import get_method

        cls = get_method(self.network)
        if getattr(cls, "family", "") != "per-image" or getattr(cls, "task", "upscale") != "upscale":
            raise ValueError(f"field: network {self.network!r} is not a per-image preset")
        extra = _parse_settings(self.settings or FIELD_DEFAULTS.get(self.network, ""), cls)
        # The discrepancy principle is the stop: target_psnr ends the fit, 'steps' caps it. The
        # upscaler's 'auto' rule (the output stops changing) could end it before the residual
        # reaches the noise, and the benchmark's oracle trace replays the fit without it.
        kwargs = dict(steps=self.steps, until="steps", fit="point", batch=self.batch, seed=self.seed,
                      device=self.device, target_psnr=psnr_from_mse(self.stop_level() * sigma**2) if sigma > 0 else 0.0,
                      **extra)
        if self.lr > 0:
            kwargs["lr"] = self.lr
        return cls(**kwargs)

    def _denoise(self, noisy, sigma, progress):
        from coordsr.render import render_field

        size = noisy.shape[:2]
        fitted, _ = self.preset(sigma).fit_field(noisy, size, progress=progress)
        return render_field(fitted, size)

    def trace(self, noisy: np.ndarray, sigma: float, every: int, on_iterate) -> dict:
        """Fit without stopping, for the benchmark's oracle: ``on_iterate(step, image)`` gets the
        drawn field every ``every`` steps and at the discrepancy stop. Returns the step at which
        :meth:`denoise` stops (the same iterate: stopping does not change earlier steps).
        ``sigma`` in 8-bit levels; colour channels only."""
        import dataclasses

        import torch

        from coordsr.field import Field, ImageMeta
        from coordsr.fit import fit
        from coordsr.methods.fields import MODES
        from coordsr.render import render_field

        noisy = check_image(noisy)
        h, w, c = noisy.shape
        up = self.preset(check_sigma(sigma) / 255.0)
        meta = ImageMeta(height=h, width=w, channels=c, mode=MODES[c])
        torch.manual_seed(up.seed)  # as FieldUpscaler.fit_field does
        cfg = up.field_config(meta, (h, w))
        net = Field(cfg, meta).to(resolve_device(up.device))
        target = up.target_psnr
        fit_cfg = dataclasses.replace(up.fit_config(), target_psnr=0.0, log_every=1)
        state = {"stop": None}

        def report(p: Progress) -> None:
            crossed = state["stop"] is None and p.psnr is not None and p.psnr >= target
            if crossed:
                state["stop"] = p.step
            if crossed or p.step % every == 0 or p.step == p.total:
                on_iterate(p.step, render_field(net, (h, w)))

        fit(net, noisy, fit_cfg, out_size=(h, w), convention=cfg.convention, progress=report)
        return {"stop_step": state["stop"] or fit_cfg.steps, "target_psnr": target}


def _parse_settings(text: str, cls) -> dict:
    """'a=1,b=x' -> {'a': 1, 'b': 'x'}, typed by the preset's own fields."""
    import dataclasses
    import typing

    if not text.strip():
        return {}
    hints = typing.get_type_hints(cls)
    # the denoiser sets these itself (a point fit, its own budget, seed and stop)
    known = {f.name for f in dataclasses.fields(cls)} - {"steps", "lr", "fit", "batch", "seed", "device",
                                                         "target_psnr", "patience", "until"}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise ValueError(f"field: settings {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(sorted(known))}")
        kind = hints.get(key, str)
        out[key] = kind(value.strip()) if kind in (int, float, str) else value.strip()
    return out
