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
from typing import ClassVar

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
    train_pixels: int = 512 * 512
    """The filters are learned from at most this many input pixels: a central crop of a larger
    input (aspect kept), so training memory does not grow with the image; 0 = the whole input.
    Every benchmark input (Set5, Set14, B100, Urban100 at x2-x4) is smaller."""
    tile: int = 512
    """Output tile side: where the steps' grids allow it (integer ratios such as x2, x4; not
    x3's intermediate x sqrt(3)) and there is no TV refinement, the output is made in tiles
    with MARGIN input pixels of context: the same image to float rounding, memory of a tile.
    0 = the whole image at once."""

    streams: ClassVar[bool] = True
    """Tiled outputs (see ``tile``) are handed to streamed writers a row of tiles at a time."""

    def validate(self) -> None:
        self._preset()  # an unknown quality is an error now, not after the image is read
        need(self.steps >= -1, "steps", self.steps, "-1 (the preset) or more")
        need(self.stages >= -1, "stages", self.stages, "-1 (none), 0 (the preset) or more")
        need(self.tv_weight >= 0, "tv_weight", self.tv_weight, "0 or more")
        need(self.max_step > 1, "max_step", self.max_step, "more than 1")
        need(1 <= self.filter_size <= 31, "filter_size", self.filter_size, "between 1 and 31")
        need(self.kernel in KERNELS, "kernel", self.kernel, f"one of {', '.join(KERNELS)}")
        need(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"between 0 and {MAX_SEED}")
        need(self.train_pixels >= 0, "train_pixels", self.train_pixels, "0 (all) or more")
        need(self.tile >= 0, "tile", self.tile, "0 (no tiles) or more")

    def peak_bytes(self, in_shape, size):
        """Images at the size of the work (the whole output, or a tile with its margin) alive at
        once (the estimate, the previous step, filtered and back-projected copies; the TV
        refinement's autograd graph), one channel's filtering (its patch matrix, the gathered
        filters and their product: filter_size^2 floats a pixel each), the dense float64 resize
        operators, the training copies at the training crop's size in 8 orientations, and the
        output."""
        (h, w, c), (H, W) = in_shape, size
        return super().peak_bytes(in_shape, size) + 4 * c * H * W + self._work_bytes(in_shape, size)

    def stream_peak_bytes(self, in_shape, size):
        """``peak_bytes`` with a row of tiles in place of the output, when the output is tiled."""
        (h, w, c), (H, W) = in_shape, size
        _, steps, sizes = self._plan(h, w, size)
        grid = self._grid(h, w, sizes, steps) if H > h or W > w else None
        if grid is None:
            return self.peak_bytes(in_shape, size)
        return self._work_bytes(in_shape, size) + (4 + 4 + 2) * c * W * min(H, grid[0] * H // h)

    def _work_bytes(self, in_shape, size) -> int:
        (h, w, c), (H, W) = in_shape, size
        stages, steps, sizes = self._plan(h, w, size)
        grid = self._grid(h, w, sizes, steps) if H > h or W > w else None
        if grid is not None:  # a tile, its margin and the grid's rounding
            h_, w_ = min(h, grid[0] + 2 * (MARGIN + grid[2])), min(w, grid[1] + 2 * (MARGIN + grid[3]))
            H, W, h, w = h_ * H // h, w_ * W // w, h_, w_
        images = 8 + (16 if steps > 0 else 0) + 2 * stages
        filtering = 4 * self.filter_size**2 * 4 * H * W if stages else 0
        operators = 3 * 8 * (H * h + W * w)
        train = min(in_shape[0] * in_shape[1], self.train_pixels or in_shape[0] * in_shape[1])
        return images * 4 * c * H * W + filtering + operators + 16 * (stages + 1) * 4 * c * train + 4 * c * h * w

    def _preset(self) -> tuple[int, int]:
        if self.quality not in PRESETS:
            raise ValueError(f"unknown quality {self.quality!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[self.quality]
        stages = p["stages"] if self.stages == 0 else max(self.stages, 0)
        steps = p["steps"] if self.steps < 0 else self.steps
        return stages, steps

    def _plan(self, h: int, w: int, size: tuple[int, int]) -> tuple[int, int, list[tuple[int, int]]]:
        """(filter banks, TV steps, the size after each upscaling step) for (h, w) -> size."""
        stages, steps = self._preset()
        if size[0] < h or size[1] < w:  # shrinking one axis: no copies to learn from
            stages = 0
        # the ratios of the steps: n equal steps (per axis) of at most max_step
        s = max(size[0] / h, size[1] / w)
        n = max(1, math.ceil(math.log(s) / math.log(max(self.max_step, 1.01)) - 1e-9)) if stages else 1
        sizes = [(round(h * (size[0] / h) ** (i / n)), round(w * (size[1] / w) ** (i / n))) for i in range(1, n)]
        sizes.append(tuple(size))
        return stages, steps, sizes

    def _train(self, y: torch.Tensor, first: tuple[int, int], stages: int, tick) -> list:
        """The filter banks, learned from y's (a central crop's, see ``train_pixels``) own copies
        at the first step's ratios."""
        h, w = y.shape[-2:]
        if self.train_pixels and h * w > self.train_pixels:
            k = math.sqrt(self.train_pixels / (h * w))
            ch, cw = max(2, int(h * k)), max(2, int(w * k))
            a, b = (h - ch) // 2, (w - cw) // 2
            y, first = y[:, a:a + ch, b:b + cw], (round(first[0] * ch / h), round(first[1] * cw / w))
        banks = []
        gen = torch.Generator().manual_seed(self.seed)
        pairs = make_pairs(y, first, InternalConfig(kernel=self.kernel))
        sons = [downscale(t, _son_size(t, y, first), self.kernel) for _, t in pairs]
        for _ in range(stages):
            if not pairs:
                break
            bank = fit_filters(pairs, k=self.filter_size, generator=gen)
            banks.append(bank)
            pairs = [(back_project(apply_filters(bank, i), son, self.kernel), t) for (i, t), son in zip(pairs, sons)]
            # PSNR on the input's own pixels: the copies' upscaling against the input
            mse = float(np.mean([float(((i - t) ** 2).mean()) for i, t in pairs])) if pairs else 0.0
            tick("train", 10 * math.log10(1 / max(mse, 1e-12)))
        return banks

    def _step(self, prev: torch.Tensor, y: torch.Tensor, size: tuple[int, int], banks: list) -> torch.Tensor:
        """One upscaling step: consistent interpolation of prev at size, each bank's filters
        back-projected onto prev, the result back-projected onto the input y."""
        x = consistent_upscale(prev, size, self.kernel)
        for bank in banks:
            x = back_project(apply_filters(bank, x), prev, self.kernel)
        return back_project(x, y, self.kernel)

    def _grid(self, h: int, w: int, sizes: list[tuple[int, int]], steps: int) -> tuple[int, int, int, int] | None:
        """(input rows, cols per tile, their periods py, px) when the output can be made in
        tiles, else None.

        A tile's steps must land on the whole image's grids: its input rows start at a multiple
        of p, the least number of input rows that every step maps to whole rows (1 at x2 or
        x4, the whole image at x3, whose middle step is x sqrt(3)); the TV refinement is global."""
        if self.tile <= 0 or steps > 0:
            return None
        py = math.lcm(*(h // math.gcd(h, s[0]) for s in sizes))
        px = math.lcm(*(w // math.gcd(w, s[1]) for s in sizes))
        ty = max(py, round(self.tile * h / sizes[-1][0] / py) * py)
        tx = max(px, round(self.tile * w / sizes[-1][1] / px) * px)
        if ty >= h and tx >= w or 4 * py > h or 4 * px > w:
            return None  # one tile, or tiles no smaller than the image
        return ty, tx, py, px

    def _tiles(self, y: torch.Tensor, sizes: list[tuple[int, int]], banks: list, grid: tuple[int, int, int, int]):
        """Output tiles (R0, R1, C0, C1, (C, R1 - R0, C1 - C0)), row-major: each from the input
        tile with MARGIN input pixels around it (whole multiples of the grid), run through every step."""
        h, w = y.shape[-2:]
        (H, W), (ty, tx, py, px) = sizes[-1], grid
        for a0 in range(0, h, ty):
            for b0 in range(0, w, tx):
                a1, b1 = min(a0 + ty, h), min(b0 + tx, w)
                lo_a, hi_a = _widen(a0, a1, h, py)
                lo_b, hi_b = _widen(b0, b1, w, px)
                crop = y[:, lo_a:hi_a, lo_b:hi_b]
                x = crop
                for S in sizes:
                    x = self._step(x, crop, ((hi_a - lo_a) * S[0] // h, (hi_b - lo_b) * S[1] // w), banks)
                r0, r1 = (a0 - lo_a) * H // h, (a1 - lo_a) * H // h
                c0, c1 = (b0 - lo_b) * W // w, (b1 - lo_b) * W // w
                yield a0 * H // h, a1 * H // h, b0 * W // w, b1 * W // w, x[:, r0:r1, c0:c1]

    def _start(self, image, size, progress):
        """Checks, training and the plan shared by ``upscale`` and ``upscale_rows``."""
        start = time.perf_counter()
        report = progress or (lambda p: None)
        device = resolve_device(self.device)
        y = torch.from_numpy(image).permute(2, 0, 1).to(device)  # (C, h, w)
        h, w = image.shape[:2]
        stages, steps, sizes = self._plan(h, w, size)
        grid = self._grid(h, w, sizes, steps) if size[0] > h or size[1] > w else None
        total = stages + (len(sizes) if grid is None else -(-h // grid[0]) * -(-w // grid[1])) + (steps > 0)
        done = 0

        def tick(stage: str, psnr: float | None = None):
            nonlocal done
            done += 1
            report(Progress(step=done, total=total, stage=stage, psnr=psnr, elapsed=time.perf_counter() - start))

        banks = self._train(y, sizes[0], stages, tick) if stages else []
        return y, sizes, steps, banks, grid, tick, total

    def _upscale(self, image, size, progress):
        start = time.perf_counter()
        report = progress or (lambda p: None)
        h, w = image.shape[:2]
        if size[0] <= h and size[1] <= w:  # shrinking: the degradation operator itself
            y = torch.from_numpy(image).permute(2, 0, 1).to(resolve_device(self.device))
            return downscale(y, size, self.kernel).permute(1, 2, 0).cpu().numpy()
        y, sizes, steps, banks, grid, tick, total = self._start(image, size, progress)
        if grid is not None:  # in tiles: the same image to float rounding, memory of a tile
            x = y.new_empty(y.shape[0], *size)
            for r0, r1, c0, c1, t in self._tiles(y, sizes, banks, grid):
                x[:, r0:r1, c0:c1] = t
                tick("render")
        else:
            x = y
            for sz in sizes:
                x = self._step(x, y, sz, banks)
                tick("render", _psnr(x, y, self.kernel))
        if steps > 0:
            x = tv_refine(x, y, self.tv_weight, steps, kernel=self.kernel)
            tick("refine", _psnr(x, y, self.kernel))
        report(Progress(step=total, total=total, stage="done", psnr=_psnr(x, y, self.kernel),
                        elapsed=time.perf_counter() - start))
        return x.permute(1, 2, 0).cpu().numpy()

    def _upscale_rows(self, image, size, bit_depth, progress):
        """A row of output tiles at a time where the steps allow tiles (``_grid``); else whole."""
        from coordsr.images import quantize

        h, w = image.shape[:2]
        _, steps, sizes = self._plan(h, w, size)
        if not (size[0] > h or size[1] > w) or self._grid(h, w, sizes, steps) is None:
            yield from super()._upscale_rows(image, size, bit_depth, progress)
            return
        y, sizes, steps, banks, grid, tick, total = self._start(image, size, progress)
        band, top = None, 0
        for r0, r1, c0, c1, t in self._tiles(y, sizes, banks, grid):
            if band is not None and r0 != top:
                yield top, quantize(np.clip(band, 0.0, 1.0), bit_depth)
                band = None
            if band is None:
                band, top = np.empty((r1 - r0, size[1], image.shape[2]), np.float32), r0
            band[:, c0:c1] = t.permute(1, 2, 0).cpu().numpy()
            tick("render")
        yield top, quantize(np.clip(band, 0.0, 1.0), bit_depth)
        if progress is not None:
            progress(Progress(step=total, total=total, stage="done"))


MARGIN = 24
"""Input pixels of context around a tile. The back-projections are global, but their influence
decays exponentially with distance: at x2 the difference from the whole image's result is
5e-4 at 8 pixels, 1e-7 at 16 and 0 in float32 at 24 (measured on a 96x96 image)."""


def _widen(a0: int, a1: int, n: int, period: int) -> tuple[int, int]:
    """[a0, a1) grown by MARGIN on each side to whole multiples of ``period``, within [0, n)."""
    return max(0, (a0 - MARGIN) // period * period), min(n, -(-(a1 + MARGIN) // period) * period)


def _son_size(father: torch.Tensor, y: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """The size of a father's downscaled copy at the ratios of y -> size (as make_pairs makes it)."""
    h, w = y.shape[-2:]
    return max(2, round(father.shape[-2] * h / size[0])), max(2, round(father.shape[-1] * w / size[1]))
