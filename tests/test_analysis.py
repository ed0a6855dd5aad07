"""Issue 15: the diagnostics of `coordsr analyze`, pinned on cases with known answers."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from coordsr.analysis import jacobian as jac
from coordsr.analysis import linearity, ntk, spectra
from coordsr.analysis.common import center_index
from coordsr.cli import main
from coordsr.coords import pixel_centers
from coordsr.field import Field, FieldConfig, ImageMeta
from coordsr.render import render_field


def linear_field(h=8, w=10, channels=3, seed=0):
    """A field with no hidden layer: f(x, y) = A (x, y) + b, exactly linear."""
    torch.manual_seed(seed)
    meta = ImageMeta(height=h, width=w, channels=channels)
    return Field(FieldConfig(encoding="RawCoords", layers=0, hidden=4, aspect=False), meta).eval()


@pytest.mark.parametrize("scale", [2, 3, 4, 5])
def test_a_linear_field_departs_zero_from_linearity(scale):
    field = linear_field()
    with torch.no_grad():  # small weights so that the render is not clipped at 0 or 1
        field.net.net[0].weight.mul_(0.05)
    image = render_field(field, (8 * scale, 10 * scale))
    dep = linearity.departure(image, scale)
    assert dep["rms"] < 1e-3 and dep["max"] < 1e-3  # float32 rendering, in 8-bit levels


def test_departure_is_the_parabola_bulge():
    """y = x^2 along x: between centres at distance d, the chord sits d^2 t (1 - t) above it."""
    scale, w = 3, 6
    xs = (np.arange(w * scale) - center_index(0, scale)) / scale  # input-pixel units, 0 at centre 0
    image = np.tile((xs ** 2 / 255.0)[None, :], (2 * scale, 1))  # 1 input pixel = 1 level of curvature
    dep = linearity.departure(image, scale)
    t = np.array([1, 2]) / 3
    expected = np.sqrt(np.mean((t * (1 - t)) ** 2))
    assert dep["horizontal"] == pytest.approx(np.full((2, w - 1), expected), rel=1e-9)
    assert np.allclose(dep["vertical"], 0)


def test_bicubic_departs_and_bilinear_does_not():
    from coordsr.methods.interpolation import bicubic, bilinear

    rng = np.random.default_rng(0)
    img = rng.random((12, 12, 1)).astype(np.float32)
    assert linearity.departure(bicubic(device="cpu").upscale(img, (36, 36)), 3)["rms"] > 1.0
    # bilinear (triangle kernel) is linear between centres except near the border (clamped edge)
    dep = linearity.departure(bilinear(device="cpu").upscale(img, (36, 36)), 3)
    assert np.abs(dep["horizontal"][1:-1, 1:-1]).max() < 1e-3


def test_a_linear_field_has_a_constant_jacobian_equal_to_its_weights():
    field = linear_field(channels=1)
    coords = pixel_centers(16, 20)
    norm = jac.jacobian_norm(field, coords, (8, 10))
    A = field.net.net[0].weight.detach()[0]  # (2,) d luma / d(x, y) in field units
    expected = 255.0 * float(torch.linalg.vector_norm(A * torch.tensor([2 / 10, 2 / 8])))
    assert np.allclose(norm, expected, rtol=1e-5)


def test_autograd_jacobian_agrees_with_finite_differences():
    torch.manual_seed(1)
    meta = ImageMeta(height=8, width=8, channels=1)
    field = Field(FieldConfig(encoding="RawCoords", activation="tanh", hidden=16, layers=2), meta).eval()
    with torch.no_grad():
        field.net.net[-1].weight.mul_(0.1)  # keep the output inside (0, 1): no clipping
    scale = 16
    image = render_field(field, (8 * scale, 8 * scale))
    assert 0.01 < image.min() and image.max() < 0.99  # not clipped
    auto = jac.jacobian_norm(field, pixel_centers(8 * scale, 8 * scale), (8, 8))
    fd = jac.finite_difference_norm(image, scale)
    inner = (slice(2, -2), slice(2, -2))
    assert np.allclose(auto[inner], fd[inner], rtol=2e-2, atol=0.05)


def test_relu_regions_along_a_line_match_the_first_layer_kinks():
    """One hidden ReLU layer on raw coordinates: unit k switches where w_k . p + b_k = 0, a line;
    along a segment it switches at most once, so the changes are the units that change sign."""
    torch.manual_seed(3)
    meta = ImageMeta(height=8, width=8, channels=1)
    field = Field(FieldConfig(encoding="RawCoords", activation="relu", hidden=32, layers=1, aspect=False),
                  meta).eval()
    a, b = torch.tensor([-0.9, 0.1]), torch.tensor([0.9, 0.1])
    W, c = field.net.net[0].weight.detach(), field.net.net[0].bias.detach()
    expected = int(((a @ W.T + c > 0) != (b @ W.T + c > 0)).sum())
    got = jac.regions_along_line(field, a.tolist(), b.tolist(), points=20001)
    assert got["flips"] == expected
    assert got["changes"] <= expected  # two kinks between neighbouring samples count once
    edges, distinct = jac.region_map(field, pixel_centers(64, 64))
    assert distinct >= 1 and edges.dtype == bool


def test_regions_refuse_a_network_without_relu():
    field = Field(FieldConfig(encoding="RawCoords", activation="tanh", hidden=4, layers=1),
                  ImageMeta(height=4, width=4, channels=1))
    with pytest.raises(ValueError, match="no ReLU"):
        jac.activation_patterns(field, torch.zeros(3, 2))


@pytest.mark.parametrize("scale", [1, 4])
def test_a_single_frequency_has_its_power_at_that_frequency(scale):
    n, k = 64, 10  # 10 cycles over 64 input pixels: 0.15625 cycles per input pixel
    x = (np.arange(n * scale) + 0.5) / (n * scale)
    image = 0.5 + 0.2 * np.cos(2 * np.pi * k * x)[None, :].repeat(n * scale, 0)
    spec = spectra.radial_spectrum(image, scale)
    f0 = k / n
    assert spec["freq"][np.argmax(spec["power"])] == pytest.approx(f0)
    near = np.abs(spec["freq"] - f0) <= 1.01 / n
    assert spec["energy"][near].sum() > 0.99 * spec["energy"].sum()
    # the peak bin holds A^2 / 4 per side, as the module promises (the window's mean fills it)
    power, fy, fx = spectra.power_spectrum(image, scale)
    assert power[0, np.argmin(np.abs(fx - f0))] == pytest.approx(0.2 ** 2 / 4, rel=1e-3)


def test_spectra_agree_across_scales_below_the_input_nyquist():
    """A band-limited image drawn at x1 and x4 has the same power on the shared bins."""
    n = 32
    x = (np.arange(4 * n) + 0.5) / (4 * n)
    fine = 0.5 + 0.1 * np.cos(2 * np.pi * 3 * x)[None, :] * np.cos(2 * np.pi * 5 * x)[:, None]
    coarse = fine.reshape(n, 4, n, 4).mean(axis=(1, 3))
    s1, s4 = spectra.radial_spectrum(coarse, 1), spectra.radial_spectrum(fine, 4)
    assert np.argmax(s4["power"]) == np.argmax(s1["power"])
    low, high = spectra.band_energy(s4, 0, 0.5), spectra.band_energy(s4, 0.5, 2)
    box = (np.sinc(4 * 3 / 128) * np.sinc(4 * 5 / 128)) ** 2  # what averaging 4 x 4 pixels keeps
    assert low * box == pytest.approx(spectra.band_energy(s1, 0, 0.5), rel=0.05)
    assert high < 1e-3 * low


def test_ntk_of_a_linear_model_is_the_gram_matrix_of_its_features():
    from coordsr.encodings import FourierFeatures

    torch.manual_seed(0)
    enc = FourierFeatures(n_features=8, sigma=1.0)
    lin = nn.Linear(enc.out_dim, 1)
    x = torch.rand(20, 2) * 2 - 1
    K = ntk.empirical_ntk(lambda c: lin(enc(c))[..., 0], lin, x)
    phi = enc(x).double()
    assert torch.allclose(K, phi @ phi.T + 1, atol=1e-5)
    eig = ntk.spectrum(K)
    assert np.all(np.diff(eig) <= 1e-9) and ntk.summarize(eig)["above_1e-3"] <= enc.out_dim + 1


def test_ntk_handles_a_hash_grid_and_is_positive_semidefinite():
    from coordsr.methods import get_method

    meta = ImageMeta(height=16, width=16, channels=3)
    up = get_method("hashgrid")(device="cpu", levels=4, log2_table_size=8)
    field = Field(up.field_config(meta, (64, 64)), meta)
    x = pixel_centers(16, 16).reshape(-1, 2)[::13]
    K = ntk.empirical_ntk(lambda c: jac.luma_of(field(c)), field, x)
    dense = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        jac.luma_of(field(x[i:i + 1])).sum(), list(field.parameters()))]) for i in range(len(x))]).double()
    assert torch.allclose(K, dense @ dense.T, rtol=1e-6, atol=1e-8)
    assert ntk.spectrum(K).min() > -1e-6 * ntk.spectrum(K).max()


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    from PIL import Image

    from test_methods import smooth_image

    path = tmp_path / "small.png"
    Image.fromarray((smooth_image(24, 24, 3) * 255).astype(np.uint8)).save(path)
    return path


def test_analyze_writes_figures_and_numbers(tmp_path, small, capsys):
    out = tmp_path / "an"
    code = main(["analyze", str(small), "--out", str(out), "-m", "hashgrid,bicubic", "--steps", "3",
                 "--downscale", "2", "--ntk-points", "8", "--set", "levels=2", "--set", "log2_table_size=8", "-q"])
    assert code == 0, capsys.readouterr().err
    numbers = json.loads((out / "analysis.json").read_text())
    assert set(numbers["methods"]) == {"hashgrid", "bicubic"}
    hg = numbers["methods"]["hashgrid"]
    assert hg["jacobian"]["how"] == "autograd" and "regions" in hg and "fitted" in hg["ntk"]
    assert numbers["linearity_scale"] == 2 and "HR" not in numbers["methods"] and "hr" in numbers
    through = hg["training_spectra"]  # the bands' energy through the fit: its first and last steps
    assert through["steps"] == [1, 3] and len(through["band_energy"]) == 2 and through["scale"] == 2
    assert len(through["band_energy"][0]) == len(numbers["spectra"]["bands"])
    for name in ("linearity", "linearity_maps", "jacobian_maps", "jacobian_hist", "regions", "spectra_x4",
                 "spectra_x8", "spectra_training", "ntk"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_analyze_a_saved_field(tmp_path, small, capsys):
    field = tmp_path / "f.field"
    assert main(["fit", str(small), "-o", str(field), "-m", "siren", "--steps", "2", "--set", "hidden=8",
                 "-q"]) == 0
    out = tmp_path / "an"
    assert main(["analyze", str(field), "--out", str(out), "--ntk-points", "6", "-q"]) == 0
    numbers = json.loads((out / "analysis.json").read_text())
    assert set(numbers["methods"]) == {"siren", "bicubic"} and "regions" not in numbers["methods"]["siren"]


@pytest.mark.parametrize("args, needle", [
    (["missing.png"], "missing.png"),
    (["small.png", "--downscale", "1"], "--downscale"),
    (["small.png", "--hr", "small.png"], "small.png"),
    (["small.png", "-m", "nosuch"], "nosuch"),
    (["small.png", "--steps", "0"], "--steps"),
    (["bad.field"], "bad.field"),
])
def test_analyze_bad_input_is_one_line_and_leaves_nothing(tmp_path, small, capsys, args, needle):
    (tmp_path / "bad.field").write_bytes(b"not a field")
    args = [str(tmp_path / a) if a.endswith((".png", ".field")) else a for a in args]
    out = tmp_path / "an"
    code = main(["analyze", *args, "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_analyze_refuses_a_folder_that_is_not_empty(tmp_path, small, capsys):
    out = tmp_path / "an"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["analyze", str(small), "--out", str(out), "-q"]) != 0
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_training_spectra_record_log_spaced_steps_and_the_last():
    from coordsr.analysis.run import BANDS, TrainingSpectra
    from coordsr.progress import Progress

    x = np.arange(32)
    drawn = 0.5 + 0.25 * np.cos(2 * np.pi * 4 / 32 * x)[None, :, None].repeat(32, 0).repeat(3, 2)
    rec = TrainingSpectra(input_width=16)  # drawn at x2
    for step in [1, *range(25, 1001, 25), 1010]:
        rec(Progress(step=step, total=1010, stage="fit", preview=lambda: drawn))
    got = rec.numbers()
    assert got["steps"][:3] == [1, 25, 50] and got["steps"][-1] == 1010 and got["scale"] == 2
    gaps = np.diff(got["steps"][2:-1])
    assert len(got["steps"]) < 20 and (gaps[1:] >= gaps[:-1]).all()  # sparser as the fit goes on
    # a cosine of 4 cycles in 32 drawn pixels = 0.25 cycles per input pixel: all in the first band
    assert BANDS[0][0] < 0.25 <= BANDS[0][1] and got["band_energy"][0][0] > 100 * sum(got["band_energy"][0][1:])
