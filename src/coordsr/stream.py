"""Streamed output: images larger than memory, written a row of tiles at a time as they are made.

A producer (a field's renderer, ``coordsr.render.render_rows``; an image-conditioned method's
``upscale_rows``) hands over :class:`Rows`: the output's size, channels and integer dtype, and
an iterator of consecutive row bands ``(first_row, (rows, W, C) array)``, top to bottom. A
writer consumes it, and never holds more than a band per pyramid level:

- tiled TIFF (``.tif``, ``.tiff``): 256 x 256 tiles, deflate-compressed, BigTIFF when the
  pixels pass 4 GB, followed by a pyramid of reduced levels (each half the one before, down to
  one tile) as further pages marked reduced-resolution, the layout libvips and OpenSlide
  write: tifffile reads them as the levels of the series, Pillow with ``seek(level)``;
- Deep Zoom (``.dzi`` + ``NAME_files/LEVEL/COL_ROW.png``): the tile pyramid OpenSeadragon
  reads, every level down to 1 x 1, tiles of 256 without overlap, PNG (lossless, 16-bit and
  alpha kept) or JPEG;
- OME-Zarr (``.zarr``, a folder; the ``zarr`` extra): an OME-NGFF 0.4 multiscale image, axes
  (c, y, x), chunks of (C, 256, 256), one array per level down to one chunk, which napari,
  ome-zarr-py, Fiji (MoBIE) and the OME viewers read.

Reduced levels are made from the stream as it passes: each level halves the bands it is given
(2 x 2 mean, rounded; an odd last row or column is averaged with itself) and hands a band to
the next level whenever it has a full row of tiles. A TIFF's reduced pages must follow its
full-size page in the file, so their tiles are encoded as they are made and parked in a
temporary file beside the output, then copied in (compressed, a small fraction of level 0).

Every writer is atomic like every other coordsr output (``coordsr.atomic``): a TIFF is
written to a temporary file and renamed; a Deep Zoom pyramid is built in a temporary folder,
its tile folder renamed into place first and its ``.dzi`` (the entry point) last; a Zarr
folder is built under a temporary name and renamed. A failure
or a signal leaves neither a partial file nor a half-built pyramid.

Any other suffix (PNG, JPEG, ...) is assembled in memory and written by ``coordsr.images``,
after the usual check that it fits.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from coordsr.atomic import atomic_path, discard, new_file_mode, temp_name
from coordsr.errors import ImageError

TILE = 256
"""Side of the tiles of both formats (and the rows of a band)."""
DEFLATE_LEVEL = 1
"""zlib level of TIFF tiles: level 1 compresses a rendered tile at 150 MP/s on one core, a few
percent of the time a field takes to draw it; level 6 costs 2.5x as much for 10% smaller files."""
STREAM_SUFFIXES = {".tif": "tiff", ".tiff": "tiff", ".dzi": "dzi", ".zarr": "zarr"}
"""Suffixes written as a stream, with bounded memory, whatever the output size."""
DZI_NS = "http://schemas.microsoft.com/deepzoom/2008"
BIGTIFF_AT = 2**32 - 2**25
"""Bytes of pixels (all levels, uncompressed) from which a TIFF is written as BigTIFF (tifffile's
own margin below the 4 GB of 32-bit offsets)."""

Band = tuple[int, np.ndarray]


@dataclass
class Rows:
    """An image handed over a band of rows at a time (see the module docstring)."""

    height: int
    width: int
    channels: int
    """1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)."""
    dtype: np.dtype
    """uint8 or uint16: the bands are quantized already."""
    bands: Iterable[Band]
    """(first row, (rows, width, channels) array), consecutive, top to bottom."""

    @property
    def bit_depth(self) -> int:
        return 16 if np.dtype(self.dtype) == np.uint16 else 8


def is_streamed(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix names a format written as a stream (.tif, .tiff, .dzi)."""
    return Path(path).suffix.lower() in STREAM_SUFFIXES


def dzi_files(path: str | os.PathLike) -> Path:
    """The tile folder of a Deep Zoom file: ``x.dzi`` -> ``x_files``."""
    path = Path(path)
    return path.with_name(path.stem + "_files")


