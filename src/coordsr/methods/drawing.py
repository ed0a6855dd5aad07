"""The trained drawing model behind the upscaler interface: icons, emoji, logos, drawings.

The local implicit model of ``pretrained`` with four channels, trained by
``coordsr.drawings.train`` on real pairs of small and large drawings and procedural vector
scenes, any scale from x2 to x32 (MODEL.md, "The drawing model"). Colour and alpha are
predicted together, premultiplied: a fully transparent input pixel contributes no colour, so
nothing hidden under alpha 0 bleeds into an edge. Inputs without alpha run as opaque RGBA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from coordsr.methods.base import resolve_device
from coordsr.methods.pretrained import STREAM_TILE, _load, pretrained
from coordsr.precision import resolve_precision
from coordsr.progress import Progress

SHIPPED = "drawing.safetensors"


def to_premultiplied(image: np.ndarray) -> np.ndarray:
    """(h, w, c) straight-alpha floats, c in 1..4 -> (4, h, w) premultiplied RGBA float32."""
    c = image.shape[2]
    rgb = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    a = image[:, :, -1:] if c in (2, 4) else np.ones_like(image[:, :, :1])
    return np.ascontiguousarray(np.concatenate([rgb * a, a], axis=2).transpose(2, 0, 1), dtype=np.float32)


def from_premultiplied(x: torch.Tensor, channels: int) -> np.ndarray:
    """(4, H, W) predicted premultiplied RGBA -> (H, W, channels) straight alpha in [0, 1]
    (``coordsr.drawings.data.unpremultiply``); an opaque input's colour is the prediction itself,
    clipped; grey outputs are the mean of the colour; no alpha when the input had none."""
    from coordsr.drawings.data import unpremultiply

    straight = x[:3].clamp(0, 1) if channels in (1, 3) else unpremultiply(x)
    out = straight[:3].permute(1, 2, 0).cpu().numpy()
    if channels <= 2:
        out = out.mean(axis=2, keepdims=True)
    if channels in (2, 4):
        out = np.concatenate([out, straight[3].cpu().numpy()[:, :, None]], axis=2)
    return out


@dataclass
class drawing(pretrained):
    """Trained model for drawings, icons and logos (transparency kept): one network for x2 to x32."""

    family: ClassVar[str] = "pretrained"
    shipped: ClassVar[str] = SHIPPED

    def peak_bytes(self, in_shape, size):
        """``pretrained``'s estimate with four channels throughout (alpha is part of the model)."""
        (h, w, c), (H, W) = in_shape, size
        return super().peak_bytes((h, w, 3), size) + 4 * 4 * H * W + 4 * 4 * h * w

    def stream_peak_bytes(self, in_shape, size):
        (h, w, c), (H, W) = in_shape, size
        return super().stream_peak_bytes((h, w, 3), size) + 4 * h * w * 4

    def _prepare(self, image):
        device = resolve_device(self.device)
        model = _load(self.weights_path(), str(device))
        x = torch.from_numpy(to_premultiplied(image))[None].to(device)
        return model, x, resolve_precision(self.precision, device, allow_auto_bf16=self.auto_bf16)

    def _upscale(self, image, size, progress):
        from coordsr.liif.model import upscale
        from coordsr.zeroshot.ops import ENSEMBLE_ORDER, dihedral, dihedral_size, undihedral

        model, x, compute = self._prepare(image)
        turns = ENSEMBLE_ORDER[:self.ensemble]
        total = None
        for i, k in enumerate(turns):
            y = x.new_empty(1, 4, *dihedral_size(size, k))

            def on_tile(done: int, n: int) -> None:
                if progress is not None:
                    progress(Progress(step=i * n + done, total=len(turns) * n, stage="render"))

            upscale(model, dihedral(x, k), y.shape[-2:], tile=self.tile, chunk=self.chunk, on_tile=on_tile,
                    compute_dtype=compute, out=y)
            y = undihedral(y, k)
            total = y.contiguous() if total is None else total.add_(y)
        y = total / len(turns) if len(turns) > 1 else total
        return from_premultiplied(y[0], image.shape[2])

    def _upscale_rows(self, image, size, bit_depth, progress):
        """A row of output tiles at a time, each un-premultiplied and quantized as ``upscale``
        followed by ``write_image`` would."""
        from coordsr.images import quantize
        from coordsr.liif.model import upscale_tiles
        from coordsr.methods.base import Upscaler

        if self.ensemble > 1:
            yield from Upscaler._upscale_rows(self, image, size, bit_depth, progress)
            return
        model, x, compute = self._prepare(image)
        c = image.shape[2]
        tile = min(self.tile, STREAM_TILE)
        (H, W), n = size, -(-size[0] // tile) * -(-size[1] // tile)
        band, top = None, 0
        for k, (r, r1, c0, c1, y) in enumerate(upscale_tiles(model, x, size, tile=tile, chunk=self.chunk,
                                                             compute_dtype=compute)):
            if band is not None and r != top:
                yield top, band
                band = None
            if band is None:
                band, top = np.empty((r1 - r, W, c), np.uint16 if bit_depth == 16 else np.uint8), r
            band[:, c0:c1] = quantize(np.clip(from_premultiplied(y[0], c), 0.0, 1.0), bit_depth)
            if progress is not None:
                progress(Progress(step=k + 1, total=n, stage="render"))
        yield top, band
