"""The art generator: CPPN settings, determinism, palettes, symmetries, views, warps, files."""

from __future__ import annotations

import colorsys
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr.art import CPPN, ArtConfig, Scene, View, draw, load_source, save_art_field
from coordsr.art.files import art_record
from coordsr.art.palettes import COLOURINGS, PALETTES, apply_palette, hsv_to_rgb
from coordsr.art.scene import frame_box, perturbed
from coordsr.art.symmetry import SYMMETRIES, fold
from coordsr.art.writers import png_bytes
from coordsr.errors import CoordsrError, FieldFileError

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = dict(depth=3, width=8)


def grid(n: int = 9) -> torch.Tensor:
    xs = torch.linspace(-1, 1, n)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    return torch.stack((xx, yy), dim=-1)


@pytest.mark.parametrize("mode,channels", [("grey", 1), ("rgb", 3), ("rgba", 4)])
def test_shapes_over_leading_dims_and_range(mode, channels):
    net = CPPN(ArtConfig(seed=1, mode=mode, **SMALL))
    out = net(torch.rand(2, 5, 7, 2) * 4 - 2)
    assert out.shape == (2, 5, 7, channels)
    assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_network_other_seed_other_picture():
    a = CPPN(ArtConfig(seed=3)).state_dict()
    b = CPPN(ArtConfig(seed=3)).state_dict()
    c = CPPN(ArtConfig(seed=4)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["weights.0"], c["weights.0"])


def test_same_seed_and_settings_give_the_same_png_bytes():
    def poster() -> bytes:
        net = CPPN(ArtConfig(seed=7, palette="sunset", symmetry="mirror-x"))
        return png_bytes(draw(Scene(net), (40, 64)), art_record(net.cfg, View()))

    assert poster() == poster()


def test_rendering_in_tiles_equals_one_pass():
    """render.py's tiles must not show: a 1-pixel-tile render equals a whole-frame one."""
    from coordsr.render import render

    scene = Scene(CPPN(ArtConfig(seed=2, **SMALL)))
    whole = render(scene, (12, 20), 3, box=frame_box(12, 20), tile_pixels=1 << 20)
    tiled = render(scene, (12, 20), 3, box=frame_box(12, 20), tile_pixels=7)
    np.testing.assert_allclose(whole, tiled, atol=1e-5)  # coordinates of a tile round differently


def test_latent_z_changes_the_picture_smoothly():
    net = CPPN(ArtConfig(seed=5, **SMALL))
    p = grid()
    base = net(p)
    assert torch.equal(net(p, net.z), base)
    near = net(p, net.z + 1e-3)
    far = net(p, net.z + 2.0)
    assert 0 < (near - base).abs().max() < 0.01
    assert (far - base).abs().max() > 0.05


def test_activation_specs_per_layer_and_per_unit():
    cycled = CPPN(ArtConfig(seed=1, depth=4, width=8, activation="tanh,sin"))
    assert cycled.units[:, 0].tolist() == [0, 1, 0, 1]
    mixed = CPPN(ArtConfig(seed=1, depth=4, width=16, activation="mix"))
    assert len(mixed.units.unique()) > 1  # units of one layer differ
    assert mixed(grid()).isfinite().all()


def plain_forward(net: CPPN, p: torch.Tensor) -> torch.Tensor:
    """The CPPN as its definition reads, each activation applied as written (torch.tanh, ...):
    what the folded tanh units (CPPN._folded) must reproduce."""
    plain = {"tanh": torch.tanh, "sin": torch.sin, "gauss": lambda h: torch.exp(-h * h / 2),
             "relu": torch.relu, "abs": torch.abs}
    w = list(net.weights)
    h = net.inputs(p).reshape(-1, 3) @ w[0][:, :3].t() + w[1] + w[0][:, 3:] @ net.z
    for i, units in enumerate(net.units):
        names = ["tanh", "sin", "gauss", "relu", "abs"]
        h = torch.stack([plain[names[u]](h[:, j]) for j, u in enumerate(units.tolist())], dim=1)
        h = h @ w[2 * i + 2].t() + w[2 * i + 3]
    return net._colour(h.sigmoid()).reshape(*p.shape[:-1], net.channels)


