"""Classical interpolation behind the upscaler interface: the baselines every method must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from coordsr.methods.base import Upscaler
from coordsr.resize import imresize, imresize_bytes


def _resize_bytes(in_shape: tuple[int, int, int], size: tuple[int, int], kernel: str) -> int:
    """Peak of ``_resize_hwc``: the float64 input, the resize's own working set (banded: the
    half-way image, the output and one block of taps, ``imresize_bytes``), the float32 result."""
    (h, w, c), (H, W) = in_shape, size
    return 8 * c * h * w + imresize_bytes((c, h, w), size, kernel=kernel) + 4 * c * H * W


def _resize_hwc(image: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    x = torch.from_numpy(image).permute(2, 0, 1).double()
    h, w = image.shape[:2]
    y = imresize(x, size, scale=(size[0] / h, size[1] / w), kernel=kernel, antialias=True)
    return y.permute(1, 2, 0).float().numpy()


@dataclass
class Resampler(Upscaler):
    """Base of the kernel interpolations: their memory is the resize's."""

    kernel: ClassVar[str] = "cubic"

    def peak_bytes(self, in_shape, size):
        return super().peak_bytes(in_shape, size) + _resize_bytes(in_shape, size, self.kernel)

    def _upscale(self, image, size, progress):
        return _resize_hwc(image, size, self.kernel)


@dataclass
class nearest(Upscaler):
    """Nearest neighbour: each output pixel copies the input pixel whose cell holds its centre."""

    def peak_bytes(self, in_shape, size):
        """The output and its clipped copy, and the rows-gathered intermediate (H, w, c)."""
        (h, w, c), (H, W) = in_shape, size
        return super().peak_bytes(in_shape, size) + 4 * c * H * w

    def _upscale(self, image, size, progress):
        h, w = image.shape[:2]
        rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
        cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
        return image[rows][:, cols]


@dataclass
class bilinear(Resampler):
    """Bilinear interpolation (MATLAB's triangle kernel, antialiased when shrinking)."""

    kernel: ClassVar[str] = "triangle"


@dataclass
class bicubic(Resampler):
    """MATLAB-style bicubic (Keys a=-0.5, antialiased): the benchmark's reference baseline."""

    kernel: ClassVar[str] = "cubic"


@dataclass
class lanczos(Resampler):
    """Lanczos-3 interpolation: sharper than bicubic, with more ringing."""

    kernel: ClassVar[str] = "lanczos3"
