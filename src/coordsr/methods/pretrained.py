"""The trained local implicit model behind the upscaler interface (issue #6)."""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from coordsr.errors import FieldFileError
from coordsr.methods.base import Upscaler, need, resolve_device, shipped_weights_file
from coordsr.precision import check_precision, resolve_precision
from coordsr.progress import Progress
from coordsr.resize import imresize
from coordsr.zeroshot.ops import ENSEMBLE_ORDER, ENSEMBLES  # shared with the denoisers' self-ensemble

SHIPPED = "pretrained.safetensors"


STREAM_TILE = 512
"""Largest output tile of a streamed output. With the 64 x 16 encoder a 1024 tile's working set
(the encoder on 512 + 2 x 38 LR pixels a side) took a 4000x3000 x2 .tif to 2.5 GB peak; 512
tiles took it to 1.0 GB for 20% more time (2026-11-29). Tiled results equal untiled ones."""


def shipped_weights() -> str:
    """Path of the weights shipped inside the package."""
    return shipped_weights_file(SHIPPED)


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    from coordsr.liif.model import load_weights

    return load_weights(path, device=torch.device(device))


@dataclass
class pretrained(Upscaler):
    """Trained local implicit model (LIIF-style, shipped weights): one network for any scale."""

    family: ClassVar[str] = "pretrained"
    shipped: ClassVar[str] = SHIPPED
    """The weights file shipped inside the package (``coordsr/weights/``) that ``weights`` None means."""

    weights: str | None = None
    """Weights file (safetensors from ``coordsr.liif.train``); None: the ones shipped with coordsr."""
    tile: int = 1024
    """Output tile side in pixels: each tile encodes only the LR region it needs (bounded memory)."""
    chunk: int = 16384
    """Queries per MLP call."""
    precision: str = "auto"
    """Compute precision: 'auto' (bfloat16 where this machine runs it faster: its measured
    change is below 0.05 dB, BENCHMARKS.md "Precision"), 'fp32' or 'bf16'."""

    ensemble: int = 1
    """Geometric self-ensemble (EDSR's x8): average the outputs of 1, 2, 4 or 8 flipped and
    rotated copies of the input (mirror first, then the 180 degree turns, then the 90 degree
    ones), each mapped back. Costs that many passes; BENCHMARKS.md "Self-ensemble" has its gain."""

    streams: ClassVar[bool] = True
    auto_bf16: ClassVar[bool] = True
    """Whether 'auto' may pick bfloat16 (measured: Set5 x2-x4 change below 0.05 dB)."""

    def validate(self) -> None:
        check_precision(self.precision)
        need(self.ensemble in ENSEMBLES, "ensemble", self.ensemble, f"one of {', '.join(map(str, ENSEMBLES))}")
        need(self.tile >= 1, "tile", self.tile, "at least 1")
        need(self.chunk >= 1, "chunk", self.chunk, "at least 1")
        if self.weights is not None and not Path(self.weights).is_file():
            raise FieldFileError(f"{self.weights}: no such weights file")

    def peak_bytes(self, in_shape, size):
        """The RGB output (torch) and its numpy copies (grey, alpha: a bicubic channel and its
        float64 operators), the input copy, and one tile's work: the encoder on the tile's LR
        region (a few feature maps) and one chunk of queries (4 neighbours, a few activations of
        the 64-wide MLP each)."""
        (h, w, c), (H, W) = in_shape, size
        t = min(self.tile, H), min(self.tile, W)
        model = _load(self.weights_path(), "cpu")  # cached: the model it will run
        pad = 2 * (3 + model.margin)  # the query halo and the receptive field, both sides
        region = min(h, t[0] * h // H + pad) * min(w, t[1] * w // W + pad)
        encoder = 4 * 4 * max(model.cfg.channels, model.cfg.hidden) * region
        queries = 4 * 4 * min(self.chunk, t[0] * t[1]) * 4 * 64 + 4 * 3 * t[0] * t[1] * 2
        alpha = (8 + 4) * H * W + 8 * (H * h + W * w) if c in (2, 4) else 0
        ensemble = (4 * 3 * H * W + 2 * 4 * 3 * h * w) if self.ensemble > 1 else 0  # the sum, turned inputs
        return (super().peak_bytes(in_shape, size) + 4 * 3 * H * W + 4 * c * H * W + alpha
                + 4 * 3 * h * w + encoder + queries + ensemble)

    def stream_peak_bytes(self, in_shape, size):
        """The input and its colour copy, one tile's work (as ``peak_bytes``), one row of tiles
        quantized, and for alpha the band's rows of the bicubic alpha."""
        if self.ensemble > 1:  # the ensemble's passes each need the whole output: not streamed
            return self.peak_bytes(in_shape, size)
        (h, w, c), (H, W) = in_shape, size
        tile = min(self.tile, STREAM_TILE)
        rows = min(tile, H)
        full = replace(self, tile=tile).peak_bytes(in_shape, size)
        outputs = super().peak_bytes(in_shape, size) + 4 * 3 * H * W + 4 * c * H * W
        alpha = (8 + 4) * H * W + 8 * (H * h + W * w) if c in (2, 4) else 0
        return full - outputs - alpha + rows * W * 2 * c + (8 * 3 * rows * (w + W) if c in (2, 4) else 0)

    def weights_path(self) -> str:
        """The weights this instance runs: ``weights``, or the package's own ``shipped`` file."""
        return self.weights or shipped_weights_file(self.shipped)

    def _prepare(self, image):
        """(model, LR colour tensor (1, 3, h, w), compute dtype) for ``image`` (h, w, c)."""
        device = resolve_device(self.device)
        model = _load(self.weights_path(), str(device))
        c = image.shape[2]
        colour = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[None].to(device)
        return model, x, resolve_precision(self.precision, device, allow_auto_bf16=self.auto_bf16)

    def _upscale(self, image, size, progress):
        from coordsr.liif.model import upscale
        from coordsr.zeroshot.ops import dihedral, dihedral_size, undihedral

        model, x, compute = self._prepare(image)
        c = image.shape[2]
        turns = ENSEMBLE_ORDER[:self.ensemble]
        total = None
        for i, k in enumerate(turns):
            y = x.new_empty(1, 3, *dihedral_size(size, k))
            xk = dihedral(x, k)

            def on_tile(done: int, n: int) -> None:
                if progress is not None:  # the preview shows the tiles done over bicubic (first pass)
                    preview = (lambda: partial_preview(y, xk, done, self.tile)) if i == 0 else None
                    progress(Progress(step=i * n + done, total=len(turns) * n, stage="render", preview=preview))

            upscale(model, xk, y.shape[-2:], tile=self.tile, chunk=self.chunk, on_tile=on_tile,
                    compute_dtype=compute, out=y)
            y = undihedral(y, k)
            total = y.contiguous() if total is None else total.add_(y)
        y = total / len(turns) if len(turns) > 1 else total
        rgb = y[0].permute(1, 2, 0).cpu().numpy()
        out = rgb if c >= 3 else rgb.mean(axis=2, keepdims=True)
        if c in (2, 4):  # alpha: plain bicubic, it has no texture to learn
            a = torch.from_numpy(np.ascontiguousarray(image[:, :, -1])).double()
            h, w = image.shape[:2]
            alpha = imresize(a, size, scale=(size[0] / h, size[1] / w)).float().numpy()
            out = np.concatenate([out, alpha[:, :, None]], axis=2)
        return out

    def _upscale_rows(self, image, size, bit_depth, progress):
        """A row of output tiles at a time: the same tiles, colour reduction, alpha and
        quantization as ``upscale`` followed by ``write_image``."""
        from coordsr.images import quantize
        from coordsr.liif.model import upscale_tiles
        from coordsr.resize import imresize_rows

        if self.ensemble > 1:  # each pass needs the whole output: compute it, then hand it over
            yield from Upscaler._upscale_rows(self, image, size, bit_depth, progress)
            return
        model, x, compute = self._prepare(image)
        c = image.shape[2]
        tile = min(self.tile, STREAM_TILE)  # bounded memory is the point of streaming
        (H, W), n = size, -(-size[0] // tile) * -(-size[1] // tile)
        a = torch.from_numpy(np.ascontiguousarray(image[:, :, -1])).double() if c in (2, 4) else None

        band, alpha, top = None, None, 0
        for k, (r, r1, c0, c1, rgb) in enumerate(upscale_tiles(model, x, size, tile=tile, chunk=self.chunk,
                                                               compute_dtype=compute)):
            if band is not None and r != top:
                yield top, band
                band = None
            if band is None:  # quantized: a float32 band would be 4x larger, and its clip and rounding more
                band, top = np.empty((r1 - r, W, c), np.uint16 if bit_depth == 16 else np.uint8), r
                if a is not None:  # the band's rows of the bicubic alpha, from the kernels' taps alone
                    alpha = imresize_rows(a, size, (r, r1)).float().numpy()
            out = rgb[0].permute(1, 2, 0).cpu().numpy()
            out = out if c >= 3 else out.mean(axis=2, keepdims=True)
            if a is not None:
                out = np.concatenate([out, alpha[:, c0:c1, None]], axis=2)
            band[:, c0:c1] = quantize(np.clip(out, 0.0, 1.0), bit_depth)
            if progress is not None:
                progress(Progress(step=k + 1, total=n, stage="render"))
        yield top, band


def partial_preview(out: torch.Tensor, lr: torch.Tensor, done: int, tile: int, max_side: int = 256) -> np.ndarray:
    """An output being filled tile by tile (``done`` tiles of side ``tile``, row-major), shrunk
    to at most ``max_side`` pixels (nearest samples), with bicubic of ``lr`` where no tile is yet:
    (h', w', 3) floats, the live view of a running job."""
    H, W = out.shape[-2:]
    k = max(H, W) / max_side
    ph, pw = (H, W) if k <= 1 else (max(1, round(H / k)), max(1, round(W / k)))
    rows = ((np.arange(ph) + 0.5) * H / ph).astype(np.int64)  # the output pixel each preview pixel shows
    cols = ((np.arange(pw) + 0.5) * W / pw).astype(np.int64)
    r, c = torch.from_numpy(rows).to(out.device), torch.from_numpy(cols).to(out.device)
    shown = out[0][:, r][:, :, c].float()
    h, w = lr.shape[-2:]
    base = imresize(lr[0].double(), (ph, pw), scale=(ph / h, pw / w)).float()
    tiles_across = -(-W // tile)
    index = torch.from_numpy((rows // tile)[:, None] * tiles_across + (cols // tile)[None, :]).to(out.device)
    picture = torch.where(index < done, shown, base)  # (3, ph, pw)
    return picture.clamp(0, 1).permute(1, 2, 0).cpu().numpy()
