"""The trained upscalers on onnxruntime: numpy and onnxruntime only, never torch (issue 37).

``coordsr upscale --backend onnx`` (and ``auto``, where onnxruntime is installed) runs the
``pretrained`` and ``drawing`` models through the runtime graphs that ``coordsr.onnx_export``
writes beside their weights (``NAME.encoder.onnx`` and ``NAME.query.onnx``; the package ships
those of its own weights, a few tens of KB that read the weights from the safetensors file). The
work is ``coordsr.liif.model.upscale_tiles`` step for step, in numpy: output tiles of ``tile``
pixels, each encoding only the LR region it needs with the encoder's margin of context (so the
features equal the whole image's), its queries in chunks of ``chunk``, coordinates and cells
built as ``coordsr.coords`` builds them (float64, then float32). Memory is one tile's work.
The pixels equal the torch path's at ``precision=fp32`` to about 1e-6 (tests/test_onnx.py says
the measured maximum); the torch path's ``auto`` precision may run bfloat16 where it pays.

Not here (the torch path does them): the geometric self-ensemble (``ensemble`` > 1), bfloat16,
CUDA, and every other method. Nothing in this module, nor anything it imports, imports torch:
tests/test_onnx.py checks ``sys.modules`` after a CLI upscale.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from coordsr.errors import CoordsrError, FieldFileError
from coordsr.memory import available_memory
from coordsr.progress import Progress, ProgressCallback

SHIPPED = {"pretrained": "pretrained.safetensors", "blind": "blind.safetensors", "drawing": "drawing.safetensors"}
"""The methods this backend runs, and the weights file each ships with."""
BACKENDS = ("auto", "torch", "onnx")
STREAM_TILE = 512
"""Largest output tile of a streamed output (``coordsr.methods.pretrained.STREAM_TILE``)."""
HALO = 3
"""LR pixels around a tile's footprint: ensemble neighbours (1) + bicubic taps (2), as upscale_tiles."""
SHA_KEY = "coordsr.weights_sha256"


def available() -> bool:
    """Whether onnxruntime can be imported here (found, not imported)."""
    return importlib.util.find_spec("onnxruntime") is not None


# --------------------------------------------------------------------- coordinates (coordsr.coords in numpy)

