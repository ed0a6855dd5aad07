"""Image files in and out: formats, colour modes, bit depth, EXIF orientation, atomic writes.

Reading gives an `ImageData`: pixels as (H, W, C) float32 in [0, 1] with C in 1..4 (L, LA, RGB,
RGBA), with the bit depth and format of the source, so a 16-bit PNG can be written back at 16 bits.
Decoders: Pillow for PNG, JPEG, WebP and BMP; imagecodecs (libpng) for 16-bit PNG, which Pillow
would cut to 8 bits; tifffile for TIFF. Sizes are checked from the header before any pixel is
decoded, so an upload cannot be a decompression bomb.

Writing picks the format from the suffix and is atomic (a temporary file in the same folder, then
`os.replace`): a failed write leaves neither a partial file nor a clobbered one. PNG and TIFF keep
16 bits; JPEG, WebP and BMP are 8-bit; JPEG and BMP have no alpha, so it is composited on white.

Every failure a user can cause is an `ImageError` with a one-line message that starts with the
file name. Misuse by the caller (pixels that are not floats, a bad `bit_depth`) is a `ValueError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from coordsr.atomic import atomic_path
from coordsr.errors import ImageError

FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
SUFFIXES = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP",
}
MAX_SIDES = {"PNG": 1_000_000, "JPEG": 65_500, "WEBP": 16_383}
"""The longest side each format's encoder writes (libpng's user limit, libjpeg's
JPEG_MAX_DIMENSION, libwebp's WEBP_MAX_DIMENSION); TIFF and BMP take any ``coordsr`` size."""
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channel count -> mode
MIN_SIDE = 2  # a field needs at least two pixels each way to be worth fitting
DEFAULT_MAX_PIXELS = 8192 * 8192
"""Most pixels ``read_image`` decodes unless told otherwise (checked from the header)."""

_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> (transpose, flip rows, flip columns), applied in that order;
# the same transposes as PIL.ImageOps.exif_transpose (a test checks all eight against it).
_ORIENT = {
    1: (False, False, False), 2: (False, False, True), 3: (False, True, True),
    4: (False, True, False), 5: (True, False, False), 6: (True, False, True),
    7: (True, True, True), 8: (True, True, False),
}
_SAVE_OPTIONS = {  # Pillow encoders: high quality, 4:4:4 chroma, since the output is the product
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95},
    "BMP": {},
}


@dataclass
class ImageData:
    """A decoded image and what is needed to write it back faithfully."""

    pixels: np.ndarray  # (H, W, C) float32 in [0, 1], C in 1..4
    mode: str  # 'L', 'LA', 'RGB' or 'RGBA': MODES[C]
    bit_depth: int  # 8 or 16: the precision of the source file
    format: str  # 'PNG', 'JPEG', 'TIFF', 'WEBP' or 'BMP'
    jpeg_quality: int | None = None
    """The quality a JPEG was saved at, read from its quantization tables
    (``coordsr.quality.jpeg_quality_from_tables``); None for other formats."""

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)


# ---------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read a PNG, JPEG, TIFF, WebP or BMP file, with its EXIF orientation applied.

    An image of more than ``max_pixels`` (None: no limit) is refused from its header, before
    any pixel is decoded. Pillow refuses formats other than TIFF above twice its own
    ``Image.MAX_IMAGE_PIXELS`` (179 Mpx) whatever ``max_pixels`` says."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with f:
        return _decode(f, str(path), max_pixels)


def decode_image_bytes(data: bytes, name: str, *, max_pixels: int | None = None) -> ImageData:
    """`read_image` for bytes in memory (an upload); `name` is only used in error messages."""
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(fp, name: str, max_pixels: int | None) -> ImageData:
    try:
        is_tiff = fp.read(4) in _TIFF_MAGIC
        fp.seek(0)
        return _decode_tiff(fp, name, max_pixels) if is_tiff else _decode_pillow(fp, name, max_pixels)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (expected PNG, JPEG, TIFF, WebP or BMP)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: too many pixels for Pillow's decoder: {exc}") from exc
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode this image") from None
    except Exception as exc:  # decoders fail on bad files in many ways (OSError, SyntaxError, ...)
        why = " ".join(str(exc).split())  # one line
        if not isinstance(exc, OSError) or not why:
            why = f"{type(exc).__name__}: {why}" if why else type(exc).__name__
        raise ImageError(f"{name}: truncated or corrupt image ({why})") from exc


