"""The protocol's metrics against skimage, by-hand values and an independent SSIM."""

import doctest
import math

import numpy as np
import pytest
from scipy.signal import convolve2d
from skimage.metrics import peak_signal_noise_ratio

from coordsr import metrics
from coordsr.metrics import crop_multiple, make_lr, modcrop, psnr_y, quantize, rgb_to_y, shave_for, ssim_y


def test_doctests():
    result = doctest.testmod(metrics)
    assert result.attempted > 0 and result.failed == 0


def rng_image(h, w, c, seed=0):
    return np.random.default_rng(seed).random((h, w, c))


# ---------------------------------------------------------------- luma


def test_rgb_to_y_bt601_values():
    img = np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]], dtype=np.float64)
    np.testing.assert_allclose(rgb_to_y(img), [[16 + 65.481, 16 + 128.553], [16 + 24.966, 235.0]])
    assert rgb_to_y(img).dtype == np.float64


def test_rgb_to_y_drops_alpha():
    rgb = rng_image(5, 4, 3)
    rgba = np.concatenate([rgb, rng_image(5, 4, 1, seed=1)], axis=2)
    np.testing.assert_array_equal(rgb_to_y(rgba), rgb_to_y(rgb))
    grey = rng_image(5, 4, 1)
    la = np.concatenate([grey, rng_image(5, 4, 1, seed=1)], axis=2)
    np.testing.assert_array_equal(rgb_to_y(la), rgb_to_y(grey))


def test_grey_is_its_own_luma_on_0_255():
    grey = rng_image(6, 5, 1)
    np.testing.assert_allclose(rgb_to_y(grey), 255 * grey[:, :, 0])
    np.testing.assert_allclose(rgb_to_y(grey[:, :, 0]), 255 * grey[:, :, 0])  # (H, W) too


def test_grey_expanded_to_rgb_would_read_1_32_db_higher():
    # Why grey is not expanded to three channels: BT.601 maps it to 16 + 219 g, which shrinks
    # every error by 219/255 and adds 20 log10(255/219) = 1.32 dB (Set14's bridge, see metrics).
    hr, sr = rng_image(20, 20, 1), rng_image(20, 20, 1, seed=1)
    rgb = lambda x: np.repeat(x, 3, axis=2)  # noqa: E731
    gap = psnr_y(rgb(sr), rgb(hr)) - psnr_y(sr, hr)
    assert gap == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)


def test_rgb_to_y_rejects_bad_shapes():
    with pytest.raises(ValueError, match="C in 1..4"):
        rgb_to_y(np.zeros((4, 4, 5)))


# ---------------------------------------------------------------- modcrop, shave, quantize, LR


@pytest.mark.parametrize("scale, shape, expected", [
    (2, (7, 10, 3), (6, 10, 3)),
    (3, (7, 10, 3), (6, 9, 3)),
    (4, (17, 16), (16, 16)),
    (2.5, (13, 11, 1), (10, 10, 1)),
    (1.5, (10, 8, 3), (9, 6, 3)),
])
def test_modcrop_shapes(scale, shape, expected):
    img = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    out = modcrop(img, scale)
    assert out.shape == expected
    np.testing.assert_array_equal(out, img[:expected[0], :expected[1]])  # top-left kept


def test_modcrop_errors():
    with pytest.raises(ValueError, match="greater than 1"):
        modcrop(np.zeros((8, 8)), 1)
    with pytest.raises(ValueError, match="smaller than one block"):
        modcrop(np.zeros((3, 8)), 4)


def test_crop_multiple_and_shave():
    assert [crop_multiple(s) for s in (2, 3, 4, 2.5, 4 / 3)] == [2, 3, 4, 5, 4]
    assert [shave_for(s) for s in (2, 3, 4, 2.5)] == [2, 3, 4, 3]


def test_quantize_rounds_half_up_like_matlab_uint8():
    x = np.array([0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255, -1.0, 2.0])
    np.testing.assert_array_equal(quantize(x) * 255, [1, 2, 3, 255, 0, 255])  # np.round would give 0, 2, 2


def test_make_lr_is_8bit_matlab_bicubic():
    from bicubic_pytorch import core  # independent MATLAB-style resize
    import torch

    hr = rng_image(24, 16, 3)
    lr = make_lr(hr, 4)
    assert lr.shape == (6, 4, 3)
    np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-9)
    ref = core.imresize(torch.from_numpy(hr).permute(2, 0, 1)[None], scale=0.25, antialiasing=True)
    ref = np.floor(np.clip(ref[0].permute(1, 2, 0).numpy(), 0, 1) * 255 + 0.5) / 255
    assert np.abs(lr - ref).max() <= 1 / 255 + 1e-9  # only ties in the last float bit may differ
    assert np.mean(lr == ref) > 0.99


def test_make_lr_refuses_uncropped_hr():
    with pytest.raises(ValueError, match="not mod-cropped"):
        make_lr(np.zeros((10, 9, 3)), 3)


# ---------------------------------------------------------------- PSNR


def test_psnr_by_hand():
    hr = np.zeros((4, 4, 1))
    sr = hr.copy()
    sr[1, 2] = 2 / 255  # one pixel off by 2 levels: MSE = 4 / 16
    assert psnr_y(sr, hr) == pytest.approx(10 * math.log10(255**2 / 0.25))
    assert psnr_y(hr, hr) == math.inf


def test_psnr_matches_skimage_on_y():
    hr, sr = rng_image(30, 20, 3), rng_image(30, 20, 3, seed=1)
    ref = peak_signal_noise_ratio(rgb_to_y(hr), rgb_to_y(sr), data_range=255)
    assert psnr_y(sr, hr) == pytest.approx(ref, abs=1e-10)


def test_shave_ignores_the_border():
    hr = rng_image(20, 20, 3)
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 1
    sr[8, 8] += 0.1  # the only error inside a 3-pixel shave
    ref = peak_signal_noise_ratio(rgb_to_y(hr)[3:-3, 3:-3], rgb_to_y(sr)[3:-3, 3:-3], data_range=255)
    assert psnr_y(sr, hr, shave=3) == pytest.approx(ref, abs=1e-10)
    assert psnr_y(sr, hr, shave=3) > psnr_y(sr, hr) + 10


def test_psnr_shape_errors():
    with pytest.raises(ValueError, match="sizes differ"):
        psnr_y(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="nothing left"):
        psnr_y(np.zeros((6, 6, 3)), np.zeros((6, 6, 3)), shave=3)


# ---------------------------------------------------------------- SSIM


def ssim_by_hand(a, b):
    """Wang et al.'s ssim_index.m: fspecial('gaussian', 11, 1.5), filter2 'valid', L = 255."""
    r = np.arange(-5, 6)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    f = lambda x: convolve2d(x, g, mode="valid")  # noqa: E731  (g is symmetric)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = f(a), f(b)
    va, vb, cov = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean()


def test_ssim_matches_wang_by_hand():
    hr = rng_image(32, 28, 3)
    sr = np.clip(hr + 0.1 * rng_image(32, 28, 3, seed=1) - 0.05, 0, 1)
    assert ssim_y(sr, hr) == pytest.approx(ssim_by_hand(rgb_to_y(sr), rgb_to_y(hr)), abs=1e-10)
    shaved = ssim_by_hand(rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4])
    assert ssim_y(sr, hr, shave=4) == pytest.approx(shaved, abs=1e-10)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_y(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), shave=3)


def test_ssim_bounds():
    hr = rng_image(16, 16, 1)
    assert ssim_y(hr, hr) == pytest.approx(1.0)
    assert ssim_y(1 - hr, hr) < 0.5
