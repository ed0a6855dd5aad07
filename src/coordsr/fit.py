"""Fit a field to an image through one of the observation models (DESIGN.md section 2).

- **point**: f(pixel centre) = pixel value, the seed's method.
- **area**: the mean of f over the pixel's cell = pixel value ("regions instead of points", the
  seed's open question): in closed form where the field's encoding has an expected value over a
  footprint (Fourier features, positional encoding, grids: ``Field.forward(..., var=)``), else
  as the mean of AREA_SUPERSAMPLE x AREA_SUPERSAMPLE samples spread over the cell.
- **consistent**: the field is drawn on the output grid, the degradation operator (MATLAB-style
  resize with the kernel that made the data) takes it down to the input grid, and the result
  is compared with the input. Steps can work on random input crops: the rows and columns of
  the operator that a crop needs pick out exactly the output pixels to draw, so a crop's loss
  is the full operator's loss restricted to those input pixels, at a fraction of the cost.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from coordsr.coords import FULL_BOX, Box, axis_centers, pixel_centers, pixel_spacing
from coordsr.errors import Cancelled
from coordsr.memory import reusing_memory
from coordsr.precision import autocast, flushing_subnormals, resolve_precision
from coordsr.progress import Progress, ProgressCallback
from coordsr.resize import resize_matrix


Observation = Literal["point", "area", "mip", "consistent"]
OBSERVATIONS: tuple[str, ...] = ("point", "area", "mip", "consistent")


@dataclass
class FitConfig:
    """The optimisation of one field to one image."""

    steps: int = 2000
    """Most Adam steps: the cap of every stop rule (``until``)."""
    until: str = "auto"
    """When the fit is done: 'auto' (when the drawn output stops changing visibly: see
    :class:`AutoStop`; 'auto:LEVELS' sets its threshold, in 8-bit levels of projected change,
    default 2), 'steps' (run all ``steps``), or 'psnr:DB' (when the training PSNR on the input
    reaches DB dB, e.g. 'psnr:35')."""
    lr: float = 1e-3
    """Peak learning rate."""
    lr_end: float = 0.05
    """Final learning rate as a fraction of ``lr`` (cosine decay)."""
    adam_eps: float = 1e-8
    """Adam's epsilon (Instant-NGP uses 1e-15 for its grids)."""
    observation: Observation = "point"
    """'point' (fit pixel centres), 'area' (fit each pixel's mean over its cell), 'mip' (the
    area model at the input's pixels and at its 2x2, 4x4, ... block means) or 'consistent' (fit
    through the degradation operator)."""
    kernel: str = "cubic"
    """Degradation kernel of the consistent model: 'cubic' (benchmarks), 'box' (sensor), 'gaussian'."""
    batch: int = 0
    """Input pixels per step (0 = all): random pixels (point model) or a random square input crop
    of about this many pixels (consistent model)."""
    tv_weight: float = 0.0
    """Consistent model: weight of the total variation of the drawn output (a smoothness prior)."""
    patience: int = 0
    """Stop when the loss has not improved by 0.1% for this many steps (0 = never)."""
    target_psnr: float = 0.0
    """Stop as soon as the training PSNR on the input reaches this many dB (0 = never)."""
    precision: str = "fp32"
    """Compute precision of the forward pass: 'fp32', 'bf16' (bfloat16 matrix products under
    autocast; weights and optimizer state stay float32) or 'auto' (:mod:`coordsr.precision`)."""
    seed: int = 0
    """Seed of the sampling; the field's initialisation is seeded by the caller."""
    log_every: int = 25
    """Steps between progress reports."""


@dataclass(frozen=True)
class Until:
    """A parsed ``until`` setting."""

    rule: Literal["auto", "steps", "psnr"]
    psnr: float = 0.0
    """The target of the 'psnr' rule (dB)."""
    levels: float = 0.0
    """The threshold of the 'auto' rule (8-bit levels of projected change; 0: AutoStop's default)."""


