"""How far an upscaler departs from linear interpolation between the input's pixel centres.

Along every segment between two adjacent input pixel centres (horizontal and vertical), the
drawn image is compared with the straight line through its own values at the two ends: a
bilinear upscaler departs by zero, bicubic by a cubic's bulge, a network by whatever it adds
between samples. The image is given drawn at an integer scale s (any method, or the HR truth),
so every method, a field or not, is measured on the same dense samples; for even s the input
centres fall between dense pixels and their values (the line's ends) are interpolated linearly
from the two neighbours, which is exact for a linear image.

Departures are in 8-bit levels (x 255) of the luma.
"""

from __future__ import annotations

import numpy as np

from coordsr.analysis.common import center_index, luma, sample_at


def _segments(dense: np.ndarray, h: int, w: int, scale: int) -> np.ndarray:
    """Departures along the horizontal segments: (h, w - 1, K), K dense samples inside each."""
    rows = sample_at(dense, center_index(np.arange(h), scale), axis=0)  # (h, W): rows at the centres
    ends = sample_at(rows, center_index(np.arange(w), scale), axis=1)  # (h, w): values at the centres
    first = center_index(0, scale)
    offsets = np.arange(scale + 1) + (np.ceil(first) - first)  # dense index - left end, whole indices
    offsets = offsets[(offsets > 1e-9) & (offsets < scale - 1e-9)]  # strictly inside the segment
    t = offsets / scale  # (K,) fraction of the way along
    idx = (center_index(np.arange(w - 1), scale)[:, None] + offsets[None, :]).round().astype(int)  # (w-1, K)
    inside = rows[:, idx]  # (h, w - 1, K)
    line = (1 - t) * ends[:, :-1, None] + t * ends[:, 1:, None]
    return inside - line


def departure(image: np.ndarray, scale: int) -> dict:
    """Departure from linearity of ``image``, an input of h x w drawn at ``scale`` (s h x s w).

    Returns ``horizontal`` (h, w - 1) and ``vertical`` (h - 1, w) per-segment RMS departures,
    ``map`` (h - 1, w - 1), the mean over the four segments around each square of four
    centres, and the summary numbers: ``rms``, ``mean_abs``, ``p95``, ``max`` over all samples
    (8-bit levels) and ``relative``, the RMS departure over the RMS step between the ends.

    >>> ramp = np.add.outer(np.arange(8.0), np.arange(12.0)) / 40  # a linear image at scale 4
    >>> departure(ramp, 4)["rms"] < 1e-9
    True
    """
    y = luma(image)
    scale = int(scale)
    if scale < 2:
        raise ValueError(f"the image must be drawn at scale 2 or more, got {scale}")
    if y.shape[0] % scale or y.shape[1] % scale:
        raise ValueError(f"image of {y.shape[1]}x{y.shape[0]} is not a whole multiple of scale {scale}")
    h, w = y.shape[0] // scale, y.shape[1] // scale
    if h < 2 or w < 2:
        raise ValueError(f"need an input of at least 2x2 pixels, got {w}x{h}")
    dh = 255.0 * _segments(y, h, w, scale)  # (h, w-1, K)
    dv = 255.0 * _segments(y.T, w, h, scale).transpose(1, 0, 2)  # (h-1, w, K)
    horiz, vert = np.sqrt((dh ** 2).mean(-1)), np.sqrt((dv ** 2).mean(-1))
    quad = (horiz[:-1] + horiz[1:] + vert[:, :-1] + vert[:, 1:]) / 4  # (h-1, w-1)
    every = np.concatenate((dh.ravel(), dv.ravel()))
    ends = sample_at(sample_at(y, center_index(np.arange(h), scale), 0), center_index(np.arange(w), scale), 1)
    steps = 255.0 * np.concatenate((np.diff(ends, axis=1).ravel(), np.diff(ends, axis=0).ravel()))
    rms = float(np.sqrt(np.mean(every ** 2)))
    return {"horizontal": horiz, "vertical": vert, "map": quad, "rms": rms,
            "mean_abs": float(np.mean(np.abs(every))), "p95": float(np.percentile(np.abs(every), 95)),
            "max": float(np.max(np.abs(every))),
            "relative": rms / max(float(np.sqrt(np.mean(steps ** 2))), 1e-12)}