def _check_size(name: str, width: int, height: int, max_pixels: int | None) -> None:
    """Refuse an image from its header dimensions, before its pixels are decoded."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(
            f"{name}: too small: {width}x{height} pixels, need at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{name}: too many pixels: {width}x{height} = {width * height:,}, "
            f"the limit is {max_pixels:,}"
        )


def _decode_pillow(fp, name: str, max_pixels: int | None) -> ImageData:
    with Image.open(fp, formats=FORMATS) as im:  # parses the header only; may raise a bomb error
        fmt = "JPEG" if im.format == "MPO" else im.format  # camera JPEGs open as MPO
        _check_size(name, im.width, im.height, max_pixels)
        quality = _jpeg_quality(im) if fmt == "JPEG" else None
        if fmt == "PNG" and _png_bit_depth(fp) == 16:
            fp.seek(0)
            arr = imagecodecs.png_decode(fp.read())  # (H, W[, C]) uint16
            # only an eXIf chunk before IDAT: getexif() would otherwise decode the image again
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1) if "exif" in im.info else 1
        else:
            im.load()  # decode everything now, so a truncated file fails here
            arr = _pillow_array(im)
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    return _finish(arr, fmt, orientation, quality)


def from_pillow(im: Image.Image) -> ImageData:
    """An ImageData of a Pillow image already in memory: the modes and depths ``read_image``
    gives a file (``I;16`` and ``I`` grey as 16-bit, ``P``, ``CMYK``... converted). No EXIF
    orientation is applied: the image is taken as it stands."""
    return _finish(_pillow_array(im), im.format or "PNG", 1, _jpeg_quality(im) if im.format == "JPEG" else None)


def _jpeg_quality(im: Image.Image) -> int | None:
    from coordsr.quality import jpeg_quality_from_tables

    return jpeg_quality_from_tables(getattr(im, "quantization", None) or {})


def _png_bit_depth(fp) -> int:
    fp.seek(24)  # 8-byte signature, then IHDR: length, type, width, height, bit depth
    return fp.read(1)[0]


def _pillow_array(im: Image.Image) -> np.ndarray:
    """(H, W[, C]) array of a decoded Pillow image, other modes converted to L, LA, RGB or RGBA."""
    if im.mode in ("1", "L", "LA", "RGB", "RGBA", "F") or im.mode.startswith("I"):
        return np.asarray(im)  # '1' is bool, 'I;16*' uint16, 'I' int32, 'F' float32
    if im.mode == "P":
        return np.asarray(im.convert("RGBA" if im.has_transparency_data else "RGB"))
    if im.mode in ("PA", "RGBa"):
        return np.asarray(im.convert("RGBA"))
    if im.mode == "La":
        return np.asarray(im.convert("LA"))
    return np.asarray(im.convert("RGB"))  # CMYK, YCbCr, RGBX, HSV...


def _decode_tiff(fp, name: str, max_pixels: int | None) -> ImageData:
    with tifffile.TiffFile(fp) as tif:
        page = tif.pages[0]  # the main image; later pages (thumbnails, pyramid levels) ignored
        _check_size(name, page.imagewidth, page.imagelength, max_pixels)
        photometric = tifffile.PHOTOMETRIC
        simple = page.photometric in (photometric.MINISBLACK, photometric.MINISWHITE, photometric.RGB)
        if simple and page.bitspersample >= 8:
            arr = page.asarray()
            if "S" in page.axes:  # samples may be stored planar (S, Y, X)
                arr = np.moveaxis(arr, page.axes.index("S"), -1)
            if arr.ndim == 2:
                arr = arr[..., None]
            arr = arr[..., :4]  # (H, W, C); further extra samples dropped
            if page.photometric == photometric.MINISWHITE:  # 0 is white: invert the grey channel
                top = 1.0 if arr.dtype.kind == "f" else np.iinfo(arr.dtype).max
                arr = np.concatenate([top - arr[..., :1], arr[..., 1:]], axis=-1)
            tag = page.tags.get(274)  # Orientation
            return _finish(arr, "TIFF", int(tag.value) if tag else 1)
    fp.seek(0)  # palette, CMYK, YCbCr, bilevel...: Pillow converts them (8-bit)
    return _decode_pillow(fp, name, max_pixels)


def _finish(arr: np.ndarray, fmt: str, orientation: int, jpeg_quality: int | None = None) -> ImageData:
    """Orient, add the channel axis, scale to [0, 1] float32; the dtype gives the bit depth."""
    transpose, flip_rows, flip_cols = _ORIENT.get(orientation, _ORIENT[1])
    if transpose:
        arr = np.swapaxes(arr, 0, 1)
    if flip_rows:
        arr = arr[::-1]
    if flip_cols:
        arr = arr[:, ::-1]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype == np.bool_:  # Pillow's bilevel '1' mode
        pixels, bit_depth = arr, 8
    elif arr.dtype == np.uint8:
        pixels, bit_depth = arr / np.float32(255), 8
    elif arr.dtype.kind == "u":  # uint16, or wider: scaled by its own maximum
        pixels, bit_depth = arr / np.float64(np.iinfo(arr.dtype).max), 16
    elif arr.dtype.kind == "i":  # Pillow's 'I' mode holds 16-bit values in int32
        pixels, bit_depth = np.clip(arr, 0, 65535) / 65535.0, 16
    else:  # floats are taken as already in [0, 1]
        pixels, bit_depth = np.clip(np.nan_to_num(arr), 0, 1), 16
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    return ImageData(pixels, MODES[pixels.shape[2]], bit_depth, fmt, jpeg_quality)


# ---------------------------------------------------------------- writing


PNG_LEVEL = 4
"""zlib level of written PNGs. libpng's default, 6, took 0.19 s for a 1024x1024 upscale on this
project's 2-core machine; 4 took 0.06 s for files 4-7% larger (Kodak images and an upscale), 1
took 0.04 s for files 10-20% larger. At 6 the encoder cost a third of a `pretrained` upscale."""


def write_image(path: str | os.PathLike, pixels: np.ndarray, *, bit_depth: int = 8) -> None:
    """Write (H, W[, C]) floats in [0, 1] atomically, in the format its suffix names.

    `bit_depth=16` is kept by PNG and TIFF; JPEG, WebP and BMP are always 8-bit.
    """
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{path}: unknown image type {path.suffix or '(no suffix)'!r}, "
            f"use one of {', '.join(SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, cannot write an image over it")
    arr = np.asarray(pixels)
    if arr.ndim >= 2:
        check_format_size(fmt, arr.shape[0], arr.shape[1], str(path))
    _write_atomic(path, encode_image_bytes(pixels, fmt, bit_depth))


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with atomic_path(path) as tmp, os.fdopen(os.open(tmp, flags, 0o666), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def check_format_size(fmt: str, height: int, width: int, what: str = "the image") -> None:
    """ImageError, one line, when ``fmt`` cannot hold a ``width`` x ``height`` image (MAX_SIDES):
    asked before any work, so that a long computation never ends in an encoder's error.

    >>> check_format_size("WEBP", 2, 16383)
    >>> check_format_size("WEBP", 2, 16384)
    Traceback (most recent call last):
    ...
    coordsr.errors.ImageError: the image is 16384x2: WebP holds at most 16383 pixels a side; choose PNG or TIFF
    """
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt.upper(), fmt.upper())
    top = MAX_SIDES.get(fmt)
    if top is not None and max(height, width) > top:
        name = {"WEBP": "WebP"}.get(fmt, fmt)
        other = "TIFF" if fmt == "PNG" else "PNG or TIFF"
        raise ImageError(f"{what} is {width}x{height}: {name} holds at most {top} pixels a side; choose {other}")


def encode_image_bytes(pixels: np.ndarray, fmt: str = "PNG", bit_depth: int = 8) -> bytes:
    """Encode (H, W[, C]) floats in [0, 1] as a file's bytes: what `write_image` writes.
    ImageError when the format cannot hold the size (``check_format_size``)."""
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt.upper(), fmt.upper())
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}, valid formats: {', '.join(FORMATS)}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    arr = _as_hwc(pixels)
    check_format_size(fmt, arr.shape[0], arr.shape[1])
    if fmt in ("JPEG", "BMP") and arr.shape[2] in (2, 4):
        arr = _on_white(arr)
    if fmt not in ("PNG", "TIFF"):
        bit_depth = 8
    q = np.ascontiguousarray(quantize(arr, bit_depth))  # (H, W, C); libpng needs C order
    channels = q.shape[2]
    if channels == 1:
        q = q[..., 0]
    if fmt == "PNG":
        # libpng: 8 or 16 bits, any of the four modes
        return bytes(imagecodecs.png_encode(q, level=PNG_LEVEL))
    buf = io.BytesIO()
    if fmt == "TIFF":
        tifffile.imwrite(
            buf, q, photometric="rgb" if channels >= 3 else "minisblack",
            extrasamples=("unassalpha",) if channels in (2, 4) else None, compression="zlib",
        )
    else:  # WebP keeps alpha; it has no grey mode, so Pillow stores L as RGB and LA as RGBA
        Image.fromarray(q).save(buf, fmt, **_SAVE_OPTIONS[fmt])
    return buf.getvalue()


def quantize(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    """Floats in [0, 1] -> uint8/uint16; already-quantized uint8/uint16 pixels (a tiled render
    of a huge image) are kept, or converted exactly between depths (x257 is 8 -> 16 bits)."""
    if arr.dtype == np.uint8:
        return arr if bit_depth == 8 else arr.astype(np.uint16) * 257
    if arr.dtype == np.uint16:
        return arr if bit_depth == 16 else ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    top, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    return np.rint(np.clip(np.nan_to_num(arr), 0, 1) * top).astype(dtype)


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"pixels must be (H, W) or (H, W, C) with C in 1..4, got {arr.shape}")
    if arr.dtype.kind != "f" and arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be floats in [0, 1], uint8 or uint16, got {arr.dtype}")
    return arr


def _on_white(arr: np.ndarray) -> np.ndarray:
    """Drop alpha for formats without it by compositing on white: what a viewer shows."""
    colour, alpha = arr[..., :-1], np.clip(arr[..., -1:], 0, 1)
    return colour * alpha + (1 - alpha)
