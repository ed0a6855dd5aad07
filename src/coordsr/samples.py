"""Sample images for the demo and the tests: files shipped inside the scikit-image wheel.

Each name is a loader in `skimage.data` whose file is bundled with scikit-image, so loading one
reads a local file and never downloads (images such as `eagle` need pooch and a network: not here).
"""

from __future__ import annotations

import numpy as np
import skimage.data

SAMPLES = {  # name -> (H, W, C) of the image it loads
    "astronaut": (512, 512, 3),
    "camera": (512, 512, 1),
    "chelsea": (300, 451, 3),
    "coffee": (400, 600, 3),
    "logo": (500, 500, 4),
    "rocket": (427, 640, 3),
}
DEMO = "chelsea"  # a colour photo, not square, small enough for a quick fit


def sample_names() -> list[str]:
    """The names `load_sample` accepts."""
    return list(SAMPLES)


def load_sample(name: str) -> np.ndarray:
    """A bundled image as (H, W, C) float32 in [0, 1]; a fresh array on every call."""
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}, valid names: {', '.join(SAMPLES)}")
    arr = getattr(skimage.data, name)()  # (H, W[, C]) uint8
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr.astype(np.float32) / 255


def demo_image() -> np.ndarray:
    """The default image of `coordsr demo`: a colour photo, (300, 451, 3) float32 in [0, 1]."""
    return load_sample(DEMO)


def demo_icon() -> tuple[np.ndarray, np.ndarray]:
    """The demo's drawing: a 32 px emoji and its designers' own 512 px drawing, (32, 32, 4) and
    (512, 512, 4) float32 RGBA in [0, 1] (shipped in ``coordsr/data``, Apache-2.0: NOTICE.md)."""
    import importlib.resources

    from PIL import Image

    def read(name: str) -> np.ndarray:
        with importlib.resources.as_file(importlib.resources.files("coordsr") / "data" / name) as path:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGBA")).astype(np.float32) / 255

    return read("frog_32.png"), read("frog_512.png")
