"""The one interface every upscaler has (DESIGN.md section 3).

An upscaler is a dataclass: its fields are its settings (with defaults that reproduce the
method's published or measured best), its docstring's first line is the one-line
description shown by ``coordsr methods``, and ``upscale`` does the work:

    image (H, W, C) float32 in [0, 1], C in 1..4  +  output size (H', W')  ->  (H', W', C) image

Methods that fit a field also offer ``fit(image, size) -> Field``, so the field can be saved and
rendered later; for them ``upscale`` is ``fit`` then ``render``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from coordsr.progress import ProgressCallback


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate the common input contract and return the image as float32 (H, W, C)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"expected an (H, W, C) image with C in 1..4, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image, dtype=np.float32)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"output size must be at least 1x1, got {w}x{h}")
    return h, w


@dataclass
class Upscaler:
    """Base class: subclasses set ``family`` and implement ``_upscale``."""

    task: ClassVar[str] = "upscale"
    """What the method does: 'upscale' or 'denoise' (the one registry holds both, methods/denoisers.py)."""
    family: ClassVar[str] = "interpolation"
    """One of 'interpolation', 'per-image', 'zero-shot', 'pretrained'."""
    fits_field: ClassVar[bool] = False
    """True when the method has ``fit(image, size) -> Field``."""

    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."""

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]

    def upscale(self, image: np.ndarray, size: tuple[int, int], *,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """Return ``image`` drawn at ``size`` (H', W'), float32 in [0, 1]."""
        from coordsr.render import check_fits_in_memory

        image = check_image(image)
        size = check_size(size)
        check_fits_in_memory(size[0], size[1], image.shape[2])  # refuse before any work is done
        out = self._upscale(image, size, progress)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    def _upscale(self, image: np.ndarray, size: tuple[int, int],
                 progress: ProgressCallback | None) -> np.ndarray:
        raise NotImplementedError


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
