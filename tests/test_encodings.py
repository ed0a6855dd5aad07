"""Encodings: shape contract over the registry, values by hand, and oracles for the grid."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.autograd import gradcheck

from coordsr.encodings import (ENCODINGS, FourierFeatures, MultiresGrid, PositionalEncoding,
                               RawCoords, encoding_class)
from coordsr.encodings.grid import PRIMES, geometric_resolutions

# Small settings per registered encoding; a new encoding is tested with its defaults.
SMALL = {
    "RawCoords": dict(radius=True),
    "PositionalEncoding": dict(n_freqs=4),
    "FourierFeatures": dict(n_features=8, sigma=2.0),
    # Levels 2, 4, 8, 16: (R + 1)^2 = 9, 25, 81, 289 vertices against 64 rows -> 2 dense, 2 hashed.
    "MultiresGrid": dict(n_levels=4, n_features=3, base_resolution=2, finest_resolution=16,
                         log2_table_size=6, init_scale=0.5),
}
SMOOTH = ["RawCoords", "PositionalEncoding", "FourierFeatures"]


pytestmark = pytest.mark.usefixtures("one_thread")


def make(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return ENCODINGS[name](**{**SMALL.get(name, {}), **kw})


def points(*lead: int, dim: int = 2, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(*lead, dim, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)


# ---- the shape contract, for every registered encoding --------------------------------------
@pytest.mark.parametrize("name", list(ENCODINGS))
@pytest.mark.parametrize("lead", [(), (5,), (3, 4)])
def test_shapes_with_leading_dims(name, lead):
    enc = make(name)
    y = enc(points(*lead))
    assert y.shape == (*lead, enc.out_dim)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(ENCODINGS))
@pytest.mark.parametrize("in_dim", [1, 3])
def test_other_input_dimensions(name, in_dim):
    enc = make(name, in_dim=in_dim)
    assert enc.in_dim == in_dim
    y = enc(points(2, 3, dim=in_dim))
    assert y.shape == (2, 3, enc.out_dim)


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_float64_matches_float32(name):
    enc = make(name)
    x = points(7)
    y32 = enc(x)
    y64 = enc.double()(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y32, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", SMOOTH)
def test_gradcheck_inputs(name):
    enc = make(name).double()
    x = points(3, dtype=torch.float64).requires_grad_()
    assert gradcheck(enc, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_gradients_reach_inputs(name):
    enc = make(name)
    x = points(6).requires_grad_()
    y = enc(x)
    # A random projection: sum(y^2) would be constant for Fourier features (cos^2 + sin^2).
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_unknown_encoding_lists_valid_names():
    with pytest.raises(ValueError, match="MultiresGrid"):
        encoding_class("HashGrid")
    assert encoding_class("RawCoords") is RawCoords


# ---- values by hand ---------------------------------------------------------------------------
def test_raw_coords_radius():
    x = torch.tensor([[3.0, 4.0], [-1.0, 0.0]])
    torch.testing.assert_close(RawCoords()(x), x)
    torch.testing.assert_close(RawCoords(radius=True)(x), torch.tensor([[3.0, 4.0, 5.0],
                                                                         [-1.0, 0.0, 1.0]]))


def test_positional_values_by_hand():
    enc = PositionalEncoding(in_dim=2, n_freqs=3).double()
    pts = [(0.3, -0.7), (1.0, 0.125), (-0.51, 0.0)]
    got = enc(torch.tensor(pts, dtype=torch.float64))
    for row, (x, y) in zip(got.tolist(), pts):
        want = [x, y]
        for k in range(3):
            w = 2**k * math.pi
            want += [math.sin(w * x), math.sin(w * y), math.cos(w * x), math.cos(w * y)]
        assert row == pytest.approx(want, abs=1e-12)
    assert PositionalEncoding(n_freqs=3, include_input=False).out_dim == 12


def test_fourier_values_by_hand():
    enc = FourierFeatures(in_dim=2, n_features=5, sigma=3.0, seed=7).double()
    B = enc.B.tolist()
    pts = [(0.3, -0.7), (1.0, 0.125)]
    got = enc(torch.tensor(pts, dtype=torch.float64))
    for row, (x, y) in zip(got.tolist(), pts):
        phase = [2 * math.pi * (b[0] * x + b[1] * y) for b in B]
        assert row == pytest.approx([math.cos(p) for p in phase] + [math.sin(p) for p in phase],
                                    abs=1e-12)


def test_fourier_matrix_is_seeded_and_saved():
    a, b = FourierFeatures(sigma=2.0, seed=1), FourierFeatures(sigma=2.0, seed=1)
    torch.testing.assert_close(a.B, b.B)
    assert 1.7 < a.B.std() < 2.3  # 512 draws of N(0, 2^2)
    other = FourierFeatures(sigma=2.0, seed=2)
    assert not torch.equal(other.B, a.B)
    other.load_state_dict(a.state_dict())  # B travels with the weights
    x = points(4)
    torch.testing.assert_close(other(x), a(x))


# ---- the grid ---------------------------------------------------------------------------------
def test_level_resolutions_are_geometric():
    assert geometric_resolutions(16, 16, 512)[0] == 16
    assert geometric_resolutions(16, 16, 512)[-1] == 512
    assert geometric_resolutions(5, 16, 256) == (16, 32, 64, 128, 256)
    assert geometric_resolutions(1, 8, 8) == (8,)
    g = MultiresGrid()  # the defaults: 16 levels up to 512, 2^19 rows, so every level is dense
    assert len(g.level_resolutions) == 16 and not any(g.level_hashed)
    assert g.out_dim == 32
    g = MultiresGrid(log2_table_size=14)  # (128 + 1)^2 > 2^14: the finer levels are hashed
    assert g.level_hashed == tuple((r + 1)**2 > 2**14 for r in g.level_resolutions)
    assert 0 < sum(g.level_hashed) < 16
    assert not any(MultiresGrid(log2_table_size=10, hashed=False).level_hashed)


def naive_vertex_value(grid: MultiresGrid, level: int, vertex: tuple[int, ...]) -> list[float]:
    """The features stored for one vertex, with the hash written out in Python integers."""
    if grid.level_hashed[level]:
        h = 0
        for i, p in zip(vertex, PRIMES):
            h ^= i * p
        row = h % grid.level_sizes[level]
    else:
        row = sum(i * (grid.level_resolutions[level] + 1)**d for d, i in enumerate(vertex))
    return grid.table[:, grid.level_offsets[level] + row].tolist()


def naive_grid(grid: MultiresGrid, x: list[float]) -> list[float]:
    """Multilinear interpolation written out point by point, corner by corner."""
    out = []
    for level, R in enumerate(grid.level_resolutions):
        u = [min(max((c + 1) / 2, 0.0), 1.0) * R for c in x]  # clamp, then vertex units
        i0 = [min(math.floor(c), R - 1) for c in u]
        f = [c - i for c, i in zip(u, i0)]
        acc = [0.0] * grid.n_features
        for corner in itertools.product((0, 1), repeat=len(x)):
            w = math.prod(fd if c else 1 - fd for c, fd in zip(corner, f))
            vals = naive_vertex_value(grid, level, tuple(i + c for i, c in zip(i0, corner)))
            acc = [a + w * v for a, v in zip(acc, vals)]
        out += acc
    return out


def oracle_points(dim: int) -> torch.Tensor:
    x = points(40, dim=dim, dtype=torch.float64, seed=3) * 1.1  # some points outside the image
    edges = torch.tensor([[-1.0] * dim, [1.0] * dim, [1.0] + [-1.0] * (dim - 1), [0.0] * dim],
                         dtype=torch.float64)
    return torch.cat((x, edges))


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_grid_matches_naive_interpolation(dim, grad):
    # Both evaluation modes: with autograd and few points, hashed levels use the corner gather;
    # without, they are materialised and sampled (2-D and 3-D).
    # Rows per table chosen so that every dimension has dense and hashed levels.
    grid = make("MultiresGrid", in_dim=dim, log2_table_size={1: 3, 2: 6, 3: 6}[dim]).double()
    assert any(grid.level_hashed) and not all(grid.level_hashed)
    x = oracle_points(dim)
    with torch.set_grad_enabled(grad):
        got = grid(x)
    want = torch.tensor([naive_grid(grid, p) for p in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_hashed_grid_equals_dense_oracle():
    # A hashed level must behave exactly like a dense level holding, at every vertex, the row
    # the hash sends it to. (A level is only hashed when it has more vertices than rows, so
    # collisions always exist; they do not matter for this equality.)
    hashed = make("MultiresGrid").double()
    dense = make("MultiresGrid", hashed=False).double()
    assert dense.level_resolutions == hashed.level_resolutions and not any(dense.level_hashed)
    with torch.no_grad():
        for lv, R in enumerate(hashed.level_resolutions):
            vertices = itertools.product(range(R + 1), repeat=2)
            cols = [naive_vertex_value(hashed, lv, (ix, iy)) for iy, ix in vertices]  # x fastest
            dense.level_block(lv).copy_(torch.tensor(cols, dtype=torch.float64).t())
    x = oracle_points(2)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            torch.testing.assert_close(hashed(x), dense(x), atol=1e-12, rtol=0)
    # Enough points that the autograd mode materialises the hashed levels too.
    many = points(3000, dtype=torch.float64)
    torch.testing.assert_close(hashed(many), dense(many), atol=1e-12, rtol=0)


def test_grid_gradcheck_inputs_and_table():
    grid = make("MultiresGrid").double()
    x = points(4, dtype=torch.float64, seed=5).requires_grad_()
    assert gradcheck(grid, (x,), eps=1e-7, atol=1e-6)

    def of_table(table):
        return torch.func.functional_call(grid, {"table": table}, (x.detach(),))

    table = grid.table.detach().clone().requires_grad_()
    assert gradcheck(of_table, (table,), eps=1e-6, atol=1e-6)


def test_grid_gradients_reach_the_table_rows_used():
    grid = make("MultiresGrid")
    x = torch.tensor([[-0.9, -0.9]])  # one point: only the cells around it get gradient
    grid(x).sum().backward()
    g = grid.table.grad
    assert g is not None and torch.isfinite(g).all()
    coarse = g[:, :grid.level_sizes[0]]  # level 0 is dense, 3 x 3 vertices: 4 corners touched
    assert (coarse[0] != 0).sum() == 4
    for lv in range(grid.n_levels):  # each level: its 4 corners, fewer where the hash collides
        off, n = grid.level_offsets[lv], grid.level_sizes[lv]
        assert 0 < (g[0, off:off + n] != 0).sum() <= 4


def test_level_weights_and_max_level():
    grid = make("MultiresGrid")
    x = points(10)
    full = grid(x).view(10, 4, 3)
    cut = grid(x, max_level=2).view(10, 4, 3)
    torch.testing.assert_close(cut[:, :2], full[:, :2])
    assert (cut[:, 2:] == 0).all()
    w = torch.tensor([1.0, 0.5, 0.25, 0.0], requires_grad=True)
    weighted = grid(x, level_weights=w)
    torch.testing.assert_close(weighted.view(10, 4, 3), full * w.detach()[:, None])
    weighted.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    torch.testing.assert_close(grid.forward_levels(x), full)
    with pytest.raises(ValueError):
        grid(x, level_weights=torch.ones(3))


def test_materialised_levels_follow_table_updates():
    # Without autograd hashed levels are materialised and kept; an optimiser step or a loaded
    # state dict must not leave a stale copy behind.
    grid = make("MultiresGrid")
    x = points(50)
    with torch.no_grad():
        before = grid(x)
    opt = torch.optim.SGD(grid.parameters(), lr=10.0)
    grid(x).square().sum().backward()
    opt.step()
    with torch.no_grad():
        after = grid(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, grid(x).detach())  # autograd path: no cache involved
    fresh = make("MultiresGrid", init_scale=0.1)
    fresh.load_state_dict(grid.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), after)


def test_grid_output_feeds_a_linear_layer():
    # The output may be a transposed view; a following Linear and .reshape must accept it.
    grid = make("MultiresGrid")
    y = grid(points(6, 5))
    lin = torch.nn.Linear(grid.out_dim, 2)
    torch.testing.assert_close(lin(y), lin(y.contiguous()))
    assert y.reshape(-1, grid.out_dim).shape == (30, 12)


def test_grid_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        make("MultiresGrid")(torch.zeros(4, 3))


@pytest.mark.parametrize("kw", [
    {},                                                           # every level dense
    {"finest_resolution": 2048, "log2_table_size": 10},           # hashed levels, materialised
    {"finest_resolution": 2048, "log2_table_size": 10, "fetch": True},  # hashed, fetched per point
])
@pytest.mark.parametrize("box, h, w", [
    ((-1, -1, 1, 1), 9, 13),          # coarser than the grid: gathers
    ((-1, -1, 1, 1), 300, 200),       # denser than the grid: matrix products
    ((-1.3, -0.2, 0.4, 1.2), 40, 70), # partly outside: border clamp
    ((0.1, 0.1, 0.11, 0.9), 3, 50),   # thin sliver, both paths in one call
])
def test_separable_grid_equals_pointwise(kw, box, h, w, monkeypatch):
    from coordsr.coords import axis_centers
    from coordsr.encodings import grid as grid_module

    kw = dict(kw)
    if kw.pop("fetch", False):
        monkeypatch.setattr(grid_module, "MATERIALISE_MAX_BYTES", 0)
    grid = make("MultiresGrid", n_levels=6, base_resolution=3, **{"finest_resolution": 40, **kw},
                init_scale=1.0)
    xs, ys = axis_centers(w, box[0], box[2]), axis_centers(h, box[1], box[3])
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    with torch.no_grad():
        expected = grid(torch.stack((xx, yy), dim=-1))
        got = grid.forward_grid(xs, ys)
    assert got.shape == (h, w, grid.out_dim)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_separable_grid_needs_2d_input():
    with pytest.raises(ValueError, match="2-D"):
        make("MultiresGrid", in_dim=3).forward_grid(torch.zeros(4), torch.zeros(4))