def write_rows(path: str | os.PathLike, image: Rows, *, tile: int = TILE, tile_format: str = "png") -> None:
    """Write ``image`` to ``path`` in the format its suffix names: a stream for .tif/.tiff/.dzi,
    in memory (after checking that it fits) for the formats of ``coordsr.images``."""
    path = Path(path)
    kind = STREAM_SUFFIXES.get(path.suffix.lower())
    if kind == "tiff":
        write_tiff(path, image, tile=tile)
    elif kind == "dzi":
        write_dzi(path, image, tile=tile, tile_format=tile_format)
    elif kind == "zarr":
        write_zarr(path, image, tile=tile)
    else:
        from coordsr.images import write_image
        from coordsr.render import check_fits_in_memory

        check_fits_in_memory(image.height, image.width, image.channels, image.dtype)
        pixels = np.empty((image.height, image.width, image.channels), image.dtype)
        for r0, band in image.bands:
            pixels[r0:r0 + len(band)] = band
        write_image(path, pixels, bit_depth=image.bit_depth)


# ---------------------------------------------------------------- bands, tiles and halving


def rebanded(image: Rows, rows: int) -> Iterator[Band]:
    """The bands of ``image`` regrouped into bands of exactly ``rows`` rows (the last may be
    shorter), each a new array; checks that the producer's bands are consecutive and shaped."""
    buf, filled, top, expect = None, 0, 0, 0
    for r0, band in image.bands:
        if r0 != expect or band.ndim != 3 or band.shape[1:] != (image.width, image.channels):
            raise ValueError(f"band at row {r0} of shape {band.shape}: expected row {expect} of "
                             f"(rows, {image.width}, {image.channels})")
        expect += len(band)
        if expect > image.height:
            raise ValueError(f"bands pass the image's {image.height} rows")
        at = 0
        while at < len(band):
            if buf is None:
                buf = np.empty((min(rows, image.height - top), image.width, image.channels), image.dtype)
            take = min(len(buf) - filled, len(band) - at)
            buf[filled:filled + take] = band[at:at + take]
            filled, at = filled + take, at + take
            if filled == len(buf):
                yield top, buf
                top, buf, filled = top + len(buf), None, 0
    if expect != image.height:
        raise ValueError(f"bands ended at row {expect} of {image.height}")


def tiles_of(band: np.ndarray, tile: int) -> Iterator[tuple[int, np.ndarray]]:
    """(column index, tile) of a band of at most ``tile`` rows, left to right (views)."""
    for k, c0 in enumerate(range(0, band.shape[1], tile)):
        yield k, band[:, c0:c0 + tile]


