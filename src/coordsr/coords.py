"""Pixel grids and coordinate conventions (DESIGN.md section 1).

The house convention ("cell"): a pixel is a cell, the image covers [-1, 1]^2 whatever
its resolution, and pixel (i, j) of an H x W image has its centre at
((2j+1)/W - 1, (2i+1)/H - 1). Coordinates are (x, y) in the last dimension, the order
``grid_sample(..., align_corners=False)`` expects.

The seed's convention ("seed"): x = j/(W-1), y = i/(H-1) in [0, 1], pixel centres on the
corners. Kept to reproduce the seed and to show the half-pixel shift it causes when the
same field is drawn at another size. The seed's other two normalisations put the same corner
pixels elsewhere: "centred", x = 2j/(W-1) - 1 in [-1, 1]; "standard", the pixel indices
standardised to zero mean and unit variance, x = (j - (W-1)/2) / sqrt((W^2-1)/12), about
[-1.73, 1.73]. All three span the whole grid whatever its size (they have no notion of a
region) and so share the seed's misalignment between sizes (BENCHMARKS.md, "Coordinate
normalisations").

>>> pixel_centers(1, 2)
tensor([[[-0.5000,  0.0000],
         [ 0.5000,  0.0000]]])
>>> pixel_centers(2, 2, convention="seed")[1, 0]
tensor([0., 1.])
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Convention = Literal["cell", "seed", "centred", "standard"]
CONVENTIONS: tuple[str, ...] = ("cell", "seed", "centred", "standard")
WHOLE_GRID: tuple[str, ...] = ("seed", "centred", "standard")
"""Conventions whose coordinates span the whole grid, pixel centres on its ends."""

# A box in field coordinates: (x0, y0, x1, y1), the outer edges of the region drawn.
Box = tuple[float, float, float, float]
FULL_BOX: Box = (-1.0, -1.0, 1.0, 1.0)


def axis_centers(n: int, lo: float = -1.0, hi: float = 1.0, *, convention: Convention = "cell",
                 device=None, dtype=torch.float32) -> torch.Tensor:
    """Centres of n cells that tile [lo, hi] (cell), or of n pixels in a whole-grid convention
    (seed, centred, standard: ``lo`` and ``hi`` do not apply)."""
    if n < 1:
        raise ValueError(f"need at least one pixel, got {n}")
    if convention == "cell":
        step = (hi - lo) / n
        return lo + step * (torch.arange(n, device=device, dtype=torch.float64) + 0.5).to(dtype)
    first, step = grid_affine(n, convention)
    return (first + step * torch.arange(n, device=device, dtype=torch.float64)).to(dtype)


def grid_affine(n: int, convention: str) -> tuple[float, float]:
    """(coordinate of pixel 0, step between pixel centres) of n pixels in a whole-grid convention.

    One pixel sits at 0; its step is that of two pixels (the extent a footprint takes)."""
    if convention not in WHOLE_GRID:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    m = max(n, 2)
    if convention == "seed":
        step = 1 / (m - 1)
    elif convention == "centred":
        step = 2 / (m - 1)
    else:  # standard: indices 0..m-1 have variance (m^2 - 1) / 12
        step = 1 / math.sqrt((m * m - 1) / 12)
    return (-(n - 1) / 2 * step if convention != "seed" else 0.0), step


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
    return torch.tensor(pixel_spacing(h, w, box=box), device=device, dtype=dtype)


def pixel_spacing(h: int, w: int, *, box: Box = FULL_BOX, convention: str = "cell") -> tuple[float, float]:
    """(dx, dy) between neighbouring pixel centres of an h x w grid: over ``box`` in the cell
    convention, over the whole grid in the others (:func:`grid_affine`)."""
    if convention in WHOLE_GRID:
        return grid_affine(w, convention)[1], grid_affine(h, convention)[1]
    x0, y0, x1, y1 = box
    return (x1 - x0) / w, (y1 - y0) / h


def seed_to_cell(coords: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Map seed-convention coordinates of an h x w image into the cell convention.

    The seed puts pixel 0 at 0 and pixel n-1 at 1; the cell convention puts them at
    -1 + 1/n and 1 - 1/n. Used to compare fields fitted in either convention.
    """
    return to_cell(coords, h, w, "seed")


def to_cell(coords: torch.Tensor, h: int, w: int, convention: str) -> torch.Tensor:
    """Map coordinates of an h x w image in a whole-grid ``convention`` into the cell convention
    (the same pixel index, each end pixel's centre half a pixel inside the image's edge)."""
    (fx, sx), (fy, sy) = grid_affine(w, convention), grid_affine(h, convention)
    index = (coords - torch.tensor([fx, fy], dtype=coords.dtype, device=coords.device)) / torch.tensor(
        [sx, sy], dtype=coords.dtype, device=coords.device)
    size = torch.tensor([w, h], dtype=coords.dtype, device=coords.device)
    return (2 * index + 1) / size - 1


def aspect_scale(h: int, w: int) -> torch.Tensor:
    """Per-axis factors that make one field unit the same physical length on both axes.

    Multiplying (x, y) by this gives coordinates in which a pixel is square, so encodings
    with isotropic frequencies see the same frequency per pixel on both axes of a
    non-square image. (x, y) order: (w / m, h / m) with m = max(h, w).
    """
    m = max(h, w)
    return torch.tensor([w / m, h / m])


def misalignment(n: int, out: int, convention: str) -> torch.Tensor:
    """Where a field fitted to n pixels in ``convention`` draws each of ``out`` pixels, against
    where that pixel lies on the image: (out,) displacements in output pixels (0 for the cell
    convention; whole-grid conventions stretch the picture so the end pixels meet)."""
    j = torch.arange(out, dtype=torch.float64)
    true_index = (j + 0.5) * n / out - 0.5  # the output pixel's centre in input pixel units
    if convention == "cell":
        return torch.zeros(out, dtype=torch.float64)
    (f_out, s_out), (f_in, s_in) = grid_affine(out, convention), grid_affine(n, convention)
    drawn_index = (f_out + s_out * j - f_in) / s_in
    return (drawn_index - true_index) * out / n
