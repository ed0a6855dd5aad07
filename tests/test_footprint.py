"""Regions instead of points: encodings' expected values over a footprint, footprint renders,
and the area observation model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coordsr.encodings import FourierFeatures, MultiresGrid, PositionalEncoding
from coordsr.field import Field, FieldConfig, ImageMeta
from coordsr.fit import FitConfig, fit
from coordsr.render import AREA_SUPERSAMPLE, parse_footprint, render_field


def monte_carlo_mean(encoding, mu: torch.Tensor, var: torch.Tensor, n: int = 400_000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = mu + torch.randn(n, mu.shape[-1], generator=gen, dtype=torch.float64) * var.double().sqrt()
    return encoding.double()(x).mean(0).float()


@pytest.mark.parametrize("encoding", [FourierFeatures(n_features=16, sigma=2.0),
                                      PositionalEncoding(n_freqs=4)], ids=["fourier", "positional"])
def test_integrated_encoding_is_the_expected_encoding(encoding):
    """Mip-NeRF's closed form equals the mean over Gaussian samples (to Monte Carlo error), and a
    zero footprint gives the point encoding."""
    mu = torch.tensor([[0.3, -0.2]])
    var = torch.tensor([0.004, 0.001])
    closed = encoding(mu)[0] * encoding.footprint_weights(var)
    torch.testing.assert_close(closed, monte_carlo_mean(encoding, mu.double(), var), atol=4e-3, rtol=0)
    assert torch.equal(encoding.footprint_weights(torch.zeros(2)), torch.ones(encoding.out_dim))
    assert encoding.footprint_weights(var).min() < 0.9  # the test can tell a footprint from none


def test_grid_levels_fade_as_the_footprint_outgrows_their_cells():
    grid = MultiresGrid(n_levels=6, base_resolution=4, finest_resolution=128)
    assert torch.equal(grid.footprint_weights(torch.zeros(2)), torch.ones(grid.out_dim))
    cell = 2 / 16  # a footprint one 16-cell-level cell wide (in [-1, 1] units)
    w = grid.footprint_weights(torch.tensor([cell**2 / 12] * 2)).view(6, -1)[:, 0]
    assert (w[1:] <= w[:-1]).all()  # finer levels fade more
    assert w[0] > 0.99 and w[-1] < 0.2


def _field(encoding: str, args: dict, channels: int = 3, seed: int = 0) -> Field:
    torch.manual_seed(seed)
    return Field(FieldConfig(encoding=encoding, encoding_args=args, hidden=16, layers=2),
                 ImageMeta(8, 12, channels)).eval()


def test_footprint_renders():
    """supersample:1 is the point render; supersample:K of a linear field is the point render too
    (the mean of a linear function over a cell is its value at the centre); 'area' of a field
    without a closed form is the AREA_SUPERSAMPLE reference; with one, a zero-size footprint is
    the point render."""
    raw = _field("RawCoords", {})
    point = render_field(raw, (7, 9))
    np.testing.assert_array_equal(render_field(raw, (7, 9), footprint="supersample:1"), point)
    np.testing.assert_allclose(render_field(raw, (7, 9), footprint="area"),
                               render_field(raw, (7, 9), footprint=f"supersample:{AREA_SUPERSAMPLE}"), atol=1e-6)
    linear = Field(FieldConfig(hidden=4, layers=0), ImageMeta(8, 12, 3)).eval()
    np.testing.assert_allclose(render_field(linear, (7, 9), footprint="supersample:5"),
                               render_field(linear, (7, 9)), atol=1e-6)
    grid = _field("MultiresGrid", {"n_levels": 4, "base_resolution": 2, "finest_resolution": 16})
    with torch.no_grad():
        grid.encoding.table.normal_(std=0.5)
        coords = torch.rand(5, 2) * 2 - 1
        torch.testing.assert_close(grid(coords, var=torch.zeros(2)), grid(coords))
    assert grid.has_footprint and not raw.has_footprint
    with pytest.raises(ValueError, match="closed-form"):
        raw(coords, var=torch.zeros(2))
    # a 3x3 render of a field with 16-cell detail: the area render differs from the point one
    assert not np.allclose(render_field(grid, (3, 3), footprint="area"), render_field(grid, (3, 3)), atol=1e-4)


def test_separable_area_render_equals_pointwise_area_render():
    grid = _field("MultiresGrid", {"n_levels": 4, "base_resolution": 2, "finest_resolution": 16})
    with torch.no_grad():
        grid.encoding.table.normal_(std=0.5)
    pointwise = lambda c, **kw: grid(c, **kw)  # noqa: E731 - no forward_grid: the point-by-point path
    pointwise.has_footprint = True
    from coordsr.render import render

    np.testing.assert_allclose(render(pointwise, (6, 10), 3, footprint="area"),
                               render_field(grid, (6, 10), footprint="area"), atol=1e-5)


@pytest.mark.parametrize("text", ["", "areas", "supersample", "supersample:0", "supersample:17", "point:2"])
def test_bad_footprints(text):
    with pytest.raises(ValueError, match="footprint"):
        parse_footprint(text)


def _stripes(h: int = 8, w: int = 12) -> np.ndarray:
    """Stripes 3 pixels apart across: a pixel's cell mean is far from its centre's value."""
    x = np.arange(w) + 0.5
    return np.broadcast_to((0.5 + 0.3 * np.sin(2 * np.pi * x / 3))[None, :, None], (h, w, 3)).astype(np.float32).copy()


@pytest.mark.parametrize("encoding,args,activation", [("RawCoords", {}, "sine"),
                                                       ("FourierFeatures", {"n_features": 32, "sigma": 3.0}, "relu")],
                         ids=["supersampled", "closed-form"])
def test_area_fit_matches_cell_means(encoding, args, activation):
    """An area fit brings the field's cell means, not its centre values, to the image: on stripes
    whose cell means and centre values differ, the area render matches and the point render
    overshoots (the centres must swing wider for the means to match)."""
    image = _stripes()
    torch.manual_seed(0)
    field = Field(FieldConfig(encoding=encoding, encoding_args=args, activation=activation, hidden=64, layers=2),
                  ImageMeta(8, 12, 3)).train()
    fit(field, image, FitConfig(steps=300, until="steps", lr=1e-2, observation="area"))
    field.eval()
    area, point = render_field(field, (8, 12), footprint="area"), render_field(field, (8, 12))
    assert np.abs(area - image).mean() < 0.02
    assert np.abs(point - 0.5).mean() > np.abs(image - 0.5).mean() + 0.02


def test_cli_area_fit_renders_by_area_and_bad_footprints_fail(tmp_path, capsys):
    """`--fit area` then `coordsr render` draws the cells' means by default (as `upscale` did);
    --footprint point draws the centres; a bad footprint is one line, no file."""
    from PIL import Image

    from coordsr.cli import main

    photo = tmp_path / "photo.png"
    Image.fromarray((_stripes(12, 16) * 255).astype(np.uint8)).save(photo)
    field, a, b, c = (tmp_path / n for n in ("p.field", "a.png", "b.png", "c.png"))
    common = ["--method", "hashgrid", "--steps", "20", "--seed", "3", "--scale", "2", "--fit", "area", "-q"]
    assert main(["fit", str(photo), "-o", str(field), *common]) == 0
    assert main(["render", str(field), "-o", str(a), "--scale", "2", "-q"]) == 0
    assert main(["upscale", str(photo), "-o", str(b), *common]) == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    assert main(["render", str(field), "-o", str(c), "--scale", "2", "--footprint", "point", "-q"]) == 0
    assert not np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(c)))
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    assert main(["render", str(field), "-o", str(bad), "--footprint", "blur"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--footprint" in err and not bad.exists()


def test_mip_levels_are_block_means_at_their_cells():
    """Each reduced copy of a mip fit holds 2x2 block means of the one before, at the centres of
    the cells they cover (odd sides drop a row or column): on a linear image, whose block means
    are its values at the block centres, every level's targets are the image's plane at its coords."""
    from coordsr.fit import MipObservation
    from coordsr.coords import pixel_centers

    h, w = 37, 70  # odd and even sides: 37 -> 18 -> 9, 70 -> 35 -> 17
    plane = lambda c: 0.3 + 0.2 * c[..., :1] - 0.1 * c[..., 1:]  # noqa: E731
    image = plane(pixel_centers(h, w)).expand(h, w, 3).contiguous()
    obs = MipObservation(image, "cell", 0, torch.Generator().manual_seed(0))
    assert [len(level.target) for level in obs.levels] == [37 * 70, 18 * 35, 9 * 17]
    for level in obs.levels:
        torch.testing.assert_close(level.target, plane(level.coords).expand(-1, 3), atol=1e-6, rtol=0)
        torch.testing.assert_close(level.var, obs.levels[0].var * (len(obs.levels[0].target) / len(level.target)),
                                   rtol=0.1, atol=0)  # a cell's variance grows with its area


def test_mip_fit_draws_a_field_smaller_without_aliasing():
    """A hashgrid fitted with the mip model and drawn at a quarter of its size by its closed-form
    footprint matches the image's 4x4 block means better than the point fit's point render."""
    from coordsr.methods.fields import hashgrid
    from coordsr.metrics import psnr_y

    rng = np.random.default_rng(0)
    image = np.clip(0.5 + 0.25 * rng.standard_normal((32, 32, 1)).repeat(3, axis=2), 0, 1).astype(np.float32)
    truth = image.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
    scores = {}
    for fit_model in ("point", "mip"):
        method = hashgrid(device="cpu", steps=60, until="steps", fit=fit_model, levels=8, log2_table_size=10)
        field, _ = method.fit_field(image, (32, 32))
        scores[fit_model] = psnr_y(render_field(field, (8, 8), footprint=method.footprint()), truth)
    assert scores["mip"] > scores["point"] + 6, scores


def test_mip_fit_needs_the_cell_convention():
    from coordsr.methods.fields import hashgrid

    with pytest.raises(ValueError, match="convention"):
        hashgrid(device="cpu", fit="mip", convention="seed").validate()
