"""Draw a field at any size, in tiles, with bounded memory.

The field is queried tile by tile on the pixel centres of the output grid (coords.py), and each
tile is written into the output array as soon as it is computed, quantized to the output dtype
when asked, so memory beyond the output array is one tile's activations. Outputs that would
not fit in memory are refused before anything is allocated.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import torch

from coordsr.coords import FULL_BOX, WHOLE_GRID, Box, Convention, axis_centers, grid_affine, pixel_spacing
from coordsr.errors import CoordsrError
from coordsr.memory import available_memory, reusing_memory
from coordsr.precision import autocast, flushing_each_step

TILE_PIXELS = 1 << 16
"""Pixels per tile: 65536 points x 256 hidden x 4 bytes is 64 MB per activation."""


STREAM_HINT = ("write a tiled .tif or a Deep Zoom .dzi instead (streamed to disk a row of tiles at a time), "
               "or choose a smaller output (coordsr render can draw a region of a field with --box)")
"""What a refused in-memory output can do instead (coordsr.stream)."""


LIMIT_SLACK = 256 << 20
"""Kept back from what a process limit (``ulimit -v``, a cgroup) still allows: the estimate's
slack and what the libraries map while they work (thread stacks, allocator arenas). The
interpreter and the libraries loaded so far are in the usage those limits are measured against."""


def check_bytes_available(need: int, what: str, *, headroom: int = 1 << 30,
                          hint: str = "choose a smaller output (coordsr render can draw a region of a field "
                                      "with --box)") -> None:
    """CoordsrError when ``need`` bytes (for ``what``) exceed the memory available now, less
    ``headroom`` for the interpreter, the libraries and the estimate's slack, or what a limit on
    this process still allows (``ulimit -v``, ``ulimit -d``, the memory cgroup), less ``LIMIT_SLACK``."""
    from coordsr.memory import memory_limits

    have, where = available_memory() - headroom, "of memory available"
    for name, left in memory_limits():
        if left - LIMIT_SLACK < have:
            have, where = left - LIMIT_SLACK, f"this process may still allocate ({name})"
    if need > have:
        raise CoordsrError(
            f"{what} needs about {need / 2**30:.1f} GiB, more than the {max(have, 0) / 2**30:.1f} GiB "
            f"{where}; {hint}")


def check_fits_in_memory(h: int, w: int, c: int, dtype=np.float32, *, headroom: int = 1 << 30) -> None:
    """Refuse an output array that would not fit in the memory available now (pointing at the
    streamed formats, which need no such array)."""
    check_bytes_available(h * w * c * np.dtype(dtype).itemsize,
                          f"an output of {w}x{h}x{c} ({np.dtype(dtype).name})", headroom=headroom, hint=STREAM_HINT)


def tiles(h: int, w: int, tile_pixels: int = TILE_PIXELS) -> Iterator[tuple[int, int, int, int]]:
    """Row-major tiles (r0, r1, c0, c1) covering an h x w grid, each at most tile_pixels.

    Square where the grid allows: a separable field (``forward_grid``) interpolates the
    vertices a tile spans along each axis, so a square tile touches the fewest."""
    tw = min(w, max(1, math.isqrt(tile_pixels)))
    th = max(1, tile_pixels // tw)
    for r0 in range(0, h, th):
        for c0 in range(0, w, tw):
            yield r0, min(r0 + th, h), c0, min(c0 + tw, w)


FOOTPRINTS = ("point", "area", "supersample:K")
"""What one output pixel shows of the field: its value at the pixel centre ('point'), its mean
over the pixel's cell ('area': in closed form where the field's encoding has one, else by
supersampling AREA_SUPERSAMPLE x AREA_SUPERSAMPLE), or the mean of K x K samples spread over the
cell ('supersample:K', the reference). docs/FOOTPRINT.md measures them."""

AREA_SUPERSAMPLE = 4
MAX_SUPERSAMPLE = 16


def parse_footprint(text: str) -> tuple[str, int]:
    """'point' -> ('point', 1), 'area' -> ('area', 1), 'supersample:K' -> ('supersample', K);
    ValueError naming the choices otherwise."""
    mode, _, k = str(text).partition(":")
    if mode in ("point", "area") and not k:
        return mode, 1
    if mode == "supersample" and k.isdigit() and 1 <= int(k) <= MAX_SUPERSAMPLE:
        return mode, int(k)
    raise ValueError(f"unknown footprint {text!r}; valid: point, area, supersample:K with K in 1..{MAX_SUPERSAMPLE}")


def footprint_of_fit(fit: str | None) -> str:
    """The footprint that draws a field the way its input pixels were fitted (``fit``, the
    per-image methods' observation model): 'area' for area and mip fits, 'point' otherwise."""
    return "area" if fit in ("area", "mip") else "point"


def box_variance(dx: float, dy: float) -> torch.Tensor:
    """Per-axis variance of a pixel's cell of side (dx, dy), the Gaussian the closed-form
    footprints stand for: a box of side d has variance d^2 / 12."""
    return torch.tensor([dx * dx / 12, dy * dy / 12])


def cell_samples(axis: torch.Tensor, spacing: float, k: int) -> torch.Tensor:
    """k samples spread evenly over each pixel of ``axis`` (its centres, ``spacing`` apart),
    at the centres of k equal sub-cells: (n,) -> (n * k,), pixel by pixel."""
    offsets = ((torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5) * spacing
    return (axis[:, None].double() + offsets.to(axis.device)).flatten().to(axis.dtype)


def _draw_tile(field, xs: torch.Tensor, ys: torch.Tensor, dx: float, dy: float, k: int,
               var: torch.Tensor | None) -> torch.Tensor:
    """The field's colours on the pixels centred at ``xs`` x ``ys`` (dx, dy apart): (H, W, C),
    each the mean of k x k samples over its cell, or queried over the footprint ``var``."""
    if k > 1:
        xs, ys = cell_samples(xs, dx, k), cell_samples(ys, dy, k)
    extra = {} if var is None else {"var": var}
    if hasattr(field, "forward_grid"):  # separable evaluation on the tile's grid
        values = field.forward_grid(xs, ys, **extra)
    else:
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        values = field(torch.stack((xx, yy), dim=-1), **extra)
    if k > 1:
        h, w = ys.shape[0] // k, xs.shape[0] // k
        values = values.reshape(h, k, w, k, -1).float().mean(dim=(1, 3))
    return values


def _quantize(x: torch.Tensor, dtype) -> np.ndarray:
    x = x.clamp(0, 1)
    if np.dtype(dtype) == np.uint8:
        return (x * 255).round_().to(torch.uint8).cpu().numpy()
    if np.dtype(dtype) == np.uint16:
        return (x * 65535).round_().to(torch.int32).cpu().numpy().astype(np.uint16)
    return x.to(torch.float32).cpu().numpy()


def render(field: Callable[[torch.Tensor], torch.Tensor], size: tuple[int, int], channels: int, *,
           box: Box = FULL_BOX, convention: Convention = "cell", dtype=np.float32,
           device=None, tile_pixels: int = TILE_PIXELS, compute_dtype: torch.dtype = torch.float32,
           footprint: str = "point", progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Evaluate ``field`` on the pixel centres of an (H, W) grid over ``box``: (H, W, C) array.

    ``dtype`` float32 keeps values unclipped in [0, 1] units (clipped to [0, 1]); uint8 / uint16
    quantize tile by tile, so an 8-bit 8192x8192 RGB output holds 200 MB, not 800 MB.
    ``compute_dtype`` torch.bfloat16 runs the field's matrix products under autocast
    (:mod:`coordsr.precision`). ``footprint``: what a pixel shows of the field (FOOTPRINTS).
    ``progress(done_pixels, total_pixels)`` is called after each tile.
    Outputs too large for memory: :func:`render_rows` hands them over a row of tiles at a time.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise CoordsrError(f"output size must be at least 1x1, got {w}x{h}")
    check_fits_in_memory(h, w, channels, dtype)
    out = np.empty((h, w, channels), dtype=dtype)
    for r0, rows in render_rows(field, size, channels, box=box, convention=convention, dtype=dtype, device=device,
                                tile_pixels=tile_pixels, compute_dtype=compute_dtype, footprint=footprint,
                                progress=progress):
        out[r0:r0 + len(rows)] = rows
    return out


def render_rows(field: Callable[[torch.Tensor], torch.Tensor], size: tuple[int, int], channels: int, *,
                box: Box = FULL_BOX, convention: Convention = "cell", dtype=np.float32,
                device=None, tile_pixels: int = TILE_PIXELS, compute_dtype: torch.dtype = torch.float32,
                footprint: str = "point",
                progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`render` one row of tiles at a time: yields (first row, (rows, W, C) array), top to
    bottom. Memory is one row of tiles and one tile's activations, whatever the output size;
    the pixels are those :func:`render` gives (the same tiles, the same arithmetic). Subnormals
    are flushed while a row is drawn (:func:`coordsr.precision.flushing_each_step`)."""
    return flushing_each_step(_render_rows(field, size, channels, box=box, convention=convention, dtype=dtype,
                                           device=device, tile_pixels=tile_pixels, compute_dtype=compute_dtype,
                                           footprint=footprint, progress=progress))


@torch.no_grad()
def _render_rows(field, size: tuple[int, int], channels: int, *, box: Box, convention: Convention, dtype,
                 device, tile_pixels: int, compute_dtype: torch.dtype, footprint: str,
                 progress: Callable[[int, int], None] | None) -> Iterator[tuple[int, np.ndarray]]:
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise CoordsrError(f"output size must be at least 1x1, got {w}x{h}")
    if device is None:
        device = next((p.device for p in getattr(field, "parameters", lambda: [])()), torch.device("cpu"))
    x0, y0, x1, y1 = box
    dx, dy = pixel_spacing(h, w, box=box, convention=convention)
    if convention in WHOLE_GRID:  # pixel centres span the whole output, whatever the box
        fx, fy = grid_affine(w, convention)[0], grid_affine(h, convention)[0]
    # What every pixel shows, decided once: k x k samples a pixel, or a footprint in closed form.
    mode, k = parse_footprint(footprint)
    var = None
    if mode == "area" and getattr(field, "has_footprint", False):
        var = box_variance(dx, dy)
    elif mode == "area":
        k = AREA_SUPERSAMPLE
    done = 0
    rows, top = None, -1
    with reusing_memory():  # a generator: the setting must hold while it runs, not when it is made
        for r0, r1, c0, c1 in tiles(h, w, max(1, tile_pixels // (k * k))):  # k x k samples a pixel
            if r0 != top:
                if rows is not None:
                    yield top, rows
                rows, top = np.empty((r1 - r0, w, channels), dtype=dtype), r0
            if convention in WHOLE_GRID:
                # These conventions span the whole output: slice the full axes.
                ys = (fy + dy * torch.arange(r0, r1, device=device, dtype=torch.float64)).float()
                xs = (fx + dx * torch.arange(c0, c1, device=device, dtype=torch.float64)).float()
            else:
                xs = axis_centers(c1 - c0, x0 + (x1 - x0) * c0 / w, x0 + (x1 - x0) * c1 / w, device=device)
                ys = axis_centers(r1 - r0, y0 + (y1 - y0) * r0 / h, y0 + (y1 - y0) * r1 / h, device=device)
            with autocast(compute_dtype, device):
                values = _draw_tile(field, xs, ys, dx, dy, k, var)
            rows[:, c0:c1] = _quantize(values.float(), dtype)
            done += (r1 - r0) * (c1 - c0)
            if progress is not None:
                progress(done, h * w)
        yield top, rows


def render_field(field, size: tuple[int, int], **kwargs) -> np.ndarray:
    """Render a ``coordsr.field.Field`` (its channels and convention come from the field)."""
    return render(field, size, field.meta.channels, convention=field.cfg.convention, **kwargs)


def render_field_rows(field, size: tuple[int, int], **kwargs) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`render_rows` of a ``coordsr.field.Field`` (its channels and convention)."""
    return render_rows(field, size, field.meta.channels, convention=field.cfg.convention, **kwargs)

