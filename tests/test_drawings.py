"""The drawing model: procedural scenes, premultiplied training data, the widened model, the
`drawing` upscaler's alpha handling, the safetensors checkpoint, and the drawing metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coordsr.drawings import data as D
from coordsr.drawings.train import _load_checkpoint, _save_checkpoint, unpremultiply, widen
from coordsr.liif.model import LIIF, LIIFConfig, upscale
from coordsr.metrics import composite, drawing_scores, gmsd, psnr

TINY = LIIFConfig(channels=8, blocks=2, hidden=16, mlp_layers=1)


def test_scene_is_a_function_of_its_seed_at_every_size():
    scenes = pytest.importorskip("coordsr.drawings.scenes")
    a, b = scenes.draw(7, 64), scenes.draw(7, 64)
    assert a.shape == (64, 64, 4) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, scenes.draw(8, 64))
    # premultiplied: no colour exceeds its alpha
    assert (a[..., :3] <= a[..., 3:]).all()
    # the same picture at two sizes: the large one's box downscale is near the small one (not equal:
    # the rasterizer draws thin strokes and glyphs at the small size, as a designer's export does)
    big = scenes.draw(7, 256).astype(np.float64) / 255
    down = big.reshape(32, 8, 32, 8, 4).mean(axis=(1, 3))
    same, other = (psnr(down, scenes.draw(s, 32).astype(np.float64) / 255) for s in (7, 8))
    assert same > 20 and same > other + 6


def test_premultiply_rounds_and_zeroes_transparent_colour():
    rgba = np.array([[[255, 128, 0, 0], [255, 128, 0, 128], [10, 20, 30, 255]]], np.uint8)
    out = D.premultiply(rgba)
    assert out[0, 0].tolist() == [0, 0, 0, 0]
    assert out[0, 1].tolist() == [128, 64, 0, 128]
    assert out[0, 2].tolist() == [10, 20, 30, 255]


def _pairs(n=3):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        hr = (torch.rand(4, 64, 64, generator=g) * 255).to(torch.uint8)
        hr[:3] = torch.minimum(hr[:3], hr[3:])  # a valid premultiplied image
        lr = hr.float().reshape(4, 8, 8, 8, 8).mean((2, 4)).round().to(torch.uint8)
        out.append((lr, hr))
    return out


def test_batch_is_pure_and_premultiplied():
    pairs = _pairs()
    kw = dict(batch=4, queries=32, seed=3, lr_size=8, scale_min=2, scale_max=8)
    a, b = D.make_batch(pairs, step=5, **kw), D.make_batch(pairs, step=5, **kw)
    assert torch.equal(a.lr, b.lr) and torch.equal(a.target, b.target)
    for step in range(12):
        x = D.make_batch(pairs, step=step, **kw)
        assert x.lr.shape[:2] == (4, 4) and x.target.shape == (4, 32, 4)
        assert (x.lr[:, :3] <= x.lr[:, 3:] + 1e-6).all() and (x.target[..., :3] <= x.target[..., 3:] + 1e-6).all()


def test_flattened_samples_are_opaque_and_linear():
    x = torch.tensor([0.2, 0.1, 0.0, 0.5]).reshape(4, 1, 1)
    out = D._flatten(x, torch.tensor([1.0, 1.0, 1.0]))
    assert torch.allclose(out.flatten(), torch.tensor([0.7, 0.6, 0.5, 1.0]))


def test_widen_keeps_the_colour_and_draws_bicubic_alpha():
    torch.manual_seed(0)
    photo = LIIF(TINY).eval()
    for p in photo.mlp.parameters():
        torch.nn.init.normal_(p, std=0.3)
    wide = widen(photo).eval()
    rgb = torch.rand(1, 3, 6, 7)
    rgba = torch.cat([rgb, torch.rand(1, 1, 6, 7)], 1)
    with torch.no_grad():
        want = upscale(photo, rgb, (18, 21))
        got = upscale(wide, rgba, (18, 21))
        alpha = upscale(LIIF(LIIFConfig(**{**TINY.__dict__, "in_channels": 1})).eval(), rgba[:, 3:], (18, 21))
    assert torch.allclose(got[:, :3], want, atol=1e-5)
    assert torch.allclose(got[:, 3:], alpha, atol=1e-5)  # a zero output row: bicubic alpha


def test_checkpoint_round_trip_without_pickle(tmp_path):
    import argparse

    torch.manual_seed(0)
    model = widen(LIIF(TINY))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = sum(p.square().sum() for p in model.parameters())
    loss.backward()
    opt.step()
    path = tmp_path / "m.ckpt.safetensors"
    _save_checkpoint(path, model, opt, 17, 21.5, argparse.Namespace(lr=1e-3))
    m2, opt2, step, best = _load_checkpoint(path, 1e-3)
    assert (step, best) == (17, 21.5)
    for a, b in zip(model.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    s1 = [opt.state[p]["exp_avg"] for p in model.parameters()]
    s2 = [opt2.state[p]["exp_avg"] for p in m2.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(s1, s2))


def test_checkpoint_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"a": torch.zeros(1)}, str(path), metadata={"format": "something"})
    with pytest.raises(SystemExit, match="not a coordsr drawing-model checkpoint"):
        _load_checkpoint(path, 1e-3)


def test_composite_and_drawing_scores():
    hr = np.zeros((32, 32, 4))
    hr[8:24, 8:24] = [1.0, 0.0, 0.0, 1.0]
    assert composite(hr, 1.0)[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert composite(hr, 0.0)[0, 0].tolist() == [0.0, 0.0, 0.0]
    s = drawing_scores(hr, hr)
    assert s["psnr"] == np.inf and s["gmsd"] == 0.0 and s["ssim"] == pytest.approx(1.0)
    wrong_alpha = hr.copy()
    wrong_alpha[:, :, 3] = 1.0  # the transparent border shown as opaque black
    s = drawing_scores(wrong_alpha, hr)
    assert s["psnr_black"] == np.inf and s["psnr_white"] < 10 and s["alpha_psnr"] < 10
    assert drawing_scores(hr[:, :, :3], hr[:, :, :3])["alpha_psnr"] is None


def test_gmsd_sees_blur_more_than_a_brightness_shift():
    y = np.zeros((64, 64))
    y[:, 32:] = 1.0
    blurred = np.clip((np.arange(64) - 24) / 16, 0, 1)[None].repeat(64, 0)
    assert gmsd(y, blurred) > 0.05
    assert gmsd(y, np.clip(y + 0.02, 0, 1)) < gmsd(y, blurred)


def test_edge_queries_fall_on_edges():
    hr = torch.zeros(4, 64, 64)
    hr[:, :, 32:] = 1.0  # one vertical edge between columns 31 and 32
    w = D.edge_weights(hr)
    assert set(torch.nonzero(w).flatten().remainder(64).tolist()) == {31, 32}
    coords, _, target = D._queries(hr, 200, torch.Generator().manual_seed(0), edge_share=1.0)
    cols = ((coords[:, 0] + 1) * 32 - 0.5).round()
    assert set(cols.tolist()) <= {31.0, 32.0}
    flat = D._queries(torch.ones(4, 8, 8), 10, torch.Generator().manual_seed(0), edge_share=1.0)
    assert flat[0].shape == (10, 2)  # a plain picture: uniform queries
