"""The trained local implicit model behind the upscaler interface (issue #6)."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from coordsr.errors import FieldFileError
from coordsr.methods.base import Upscaler, resolve_device
from coordsr.precision import check_precision, resolve_precision
from coordsr.progress import Progress
from coordsr.resize import imresize

SHIPPED = "pretrained.safetensors"


def shipped_weights() -> str:
    """Path of the weights shipped inside the package."""
    ref = importlib.resources.files("coordsr") / "weights" / SHIPPED
    if not ref.is_file():
        raise FieldFileError(f"{ref}: shipped weights missing (reinstall coordsr)")
    return str(ref)


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    from coordsr.liif.model import load_weights

    return load_weights(path, device=torch.device(device))


@dataclass
class pretrained(Upscaler):
    """Trained local implicit model (LIIF-style, shipped weights): one network for any scale."""

    family: ClassVar[str] = "pretrained"

    weights: str | None = None
    """Weights file (safetensors from ``coordsr.liif.train``); None: the ones shipped with coordsr."""
    tile: int = 1024
    """Output tile side in pixels: each tile encodes only the LR region it needs (bounded memory)."""
    chunk: int = 16384
    """Queries per MLP call."""
    precision: str = "auto"
    """Compute precision: 'auto' (bfloat16 where this machine runs it faster: its measured
    change is below 0.05 dB, BENCHMARKS.md "Precision"), 'fp32' or 'bf16'."""

    auto_bf16: ClassVar[bool] = True
    """Whether 'auto' may pick bfloat16 (measured: Set5 x2-x4 change below 0.05 dB)."""

    def __post_init__(self):
        check_precision(self.precision)

    def _upscale(self, image, size, progress):
        from coordsr.liif.model import upscale

        device = resolve_device(self.device)
        model = _load(self.weights or shipped_weights(), str(device))
        c = image.shape[2]
        colour = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[None].to(device)

        def on_tile(k: int, n: int) -> None:
            if progress is not None:
                progress(Progress(step=k, total=n, stage="render"))

        compute = resolve_precision(self.precision, device, allow_auto_bf16=self.auto_bf16)
        y = upscale(model, x, size, tile=self.tile, chunk=self.chunk, on_tile=on_tile, compute_dtype=compute)
        rgb = y[0].permute(1, 2, 0).cpu().numpy()
        out = rgb if c >= 3 else rgb.mean(axis=2, keepdims=True)
        if c in (2, 4):  # alpha: plain bicubic, it has no texture to learn
            a = torch.from_numpy(np.ascontiguousarray(image[:, :, -1])).double()
            h, w = image.shape[:2]
            alpha = imresize(a, size, scale=(size[0] / h, size[1] / w)).float().numpy()
            out = np.concatenate([out, alpha[:, :, None]], axis=2)
        return out