def halve(band: np.ndarray) -> np.ndarray:
    """2 x 2 mean of an integer (rows, W, C) band, rounded half up: (ceil(rows/2), ceil(W/2), C).
    An odd last row or column is averaged with itself (its mean is its own value).

    >>> halve(np.array([[[0], [1], [7]], [[2], [4], [9]]], np.uint8))[..., 0]
    array([[2, 8]], dtype=uint8)
    """
    if len(band) % 2:
        band = np.concatenate([band, band[-1:]], axis=0)
    if band.shape[1] % 2:
        band = np.concatenate([band, band[:, -1:]], axis=1)
    s = band[0::2, 0::2].astype(np.uint32)
    s += band[1::2, 0::2]
    s += band[0::2, 1::2]
    s += band[1::2, 1::2]
    s += 2
    s >>= 2
    return s.astype(band.dtype)


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """(H, W) of level 0 and each of ``levels`` halvings after it (ceil at odd sides)."""
    sizes = [(height, width)]
    for _ in range(levels):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class Pyramid:
    """Feeds bands of ``tile`` rows through ``levels`` halvings: ``sink(level, row, band)`` gets
    every full band of every level (level 0 included), ``row`` its index in tiles.

    Memory: a half-filled band per reduced level (``tile`` rows of that level's width)."""

    def __init__(self, height: int, width: int, channels: int, dtype, tile: int, levels: int,
                 sink: Callable[[int, int, np.ndarray], None]):
        if tile % 2:
            raise ValueError(f"tile must be even, got {tile}")
        self.sizes = level_sizes(height, width, levels)
        self.tile, self.sink, self.dtype, self.channels = tile, sink, dtype, channels
        self.pending = [None] * (levels + 1)  # per level: (rows filled, buffer) of the next band
        self.count = [0] * (levels + 1)  # bands handed to the sink so far, per level

    def push(self, level: int, band: np.ndarray) -> None:
        """A band of level ``level`` (``tile`` rows, or its last one)."""
        self.sink(level, self.count[level], band)
        self.count[level] += 1
        if level + 1 < len(self.sizes):
            self._add(level + 1, halve(band))

    def _add(self, level: int, half: np.ndarray) -> None:
        h, w = self.sizes[level]
        if self.pending[level] is None:
            rows = min(self.tile, h - self.count[level] * self.tile)
            self.pending[level] = [0, np.empty((rows, w, self.channels), self.dtype)]
        slot = self.pending[level]
        slot[1][slot[0]:slot[0] + len(half)] = half
        slot[0] += len(half)
        if slot[0] == len(slot[1]):
            self.pending[level] = None
            self.push(level, slot[1])

    def finish(self) -> None:
        """Check that every level received all its rows (the stream ended where it should)."""
        for level, (h, _) in enumerate(self.sizes):
            if self.pending[level] is not None or self.count[level] != -(-h // self.tile):
                raise ValueError(f"pyramid level {level} incomplete: {self.count[level]} bands of {h} rows")


# ---------------------------------------------------------------- tiled, pyramidal TIFF


def tiff_levels(height: int, width: int, tile: int = TILE) -> int:
    """Reduced levels of a TIFF pyramid: halvings until the image fits in one tile."""
    n = 0
    while max(height, width) > tile:
        height, width, n = (height + 1) // 2, (width + 1) // 2, n + 1
    return n


def write_tiff(path: str | os.PathLike, image: Rows, *, tile: int = TILE, pyramid: bool = True) -> None:
    """A tiled (Big)TIFF with reduced levels (``pyramid``), written as ``image``'s bands arrive."""
    import imagecodecs
    import tifffile

    path = Path(path)
    levels = tiff_levels(image.height, image.width, tile) if pyramid else 0
    sizes = level_sizes(image.height, image.width, levels)
    c, dtype = image.channels, np.dtype(image.dtype)
    pixels = sum(h * w for h, w in sizes) * c * dtype.itemsize
    tags = dict(photometric="rgb" if c >= 3 else "minisblack",
                extrasamples=("unassalpha",) if c in (2, 4) else None, compression="zlib")
    squeeze = (lambda a: a[..., 0]) if c == 1 else (lambda a: a)
    shape = (lambda h, w: (h, w)) if c == 1 else (lambda h, w: (h, w, c))
    spill = [temp_name(path) for _ in range(levels)]  # each reduced level's encoded tiles
    lengths: list[list[int]] = [[] for _ in range(levels)]
    files = []
    full = np.zeros((tile, tile, c), dtype)

    def park(level: int, row: int, band: np.ndarray) -> None:
        if level == 0:
            return
        for _, t in tiles_of(band, tile):
            full[:] = 0  # tifffile pads partial tiles with zeros: the same bytes as it would write
            full[:t.shape[0], :t.shape[1]] = t
            data = imagecodecs.zlib_encode(squeeze(full), DEFLATE_LEVEL)
            files[level - 1].write(data)
            lengths[level - 1].append(len(data))

    def level0_tiles() -> Iterator[np.ndarray]:
        pyr = Pyramid(image.height, image.width, c, dtype, tile, levels, park)
        for _, band in rebanded(image, tile):
            pyr.push(0, band)
            for _, t in tiles_of(band, tile):
                yield squeeze(t)
        pyr.finish()

    def parked(level: int) -> Iterator[bytes]:
        with open(spill[level - 1], "rb") as f:
            for n in lengths[level - 1]:
                yield f.read(n)

    try:
        with atomic_path(path) as tmp:
            for name in spill:
                files.append(open(name, "wb"))
            with tifffile.TiffWriter(tmp, bigtiff=pixels > BIGTIFF_AT) as tw:
                tw.write(level0_tiles(), shape=shape(image.height, image.width), dtype=dtype, tile=(tile, tile),
                         compressionargs={"level": DEFLATE_LEVEL}, maxworkers=1, **tags)
                for f in files:
                    f.close()
                for level in range(1, levels + 1):
                    tw.write(parked(level), shape=shape(*sizes[level]), dtype=dtype, tile=(tile, tile),
                             subfiletype=1, **tags)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for f in files:
            f.close()
        for name in spill:
            discard(name)


# ---------------------------------------------------------------- Deep Zoom


def dzi_levels(height: int, width: int) -> int:
    """The highest Deep Zoom level: the full image; level 0 is 1 x 1."""
    return math.ceil(math.log2(max(height, width))) if max(height, width) > 1 else 0


def dzi_xml(height: int, width: int, tile: int, fmt: str) -> str:
    """The ``.dzi`` descriptor OpenSeadragon reads."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Image xmlns="{DZI_NS}" Format="{fmt}" Overlap="0" '
            f'TileSize="{tile}">\n  <Size Width="{width}" Height="{height}"/>\n</Image>\n')


def write_dzi(path: str | os.PathLike, image: Rows, *, tile: int = TILE, tile_format: str = "png") -> None:
    """A Deep Zoom pyramid (``path`` and its ``_files`` folder), written as ``image``'s bands arrive."""
    from coordsr.images import encode_image_bytes

    path = Path(path)
    fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}.get(tile_format.lower())
    if fmt is None:
        raise ValueError(f"tile_format must be png or jpeg, got {tile_format!r}")
    if fmt == "JPEG" and (image.channels in (2, 4) or image.bit_depth != 8):
        raise ValueError("JPEG tiles hold 8-bit pixels without alpha; use png")
    ext = "png" if fmt == "PNG" else "jpg"
    top = dzi_levels(image.height, image.width)
    work = temp_name(path)  # the whole pyramid is built here, then moved into place
    tiles_dir = work / dzi_files(path).name
    made: set[int] = set()

    def save(level: int, row: int, band: np.ndarray) -> None:
        folder = tiles_dir / str(top - level)
        if level not in made:
            folder.mkdir(parents=True)
            made.add(level)
        for col, t in tiles_of(band, tile):
            (folder / f"{col}_{row}.{ext}").write_bytes(encode_image_bytes(t, fmt, image.bit_depth))

    old = None
    try:
        work.mkdir()  # folders made in it get open()'s usual modes (umask), unlike mkdtemp's 0700
        pyr = Pyramid(image.height, image.width, image.channels, np.dtype(image.dtype), tile, top, save)
        for _, band in rebanded(image, tile):
            pyr.push(0, band)
        pyr.finish()
        (work / path.name).write_text(dzi_xml(image.height, image.width, tile, ext))
        target = dzi_files(path)
        if target.exists():  # --force: the old pyramid goes only once the new one is complete
            old = temp_name(target)
            os.replace(target, old)
        os.replace(tiles_dir, target)
        os.chmod(work / path.name, new_file_mode())
        os.replace(work / path.name, path)  # the entry point last: a .dzi is always complete
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for p in (work, old):
            if p is not None:
                shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------- OME-Zarr


