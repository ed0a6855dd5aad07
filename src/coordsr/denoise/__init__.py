"""Denoising, a task of coordsr (issue 14): the protocol, ZS-N2N, the trained denoiser, the benchmark.

The denoisers themselves are registry entries (``coordsr.methods.denoisers``, ``task = 'denoise'``);
this package holds what they and the benchmark share:

    protocol.py   noise, seeds, the RGB PSNR and the sigma estimate (the field's convention)
    zsn2n.py      Zero-Shot Noise2Noise: the network, its pair downsampler and loss
    net.py        the trained denoiser's network (the `trained` method) and its weights files
    train.py      its training (`coordsr train-denoiser`): batches, checkpoints, resume
    bench.py      the denoising benchmark, with the field denoiser's oracle stop

One call does what ``coordsr denoise`` does:

>>> import numpy as np
>>> out = denoise(np.full((16, 16, 3), 0.5), sigma=10, method="tv")
>>> out.shape
(16, 16, 3)
"""

from __future__ import annotations

import numpy as np


def denoise(image: np.ndarray, sigma: float | None = None, method: str | None = None, **settings) -> np.ndarray:
    """Denoise ``image`` (H, W, C) with the registered denoiser ``method`` (default: the registry's);
    ``sigma`` in 8-bit levels, None to estimate it from the image."""
    from coordsr.methods import DEFAULT_DENOISER, get_method

    cls = get_method(method or DEFAULT_DENOISER)
    if getattr(cls, "task", "upscale") != "denoise":
        raise ValueError(f"method {method!r} is not a denoiser")
    return cls(**settings).denoise(image, sigma)


__all__ = ["denoise"]
