"""Tiles for the infinite-zoom viewer, rendered on demand from a job's field.

The viewer (OpenSeadragon) is shown a very large virtual image, ``VIRTUAL_SIDE`` pixels on its
longer side, cut in the usual pyramid: level ``L`` is the virtual image scaled by
``2 ** (L - max_level)`` and cut into ``TILE`` x ``TILE`` tiles. A tile is a box in field
coordinates ([-1, 1]^2 is the whole image), so any level can be drawn:

- levels no finer than the job's output come from ``result.png`` (resampled with antialiasing:
  the field's point samples would alias when zoomed out);
- finer levels are drawn by ``render_field`` over the tile's box, at the tile's resolution: a
  field has no pixels, so zooming in keeps asking it for more detail, far past the input;
- methods without a field resample ``result.png`` at every level.

OpenSeadragon sizes level ``L`` as ``width * s`` with ``s = 2 ** (L - max_level)``, a float, and
draws the last tile of a row over the fractional remainder; the box below spans exactly that
remainder, so every tile lands where the field says it should.

Rendered tiles are kept in an in-memory LRU bounded in bytes; loaded fields and result images in
small LRUs of their own.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from coordsr.coords import Box

VIRTUAL_SIDE = 1 << 20
"""Pixels on the longer side of the viewer's virtual image (4096x a 256-pixel view)."""
TILE = 256
"""Tile side in pixels."""


class TileRangeError(LookupError):
    """A tile address outside the pyramid (answered 404)."""


@dataclass(frozen=True)
class Pyramid:
    """The viewer's virtual image: what OpenSeadragon's custom tile source is told."""

    width: int
    height: int
    tile: int
    max_level: int

    @classmethod
    def for_image(cls, width: int, height: int, side: int = VIRTUAL_SIDE, tile: int = TILE) -> "Pyramid":
        """The virtual image with the aspect of a ``width`` x ``height`` image."""
        if width >= height:
            w, h = side, max(1, round(side * height / width))
        else:
            w, h = max(1, round(side * width / height)), side
        return cls(w, h, tile, math.ceil(math.log2(max(w, h))))

    def level_size(self, level: int) -> tuple[float, float]:
        """(width, height) of ``level`` in its pixels, floats as OpenSeadragon computes them."""
        s = 2.0 ** (level - self.max_level)
        return self.width * s, self.height * s

    def tile_box(self, level: int, x: int, y: int) -> tuple[Box, tuple[int, int]]:
        """The field box (x0, y0, x1, y1) of tile (x, y) at ``level`` and its size (rows, cols)."""
        if not 0 <= level <= self.max_level:
            raise TileRangeError(f"level {level} is outside 0..{self.max_level}")
        lw, lh = self.level_size(level)
        nx, ny = math.ceil(lw / self.tile), math.ceil(lh / self.tile)
        if not (0 <= x < nx and 0 <= y < ny):
            raise TileRangeError(f"tile ({x}, {y}) is outside the {nx}x{ny} tiles of level {level}")
        px0, py0 = x * self.tile, y * self.tile
        px1, py1 = min(px0 + self.tile, lw), min(py0 + self.tile, lh)
        box = (-1 + 2 * px0 / lw, -1 + 2 * py0 / lh, -1 + 2 * px1 / lw, -1 + 2 * py1 / lh)
        return box, (max(1, math.ceil(py1 - py0)), max(1, math.ceil(px1 - px0)))

    def as_json(self) -> dict:
        return {"width": self.width, "height": self.height, "tileSize": self.tile,
                "minLevel": 0, "maxLevel": self.max_level}


def png_bytes(arr: np.ndarray) -> bytes:
    """(H, W, C) uint8 -> PNG bytes, fast compression (tiles are made often, sent once)."""
    arr = arr[..., 0] if arr.shape[2] == 1 else arr
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def resample_box(image: Image.Image, box: Box, size: tuple[int, int]) -> np.ndarray:
    """The part of ``image`` under a field box, resampled to ``size`` (rows, cols): (H, W, C) uint8.

    Bicubic with Pillow's antialiasing when shrinking; the box is clipped to the image (the last
    tile of a level may reach past it by less than one of its pixels).
    """
    w, h = image.size
    x0, y0, x1, y1 = box
    left, right = (x0 + 1) / 2 * w, (x1 + 1) / 2 * w
    top, bottom = (y0 + 1) / 2 * h, (y1 + 1) / 2 * h
    left, top = max(0.0, min(left, w)), max(0.0, min(top, h))
    right, bottom = max(left, min(right, w)), max(top, min(bottom, h))
    out = image.resize((size[1], size[0]), Image.BICUBIC, box=(left, top, right, bottom))
    arr = np.asarray(out)
    return arr[..., None] if arr.ndim == 2 else arr


