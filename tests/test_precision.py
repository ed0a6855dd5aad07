"""Compute precision: the probe, autocast over every field, bfloat16 results close to float32."""

import numpy as np
import pytest
import torch

from coordsr import precision
from coordsr.methods import get_method
from coordsr.fit import psnr_from_mse
from coordsr.networks import MLP, Sine
from coordsr.precision import (autocast, flushing_each_step, flushing_subnormals, flushing_subnormals_now,
                               resolve_precision)
from coordsr.render import render_field


def test_resolve_precision():
    assert resolve_precision("fp32") == torch.float32
    assert resolve_precision("bf16") == torch.bfloat16
    assert resolve_precision("auto") in (torch.float32, torch.bfloat16)
    assert resolve_precision("auto", allow_auto_bf16=False) == torch.float32
    with pytest.raises(ValueError, match="valid: auto, fp32, bf16"):
        resolve_precision("half")


def test_auto_follows_the_probe(monkeypatch):
    monkeypatch.setattr(precision, "bf16_speedup", lambda device="cpu": 3.0)
    assert resolve_precision("auto") == torch.bfloat16
    monkeypatch.setattr(precision, "bf16_speedup", lambda device="cpu": 1.0)
    assert resolve_precision("auto") == torch.float32


def test_probe_is_measured_once_per_process():
    first = precision.bf16_speedup("cpu")
    assert first >= 0 and precision.bf16_speedup("cpu") == first
    assert precision._speedup.cache_info().hits >= 1


@pytest.mark.parametrize("bf16_slower,sizes", [
    (50.0, {precision.PRE_PROBE_SIZE}),  # emulated bfloat16: the small probe decides alone
    (0.25, {precision.PRE_PROBE_SIZE, precision.PROBE_SIZE}),  # matrix units: the full probe runs
])
def test_probe_skips_the_full_size_where_bfloat16_is_emulated(monkeypatch, bf16_slower, sizes):
    seen = set()

    def fake(dtype, device="cpu", n=precision.PROBE_SIZE, repeats=5):
        seen.add(n)
        return 1e-3 * (bf16_slower if dtype == torch.bfloat16 else 1.0)

    monkeypatch.setattr(precision, "matmul_seconds", fake)
    precision._speedup.cache_clear()
    try:
        assert precision._speedup("cpu", None) == pytest.approx(1 / bf16_slower)
    finally:
        precision._speedup.cache_clear()
    assert seen == sizes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_relu_matches_torch_including_signed_zeros_and_infinities(dtype):
    torch.manual_seed(0)
    specials = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 1e-30, -1e-30, 3e38, -3e38])
    x = torch.cat([torch.randn(4099) * 100, specials]).to(dtype)[::2]  # a strided view too
    expected = torch.relu(x.clone())
    got = precision.relu_(x)
    assert got.data_ptr() == x.data_ptr() and got.dtype == dtype  # in place
    assert torch.equal(got, expected)
    if dtype is torch.bfloat16:  # through the bits: negatives and -0.0 become +0.0
        assert not torch.signbit(got).any()


@pytest.mark.parametrize("activation", [torch.nn.ReLU, Sine])
def test_mlp_keeps_float32_weights_and_output_under_autocast(activation, one_thread):
    torch.manual_seed(0)
    net = MLP(2, 3, hidden=32, layers=2, activation=activation)
    x = torch.rand(50000, 2) * 2 - 1  # more rows than inference_rows: the blocked path too
    with torch.no_grad():
        ref = net(x)
        with autocast(torch.bfloat16):
            low = net(x)
    assert low.dtype == torch.float32 and all(p.dtype == torch.float32 for p in net.parameters())
    assert (low - ref).abs().max() < 0.05
    with autocast(torch.bfloat16):  # with autograd
        y = net(x[:100])
    y.sum().backward()
    assert y.dtype == torch.float32 and net.net[0].weight.grad.dtype == torch.float32


