"""The zero-shot upscaler: contract, determinism, consistency with the input, CLI, and quality."""

import numpy as np
import pytest
import torch

from coordsr import metrics
from coordsr.methods import METHODS
from coordsr.methods.interpolation import bicubic
from coordsr.methods.zeroshot import zeroshot
from coordsr.zeroshot.ops import back_project, dihedral, dihedral_size, downscale, undihedral, upscale_bicubic

from test_methods import smooth_image

FAST = dict(steps=5, device="cpu")


def test_registered_as_zero_shot():
    assert METHODS["zeroshot"] is zeroshot
    assert zeroshot.family == "zero-shot"


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(25, 21), (24, 20), (31, 12), (12, 10)])
def test_any_scale_aspect_and_channels(channels, size):
    img = smooth_image(12, 10, channels)
    out = zeroshot(**FAST).upscale(img, size)
    assert out.shape == (*size, channels) and out.dtype == np.float32
    assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_tiny_and_shrinking_inputs():
    img = smooth_image(2, 3, 3)
    assert zeroshot(**FAST).upscale(img, (5, 7)).shape == (5, 7, 3)
    assert zeroshot(**FAST).upscale(smooth_image(12, 10, 3), (6, 5)).shape == (6, 5, 3)


@pytest.mark.parametrize("quality", ["fast", "best"])
def test_same_seed_same_image(quality):
    img = smooth_image(16, 14, 3, seed=2)
    a = zeroshot(seed=1, quality=quality, **FAST).upscale(img, (40, 35))
    b = zeroshot(seed=1, quality=quality, **FAST).upscale(img, (40, 35))
    assert np.array_equal(a, b)


def test_the_seed_picks_the_training_pixels_of_large_images():
    from coordsr.zeroshot.filters import fit_filters

    torch.manual_seed(0)
    pair = [(torch.rand(3, 40, 40), torch.rand(3, 40, 40))]
    a = fit_filters(pair, k=3, max_samples=5000, generator=torch.Generator().manual_seed(1)).weights
    b = fit_filters(pair, k=3, max_samples=5000, generator=torch.Generator().manual_seed(1)).weights
    c = fit_filters(pair, k=3, max_samples=5000, generator=torch.Generator().manual_seed(2)).weights
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_back_projection_is_exact_and_idempotent():
    torch.manual_seed(0)
    y = torch.rand(3, 9, 13, dtype=torch.float64)
    x = torch.rand(3, 23, 30, dtype=torch.float64)  # non-integer ratios, non-square
    z = back_project(x, y)
    assert torch.allclose(downscale(z, (9, 13)), y, atol=1e-9)
    assert torch.allclose(back_project(z, y), z, atol=1e-9)  # a projection
    # and the nearest such image: the correction is orthogonal to the null space of D
    v = back_project(torch.zeros_like(x), torch.zeros_like(y)) + (z - x)
    assert torch.allclose(back_project(z - x, torch.zeros_like(y)), torch.zeros_like(x), atol=1e-9)
    assert torch.allclose(v, z - x)


def test_the_output_is_consistent_with_the_input():
    img = 0.15 + 0.7 * smooth_image(16, 20, 3, seed=3)  # away from 0 and 1: no clipping
    size = (40, 50)  # x2.5
    out = zeroshot(**FAST).upscale(img, size)
    lr = downscale(torch.from_numpy(out).permute(2, 0, 1).double(), (16, 20)).permute(1, 2, 0).numpy()
    assert np.abs(lr - img).max() < 1e-4
    assert np.abs(out - bicubic().upscale(img, size)).max() > 1e-3  # and not bicubic either
    # bicubic interpolation is not: the check can tell
    bic = bicubic().upscale(img, size)
    lr = downscale(torch.from_numpy(bic).permute(2, 0, 1).double(), (16, 20)).permute(1, 2, 0).numpy()
    assert np.abs(lr - img).max() > 1e-3


@pytest.mark.parametrize("k", range(8))
def test_dihedral_round_trip(k):
    x = torch.arange(12.0).reshape(1, 3, 4)
    assert dihedral(x, k).shape[-2:] == dihedral_size((3, 4), k)
    assert torch.equal(undihedral(dihedral(x, k), k), x)


def test_cli_needs_only_the_low_resolution_file(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from coordsr.cli import main

    folder = tmp_path / "alone"
    folder.mkdir()
    lr = folder / "lr.png"
    Image.fromarray((smooth_image(14, 18, 3) * 255).astype(np.uint8)).save(lr)
    monkeypatch.chdir(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["lr.png"]
    code = main(["upscale", "lr.png", "-o", "big.png", "--method", "zeroshot", "--steps", "5", "--scale", "3",
                 "--set", "quality=best", "--set", "max-step=1.5"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(folder / "big.png").size == (54, 42)


def test_progress_reports_stages_with_eta():
    reports = []
    zeroshot(**FAST).upscale(smooth_image(16, 16, 3), (32, 32), progress=reports.append)
    stages = [r.stage for r in reports]
    assert stages == ["train", "render", "refine", "done"]
    assert [r.step for r in reports] == [1, 2, 3, 3] and {r.total for r in reports} == {3}
    assert reports[0].eta is not None and reports[0].psnr is not None
    assert reports[-1].psnr > 40  # the output, taken down, gives the input back


def edges_image(n=64):
    """A synthetic image with smooth-edged shapes: discs and a bar with soft (sigma ~1 px) edges."""
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    def soft(d):  # signed distance -> soft step
        return 1 / (1 + np.exp(-d / 0.8))
    a = soft(n * 0.28 - np.hypot(xx - n * 0.35, yy - n * 0.4))
    b = soft(n * 0.18 - np.hypot(xx - n * 0.7, yy - n * 0.68))
    c = soft(3 - np.abs((xx - yy) * 0.7071 + n * 0.1))
    return np.stack([0.2 + 0.6 * a, 0.15 + 0.5 * b + 0.2 * c, 0.3 + 0.4 * c + 0.2 * a], -1)


def test_beats_bicubic_on_smooth_edges_at_x2():
    hr = metrics.quantize(edges_image(64))
    lr = metrics.make_lr(hr, 2).astype(np.float32)
    ours = metrics.psnr_y(metrics.quantize(zeroshot(device="cpu").upscale(lr, (64, 64)).astype(np.float64)), hr, 2)
    base = metrics.psnr_y(metrics.quantize(bicubic().upscale(lr, (64, 64)).astype(np.float64)), hr, 2)
    assert ours > base + 1.0, (ours, base)


def test_internal_network_trains_and_stays_consistent():
    """The ZSSR-like CNN (measured, not in the presets): shapes, identity at start, consistency."""
    from coordsr.zeroshot.internal import InternalConfig, ResidualCNN, apply, consistent_upscale, train

    y = torch.from_numpy(smooth_image(16, 12, 3, seed=4)).permute(2, 0, 1)
    x = torch.rand(2, 3, 9, 7)
    assert torch.equal(ResidualCNN(3)(x), x)  # zero-initialised last layer: the identity
    cfg = InternalConfig(steps=3, crop=8, batch=2, ensemble=True)
    out = apply(train(y, (40, 30), cfg), y, (40, 30), cfg)
    assert out.shape == (3, 40, 30)
    assert torch.allclose(downscale(out, (16, 12)), y, atol=1e-4)
    assert consistent_upscale(y, (40, 30)).shape == (3, 40, 30)
