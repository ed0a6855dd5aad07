import math

import numpy as np
import pytest
import torch

from coordsr.resize import downsample, imresize, imresize_np, output_size, resize_matrix

bicubic_pytorch = pytest.importorskip("bicubic_pytorch")


def psnr(a, b):
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.mark.parametrize("h,w,scale", [(32, 48, 1 / 2), (30, 45, 1 / 3), (40, 40, 1 / 4), (64, 64, 1 / 4.3),
                                       (17, 23, 2.5), (33, 20, 3.0), (21, 34, 1.7)])
def test_bicubic_matches_the_independent_matlab_port(h, w, scale):
    torch.manual_seed(0)
    x = torch.rand(2, 3, h, w, dtype=torch.float64)
    ours = imresize(x, scale=scale)
    ref = bicubic_pytorch.imresize(x, scale=scale)
    assert ours.shape == ref.shape
    assert psnr(ours, ref) > 50
    assert (ours - ref).abs().max() < 1e-5


def test_box_kernel_by_an_integer_factor_is_the_block_mean():
    x = torch.rand(1, 12, 18, dtype=torch.float64)
    ours = imresize(x, scale=1 / 3, kernel="box")
    ref = x.reshape(1, 4, 3, 6, 3).mean(dim=(2, 4))
    assert torch.allclose(ours, ref, atol=1e-12)


def test_gradient_flows_and_is_the_adjoint():
    x = torch.rand(1, 1, 10, 14, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))
    # <A x, y> == <x, A^T y>: the backward pass is the transposed operator.
    y = torch.rand(1, 1, 5, 7, dtype=torch.float64)
    (imresize(x, scale=0.5) * y).sum().backward()
    a_h, a_w = resize_matrix(10, 5, 0.5, dtype=torch.float64), resize_matrix(14, 7, 0.5, dtype=torch.float64)
    assert torch.allclose(x.grad[0, 0], a_h.T @ y[0, 0] @ a_w, atol=1e-12)


def test_rows_sum_to_one_and_leading_dims_are_kept():
    m = resize_matrix(37, 9, 9 / 37)
    assert torch.allclose(m.sum(1), torch.ones(9), atol=1e-6)
    assert imresize(torch.rand(2, 3, 4, 8, 8), scale=2).shape == (2, 3, 4, 16, 16)


def test_size_rule_and_errors():
    assert output_size(10, 7, 1 / 3) == (4, 3)
    assert downsample(torch.rand(3, 12, 12), (4, 4)).shape == (3, 4, 4)
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4), scale=0)
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4), scale=1, kernel="nope")


def test_numpy_wrapper_takes_hwc():
    img = np.random.rand(8, 6, 3)
    assert imresize_np(img, scale=0.5).shape == (4, 3, 3)
