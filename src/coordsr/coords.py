"""Pixel grids and coordinate conventions (DESIGN.md section 1).

The house convention ("cell"): a pixel is a cell, the image covers [-1, 1]^2 whatever
its resolution, and pixel (i, j) of an H x W image has its centre at
((2j+1)/W - 1, (2i+1)/H - 1). Coordinates are (x, y) in the last dimension, the order
``grid_sample(..., align_corners=False)`` expects.

The seed's convention ("seed"): x = j/(W-1), y = i/(H-1) in [0, 1], pixel centres on the
corners. Kept to reproduce the seed and to show the half-pixel shift it causes when the
same field is drawn at another size.

>>> pixel_centers(1, 2)
tensor([[[-0.5000,  0.0000],
         [ 0.5000,  0.0000]]])
>>> pixel_centers(2, 2, convention="seed")[1, 0]
tensor([0., 1.])
"""

from __future__ import annotations

from typing import Literal

import torch

Convention = Literal["cell", "seed"]
CONVENTIONS: tuple[str, ...] = ("cell", "seed")

# A box in field coordinates: (x0, y0, x1, y1), the outer edges of the region drawn.
Box = tuple[float, float, float, float]
FULL_BOX: Box = (-1.0, -1.0, 1.0, 1.0)


def axis_centers(n: int, lo: float = -1.0, hi: float = 1.0, *, convention: Convention = "cell",
                 device=None, dtype=torch.float32) -> torch.Tensor:
    """Centres of n cells that tile [lo, hi] (cell) or n points from 0 to 1 (seed)."""
    if n < 1:
        raise ValueError(f"need at least one pixel, got {n}")
    if convention == "cell":
        step = (hi - lo) / n
        return lo + step * (torch.arange(n, device=device, dtype=torch.float64) + 0.5).to(dtype)
    if convention == "seed":
        if n == 1:
            return torch.zeros(1, device=device, dtype=dtype)
        return (torch.arange(n, device=device, dtype=torch.float64) / (n - 1)).to(dtype)
    raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")


def pixel_centers(h: int, w: int, *, box: Box = FULL_BOX, convention: Convention = "cell",
                  device=None, dtype=torch.float32) -> torch.Tensor:
    """Coordinates of the pixel centres of an h x w grid laid over ``box``: (h, w, 2), (x, y) last.

    ``box`` selects a sub-region of the field (a tile, a zoomed view); it is ignored by the seed
    convention, which has no notion of a region.
    """
    x0, y0, x1, y1 = box
    xs = axis_centers(w, x0, x1, convention=convention, device=device, dtype=dtype)
    ys = axis_centers(h, y0, y1, convention=convention, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((xx, yy), dim=-1)


def cell_size(h: int, w: int, *, box: Box = FULL_BOX, device=None,
              dtype=torch.float32) -> torch.Tensor:
    """Size (width, height) of one pixel of an h x w grid over ``box``, in field units: (2,)."""
    x0, y0, x1, y1 = box
    return torch.tensor([(x1 - x0) / w, (y1 - y0) / h], device=device, dtype=dtype)


def seed_to_cell(coords: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Map seed-convention coordinates of an h x w image into the cell convention.

    The seed puts pixel 0 at 0 and pixel n-1 at 1; the cell convention puts them at
    -1 + 1/n and 1 - 1/n. Used to compare fields fitted in either convention.
    """
    scale = torch.tensor([2.0 - 2.0 / w, 2.0 - 2.0 / h], dtype=coords.dtype, device=coords.device)
    offset = torch.tensor([-1.0 + 1.0 / w, -1.0 + 1.0 / h], dtype=coords.dtype, device=coords.device)
    return coords * scale + offset


def aspect_scale(h: int, w: int) -> torch.Tensor:
    """Per-axis factors that make one field unit the same physical length on both axes.

    Multiplying (x, y) by this gives coordinates in which a pixel is square, so encodings
    with isotropic frequencies see the same frequency per pixel on both axes of a
    non-square image. (x, y) order: (w / m, h / m) with m = max(h, w).
    """
    m = max(h, w)
    return torch.tensor([w / m, h / m])