def parse_until(text: str) -> Until:
    """'auto', 'auto:LEVELS', 'steps' or 'psnr:DB' -> Until; ValueError naming the valid forms otherwise.

    >>> parse_until("psnr:35")
    Until(rule='psnr', psnr=35.0, levels=0.0)
    >>> parse_until("auto:0.5")
    Until(rule='auto', psnr=0.0, levels=0.5)
    """
    word, colon, value = str(text).strip().lower().partition(":")
    if word in ("auto", "steps") and not colon:
        return Until(word)  # type: ignore[arg-type]
    if word in ("psnr", "auto"):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if math.isfinite(number) and number > 0:
            return Until("psnr", psnr=number) if word == "psnr" else Until("auto", levels=number)
    raise ValueError("until must be 'auto', 'auto:LEVELS' (e.g. auto:0.5), 'steps' or 'psnr:DB' (e.g. "
                     f"psnr:35), got {text!r}")


class AutoStop:
    """Stop when the drawn output would no longer change visibly.

    Every ``every`` steps the field is drawn at a fixed random sample of the output grid's pixel
    centres (at most ``points``), and the RMS change of that drawing since the previous check
    (in 8-bit levels, 1/255) is measured. The output grid, not the input, is watched because it
    is what the user gets: a point fit can still move between the input's pixels after its
    training loss has settled. The change is projected over what is left of the learning-rate
    schedule: divided by the learning rate spent since the previous check and multiplied by the
    learning rate still to come (cosine to ``lr_end`` over ``cap`` steps); the fit stops when that
    projected change stays below ``threshold`` for ``patience`` checks in a row. A fast learner
    (hashgrid) stops where a fixed threshold on the change would; a slow one (siren at lr 1e-4),
    which moves little per check with most of its schedule left, is not stopped half-way.
    Threshold chosen on trajectories of BSD200 training images (siren) and checked on Set5/Set14
    (BENCHMARKS.md, "Stopping").
    """

    every: int = 25
    points: int = 16384
    threshold: float = 2.0
    patience: int = 2

    def __init__(self, size: tuple[int, int], convention: str, device: torch.device, seed: int = 0, *,
                 cap: int, lr_end: float = 0.05, threshold: float = 0.0):
        if threshold > 0:
            self.threshold = threshold
        h, w = size
        gen = torch.Generator().manual_seed(seed)
        n = h * w
        idx = torch.randperm(n, generator=gen)[:self.points] if n > self.points else torch.arange(n)
        self.coords = pixel_centers(h, w, convention=convention).reshape(-1, 2)[idx].to(device)
        self.cap, self.lr_end = cap, lr_end
        self.last: torch.Tensor | None = None
        self.last_step = 0
        self.calm = 0
        self.change = float("inf")
        """RMS change (8-bit levels) at the last check."""
        self.projected = float("inf")
        """That change projected over the rest of the schedule (see the class)."""

    @torch.no_grad()
    def __call__(self, field: nn.Module, step: int) -> bool:
        """True when the fit is done (called after every step; checks every ``every`` steps)."""
        if step % self.every:
            return False
        now = field(self.coords).float().clamp_(0, 1)
        if self.last is not None:
            self.change = 255.0 * float(torch.sqrt(torch.mean((now - self.last) ** 2)))
            self.projected = projected_change(self.change, self.last_step, step, self.cap, self.lr_end)
            self.calm = self.calm + 1 if self.projected < self.threshold else 0
        self.last, self.last_step = now, step
        return self.calm >= self.patience


def projected_change(change: float, previous: int, step: int, cap: int, lr_end: float = 0.05) -> float:
    """``change`` over steps previous+1..step, scaled to the learning rate left after ``step``
    (the schedule of :func:`cosine_lr` over ``cap`` steps, as fractions of its peak)."""
    total = _lr_totals(cap, lr_end)
    spent, left = total[step] - total[previous], total[cap] - total[step]
    return change / max(spent, 1e-12) * left


@functools.lru_cache(maxsize=8)
def _lr_totals(cap: int, lr_end: float) -> tuple[float, ...]:
    """Running sums of :func:`lr_fraction` over steps 1..k, k = 0..cap: every check of a fit
    reads two of them instead of summing the schedule again."""
    return tuple(itertools.accumulate((lr_fraction(s, cap, lr_end) for s in range(1, cap + 1)), initial=0.0))


