"""The `drawing` upscaler: its alpha handling (premultiplied, no colour from transparent pixels),
its channels and streamed rows, and the demo's bundled icon."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coordsr.drawings.train import unpremultiply
from coordsr.methods.drawing import drawing, from_premultiplied, to_premultiplied


def test_premultiplied_round_trip():
    rng = np.random.default_rng(0)
    img = rng.random((5, 6, 4)).astype(np.float32)
    x = torch.from_numpy(to_premultiplied(img))
    assert np.allclose(from_premultiplied(x, 4), img, atol=1e-5)
    grey = img[:, :, :1]
    assert np.allclose(from_premultiplied(torch.from_numpy(to_premultiplied(grey)), 1), grey, atol=1e-6)
    # colour under alpha 0 is gone, and a premultiplied colour above its alpha is clipped to it
    bad = torch.tensor([0.9, 0.2, 0.0, 0.0, 0.9, 0.2, 0.0, 0.5]).reshape(2, 4).t().reshape(4, 1, 2)
    out = from_premultiplied(bad, 4)
    assert out[0, 0].tolist() == [0, 0, 0, 0]
    assert np.allclose(out[0, 1], [1.0, 0.4, 0.0, 0.5])
    assert torch.allclose(unpremultiply(bad[None])[0].permute(1, 2, 0), torch.from_numpy(out).float())


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_drawing_keeps_the_input_channels(channels):
    img = np.random.default_rng(1).random((12, 10, channels)).astype(np.float32)
    out = drawing(precision="fp32").upscale(img, (48, 40))
    assert out.shape == (48, 40, channels)
    rows = drawing(precision="fp32", tile=16).upscale_rows(img, (48, 40))
    bands = np.concatenate([b for _, b in rows.bands])
    assert np.abs(bands.astype(np.float64) / 255 - out).max() <= 1 / 255 + 1e-6  # tiles equal the whole


def test_fully_transparent_colour_does_not_bleed():
    """Two inputs that differ only in the colour under alpha 0 give the same picture."""
    img = np.zeros((16, 16, 4), np.float32)
    img[4:12, 4:12] = [0.2, 0.6, 0.1, 1.0]
    other = img.copy()
    other[img[:, :, 3] == 0, :3] = [1.0, 0.0, 1.0]  # magenta under transparency
    a = drawing(precision="fp32").upscale(img, (64, 64))
    b = drawing(precision="fp32").upscale(other, (64, 64))
    assert np.array_equal(a, b)


def test_demo_icon_is_bundled_and_matches():
    from coordsr.samples import demo_icon

    small, large = demo_icon()
    assert small.shape == (32, 32, 4) and large.shape == (512, 512, 4)
    assert 0 < small[:, :, 3].mean() < 1  # a transparent background