@pytest.mark.parametrize("activation", ["tanh", "mix", "tanh,sin,gauss", "relu,tanh"])
def test_folded_and_sorted_units_compute_the_networks_definition(activation):
    # CPPN._folded folds tanh into sigmoids and sorts each layer's units by activation
    net = CPPN(ArtConfig(seed=5, depth=5, width=12, activation=activation))
    p = grid(17)
    torch.testing.assert_close(net(p), plain_forward(net, p), atol=2e-5, rtol=0)


def test_gauss_units_equal_the_formula_where_exp_underflows():
    from coordsr.art.generator import _activate

    h = torch.linspace(-30, 30, 1201)  # exp(-h^2 / 2) underflows float32 past |h| 13.2
    torch.testing.assert_close(_activate(h.clone(), "gauss"), torch.exp(-h * h / 2), atol=1e-30, rtol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (dict(palette="nope"), "unknown palette 'nope'"),
    (dict(activation="tanh,swish"), "unknown activation 'swish'"),
    (dict(depth=0), "depth must be"),
    (dict(width=10**6), "width must be"),
    (dict(symmetry="spiral"), "unknown symmetry"),
    (dict(symmetry="radial", fold=1), "order"),
    (dict(mode="cmyk"), "unknown mode"),
    (dict(mode="grey", palette="fire"), "use mode rgb or rgba"),
    (dict(weight_scale=float("nan")), "weight scale"),
])
def test_bad_settings_are_one_line_value_errors(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        ArtConfig(**bad).check()
    assert "\n" not in str(info.value)


def test_palettes_hit_their_end_stops_and_hsv_matches_colorsys():
    for name, stops in PALETTES.items():
        ends = apply_palette(torch.tensor([[0.0], [1.0]]), name)
        first = [int(stops[0][i:i + 2], 16) / 255 for i in (1, 3, 5)]
        last = [int(stops[-1][i:i + 2], 16) / 255 for i in (1, 3, 5)]
        torch.testing.assert_close(ends, torch.tensor([first, last]))
    hsv = torch.rand(200, 3, generator=torch.Generator().manual_seed(0))
    expect = torch.tensor([colorsys.hsv_to_rgb(*row) for row in hsv.tolist()])
    torch.testing.assert_close(hsv_to_rgb(hsv), expect, atol=1e-5, rtol=0)
    assert set(COLOURINGS) == {"rgb", "hsv", *PALETTES}


def test_mirror_symmetry_shows_in_the_picture():
    net = CPPN(ArtConfig(seed=4, symmetry="mirror-x", **SMALL))
    img = draw(Scene(net), (16, 24), dtype=np.float32)
    np.testing.assert_allclose(img, img[:, ::-1], atol=1e-5)
    img = draw(Scene(CPPN(ArtConfig(seed=4, symmetry="mirror-y", **SMALL))), (16, 24), dtype=np.float32)
    np.testing.assert_allclose(img, img[::-1], atol=1e-5)


@pytest.mark.parametrize("name,n", [("radial", 5), ("kaleido", 6)])
def test_radial_symmetry_is_invariant_under_its_rotation(name, n):
    p = torch.rand(500, 2, dtype=torch.float64) * 2 - 1
    a = 2 * math.pi / n
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    torch.testing.assert_close(fold(p @ rot.T, name, n), fold(p, name, n), atol=1e-9, rtol=0)
    if name == "kaleido":  # and under the mirror about the x axis
        torch.testing.assert_close(fold(p * torch.tensor([1.0, -1.0], dtype=torch.float64), name, n),
                                   fold(p, name, n), atol=1e-9, rtol=0)


def test_tile_repeats_and_meets_without_a_seam():
    p = torch.rand(300, 2, dtype=torch.float64) * 2 - 1
    n = 3
    torch.testing.assert_close(fold(p + 4 / n, "tile", n), fold(p, "tile", n), atol=1e-9, rtol=0)
    edge = torch.tensor([[1 / n - 1e-7, 0.2], [1 / n + 1e-7, 0.2]], dtype=torch.float64)
    assert (fold(edge, "tile", n)[0] - fold(edge, "tile", n)[1]).abs().max() < 1e-5
    assert set(SYMMETRIES) >= {"none", "mirror-x", "radial", "kaleido", "tile"}


def test_view_zoom_centre_and_rotation_move_the_coordinates():
    net = CPPN(ArtConfig(seed=1, **SMALL))
    p = torch.tensor([[0.5, 0.0]])
    scene = Scene(net, View(zoom=2.0, center=(0.1, -0.2), angle=90.0))
    torch.testing.assert_close(scene.coords(p), torch.tensor([[0.1, 0.05]]), atol=1e-6, rtol=0)
    assert frame_box(100, 200) == (-2.0, -1.0, 2.0, 1.0)  # the shorter side spans [-1, 1]
    with pytest.raises(ValueError, match="zoom"):
        View(zoom=0).check()


def test_warp_and_jitter_change_the_picture_and_are_seeded():
    net = CPPN(ArtConfig(seed=1, **SMALL))
    plain = draw(Scene(net), (16, 16))
    assert not np.array_equal(draw(Scene(net, View(warp=0.2)), (16, 16)), plain)
    a, b = perturbed(net, 0.1, seed=3), perturbed(net, 0.1, seed=3)
    assert np.array_equal(draw(Scene(a), (16, 16)), draw(Scene(b), (16, 16)))
    assert not np.array_equal(draw(Scene(a), (16, 16)), plain)
    assert torch.equal(net.weights[0], CPPN(ArtConfig(seed=1, **SMALL)).weights[0])  # a copy


def test_art_field_file_round_trip(tmp_path):
    net = CPPN(ArtConfig(seed=9, palette="ocean", symmetry="radial", fold=7, **SMALL))
    save_art_field(net, tmp_path / "a.field", View(zoom=1.5))
    back, view = load_source(tmp_path / "a.field")
    assert back.cfg == net.cfg and view.zoom == 1.5
    assert torch.equal(back(grid()), net(grid()))
    header = json.loads(__import__("safetensors").safe_open(str(tmp_path / "a.field"), "pt").metadata()["coordsr"])
    assert header["format"] == "coordsr-art" and header["art"]["palette"] == "ocean"


def test_png_record_rebuilds_the_cppn(tmp_path):
    net = CPPN(ArtConfig(seed=2, palette="fire", **SMALL))
    (tmp_path / "a.png").write_bytes(png_bytes(draw(Scene(net), (8, 8)), art_record(net.cfg, View(angle=30))))
    back, view = load_source(tmp_path / "a.png")
    assert back.cfg == net.cfg and view.angle == 30


def test_sources_that_are_not_ours_get_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "text.field").write_text("hello")
    for name, message in [("plain.png", "has no coordsr art settings"),
                          ("other.safetensors", "from another tool"),
                          ("text.field", "not a coordsr field file"),
                          ("missing.field", "no such file")]:
        with pytest.raises(CoordsrError, match=message) as info:
            load_source(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)
    assert issubclass(FieldFileError, CoordsrError)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_rows_writer_is_lossless_and_keeps_the_record(tmp_path, channels):
    from coordsr.art.writers import write_png_rows

    rng = np.random.default_rng(channels)
    frame = rng.integers(0, 256, (150, 37, channels), dtype=np.uint8)  # bands of 64 rows, and a rest
    frame[:70] = frame[:1]  # long runs too, so 'Up' filtering wraps around 0 both ways
    write_png_rows(tmp_path / "a.png", frame, {"format": "coordsr-art", "note": "x"}, band_rows=64)
    with Image.open(tmp_path / "a.png") as im:
        back = np.asarray(im)
        assert json.loads(im.text["coordsr-art"])["note"] == "x"
    np.testing.assert_array_equal(back.reshape(frame.shape), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
