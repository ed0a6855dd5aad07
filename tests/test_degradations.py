"""The degradations of the blind model's training and of the degraded benchmark, pinned on known inputs."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr import degradations as G
from coordsr.resize import imresize


def ramp(h=32, w=32):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])


def test_gaussian_kernel_is_normalised_and_separable_when_isotropic():
    k = G.gaussian_kernel(1.5)
    assert k.shape == (11, 11) and abs(float(k.sum()) - 1) < 1e-6
    r = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-0.5 * (r / 1.5) ** 2)
    g /= g.sum()
    assert torch.allclose(k.double(), g[:, None] * g[None, :], atol=1e-7)


def test_anisotropic_kernel_turned_a_quarter_is_the_transpose():
    a = G.gaussian_kernel(2.0, 0.5, 0.0, size=13)
    b = G.gaussian_kernel(2.0, 0.5, math.pi / 2, size=13)
    assert torch.allclose(a, b.t(), atol=1e-6)
    assert float(a[6, 0]) > float(a[0, 6])  # long along x


def test_disk_kernel_is_round_and_normalised():
    k = G.disk_kernel(2.0)
    assert k.shape == (5, 5) and abs(float(k.sum()) - 1) < 1e-6
    assert torch.allclose(k, k.t()) and torch.allclose(k, k.flip(0))
    assert float(k[0, 0]) < 0.1 * float(k[2, 2])  # corners mostly outside the circle


def test_blur_keeps_a_flat_image_and_spreads_an_impulse_into_its_kernel():
    flat = torch.full((3, 20, 20), 0.3)
    assert torch.allclose(G.Blur(1.2)(flat), flat, atol=1e-6)
    x = torch.zeros(3, 21, 21)
    x[:, 10, 10] = 1
    k = G.gaussian_kernel(1.0)
    y = G.Blur(1.0)(x)
    assert torch.allclose(y[0, 7:14, 7:14], k, atol=1e-6)
    tiny = G.Blur(3.0)(torch.rand(3, 4, 4))  # kernel wider than the image
    assert tiny.shape == (3, 4, 4)


def test_resize_methods():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4).repeat(3, 1, 1)
    assert torch.equal(G.Resize((2, 2), "bicubic")(x), imresize(x, (2, 2), scale=(0.5, 0.5)))
    area = G.Resize((2, 2), "area")(x)
    assert torch.allclose(area[0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    near = G.Resize((2, 2), "nearest")(x)
    assert torch.equal(near[0], torch.tensor([[5.0, 7.0], [13.0, 15.0]]))
    assert G.Resize((8, 8), "bilinear")(x).shape == (3, 8, 8)


def test_gaussian_noise_is_seeded_and_has_its_sigma():
    x = torch.full((3, 256, 256), 0.5)
    a, b = G.GaussianNoise(10, seed=3)(x), G.GaussianNoise(10, seed=3)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, G.GaussianNoise(10, seed=4)(x))
    assert abs(float((a - x).std()) * 255 - 10) < 0.2
    grey = G.GaussianNoise(10, grey=True, seed=1)(x) - x
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_poisson_noise_is_unbiased_with_variance_value_over_photons():
    x = torch.full((3, 256, 256), 0.25)
    n = G.PoissonNoise(400, seed=0)(x) - x
    assert abs(float(n.mean())) < 2e-3
    assert abs(float(n.var()) - 0.25 / 400) < 0.1 * 0.25 / 400


def test_jpeg_is_pillows_round_trip():
    x = ramp(40, 48)
    y = G.Compress(30)(x)
    buf = io.BytesIO()
    Image.fromarray(G.to_uint8(x)).save(buf, format="JPEG", quality=30, subsampling=2)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(G.to_uint8(y), want)
    assert float((G.Compress(95)(x) - x).abs().mean()) < float((G.Compress(10)(x) - x).abs().mean())
    assert G.Compress(50, "webp")(x).shape == x.shape


def _block_edges(y: torch.Tensor) -> int:
    """The column phase (mod 8) where the horizontal steps of a JPEG'd smooth image are largest."""
    d = (y[:, :, 1:] - y[:, :, :-1]).abs().mean(dim=(0, 1))  # step between column j and j+1
    steps = [float(d[p - 1::8].mean()) for p in range(1, 9)]
    return int(np.argmax(steps)) + 1  # the first column of a block, mod 8


def test_jpeg_offset_moves_the_block_grid():
    rng = np.random.default_rng(0)
    x = G.Blur(4.0)(torch.from_numpy(rng.random((3, 64, 64))).float())  # smooth: blocks show
    assert _block_edges(G.Compress(10)(x)) % 8 == 0
    assert _block_edges(G.Compress(10, offset=(0, 3))(x)) % 8 == 5  # blocks start 3 px before the corner


def test_random_chain_is_deterministic_ends_8bit_and_hits_the_size():
    hr = ramp(96, 96)
    for seed in range(30):
        chain = G.random_chain(np.random.default_rng(seed), (96, 96), (32, 32))
        again = G.random_chain(np.random.default_rng(seed), (96, 96), (32, 32))
        assert chain == again
        assert isinstance(chain[-1], G.Quantize)
        lr = G.apply(hr, chain)
        assert lr.shape == (3, 32, 32)
        assert torch.equal(lr, (lr * 255).round() / 255) and lr.min() >= 0 and lr.max() <= 1
    clean = sum(len(G.random_chain(np.random.default_rng(s), (96, 96), (32, 32))) == 2 for s in range(1000))
    assert 60 < clean < 140  # one in ten is bicubic alone


def test_parse_names_the_benchmark_degradations():
    before, after = G.parse("noise10,jpeg70", scale=4, seed=2)
    assert before == [] and after == [G.GaussianNoise(10.0, seed=2), G.Compress(70)]
    before, after = G.parse("blur,jpeg40", scale=4)
    assert before == [G.Blur(1.6)] and after == [G.Compress(40)]
    assert G.parse("blur0.8", scale=2)[0] == [G.Blur(1.6)]
    assert G.describe(after) == "jpeg q40"
    for bad in ("jpeg", "jpeg200", "sharpen3", "noise"):
        with pytest.raises(ValueError):
            G.parse(bad, scale=2)