@dataclass
class FitResult:
    steps: int
    """Steps run."""
    psnr: float
    """PSNR (dB, RGB/all channels) of the field's observation against the input, last step."""
    seconds: float
    history: list[tuple[int, float]] = field(default_factory=list)
    """(step, loss) every ``log_every`` steps."""
    stopped: str = "steps"
    """Why the fit ended: 'steps' (the cap), 'auto', 'psnr', 'target_psnr' or 'patience'."""


class Adam:
    """Adam exactly as ``torch.optim.Adam`` computes it on the CPU (its single-tensor path, no
    weight decay, no amsgrad): the same numbers, step for step.

    Why not ``torch.optim.Adam``: constructing any ``torch.optim`` optimizer imports
    ``torch._dynamo``, which takes as long as importing torch itself (1.5 s on 2 cores): more
    than the seed's whole job (a 64x64 fit drawn at 1024x1024) costs beyond ``import torch``.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        bias_correction1 = 1 - beta1 ** float(self.steps)
        bias_correction2_sqrt = (1 - beta2 ** float(self.steps)) ** 0.5
        step_size = self.lr / bias_correction1
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)


def cosine_lr(cfg: FitConfig, step: int) -> float:
    """Learning rate of step ``step`` (1-based): cosine from ``lr`` to ``lr * lr_end`` over ``steps``
    (as ``LambdaLR``, step k uses the schedule's value at k - 1)."""
    return cfg.lr * lr_fraction(step, cfg.steps, cfg.lr_end)


def lr_fraction(step: int, steps: int, lr_end: float) -> float:
    """The schedule's factor of step ``step`` (1-based) of ``steps``: from 1 down to ``lr_end``."""
    s = step - 1
    return lr_end + (1 - lr_end) * 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0)))