@pytest.mark.parametrize("method", ["hashgrid", "siren", "fourier", "cppn", "wire"])
def test_every_field_fits_and_renders_in_bf16(method, one_thread):
    """Each preset fits and draws under bfloat16 autocast (the grid's separable renderer failed
    with an index_put dtype mismatch): the fit reaches about the same PSNR on its input, and the
    same field drawn in bfloat16 is close to its float32 drawing."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:24] / 24.0
    image = np.stack([0.5 + 0.4 * np.sin(6 * xx), 0.5 + 0.4 * np.cos(5 * yy), 0.3 + 0.3 * xx * yy], -1)
    image = (image + 0.01 * rng.standard_normal(image.shape)).clip(0, 1).astype(np.float32)
    fits = {}
    for word in ("fp32", "bf16"):
        small = {"levels": 4, "log2_table_size": 10} if method == "hashgrid" else {}
        up = get_method(method)(steps=40, until="steps", precision=word, hidden=32, **small)
        fits[word] = up.fit_field(image, (48, 48))
    assert abs(fits["bf16"][1].psnr - fits["fp32"][1].psnr) < 1.0
    field = fits["fp32"][0]
    drawn = {dt: render_field(field, (96, 96), compute_dtype=dt) for dt in (torch.float32, torch.bfloat16)}
    assert np.isfinite(drawn[torch.bfloat16]).all()
    diff = float(np.mean((drawn[torch.bfloat16] - drawn[torch.float32]) ** 2))
    assert psnr_from_mse(diff) > 35


def test_pretrained_in_bf16_is_close_to_fp32(one_thread):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:20, 0:20] / 20.0
    image = np.stack([0.5 + 0.3 * np.sin(7 * xx + 3 * yy), 0.4 + 0.3 * xx, 0.6 - 0.3 * yy], -1)
    image = (image + 0.02 * rng.standard_normal(image.shape)).clip(0, 1).astype(np.float32)
    outs = {w: get_method("pretrained")(precision=w, device="cpu").upscale(image, (60, 60)) for w in ("fp32", "bf16")}
    assert outs["bf16"].dtype == np.float32
    assert psnr_from_mse(float(np.mean((outs["bf16"] - outs["fp32"]) ** 2))) > 40


def test_flushing_subnormals_holds_within_the_block_and_restores_the_mode():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    tiny = torch.full((1000,), 1e-39)  # subnormal in float32
    assert not flushing_subnormals_now() and (tiny * 0.5)[0].item() > 0
    with flushing_subnormals():
        with flushing_subnormals():  # nested: the inner block leaves the mode to the outer one
            assert flushing_subnormals_now()
        assert flushing_subnormals_now() and (tiny * 0.5)[0].item() == 0.0
    assert not flushing_subnormals_now() and (tiny * 0.5)[0].item() > 0


def test_flushing_subnormals_leaves_a_flushing_thread_flushing():
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    try:
        with flushing_subnormals():
            pass
        assert flushing_subnormals_now()  # on before the block: not switched off by it
    finally:
        torch.set_flush_denormal(False)


def test_fit_flushes_subnormals_while_it_runs(monkeypatch, one_thread):
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    seen = []

    def watch(*args, **kwargs):
        seen.append(flushing_subnormals_now())

    img = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    get_method("hashgrid")(steps=3, until="steps").upscale(img, (16, 16), progress=watch)
    assert seen and all(seen) and not flushing_subnormals_now()


def test_the_environment_can_keep_subnormals(monkeypatch):
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    monkeypatch.setenv(precision.KEEP_SUBNORMALS_ENV, "1")
    with flushing_subnormals():
        assert not flushing_subnormals_now()


def test_flushing_each_step_flushes_while_an_item_is_made_not_while_it_waits():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    closed = []

    def items():
        try:
            for _ in range(3):
                yield flushing_subnormals_now()
        finally:
            closed.append(True)

    seen = []
    for made_flushing in flushing_each_step(items()):
        seen.append((made_flushing, flushing_subnormals_now()))
    assert seen == [(True, False)] * 3
    gen = flushing_each_step(items())
    next(gen)
    gen.close()  # closing the wrapper closes what it wraps
    assert closed == [True, True] and not flushing_subnormals_now()
