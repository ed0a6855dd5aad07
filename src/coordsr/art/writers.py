"""Frames out: a PNG with the art record (written a band of rows at a time for large posters),
and streaming GIF, MP4 and PNG-frame writers.

Every writer takes 8-bit (H, W, C) frames one at a time and keeps none of them, so an
animation needs the memory of one frame whatever its length. Output is atomic: frames go to a
temporary file (or folder) beside the target, renamed into place by ``close()``; ``abort()``
(or an exception inside ``with``) removes it, so a failed run leaves nothing behind.

- GIF: Pillow, each frame quantized to its own 256-colour palette (median cut, no dithering,
  deterministic), streamed with Pillow's documented ``GifImagePlugin.getheader``/``getdata``;
  loops forever. GIF has 1-bit alpha at best, so RGBA is composited on white (as is MP4).
- MP4: H.264 through imageio-ffmpeg (the optional ``art`` extra), bit-exact flags so the same
  frames give the same bytes; width and height must be even (4:2:0 chroma).
- PNG frames: a folder of frame_00000.png ..., alpha kept.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from coordsr.atomic import publish
from coordsr.errors import CoordsrError
from coordsr.images import PNG_LEVEL

ANIMATION_SUFFIXES = (".gif", ".mp4")
"""Animation files; a path with no suffix (or ending in '/') is a folder of PNG frames."""


def _modes(frame: np.ndarray) -> Image.Image:
    c = frame.shape[2]
    return Image.fromarray(frame[..., 0] if c == 1 else frame, {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])


def _on_white(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> RGB uint8, alpha composited on white."""
    c = frame.shape[2]
    if c in (1, 3):
        return np.repeat(frame, 3, axis=2) if c == 1 else frame
    colour = frame[..., :-1].astype(np.float32)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    alpha = frame[..., -1:].astype(np.float32) / 255
    return np.rint(colour * alpha + 255 * (1 - alpha)).astype(np.uint8)


def png_bytes(frame: np.ndarray, record: dict | None = None) -> bytes:
    """An 8-bit (H, W, C) frame as PNG bytes, with ``record`` as JSON in a text chunk."""
    from coordsr.art.files import PNG_KEY

    info = PngInfo()
    if record is not None:
        info.add_text(PNG_KEY, json.dumps(record, sort_keys=True))
    buf = io.BytesIO()
    _modes(frame).save(buf, "PNG", pnginfo=info, compress_level=PNG_LEVEL)
    return buf.getvalue()