def ngff_attributes(name: str, channels: int, levels: int, max_value: int) -> dict:
    """The OME-NGFF 0.4 attributes of a (c, y, x) multiscale image whose level k is halved k times."""
    colours = {1: ["FFFFFF"], 2: ["FFFFFF", "FFFFFF"], 3: ["FF0000", "00FF00", "0000FF"],
               4: ["FF0000", "00FF00", "0000FF", "FFFFFF"]}[channels]
    labels = {1: ["grey"], 2: ["grey", "alpha"], 3: ["red", "green", "blue"], 4: ["red", "green", "blue", "alpha"]}
    window = {"start": 0, "end": max_value, "min": 0, "max": max_value}
    return {
        "multiscales": [{
            "version": "0.4", "name": name, "type": "mean",
            "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                     {"name": "x", "type": "space"}],
            "datasets": [{"path": str(k), "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 2.0**k, 2.0**k]}]} for k in range(levels + 1)],
        }],
        "omero": {"rdefs": {"model": "color" if channels >= 3 else "greyscale"},
                  "channels": [{"label": lab, "color": col, "window": window, "active": lab != "alpha"}
                               for lab, col in zip(labels[channels], colours)]},
    }


def write_zarr(path: str | os.PathLike, image: Rows, *, tile: int = TILE) -> None:
    """An OME-Zarr multiscale image (a folder: Zarr format 2, OME-NGFF 0.4), written as
    ``image``'s bands arrive, each level's chunks once."""
    path = Path(path)
    try:
        import zarr
    except ImportError:
        raise ImageError(f"{path}: writing OME-Zarr needs the zarr package: pip install 'coordsr[zarr]'") from None
    levels = tiff_levels(image.height, image.width, tile)
    sizes = level_sizes(image.height, image.width, levels)
    c, dtype = image.channels, np.dtype(image.dtype)
    work = temp_name(path)
    old = None
    try:
        root = zarr.open_group(str(work), mode="w", zarr_format=2)
        arrays = [root.create_array(str(k), shape=(c, h, w), chunks=(c, tile, tile), dtype=dtype,
                                    chunk_key_encoding={"name": "v2", "separator": "/"})  # NGFF 0.4 wants "/"
                  for k, (h, w) in enumerate(sizes)]

        def save(level: int, row: int, band: np.ndarray) -> None:
            arrays[level][:, row * tile:row * tile + len(band), :] = band.transpose(2, 0, 1)

        pyr = Pyramid(image.height, image.width, c, dtype, tile, levels, save)
        for _, band in rebanded(image, tile):
            pyr.push(0, band)
        pyr.finish()
        root.attrs.update(ngff_attributes(path.stem, c, levels, int(np.iinfo(dtype).max)))
        if path.exists():  # --force: the old image goes only once the new one is complete
            old = temp_name(path)
            os.replace(path, old)
        os.replace(work, path)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for p in (work, old):
            if p is not None and os.path.exists(p):
                shutil.rmtree(p, ignore_errors=True)
