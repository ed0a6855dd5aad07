"""Zero-shot upscaling: nothing but the input image (no external data, no pretrained weights).

The pipeline (each part measured on a development set, experiments/zeroshot/NOTES.md):

1. observation model: the input is D(HR), D the antialiased bicubic ``imresize``. Every
   intermediate image is projected exactly onto the images with D(image) = input
   (back-projection, :func:`coordsr.zeroshot.ops.back_project`);
2. internal learning: linear filters, one per bucket of local structure, learned in closed form
   from the input's own downscaled copies (copy -> consistent interpolation -> copy) at the
   step's ratio, with the 8 flips/rotations in the training set (so they are equivariant and
   the output needs no test-time ensemble); 'best' cascades two banks;
3. gradual upscaling: ratios above 2 are reached in steps of at most 2, the same bank applied at
   each step (the copies are most alike the input at small ratios);
4. 'best' ends with a total-variation refinement among the images consistent with the input.

Any scale, integer or not, any aspect: the filters work on the interpolated grid and the
copies are made at the target's own per-axis ratios.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from coordsr.methods.base import MAX_SEED, Upscaler, need, resolve_device
from coordsr.resize import KERNELS
from coordsr.progress import Progress
from coordsr.zeroshot.filters import apply_filters, fit_filters
from coordsr.zeroshot.internal import InternalConfig, consistent_upscale, make_pairs
from coordsr.zeroshot.ops import back_project, downscale
from coordsr.zeroshot.prior import tv_refine

PRESETS = {  # quality -> (filter banks in cascade, TV refinement steps)
    "fast": dict(stages=1, steps=0),
    "best": dict(stages=2, steps=100),
}


def _psnr(out: torch.Tensor, y: torch.Tensor, kernel: str) -> float:
    mse = float(((downscale(out.clamp(0, 1), y.shape[-2:], kernel) - y) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


@dataclass
class zeroshot(Upscaler):
    """Zero-shot: filters learned from the input's own downscaled copies, consistent with the input."""

    family = "zero-shot"

    quality: str = "fast"
    """'fast' (one filter bank) or 'best' (two in cascade + a TV refinement); see PRESETS."""
    steps: int = -1
    """Adam steps of the final TV refinement; -1 = the quality's preset (fast 0, best 100)."""
    stages: int = 0
    """Filter banks in cascade; 0 = the quality's preset (fast 1, best 2); -1 = none
    (the consistent interpolation alone: bicubic back-projected onto the input)."""
    tv_weight: float = 1e-4
    """Weight of the total variation in the refinement."""
    max_step: float = 2.0
    """Largest ratio of one upscaling step; larger ratios are reached gradually."""
    filter_size: int = 7
    """Side of the learned filters (pixels of the output grid)."""
    kernel: str = "cubic"
    """Degradation kernel that made the input: 'cubic' (benchmarks), 'box' (sensor), 'gaussian'."""
    seed: int = 0
    """Seed of the sampling of training pixels (large images): the same seed gives the same image."""

    def validate(self) -> None:
        self._preset()  # an unknown quality is an error now, not after the image is read
        need(self.steps >= -1, "steps", self.steps, "-1 (the preset) or more")
        need(self.stages >= -1, "stages", self.stages, "-1 (none), 0 (the preset) or more")
        need(self.tv_weight >= 0, "tv_weight", self.tv_weight, "0 or more")
        need(self.max_step > 1, "max_step", self.max_step, "more than 1")
        need(1 <= self.filter_size <= 31, "filter_size", self.filter_size, "between 1 and 31")
        need(self.kernel in KERNELS, "kernel", self.kernel, f"one of {', '.join(KERNELS)}")
        need(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"between 0 and {MAX_SEED}")

    def peak_bytes(self, in_shape, size):
        """Images at the output size alive at once (the estimate, the previous step, filtered and
        back-projected copies; the TV refinement's autograd graph), one channel's filtering (its
        patch matrix, the gathered filters and their product: filter_size^2 floats a pixel
        each), the dense float64 resize operators, and the training copies at the input's size
        in 8 orientations."""
        (h, w, c), (H, W) = in_shape, size
        stages, steps = self._preset()
        images = 8 + (16 if steps > 0 else 0) + 2 * stages
        filtering = 4 * self.filter_size**2 * 4 * H * W if stages else 0
        operators = 3 * 8 * (H * h + W * w)
        return (super().peak_bytes(in_shape, size) + images * 4 * c * H * W + filtering + operators
                + 16 * (stages + 1) * 4 * c * h * w)

    def _preset(self) -> tuple[int, int]:
        if self.quality not in PRESETS:
            raise ValueError(f"unknown quality {self.quality!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[self.quality]
        stages = p["stages"] if self.stages == 0 else max(self.stages, 0)
        steps = p["steps"] if self.steps < 0 else self.steps
        return stages, steps

    def _upscale(self, image, size, progress):
        start = time.perf_counter()
        stages, steps = self._preset()
        report = progress or (lambda p: None)
        device = resolve_device(self.device)
        y = torch.from_numpy(image).permute(2, 0, 1).to(device)  # (C, h, w)
        h, w = image.shape[:2]
        if size[0] <= h and size[1] <= w:  # shrinking: the degradation operator itself
            return downscale(y, size, self.kernel).permute(1, 2, 0).cpu().numpy()
        if size[0] < h or size[1] < w:  # shrinking one axis: no copies to learn from
            stages = 0
        # the ratios of the steps: n equal steps (per axis) of at most max_step
        s = max(size[0] / h, size[1] / w)
        n = max(1, math.ceil(math.log(s) / math.log(max(self.max_step, 1.01)) - 1e-9)) if stages else 1
        sizes = [(round(h * (size[0] / h) ** (i / n)), round(w * (size[1] / w) ** (i / n))) for i in range(1, n)]
        sizes.append(tuple(size))
        total = stages + n + (steps > 0)
        done = 0

        def tick(stage: str, psnr: float | None = None):
            nonlocal done
            done += 1
            report(Progress(step=done, total=total, stage=stage, psnr=psnr, elapsed=time.perf_counter() - start))

        banks = []
        if stages:
            gen = torch.Generator().manual_seed(self.seed)
            pairs = make_pairs(y, sizes[0], InternalConfig(kernel=self.kernel))
            sons = [downscale(t, _son_size(t, y, sizes[0]), self.kernel) for _, t in pairs]
            for _ in range(stages):
                if not pairs:
                    break
                bank = fit_filters(pairs, k=self.filter_size, generator=gen)
                banks.append(bank)
                pairs = [(back_project(apply_filters(bank, i), son, self.kernel), t) for (i, t), son in zip(pairs, sons)]
                # PSNR on the input's own pixels: the copies' upscaling against the input
                mse = float(np.mean([float(((i - t) ** 2).mean()) for i, t in pairs])) if pairs else 0.0
                tick("train", 10 * math.log10(1 / max(mse, 1e-12)))
        x = y
        for sz in sizes:
            prev = x
            x = consistent_upscale(prev, sz, self.kernel)
            for bank in banks:
                x = back_project(apply_filters(bank, x), prev, self.kernel)
            x = back_project(x, y, self.kernel)
            tick("render", _psnr(x, y, self.kernel))
        if steps > 0:
            x = tv_refine(x, y, self.tv_weight, steps, kernel=self.kernel)
            tick("refine", _psnr(x, y, self.kernel))
        report(Progress(step=total, total=total, stage="done", psnr=_psnr(x, y, self.kernel),
                        elapsed=time.perf_counter() - start))
        return x.permute(1, 2, 0).cpu().numpy()


def _son_size(father: torch.Tensor, y: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """The size of a father's downscaled copy at the ratios of y -> size (as make_pairs makes it)."""
    h, w = y.shape[-2:]
    return max(2, round(father.shape[-2] * h / size[0])), max(2, round(father.shape[-1] * w / size[1]))