def write_png_rows(path: Path, frame: np.ndarray, record: dict | None = None, band_rows: int = 64) -> None:
    """Write an 8-bit (H, W, C) array as a PNG, atomically, a band of rows at a time.

    Pillow copies the whole picture before encoding it (RGB as 4 bytes a pixel: 127 MB more for
    an 8K poster); this writer filters (PNG's 'Up' filter, computed with numpy) and deflates
    ``band_rows`` rows at a time, so the memory beyond the array is one band."""
    import struct
    import zlib

    from coordsr.art.files import PNG_KEY

    h, w, c = frame.shape
    if frame.dtype != np.uint8 or c not in (1, 2, 3, 4):
        raise ValueError(f"expected (H, W, 1..4) uint8, got {frame.shape} {frame.dtype}")

    def chunk(f, kind: bytes, data: bytes) -> None:
        f.write(struct.pack(">I", len(data)) + kind + data)
        f.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]  # grey, grey + alpha, RGB, RGBA
            chunk(f, b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            if record is not None:  # JSON is ASCII (ensure_ascii), as tEXt wants Latin-1
                chunk(f, b"tEXt", PNG_KEY.encode("latin-1") + b"\0" + json.dumps(record, sort_keys=True).encode())
            deflate = zlib.compressobj(PNG_LEVEL)
            band = np.empty((min(band_rows, h), 1 + w * c), np.uint8)
            band[:, 0] = 2  # filter 'Up': each byte minus the one above it, modulo 256
            for r0 in range(0, h, band_rows):
                rows = frame[r0:r0 + band_rows].reshape(-1, w * c)
                n = rows.shape[0]
                above = frame[r0 - 1:r0 - 1 + n].reshape(-1, w * c) if r0 else None
                if above is None:  # the first row has zeros above it
                    band[0, 1:] = rows[0]
                    np.subtract(rows[1:], rows[:-1], out=band[1:n, 1:])
                else:
                    np.subtract(rows, above, out=band[:n, 1:])
                data = deflate.compress(band[:n].tobytes())
                if data:
                    chunk(f, b"IDAT", data)
            chunk(f, b"IDAT", deflate.flush())
            chunk(f, b"IEND", b"")
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class FrameWriter:
    """Base: a temporary target beside ``path``, renamed into place by ``close()``."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        self.path, self.size, self.fps, self.count = Path(path), size, fps, 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: np.ndarray) -> None:
        h, w = self.size
        if frame.shape[:2] != (h, w) or frame.dtype != np.uint8:
            raise ValueError(f"frame {self.count}: expected {w}x{h} uint8, got {frame.shape} {frame.dtype}")
        self._write(frame)
        self.count += 1

    def _write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _FileWriter(FrameWriter):
    def __init__(self, path, size, fps):
        super().__init__(path, size, fps)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def _finish(self) -> None:
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


GIF_MIN_FPS = 100 / 65535
"""A GIF frame's delay is 16 bits of hundredths of a second: at most 655.35 s, about 0.0015 fps."""


class GifWriter(_FileWriter):
    """Streams frames into a looping GIF (Pillow), one frame in memory at a time."""

    def __init__(self, path, size, fps):
        if not fps >= GIF_MIN_FPS:
            raise CoordsrError(f"{path}: a GIF shows a frame for at most 655.35 s: fps must be at least "
                               f"{GIF_MIN_FPS:.5f}, got {fps:g}")
        super().__init__(path, size, fps)
        self.file = open(self.tmp, "wb")
        # GIF delays are in hundredths of a second: 30 fps is stored as 30 ms, about 33 fps.
        self.duration_ms = max(20, round(1000 / fps / 10) * 10)

    def _write(self, frame: np.ndarray) -> None:
        from PIL import GifImagePlugin

        im = Image.fromarray(_on_white(frame), "RGB").quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        if self.count == 0:
            header, _ = GifImagePlugin.getheader(im, info={"loop": 0, "duration": self.duration_ms})
            self.file.write(b"".join(header))
        for chunk in GifImagePlugin.getdata(im, duration=self.duration_ms, include_color_table=True):
            self.file.write(chunk)

    def close(self) -> None:
        self.file.write(b";")  # GIF trailer
        self.file.close()
        if self.count == 0:
            self.abort()
            raise CoordsrError(f"{self.path}: no frames were written")
        self._finish()

    def abort(self) -> None:
        self.file.close()
        super().abort()


class Mp4Writer(_FileWriter):
    """Streams frames to ffmpeg (imageio-ffmpeg) as H.264 in an MP4 container."""

    def __init__(self, path, size, fps):
        h, w = size
        if h % 2 or w % 2:
            raise CoordsrError(f"{path}: MP4 (H.264, 4:2:0) needs an even width and height, got {w}x{h}")
        try:
            import imageio_ffmpeg
        except ImportError:
            raise CoordsrError(f"{path}: MP4 output needs the 'art' extra: pip install 'coordsr[art]'") from None
        super().__init__(path, size, fps)
        self.gen = imageio_ffmpeg.write_frames(
            str(self.tmp), (w, h), fps=fps, codec="libx264", quality=None, bitrate=None,
            pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-f", "mp4", "-crf", "18", "-preset", "medium", "-threads", "1",
                           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"])
        self.gen.send(None)  # start ffmpeg

    def _write(self, frame: np.ndarray) -> None:
        self.gen.send(np.ascontiguousarray(_on_white(frame)))

    def close(self) -> None:
        try:
            self.gen.close()
        except Exception as e:  # ffmpeg's failure arrives as a RuntimeError or OSError
            self.abort()
            raise CoordsrError(f"{self.path}: the MP4 encoder failed ({e})") from None
        self._finish()

    def abort(self) -> None:
        try:
            self.gen.close()
        except Exception:
            pass
        super().abort()


class PngFramesWriter(FrameWriter):
    """A folder of PNG frames (frame_00000.png, ...), created whole or not at all."""

    def __init__(self, path, size, fps):
        super().__init__(path, size, fps)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))

    def _write(self, frame: np.ndarray) -> None:
        (self.tmp / f"frame_{self.count:05d}.png").write_bytes(png_bytes(frame))

    def close(self) -> None:
        if self.path.is_dir():
            self.path.rmdir()  # only an empty folder gets here (the CLI refuses others)
        publish(self.tmp, self.path, folder=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def animation_kind(path: Path) -> str:
    """'gif', 'mp4' or 'frames' (a folder) from the output path; CoordsrError otherwise."""
    suffix = path.suffix.lower()
    if suffix in ANIMATION_SUFFIXES:
        return suffix[1:]
    if suffix == "" or str(path).endswith(os.sep):
        return "frames"
    raise CoordsrError(f"{path}: an animation is written as .gif, .mp4, or a folder of PNG frames "
                       "(a path with no suffix)")


def open_writer(path: Path, size: tuple[int, int], fps: float) -> FrameWriter:
    kind = animation_kind(path)
    cls = {"gif": GifWriter, "mp4": Mp4Writer, "frames": PngFramesWriter}[kind]
    return cls(path, size, fps)