class _LRU:
    """A small thread-safe LRU keyed by anything, bounded by a total cost."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._cost = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, cost: int = 1) -> None:
        with self._lock:
            if key in self._items:
                self._cost -= self._items.pop(key)[1]
            if cost > self.capacity:
                return
            self._items[key] = (value, cost)
            self._cost += cost
            while self._cost > self.capacity:
                _, (_, c) = self._items.popitem(last=False)
                self._cost -= c

    def drop(self, pred) -> None:
        with self._lock:
            for key in [k for k in self._items if pred(k)]:
                self._cost -= self._items.pop(key)[1]

    def __len__(self) -> int:
        return len(self._items)


class TileRenderer:
    """Draws and caches a job's tiles. One per app; safe to call from many threads."""

    def __init__(self, cache_bytes: int = 64 << 20, render_threads: int = 2, device: str = "cpu"):
        self.tiles = _LRU(cache_bytes)
        self.fields = _LRU(4)
        self.images = _LRU(256 << 20)  # decoded result images, by bytes
        self.device = device
        self._render_slots = threading.BoundedSemaphore(render_threads)  # tiles vs. fitting: share the CPU
        self.rendered = 0
        """Tiles drawn (not served from the cache) since start: tests and logs read it."""

    def forget(self, job_id: str) -> None:
        """Drop everything cached for a job (deleted)."""
        for lru in (self.tiles, self.fields, self.images):
            lru.drop(lambda k: k[0] == job_id)

    def tile(self, job_id: str, job_dir: Path, out_size: tuple[int, int], has_field: bool,
             level: int, x: int, y: int) -> bytes:
        """PNG bytes of tile (x, y) at ``level`` of the job whose output is ``out_size`` (H, W)."""
        key = (job_id, level, x, y)
        data = self.tiles.get(key)
        if data is not None:
            return data
        pyramid = Pyramid.for_image(out_size[1], out_size[0])
        box, size = pyramid.tile_box(level, x, y)
        lw, _ = pyramid.level_size(level)
        with self._render_slots:
            if has_field and lw > out_size[1]:
                arr = self._render_field(job_id, job_dir, box, size)
            else:
                arr = resample_box(self._result_image(job_id, job_dir), box, size)
            data = png_bytes(arr)
        self.rendered += 1
        self.tiles.put(key, data, len(data))
        return data

    def _render_field(self, job_id: str, job_dir: Path, box: Box, size: tuple[int, int]) -> np.ndarray:
        from coordsr.render import render, render_field

        field = self._load_field(job_id, job_dir)
        if field.cfg.convention == "cell":
            return render_field(field, size, box=box, dtype=np.uint8, footprint=field.fitted_footprint())
        # Whole-grid conventions have no notion of a region: map the box's cell coordinates to it.
        from coordsr.coords import to_cell
        import torch

        h, w, convention = field.meta.height, field.meta.width, field.cfg.convention
        zero = to_cell(torch.zeros(2), h, w, convention)
        unit = to_cell(torch.ones(2), h, w, convention) - zero

        def in_convention(coords):
            return field((coords - zero.to(coords)) / unit.to(coords))

        return render(in_convention, size, field.meta.channels, box=box, dtype=np.uint8,
                      device=next(field.parameters()).device)

    def _load_field(self, job_id: str, job_dir: Path):
        from coordsr.field import Field

        key = (job_id, "field")
        field = self.fields.get(key)
        if field is None:
            field = Field.load(job_dir / "field.safetensors", device=self.device)
            field.eval()
            self.fields.put(key, field)
        return field

    def _result_image(self, job_id: str, job_dir: Path) -> Image.Image:
        from coordsr.images import read_image

        key = (job_id, "result")
        image = self.images.get(key)
        if image is None:
            pixels = read_image(job_dir / "result.png").pixels  # (H, W, C) floats, 8 or 16 bits
            arr = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
            image = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
            self.images.put(key, image, arr.nbytes)
        return image