def psnr_from_mse(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


class PointObservation:
    """Targets are the pixel values at the pixel centres of the input grid."""

    def __init__(self, image: torch.Tensor, convention: str, batch: int, generator: torch.Generator,
                 box: Box = FULL_BOX):
        h, w, c = image.shape
        self.coords = pixel_centers(h, w, box=box, convention=convention, device=image.device).reshape(-1, 2)
        self.target = image.reshape(-1, c)
        self.batch, self.gen = batch, generator

    def loss(self, field: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, data MSE)."""
        coords, target = self.coords, self.target
        if 0 < self.batch < len(coords):
            idx = torch.randint(len(coords), (self.batch,), generator=self.gen).to(coords.device)
            coords, target = coords[idx], target[idx]
        mse = torch.mean((self.predict(field, coords) - target) ** 2)
        return mse, mse

    def predict(self, field: nn.Module, coords: torch.Tensor) -> torch.Tensor:
        """What the model says the pixels centred at ``coords`` (N, 2) hold: the field there."""
        return field(coords)


class AreaObservation(PointObservation):
    """Targets are the pixel values; predictions the field's mean over each pixel's cell."""

    def __init__(self, image: torch.Tensor, convention: str, batch: int, generator: torch.Generator,
                 box: Box = FULL_BOX):
        from coordsr.render import AREA_SUPERSAMPLE, box_variance, cell_samples

        super().__init__(image, convention, batch, generator, box=box)
        dx, dy = pixel_spacing(*image.shape[:2], box=box, convention=convention)
        self.var = box_variance(dx, dy)
        k = AREA_SUPERSAMPLE  # sample offsets within a cell, for fields without a closed form
        zero = torch.zeros(1, device=image.device)
        ox, oy = cell_samples(zero, dx, k), cell_samples(zero, dy, k)
        self.offsets = torch.stack(torch.meshgrid(oy, ox, indexing="ij")[::-1], dim=-1).reshape(-1, 2)

    def predict(self, field: nn.Module, coords: torch.Tensor) -> torch.Tensor:
        """The field's mean over each pixel's cell: in closed form, or over k x k samples."""
        if getattr(field, "has_footprint", False):
            return field(coords, var=self.var)
        return field(coords[:, None] + self.offsets).mean(dim=1)  # (N, k*k, 2) samples -> their mean


class MipObservation:
    """Area observations of the input and of its reduced copies, each pixel of a copy the mean of
    a 2x2 block of the one before, while both sides stay at least ``min_side``: the field is fitted
    at every footprint from one input pixel to 2^levels of them, as Mip-NeRF trains at several
    scales, so that its closed-form footprint draws it smaller without aliasing. A side of odd
    length drops its last row or column at each halving; the copy covers the region it came from.
    Each level's MSE counts the same; the reported MSE is the input's."""

    max_levels: int = 3
    min_side: int = 8

    def __init__(self, image: torch.Tensor, convention: str, batch: int, generator: torch.Generator):
        if convention != "cell":
            raise ValueError("the mip observation model needs the cell convention")
        self.levels = [AreaObservation(image, convention, batch, generator)]
        h, w = image.shape[:2]
        img, extent = image, [1.0, 1.0]  # the fraction of the image's width and height a copy covers
        while len(self.levels) <= self.max_levels and min(h // 2, w // 2) >= self.min_side:
            extent = [extent[0] * 2 * (w // 2) / w, extent[1] * 2 * (h // 2) / h]
            h, w = h // 2, w // 2
            img = img[:2 * h, :2 * w].reshape(h, 2, w, 2, -1).mean(dim=(1, 3))
            box = (-1.0, -1.0, -1.0 + 2 * extent[0], -1.0 + 2 * extent[1])
            self.levels.append(AreaObservation(img, convention, batch, generator, box=box))

    def loss(self, field: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean of the levels' MSE, the input's MSE)."""
        losses = [level.loss(field)[0] for level in self.levels]
        return torch.stack(losses).mean(), losses[0]


class ConsistentObservation:
    """Targets are the input pixels; predictions are the drawn output taken down by the operator."""

    def __init__(self, image: torch.Tensor, out_size: tuple[int, int], kernel: str, batch: int,
                 tv_weight: float, generator: torch.Generator):
        h, w, _ = image.shape
        H, W = out_size
        dev = image.device
        self.image = image.permute(2, 0, 1)  # (C, h, w)
        # (h, H) and (w, W) operators: each input pixel as a weighted sum of output pixels.
        self.mh = resize_matrix(H, h, h / H, kernel=kernel, device=dev)
        self.mw = resize_matrix(W, w, w / W, kernel=kernel, device=dev)
        self.ys = axis_centers(H, device=dev)
        self.xs = axis_centers(W, device=dev)
        self.batch, self.tv_weight, self.gen = batch, tv_weight, generator

    @staticmethod
    def _span(m: torch.Tensor) -> tuple[int, int]:
        cols = torch.nonzero(m.abs().sum(0) > 0).flatten()
        return int(cols[0]), int(cols[-1]) + 1

    def predict(self, field: nn.Module, r0: int, r1: int, c0: int, c1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The observation of input pixels [r0:r1, c0:c1]: (prediction (C, r, c), drawn output used)."""
        mh, mw = self.mh[r0:r1], self.mw[c0:c1]
        R0, R1 = self._span(mh)
        C0, C1 = self._span(mw)
        yy, xx = torch.meshgrid(self.ys[R0:R1], self.xs[C0:C1], indexing="ij")
        hr = field(torch.stack((xx, yy), dim=-1)).permute(2, 0, 1)  # (C, R, Cc)
        return mh[:, R0:R1] @ hr @ mw[:, C0:C1].T, hr

    def loss(self, field: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, data MSE)."""
        c, h, w = self.image.shape
        r0, r1, c0, c1 = 0, h, 0, w
        side = max(1, math.isqrt(self.batch)) if self.batch > 0 else 0
        if 0 < side < max(h, w):
            ph, pw = min(side, h), min(side, w)
            r0 = int(torch.randint(h - ph + 1, (1,), generator=self.gen))
            c0 = int(torch.randint(w - pw + 1, (1,), generator=self.gen))
            r1, c1 = r0 + ph, c0 + pw
        pred, hr = self.predict(field, r0, r1, c0, c1)
        mse = torch.mean((pred - self.image[:, r0:r1, c0:c1]) ** 2)
        if self.tv_weight <= 0:
            return mse, mse
        tv = (hr[:, 1:] - hr[:, :-1]).abs().mean() + (hr[:, :, 1:] - hr[:, :, :-1]).abs().mean()
        return mse + self.tv_weight * tv, mse


def preview(field: nn.Module, size: tuple[int, int], convention: str, max_side: int = 256) -> np.ndarray:
    """The field drawn at ``size`` shrunk to at most ``max_side`` pixels: a live view while fitting."""
    from coordsr.render import render

    k = max(size[0], size[1]) / max_side
    h, w = (size[0], size[1]) if k <= 1 else (max(1, round(size[0] / k)), max(1, round(size[1] / k)))
    channels = int(field(torch.zeros(1, 2, device=next(field.parameters()).device)).shape[-1])
    return render(field, (h, w), channels, convention=convention)


@reusing_memory()
@flushing_subnormals()  # subnormals slowed wire's fits 5-13x on an Intel Xeon (benchmarks/subnormals.py)
def fit(field: nn.Module, image: np.ndarray, cfg: FitConfig, *, out_size: tuple[int, int] | None = None,
        convention: str = "cell", progress: ProgressCallback | None = None) -> FitResult:
    """Optimise ``field`` (in place) so that its observation matches ``image`` (H, W, C).

    ``out_size`` is the output grid of the consistent model (required for it).
    """
    device = next(field.parameters()).device
    target = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.observation == "point":
        obs = PointObservation(target, convention, cfg.batch, gen)
    elif cfg.observation == "area":
        obs = AreaObservation(target, convention, cfg.batch, gen)
    elif cfg.observation == "mip":
        obs = MipObservation(target, convention, cfg.batch, gen)
    elif cfg.observation == "consistent":
        if out_size is None:
            raise ValueError("the consistent observation model needs the output size")
        if convention != "cell":
            raise ValueError("the consistent observation model needs the cell convention")
        obs = ConsistentObservation(target, out_size, cfg.kernel, cfg.batch, cfg.tv_weight, gen)
    else:
        raise ValueError(f"unknown observation {cfg.observation!r}; valid: {', '.join(OBSERVATIONS)}")

    until = parse_until(cfg.until)
    compute = resolve_precision(cfg.precision, device)
    auto = (AutoStop(out_size or image.shape[:2], convention, device, cfg.seed, cap=cfg.steps, lr_end=cfg.lr_end,
                     threshold=until.levels) if until.rule == "auto" else None)
    opt = Adam(field.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    start = time.perf_counter()
    best, best_step, history, mse_value = float("inf"), 0, [], float("nan")
    step, stop = 0, ""
    for step in range(1, cfg.steps + 1):
        opt.zero_grad()
        opt.lr = cosine_lr(cfg, step)
        with autocast(compute, device):
            loss, mse = obs.loss(field)
        loss.backward()
        opt.step()
        loss_value, mse_value = loss.item(), mse.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"fit diverged at step {step} (loss {loss_value}); lower the learning rate")
        if loss_value < best * 0.999:
            best, best_step = loss_value, step
        psnr = psnr_from_mse(mse_value)
        stop = ("patience" if cfg.patience > 0 and step - best_step >= cfg.patience
                else "target_psnr" if 0 < cfg.target_psnr <= psnr
                else "psnr" if until.rule == "psnr" and psnr >= until.psnr
                else "auto" if auto is not None and auto(field, step)
                else "")
        if step == 1 or step % cfg.log_every == 0 or step == cfg.steps or stop:
            history.append((step, loss_value))
            if progress is not None:
                progress(Progress(step=step, total=cfg.steps, stage="fit", loss=loss_value,
                                  psnr=psnr_from_mse(mse_value), elapsed=time.perf_counter() - start,
                                  preview=lambda: preview(field, out_size or image.shape[:2], convention)))
        if stop:
            break
    return FitResult(steps=step, psnr=psnr_from_mse(mse_value), seconds=time.perf_counter() - start,
                     history=history, stopped=stop or "steps")


__all__ = ["FitConfig", "FitResult", "fit", "Until", "parse_until", "AutoStop", "Cancelled", "OBSERVATIONS"]