def axis_centers(n: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """``coordsr.coords.axis_centers`` (cell convention), the same float32 arithmetic: the cell
    indices + 0.5 in float32, times the step, plus ``lo`` (torch rounds the Python scalars to float32).

    >>> axis_centers(2)
    array([-0.5,  0.5], dtype=float32)
    """
    step = (hi - lo) / n
    return np.float32(lo) + np.float32(step) * (np.arange(n, dtype=np.float64) + 0.5).astype(np.float32)


def pixel_centers(h: int, w: int, box=(-1.0, -1.0, 1.0, 1.0)) -> np.ndarray:
    """``coordsr.coords.pixel_centers``: (h, w, 2) float32, (x, y) last."""
    x0, y0, x1, y1 = box
    xx, yy = np.meshgrid(axis_centers(w, x0, x1), axis_centers(h, y0, y1), indexing="xy")
    return np.stack((xx, yy), axis=-1)


def cell_size(h: int, w: int, box=(-1.0, -1.0, 1.0, 1.0)) -> np.ndarray:
    """``coordsr.coords.cell_size``: (2,) float32, one pixel's (width, height) in field units."""
    x0, y0, x1, y1 = box
    return np.array([(x1 - x0) / w, (y1 - y0) / h], dtype=np.float32)


def box_of(r0: int, r1: int, c0: int, c1: int, h: int, w: int) -> np.ndarray:
    """Field box tiled by LR rows [r0, r1) and columns [c0, c1) of an h x w image (float32)."""
    return np.array([2 * c0 / w - 1, 2 * r0 / h - 1, 2 * c1 / w - 1, 2 * r1 / h - 1], dtype=np.float32)


# --------------------------------------------------------------------- MATLAB bicubic for alpha (coordsr.resize)

def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1.0) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def contributions(n_in: int, n_out: int, scale: float, outputs: tuple[int, int] | None = None):
    """``coordsr.resize.contributions`` for the cubic kernel with antialiasing: (indices, weights)."""
    width = 4.0
    if scale < 1:
        kernel, width = (lambda t: scale * _cubic(scale * t)), width / scale
    else:
        kernel = _cubic
    o0, o1 = outputs or (0, n_out)
    u = np.arange(o0 + 1, o1 + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(int(math.ceil(width)) + 2, dtype=np.float64)[None, :]
    wts = kernel(u[:, None] - idx)
    wts = wts / wts.sum(axis=1, keepdims=True)
    i0 = (idx - 1).astype(np.int64)
    m = np.remainder(i0, 2 * n_in)
    return np.where(m >= n_in, 2 * n_in - 1 - m, m), wts


def imresize(a: np.ndarray, size: tuple[int, int], rows: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB's bicubic ``imresize`` of a 2-D float64 array to ``size`` (``coordsr.resize.imresize``
    with ``scale=(H / h, W / w)``); ``rows`` (r0, r1): those output rows only."""
    (h, w), (oh, ow) = a.shape, size
    sy, sx = oh / h, ow / w
    ri, rw = contributions(h, oh, sy, rows)
    ci, cw = contributions(w, ow, sx, None)
    out = np.zeros((ri.shape[0], w))
    for t in range(ri.shape[1]):  # a tap at a time: memory is the images, not (out, taps, in)
        out += rw[:, t, None] * a[ri[:, t]]
    res = np.zeros((out.shape[0], ow))
    for t in range(ci.shape[1]):
        res += cw[None, :, t] * out[:, ci[:, t]]
    return res


# --------------------------------------------------------------------- premultiplied alpha (coordsr.methods.drawing)

def to_premultiplied(image: np.ndarray) -> np.ndarray:
    """(h, w, c) straight-alpha floats -> (4, h, w) premultiplied RGBA float32."""
    c = image.shape[2]
    rgb = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    a = image[:, :, -1:] if c in (2, 4) else np.ones_like(image[:, :, :1])
    return np.ascontiguousarray(np.concatenate([rgb * a, a], axis=2).transpose(2, 0, 1), dtype=np.float32)


def from_premultiplied(x: np.ndarray, channels: int) -> np.ndarray:
    """(4, H, W) premultiplied RGBA -> (H, W, channels) straight alpha (``drawings.data.unpremultiply``)."""
    if channels in (1, 3):
        straight = np.clip(x[:3], 0, 1)
    else:
        a = np.clip(x[3:], 0, 1)
        rgb = np.minimum(np.maximum(x[:3], 0), a)
        safe = np.maximum(a, 1e-6)
        straight = np.concatenate([np.where(a > 0, rgb / safe, 0).astype(np.float32), a], axis=0)
    out = straight[:3].transpose(1, 2, 0)
    if channels <= 2:
        out = out.mean(axis=2, keepdims=True)
    if channels in (2, 4):
        out = np.concatenate([out, straight[3][:, :, None]], axis=2)
    return out


# --------------------------------------------------------------------- the graphs

def weights_config(path: str | Path) -> dict:
    """The model config in a safetensors file's header (no torch, no safetensors package)."""
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(f.read(n)).get("__metadata__", {})
        return json.loads(meta["config"])
    except (OSError, ValueError, KeyError, struct.error) as e:
        raise FieldFileError(f"{path}: cannot read the weights' config ({e})") from None


def runtime_paths(weights: str | Path) -> dict[str, Path]:
    """The runtime graphs of ``dir/NAME.safetensors``: ``dir/NAME.encoder.onnx``, ``dir/NAME.query.onnx``."""
    weights = Path(weights)
    stem = weights.name.removesuffix(".safetensors")
    return {"encoder": weights.with_name(f"{stem}.encoder.onnx"), "query": weights.with_name(f"{stem}.query.onnx")}


_SHA: dict[tuple, str] = {}
_SESSIONS: dict[tuple, tuple] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        _SHA[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _SHA[key]


def _graph_sha(path: Path) -> str | None:
    """The weights SHA-256 a runtime graph was made for, read from its metadata without loading it
    into onnxruntime (a stale graph's external data would be read from the wrong bytes)."""
    data = path.read_bytes()
    i = data.find(SHA_KEY.encode())
    j = i + len(SHA_KEY)
    if i < 0 or data[j:j + 2] != b"\x12\x40":  # the entry's value: field 2, 64 bytes (hex SHA-256)
        return None
    return data[j + 2:j + 66].decode("ascii", "replace")


def export_problem(weights: str | Path) -> str | None:
    """Why the runtime graphs of ``weights`` cannot be used (missing, or made for other weights),
    or None when they can."""
    weights = Path(weights)
    for path in runtime_paths(weights).values():
        if not path.is_file():
            return f"{weights.name} has no ONNX export ({path.name} not found; make one with `coordsr export {weights} --runtime`)"
        if _graph_sha(path) != _sha256(weights):
            return f"{path.name} was exported from other weights than {weights.name} (rerun `coordsr export {weights} --runtime`)"
    return None


def sessions(weights: str | Path, threads: int = 0):
    """(encoder, query) onnxruntime sessions of ``weights``, made once per process."""
    weights = Path(weights)
    key = (str(weights.resolve()), threads)
    if key not in _SESSIONS:
        problem = export_problem(weights)
        if problem:
            raise CoordsrError(problem)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # No spinning between ops: on a busy 2-core machine a spinning thread takes the core the
        # other one needs (a 16384-query chunk, load 5: 1.31 s spinning, 0.87 s not, 2026-12-08).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        paths = runtime_paths(weights)
        _SESSIONS[key] = tuple(ort.InferenceSession(str(paths[k]), opts, providers=["CPUExecutionProvider"])
                               for k in ("encoder", "query"))
    return _SESSIONS[key]


# --------------------------------------------------------------------- the upscaler

def shipped_weights(method: str) -> str:
    """Path of a weights file shipped inside the package."""
    ref = Path(__file__).parent / "weights" / SHIPPED[method]
    if not ref.is_file():
        raise FieldFileError(f"{ref}: shipped weights missing (reinstall coordsr)")
    return str(ref)


@dataclass
class OnnxUpscaler:
    """``pretrained`` or ``drawing`` on onnxruntime: the Upscaler interface that the CLI and the
    batch mode use (``upscale``, ``upscale_rows``, ``check_memory``), the same settings."""

    onnx_method: str = "pretrained"
    """'pretrained' (RGB; alpha by bicubic) or 'drawing' (premultiplied RGBA through the model)."""
    weights: str | None = None
    """A coordsr.liif weights file with runtime graphs beside it; None: the shipped ones."""
    tile: int = 1024
    """Output tile side in pixels."""
    chunk: int = 16384
    """Queries per query-graph call."""
    threads: int = 0
    """onnxruntime's intra-op threads (0: its default, one per physical core)."""

    streams: ClassVar[bool] = True
    SETTINGS: ClassVar[tuple[str, ...]] = ("weights", "tile", "chunk", "precision", "ensemble")
    """Settings of the torch method that this backend takes (precision: auto or fp32; ensemble: 1)."""

    def __post_init__(self):
        if self.onnx_method not in SHIPPED:
            raise ValueError(f"method {self.onnx_method} has no ONNX export; the onnx backend runs "
                             f"{', '.join(SHIPPED)}")
        if self.tile < 1 or self.chunk < 1:
            raise ValueError(f"tile and chunk must be at least 1, got {self.tile} and {self.chunk}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise FieldFileError(f"{self.weights}: no such weights file")

    @property
    def name(self) -> str:
        return self.onnx_method

    def weights_path(self) -> str:
        return self.weights or shipped_weights(self.onnx_method)

    def config(self) -> dict:
        return weights_config(self.weights_path())

    @property
    def margin(self) -> int:
        return 2 * int(self.config().get("blocks", 6)) + 3  # LIIF.margin

    # ---- memory (the estimates of coordsr.methods.pretrained, without the model)

    def peak_bytes(self, in_shape, size) -> int:
        (h, w, c), (H, W) = in_shape, size
        cfg = self.config()
        t = min(self.tile, H), min(self.tile, W)
        pad = 2 * (HALO + self.margin)
        region = min(h, t[0] * h // H + pad) * min(w, t[1] * w // W + pad)
        encoder = 4 * 4 * max(cfg.get("channels", 48), cfg.get("hidden", 64)) * region
        queries = 4 * 4 * min(self.chunk, t[0] * t[1]) * 4 * cfg.get("hidden", 64) + 4 * 4 * t[0] * t[1] * 2
        alpha = (8 + 4) * H * W + 8 * (H * h + W * w) if c in (2, 4) else 0
        return 2 * 4 * H * W * c + 4 * 4 * H * W + alpha + 4 * 4 * h * w + encoder + queries

    def stream_peak_bytes(self, in_shape, size) -> int:
        (h, w, c), (H, W) = in_shape, size
        tile = min(self.tile, STREAM_TILE)
        t = min(tile, H), min(tile, W)
        full = OnnxUpscaler(self.onnx_method, self.weights, tile, self.chunk).peak_bytes(in_shape, (t[0], t[1]))
        return full + t[0] * W * 2 * c + (8 * 3 * t[0] * (w + W) if c in (2, 4) else 0)

    def check_memory(self, in_shape, size, *, streamed: bool = False) -> None:
        """CoordsrError when the estimate exceeds the memory available now (``Upscaler.check_memory``)."""
        need = (self.stream_peak_bytes if streamed else self.peak_bytes)(tuple(in_shape), tuple(size))
        have, where = available_memory() - (1 << 30), "of memory available"
        from coordsr.memory import memory_limits

        for what, left in memory_limits():
            if left - (256 << 20) < have:
                have, where = left - (256 << 20), f"this process may still allocate ({what})"
        if need > have:
            hint = "write a tiled .tif or a Deep Zoom .dzi instead, or choose a smaller output"
            raise CoordsrError(f"{self.onnx_method} (onnx) from {in_shape[1]}x{in_shape[0]} to {size[1]}x{size[0]} "
                               f"needs about {need / 2**30:.1f} GiB, more than the {max(have, 0) / 2**30:.1f} GiB "
                               f"{where}; {hint}")

    # ---- the work

    def _model_input(self, image: np.ndarray) -> np.ndarray:
        """(1, C, h, w) float32: RGB (grey repeated) for pretrained, premultiplied RGBA for drawing."""
        if self.onnx_method == "drawing":
            return to_premultiplied(image)[None]
        c = image.shape[2]
        colour = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
        return np.ascontiguousarray(colour.transpose(2, 0, 1), dtype=np.float32)[None]

    def tiles(self, x: np.ndarray, size: tuple[int, int], tile: int) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
        """``coordsr.liif.model.upscale_tiles``: (r0, r1, c0, c1, (C, r1 - r0, c1 - c0)), row-major."""
        enc, qry = sessions(self.weights_path(), self.threads)
        h, w = x.shape[-2:]
        oh, ow = size
        m = self.margin
        cell = cell_size(oh, ow)[None]  # (1, 2)
        for r in range(0, oh, tile):
            for c in range(0, ow, tile):
                r1, c1 = min(r + tile, oh), min(c + tile, ow)
                lr0 = max(math.floor(r * h / oh) - HALO, 0)
                lr1 = min(math.ceil(r1 * h / oh) + HALO, h)
                lc0 = max(math.floor(c * w / ow) - HALO, 0)
                lc1 = min(math.ceil(c1 * w / ow) + HALO, w)
                # encode_region: the LR region with the encoder's margin of context, then cropped
                a0, a1, b0, b1 = max(lr0 - m, 0), min(lr1 + m, h), max(lc0 - m, 0), min(lc1 + m, w)
                hidden = enc.run(None, {"image": np.ascontiguousarray(x[..., a0:a1, b0:b1])})[0]
                hidden = np.ascontiguousarray(hidden[..., lr0 - a0:lr1 - a0, lc0 - b0:lc1 - b0])
                region = np.ascontiguousarray(x[..., lr0:lr1, lc0:lc1])
                box = box_of(lr0, lr1, lc0, lc1, h, w)
                tbox = (2 * c / ow - 1, 2 * r / oh - 1, 2 * c1 / ow - 1, 2 * r1 / oh - 1)
                coords = pixel_centers(r1 - r, c1 - c, tbox).reshape(1, -1, 2)
                out = np.empty((x.shape[1], coords.shape[1]), np.float32)
                for s in range(0, coords.shape[1], self.chunk):  # query_chunked
                    rgb = qry.run(None, {"hidden": hidden, "image": region, "coords": coords[:, s:s + self.chunk],
                                         "cell": cell, "box": box})[0]
                    out[:, s:s + rgb.shape[1]] = rgb[0].T
                yield r, r1, c, c1, out.reshape(-1, r1 - r, c1 - c)

    def _finish(self, y: np.ndarray, image: np.ndarray, alpha_rows=None) -> np.ndarray:
        """(C, H', W') model output -> (H', W', c) in the input's channels (pretrained._upscale /
        drawing._upscale); ``alpha_rows`` the bicubic alpha of these rows (pretrained with alpha)."""
        c = image.shape[2]
        if self.onnx_method == "drawing":
            return from_premultiplied(y, c)
        rgb = y.transpose(1, 2, 0)
        out = rgb if c >= 3 else rgb.mean(axis=2, keepdims=True)
        if alpha_rows is not None:
            out = np.concatenate([out, alpha_rows[:, :, None]], axis=2)
        return out

    def _alpha(self, image, size, rows=None):
        if self.onnx_method == "drawing" or image.shape[2] not in (2, 4):
            return None
        return imresize(image[:, :, -1].astype(np.float64), size, rows).astype(np.float32)

    def upscale(self, image: np.ndarray, size: tuple[int, int], *,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """``image`` (h, w, c) floats in [0, 1] drawn at ``size`` (H', W'): float32, clipped."""
        image, size = _check(image, size)
        self.check_memory(image.shape, size)
        x = self._model_input(image)
        y = np.empty((x.shape[1], *size), np.float32)
        n = -(-size[0] // self.tile) * -(-size[1] // self.tile)
        for k, (r, r1, c, c1, rgb) in enumerate(self.tiles(x, size, self.tile)):
            y[:, r:r1, c:c1] = rgb
            if progress is not None:
                progress(Progress(step=k + 1, total=n, stage="render"))
        out = self._finish(y, image, self._alpha(image, size))
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    def upscale_rows(self, image: np.ndarray, size: tuple[int, int], *, bit_depth: int = 8,
                     progress: ProgressCallback | None = None):
        """``upscale`` a row of tiles at a time, quantized (``coordsr.stream.Rows``)."""
        from coordsr.stream import Rows

        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
        image, size = _check(image, size)
        self.check_memory(image.shape, size, streamed=True)
        return Rows(size[0], size[1], image.shape[2], np.dtype(np.uint16 if bit_depth == 16 else np.uint8),
                    self._rows(image, size, bit_depth, progress))

    def _rows(self, image, size, bit_depth, progress):
        from coordsr.images import quantize

        x = self._model_input(image)
        tile = min(self.tile, STREAM_TILE)
        (H, W), c = size, image.shape[2]
        n = -(-H // tile) * -(-W // tile)
        band, alpha, top = None, None, 0
        for k, (r, r1, c0, c1, y) in enumerate(self.tiles(x, size, tile)):
            if band is not None and r != top:
                yield top, band
                band = None
            if band is None:
                band, top = np.empty((r1 - r, W, c), np.uint16 if bit_depth == 16 else np.uint8), r
                alpha = self._alpha(image, size, (r, r1))
            out = self._finish(y, image, None if alpha is None else alpha[:, c0:c1])
            band[:, c0:c1] = quantize(np.clip(out, 0.0, 1.0), bit_depth)
            if progress is not None:
                progress(Progress(step=k + 1, total=n, stage="render"))
        yield top, band


def _check(image: np.ndarray, size) -> tuple[np.ndarray, tuple[int, int]]:
    """``coordsr.methods.base.check_image`` and ``check_size``."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"expected an (H, W, C) image with C in 1..4, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {image.shape[1]}x{image.shape[0]}")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"output size must be at least 1x1, got {w}x{h}")
    return np.ascontiguousarray(image, dtype=np.float32), (h, w)




def _gpu_present() -> bool:
    """An NVIDIA driver on this machine: ``--device auto`` would run torch on CUDA there."""
    return os.path.exists("/proc/driver/nvidia/version")


def onnx_upscaler(method: str, settings: dict[str, str], device: str, backend: str) -> OnnxUpscaler | None:
    """The onnx upscaler for ``method`` with the CLI's string ``settings``, or None where
    ``backend`` 'auto' should use torch; ValueError saying why with ``backend`` 'onnx'."""
    if backend not in BACKENDS:
        raise ValueError(f"expected one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return None
    try:
        return _onnx_upscaler(method, settings, device, auto=backend == "auto")
    except (ValueError, CoordsrError):
        if backend == "auto":
            return None
        raise


def _onnx_upscaler(method: str, settings: dict[str, str], device: str, *, auto: bool) -> OnnxUpscaler:
    if method not in SHIPPED:
        raise ValueError(f"method {method} has no ONNX export; the onnx backend runs {', '.join(SHIPPED)}")
    if not available():
        raise ValueError("onnxruntime is not installed (pip install 'coordsr[onnx]')")
    if device not in ("auto", "cpu") or (auto and device == "auto" and _gpu_present()):
        raise ValueError(f"device {device}: the onnx backend runs on the CPU (--device cpu)")
    kwargs: dict = {}
    for key, value in settings.items():
        if key not in OnnxUpscaler.SETTINGS:
            raise ValueError(f"setting {key} is for the torch backend (the onnx backend takes "
                             f"{', '.join(OnnxUpscaler.SETTINGS)})")
        if key in ("tile", "chunk", "ensemble"):
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"setting {key}: expected int, got {value!r}") from None
            if key == "ensemble":
                if number != 1:
                    raise ValueError("ensemble > 1 runs on the torch backend")
                continue
            kwargs[key] = number
        elif key == "precision":
            if value not in ("auto", "fp32"):
                raise ValueError(f"precision {value} runs on the torch backend (onnx is fp32)")
        else:
            kwargs[key] = value
    upscaler = OnnxUpscaler(method, **kwargs)
    problem = export_problem(upscaler.weights_path())
    if problem:
        raise ValueError(problem)
    return upscaler


__all__ = ["BACKENDS", "OnnxUpscaler", "available", "export_problem", "onnx_upscaler", "pixel_centers", "cell_size"]
