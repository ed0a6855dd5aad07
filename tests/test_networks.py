"""MLP and activations: shapes, per-activation inits (SIREN's statistics), and a tiny fit each."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coordsr.coords import pixel_centers
from coordsr.encodings import FourierFeatures, MultiresGrid, PositionalEncoding, RawCoords
from coordsr.networks import ACTIVATIONS, MLP, Gabor, Gaussian, Sine, activation_class


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("lead", [(), (5,), (3, 4)])
def test_mlp_shapes(name, lead):
    torch.manual_seed(0)
    net = MLP(2, 3, hidden=16, layers=2, activation=ACTIVATIONS[name])
    y = net(torch.rand(*lead, 2) * 2 - 1)
    assert y.shape == (*lead, 3) and torch.isfinite(y).all()
    y64 = net.double()(torch.zeros(*lead, 2, dtype=torch.float64))
    assert y64.dtype == torch.float64


def test_mlp_layout_and_out_activation():
    net = MLP(4, 1, hidden=8, layers=3, activation=nn.Tanh, out_activation=nn.Sigmoid)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 8), (8, 8), (8, 8), (8, 1)]
    assert isinstance(net.net[-1], nn.Sigmoid)
    y = net(torch.randn(10, 4) * 100)
    assert ((y >= 0) & (y <= 1)).all()
    assert len([m for m in MLP(4, 1, layers=0).modules() if isinstance(m, nn.Linear)]) == 1


def test_activation_factories_and_names():
    net = MLP(2, 1, hidden=8, layers=2, activation=functools.partial(Sine, w0=7.0))
    assert all(m.w0 == 7.0 for m in net.modules() if isinstance(m, Sine))
    with pytest.raises(TypeError):
        MLP(2, 1, activation="relu")
    with pytest.raises(ValueError, match="sine"):
        activation_class("siren")
    assert activation_class("gabor") is Gabor


def test_activation_formulas():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(Sine(w0=3.0)(x), torch.sin(3 * x))
    torch.testing.assert_close(Gabor(omega0=4.0, s0=2.0)(x),
                               torch.cos(4 * x) * torch.exp(-4 * x**2))
    torch.testing.assert_close(Gaussian(sigma=0.5)(x), torch.exp(-x**2 / 0.5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gabor_and_its_gradient_equal_the_formula_even_where_the_window_underflows(dtype):
    # |x| up to 3 with s0 = 10: (s0 x)^2 reaches 900, where exp underflows in both dtypes and
    # the window's exponent is held at the smallest normal float's log
    x = torch.linspace(-3, 3, 601, dtype=dtype, requires_grad=True)
    ref_x = x.detach().clone().requires_grad_()
    omega0, s0 = 20.0, 10.0
    out = Gabor(omega0=omega0, s0=s0)(x)
    ref = torch.cos(omega0 * ref_x) * torch.exp(-(s0 * ref_x) ** 2)
    torch.testing.assert_close(out, ref, atol=1e-30, rtol=1e-6 if dtype == torch.float32 else 1e-12)
    weights = torch.randn(601, dtype=dtype, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad((out * weights).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), ref_x)
    torch.testing.assert_close(g, g_ref, atol=1e-28, rtol=1e-5 if dtype == torch.float32 else 1e-11)


def test_gaussian_equals_the_formula_where_it_underflows():
    x = torch.linspace(-3, 3, 601, requires_grad=True)  # float32: exp(-0.5 (x / 0.1)^2) underflows past |x| 1.32
    ref_x = x.detach().clone().requires_grad_()
    out, ref = Gaussian(sigma=0.1)(x), torch.exp(-0.5 * (ref_x / 0.1) ** 2)
    torch.testing.assert_close(out, ref, atol=1e-30, rtol=1e-6)
    (g,), (g_ref,) = torch.autograd.grad(out.sum(), x), torch.autograd.grad(ref.sum(), ref_x)
    torch.testing.assert_close(g, g_ref, atol=1e-30, rtol=1e-5)


def test_gabor_gradient_passes_gradcheck():
    x = torch.linspace(-0.4, 0.4, 37, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: Gabor(omega0=7.0, s0=3.0)(t), (x,))


def test_init_hook_sees_each_layer_in_order():
    calls = []

    class Probe(nn.Identity):
        def init_linear(self, linear, is_first, is_last=False):
            calls.append((linear.in_features, linear.out_features, is_first, is_last))

    MLP(3, 2, hidden=5, layers=3, activation=Probe)
    assert calls == [(3, 5, True, False), (5, 5, False, False), (5, 5, False, False),
                     (5, 2, False, True)]


def test_siren_init_bounds():
    torch.manual_seed(0)
    net = MLP(2, 1, hidden=64, layers=3, activation=Sine)
    first, second, *_, last = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert first.weight.abs().max() <= 1 / 2 and first.weight.abs().max() > 0.45
    bound = math.sqrt(6 / 64) / 30
    for layer in (second, last):
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound


def test_siren_activation_statistics():
    # Sitzmann et al., section 3.2 and supplement 1: with their init, w0 W x is ~ N(0, 1) in
    # every hidden layer and every activation is arcsine-distributed on [-1, 1] (std 1/sqrt(2),
    # P(|y| > 0.9) = 1 - 2 asin(0.9) / pi = 0.287), at any depth. The biases keep PyTorch's
    # default as in the reference code; they add a phase w0 b of std w0 / sqrt(3 n), which the
    # paper's analysis leaves out and which leaves the arcsine shape as it is.
    torch.manual_seed(0)
    net = MLP(2, 1, hidden=256, layers=5, activation=Sine)
    modules = list(net.net)
    seen = {}
    for m in modules:
        m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(mod, (inp[0], out)))
    net(torch.rand(4096, 2) * 2 - 1)  # with autograd: the module path, whose hooks fire
    tail = 1 - 2 * math.asin(0.9) / math.pi
    for i in range(2, len(modules) - 1, 2):  # hidden layers; the first sees uniform inputs
        linear, sine = modules[i], modules[i + 1]
        x, _ = seen[linear]
        _, y = seen[sine]
        wx = sine.w0 * x @ linear.weight.t()
        assert 0.9 < wx.std() < 1.1 and abs(wx.mean()) < 0.1
        assert 0.66 < y.std() < 0.75
        assert abs((y.abs() > 0.9).float().mean() - tail) < 0.03


def test_relu_init_keeps_activation_scale():
    # He init: the second moment of ReLU activations neither explodes nor vanishes with depth.
    torch.manual_seed(0)
    net = MLP(64, 1, hidden=256, layers=6, activation=nn.ReLU)
    moments = []
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(lambda mod, inp, out: moments.append(out.square().mean()))
    with torch.no_grad():
        net(torch.randn(2048, 64))
    ratio = moments[-1] / moments[1]
    assert 0.5 < ratio < 2.0


def smooth_image(size: int = 16, seed: int = 0) -> torch.Tensor:
    """A random smooth RGB image: 4 x 4 uniform noise upsampled bicubically, (size, size, 3)."""
    low = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    up = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return up[0].permute(1, 2, 0)


FITS = {  # activation family: (encoding, activation, learning rate)
    "relu": (lambda: PositionalEncoding(n_freqs=4), nn.ReLU, 5e-3),
    "tanh": (lambda: FourierFeatures(n_features=64, sigma=1.0), nn.Tanh, 5e-3),
    "sine": (lambda: RawCoords(), Sine, 1e-3),
    "gabor": (lambda: RawCoords(), Gabor, 5e-3),
    "gauss": (lambda: RawCoords(), Gaussian, 5e-3),
    "relu+grid": (lambda: MultiresGrid(n_levels=4, base_resolution=2, finest_resolution=16,
                                       log2_table_size=6, init_scale=0.1), nn.ReLU, 1e-2),
}


def test_every_activation_has_a_fit():
    assert set(ACTIVATIONS) <= {name.split("+")[0] for name in FITS}


@pytest.mark.parametrize("name", list(FITS))
def test_tiny_fit(name):
    make_encoding, activation, lr = FITS[name]
    torch.manual_seed(0)
    encoding = make_encoding()
    model = nn.Sequential(encoding, MLP(encoding.out_dim, 3, hidden=64, layers=2,
                                        activation=activation))
    image, xy = smooth_image(), pixel_centers(16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(300):
        loss = F.mse_loss(model(xy), image)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        psnr = -10 * math.log10(F.mse_loss(model(xy), image).item())
    assert psnr > 30, f"{name}: {psnr:.1f} dB"


@pytest.mark.parametrize("activation", [Sine, nn.ReLU, nn.Tanh])
def test_blocked_inference_matches_one_pass(activation):
    torch.manual_seed(0)
    net = MLP(5, 2, hidden=16, layers=2, activation=activation)
    net.inference_rows = 7  # force several blocks and a ragged last one
    x = torch.randn(3, 10, 5)
    with torch.no_grad():
        blocked = net(x)
    torch.testing.assert_close(blocked, net(x).detach())  # autograd on: one pass
    assert blocked.shape == (3, 10, 2)
