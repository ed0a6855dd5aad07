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


@pytest.mark.parametrize("kernel", ["cubic", "box", "triangle", "lanczos3", "gaussian"])
@pytest.mark.parametrize("h,w,size", [(17, 23, (43, 9)), (64, 64, (15, 15)), (5, 300, (12, 700)), (3, 1, (1, 5)),
                                      (1, 1, (3, 3)), (600, 7, (2, 7)), (2, 3000, (4, 6000))])
def test_banded_resampling_is_the_dense_operator_in_value_and_gradient(kernel, h, w, size):
    """The blocks ``imresize`` multiplies by are the dense MATLAB operator (resize_matrix, an
    independent scatter of the same taps), to float rounding, forward and backward."""
    torch.manual_seed(0)
    x = torch.rand(2, h, w, dtype=torch.float64, requires_grad=True)
    def operator(n_in, n_out):  # an axis kept at its size is left alone (MATLAB's and ours)
        if n_in == n_out:
            return torch.eye(n_in, dtype=torch.float64)
        return resize_matrix(n_in, n_out, kernel=kernel, dtype=torch.float64)

    dense = operator(h, size[0]) @ x @ operator(w, size[1]).T
    ours = imresize(x, size, kernel=kernel)
    torch.testing.assert_close(ours, dense, rtol=0, atol=1e-12)
    y = torch.rand_like(dense)
    g_dense, = torch.autograd.grad((dense * y).sum(), x)
    g_ours, = torch.autograd.grad((ours * y).sum(), x)
    torch.testing.assert_close(g_ours, g_dense, rtol=0, atol=1e-12)
    with torch.no_grad():  # the in-place path gives the same
        torch.testing.assert_close(imresize(x, size, kernel=kernel), dense, rtol=0, atol=1e-12)
    torch.testing.assert_close(imresize(x.detach().float(), size, kernel=kernel), dense.float(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape,size", [((3, 2, 16000), (4, 32000)), ((3, 20000, 2), (40000, 4)),
                                        ((1, 2, 600000), (1, 512))])
def test_thin_images_resample_in_small_memory(shape, size):
    """A 16000x2 image doubled, a 2x20000 one doubled, a 600000x2 one shrunk to 512 wide: the
    dense (out, in) matrices were 4.1 GB, 6.4 GB and 2.5 GB. Measured here: the peak resident
    memory (VmHWM, reset first) grows by no more than ``imresize_bytes`` says, and that is MBs."""
    from coordsr.resize import imresize_bytes

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    x = torch.rand(*shape, dtype=torch.float64)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident size to the current one
    except OSError:
        pytest.skip("cannot reset the peak resident size here")
    before = status("VmRSS")
    y = imresize(x, size)
    grown = status("VmHWM") - before
    estimate = imresize_bytes(shape, size)
    assert y.shape == (*shape[:-2], *size)
    assert grown <= estimate + (16 << 20), (grown, estimate)
    assert estimate < 128 << 20
    # the values: the dense operator on a strip of the output
    a_w = resize_matrix(shape[-1], size[1], dtype=torch.float64)[:50]
    a_h = resize_matrix(shape[-2], size[0], dtype=torch.float64)
    torch.testing.assert_close(y[..., :50], a_h @ x @ a_w.T, rtol=0, atol=1e-12)
