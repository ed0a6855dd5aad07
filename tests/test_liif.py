"""The local implicit model: shapes, exactness of chunking and tiling, weights files, the upscaler."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from coordsr.coords import cell_size, pixel_centers
from coordsr.errors import FieldFileError
from coordsr.liif.model import (FORMAT, FORMAT_VERSION, LIIF, LIIFConfig, encode_tiled, load_weights,
                                query_chunked, save_weights, upscale, write_weights)
from coordsr.methods import METHODS
from coordsr.methods.pretrained import ENSEMBLE_ORDER, pretrained, shipped_weights
from coordsr.resize import imresize

TINY = LIIFConfig(channels=8, blocks=2, hidden=16, mlp_layers=1)
TINY_LTE = LIIFConfig(channels=8, blocks=2, hidden=16, mlp_layers=1, decoder="lte")
both_decoders = pytest.mark.parametrize("cfg", [TINY, TINY_LTE], ids=["liif", "lte"])


def tiny_model(seed: int = 0, cfg: LIIFConfig = TINY) -> LIIF:
    """A small model with a non-zero decoder (a fresh one renders plain bicubic)."""
    torch.manual_seed(seed)
    m = LIIF(cfg).eval()
    for p in m.mlp.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return m


def grid(h: int, w: int, b: int = 1):
    coords = pixel_centers(h, w).reshape(1, -1, 2).expand(b, -1, 2)
    return coords, cell_size(h, w)[None].expand(b, 2)


def test_encode_query_shapes():
    m = tiny_model()
    x = torch.rand(2, 3, 13, 17)
    f = m.encode(x)
    assert f.hidden.shape == (2, TINY.hidden, 13, 17)
    coords, cell = grid(20, 30, b=2)
    out = m.query(f, coords, cell)
    assert out.shape == (2, 600, 3)
    # per-query cells (B, N, 2) give the same result as one cell per image (B, 2)
    out2 = m.query(f, coords, cell[:, None].expand(2, 600, 2))
    torch.testing.assert_close(out, out2)


@both_decoders
def test_query_is_pure(cfg):
    m = tiny_model(cfg=cfg)
    x1, x2 = torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10)
    coords, cell = grid(25, 25)
    with torch.no_grad():
        a = m.query(m.encode(x1), coords, cell)
        m.query(m.encode(x2), coords, cell)
        b = m.query(m.encode(x1), coords, cell)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@both_decoders
def test_fresh_model_is_bicubic_and_same_size_is_identity(cfg):
    m = LIIF(cfg).eval()
    x = torch.rand(1, 3, 12, 15)
    y = upscale(m, x, (12, 15))
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@both_decoders
def test_chunked_query_equals_unchunked(cfg):
    m = tiny_model(cfg=cfg)
    f = m.encode(torch.rand(1, 3, 11, 9))
    coords, cell = grid(37, 29)
    with torch.no_grad():
        whole = m.query(f, coords, cell)
        chunked = query_chunked(m, f, coords, cell, chunk=100)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)


@pytest.mark.parametrize("cfg", [TINY, TINY_LTE, dataclasses.replace(TINY, mlp_layers=2),
                                 dataclasses.replace(TINY_LTE, mlp_layers=0)],
                         ids=["liif", "lte", "liif-2-layers", "lte-0-layers"])
def test_inference_decoder_equals_autograd_path(cfg):
    """Without grad, queries are decoded in place into reused buffers (LIIF._decode): the same
    colours as the training path, whose autograd ops allocate every result."""
    m = tiny_model(cfg=cfg)
    f = m.encode(torch.rand(2, 3, 9, 12))
    coords, cell = grid(23, 31, b=2)
    trained = m.query(f, coords, cell).detach()  # grad enabled: the training path
    with torch.no_grad():
        blocked = m.query(f, coords, cell)
    torch.testing.assert_close(blocked, trained, atol=1e-6, rtol=1e-6)


@both_decoders
def test_tiled_encoder_equals_untiled(cfg):
    m = tiny_model(cfg=cfg)
    x = torch.rand(1, 3, 50, 37)  # larger than the tile, not a multiple of it
    with torch.no_grad():
        whole = m.encode(x).hidden
        tiled = encode_tiled(m, x, tile=16).hidden
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


@both_decoders
def test_tiled_render_equals_one_shot(cfg):
    m = tiny_model(cfg=cfg)
    x = torch.rand(1, 3, 30, 22)
    size = (71, 53)  # scale ~2.4, non-square
    with torch.no_grad():
        f = m.encode(x)
        coords, cell = grid(*size)
        ref = m.query(f, coords, cell).transpose(1, 2).reshape(1, 3, *size)
    out = upscale(m, x, size, tile=20, chunk=333)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@both_decoders
def test_weights_roundtrip(tmp_path, cfg):
    m = tiny_model(cfg=cfg)
    p = tmp_path / "w.safetensors"
    save_weights(m, p, dtype=torch.float32)
    m2 = load_weights(p)
    assert m2.cfg == m.cfg
    x = torch.rand(1, 3, 9, 9)
    torch.testing.assert_close(upscale(m2, x, (20, 20)), upscale(m, x, (20, 20)))


def test_lte_basis_is_the_amplitude_times_cos_and_sin_of_the_local_frequencies():
    m = LIIF(LIIFConfig(channels=4, blocks=1, hidden=4, mlp_layers=1, decoder="lte"))
    with torch.no_grad():
        m.phase.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))  # second phase: cell x
    amp = torch.tensor([[2.0, 3.0, 5.0, 7.0]])
    freq = torch.tensor([[0.5, 0.0, 0.0, 1.0]])  # x frequencies (0.5, 0), y frequencies (0, 1)
    rel, cell = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.25, 0.5]])
    out = m._texture(torch.cat([amp, freq], 1), torch.cat([rel, cell], 1))
    arg = torch.tensor([0.5 * 0.3, -0.2 + 0.25]) * torch.pi
    torch.testing.assert_close(out[0], amp[0] * torch.cat([arg.cos(), arg.sin()]))


def test_lte_in_bfloat16_stays_close_to_float32():
    m = tiny_model(cfg=TINY_LTE)
    with torch.no_grad():
        m.proj.weight.mul_(20)  # large frequencies: the phase must not be rounded to bfloat16
    x = torch.rand(1, 3, 12, 12)
    a = upscale(m, x, (30, 30))
    b = upscale(m, x, (30, 30), compute_dtype=torch.bfloat16)
    assert (a - b).abs().mean() < 0.1 * (a - upscale(LIIF(TINY_LTE).eval(), x, (30, 30))).abs().mean()


def test_unknown_decoder_and_odd_lte_width_are_refused():
    with pytest.raises(ValueError, match="unknown decoder 'ltx'"):
        LIIFConfig(decoder="ltx")
    with pytest.raises(ValueError, match="even hidden width"):
        LIIFConfig(hidden=15, decoder="lte")


def test_weights_files_without_a_decoder_are_liif(tmp_path):
    m = tiny_model()
    p = tmp_path / "w.safetensors"
    config = {k: v for k, v in dataclasses.asdict(m.cfg).items() if k != "decoder"}  # an older file
    write_weights(m.state_dict(), config, p, format=FORMAT, version=FORMAT_VERSION)
    assert load_weights(p).cfg.decoder == "liif"


def _assert_names_file_and_version(err: pytest.ExceptionInfo, path) -> None:
    msg = str(err.value)
    assert str(path) in msg and f"version {FORMAT_VERSION}" in msg


def test_bad_weights_files(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(FieldFileError) as e:
        load_weights(garbage)
    _assert_names_file_and_version(e, garbage)

    from safetensors.torch import save_file

    m = tiny_model()
    tensors = {k: v.contiguous() for k, v in m.state_dict().items()}
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"format": "coordsr.liif", "format_version": "0",
                                           "config": json.dumps({})})
    with pytest.raises(FieldFileError) as e:
        load_weights(old)
    _assert_names_file_and_version(e, old)

    mismatched = tmp_path / "mismatched.safetensors"
    cfg = {"channels": 16, "blocks": 2, "hidden": 16, "mlp_layers": 1}
    save_file(tensors, str(mismatched), metadata={"format": "coordsr.liif", "format_version": str(FORMAT_VERSION),
                                                  "config": json.dumps(cfg)})
    with pytest.raises(FieldFileError) as e:
        load_weights(mismatched)
    _assert_names_file_and_version(e, mismatched)

    truncated = tmp_path / "truncated.safetensors"
    save_weights(m, truncated)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(FieldFileError) as e:
        load_weights(truncated)
    _assert_names_file_and_version(e, truncated)

    with pytest.raises(FieldFileError):
        pretrained(weights=str(garbage), device="cpu").upscale(np.zeros((4, 4, 3), np.float32), (8, 8))


def test_registered():
    assert METHODS["pretrained"] is pretrained
    assert pretrained.family == "pretrained"
    assert pretrained.description()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(tiny_model(), p)
    return str(p)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_pretrained_modes(tiny_weights, channels):
    rng = np.random.default_rng(channels)
    img = rng.random((13, 19, channels), dtype=np.float32)
    size = (33, 41)  # x2.54 / x2.16: non-integer, non-square
    out = pretrained(weights=tiny_weights, device="cpu", precision="fp32").upscale(img, size)
    assert out.shape == (33, 41, channels) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if channels in (2, 4):  # alpha is plain bicubic
        a = torch.from_numpy(img[:, :, -1]).double()
        ref = imresize(a, size, scale=(33 / 13, 41 / 19)).clamp(0, 1).numpy()
        np.testing.assert_allclose(out[:, :, -1], ref, atol=1e-5)
    if channels <= 2:  # grey in, grey out: the model sees R = G = B and its output is averaged
        x = torch.from_numpy(img[:, :, :1]).permute(2, 0, 1).expand(3, -1, -1)[None]
        rgb = upscale(load_weights(tiny_weights), x, size)[0]
        np.testing.assert_allclose(out[:, :, 0], rgb.mean(0).clamp(0, 1).numpy(), atol=1e-5)


def test_pretrained_progress_reports_tiles(tiny_weights):
    seen = []
    pretrained(weights=tiny_weights, device="cpu", tile=16).upscale(
        np.zeros((10, 10, 3), np.float32), (40, 40), progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 10)) and seen[-1].total == 9


def test_pretrained_preview_fills_tile_by_tile_over_bicubic(tiny_weights):
    """The live view of a running job: the tiles done so far, bicubic where none is yet."""
    rng = np.random.default_rng(5)
    img = rng.random((10, 10, 3), dtype=np.float32)
    previews = []
    out = pretrained(weights=tiny_weights, device="cpu", precision="fp32", tile=16).upscale(
        img, (40, 40), progress=lambda p: previews.append(p.preview()))
    bicubic = imresize(torch.from_numpy(img).permute(2, 0, 1).double(), (40, 40), scale=4).float()
    bicubic = bicubic.clamp(0, 1).permute(1, 2, 0).numpy()
    assert len(previews) == 9 and all(p.shape == (40, 40, 3) for p in previews)
    np.testing.assert_allclose(previews[-1], out, atol=1e-6)  # all tiles done: the result
    first = previews[0]  # one tile done: the top-left 16x16, bicubic elsewhere
    np.testing.assert_allclose(first[:16, :16], out[:16, :16], atol=1e-6)
    np.testing.assert_allclose(first[16:], bicubic[16:], atol=1e-5)
    np.testing.assert_allclose(first[:16, 16:], bicubic[:16, 16:], atol=1e-5)
    assert not np.allclose(out, bicubic, atol=1e-3)  # the test can tell the two apart


def test_shipped_weights_load_and_beat_bicubic():
    """The shipped model upscales a real photo (bundled with scikit-image) x3 better than bicubic."""
    from skimage import data

    m = load_weights(shipped_weights())
    hr = torch.from_numpy(data.astronaut()[40:160, 160:280].copy()).permute(2, 0, 1).float() / 255
    lr = imresize(hr, (40, 40), scale=1 / 3)
    sr = upscale(m, lr[None], (120, 120))[0]
    bic = imresize(lr, (120, 120), scale=3)
    psnr = lambda a: -10 * torch.log10(((a.clamp(0, 1) - hr)[:, 3:-3, 3:-3] ** 2).mean())  # noqa: E731
    assert psnr(sr) > psnr(bic) + 0.5, (psnr(sr), psnr(bic))


def test_self_ensemble_is_the_mean_of_the_turned_passes(tiny_weights):
    """ensemble=n: the mean over the first n flips/turns of the input, each output turned back;
    a non-square output checks that the 90 degree turns swap the size they ask for."""
    from coordsr.zeroshot.ops import dihedral, undihedral

    rng = np.random.default_rng(3)
    img = rng.random((9, 14, 3), dtype=np.float32)
    size = (23, 31)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    model = load_weights(tiny_weights)
    for n in (2, 8):
        passes = []
        for k in ENSEMBLE_ORDER[:n]:
            turned = dihedral(x, k)
            out_size = size if k % 2 == 0 else size[::-1]
            passes.append(undihedral(upscale(model, turned, out_size), k))
        ref = torch.stack(passes).mean(0)[0].clamp(0, 1).permute(1, 2, 0).numpy()
        out = pretrained(weights=tiny_weights, device="cpu", precision="fp32", ensemble=n).upscale(img, size)
        np.testing.assert_allclose(out, ref, atol=1e-6)
    single = pretrained(weights=tiny_weights, device="cpu", precision="fp32").upscale(img, size)
    assert not np.allclose(out, single, atol=1e-3)  # the passes differ: the test can tell
    with pytest.raises(ValueError, match="ensemble"):
        pretrained(weights=tiny_weights, ensemble=3)


def test_self_ensemble_streams_the_whole_output(tiny_weights):
    """A streamed output with ensemble > 1 is the in-memory result, quantized (no tiled shortcut)."""
    from coordsr.images import quantize

    img = np.random.default_rng(4).random((12, 10, 3), dtype=np.float32)
    m = pretrained(weights=tiny_weights, device="cpu", precision="fp32", ensemble=4, tile=8)
    rows = np.concatenate([band for _, band in m.upscale_rows(img, (30, 25)).bands])
    np.testing.assert_array_equal(rows, quantize(m.upscale(img, (30, 25)), 8))
