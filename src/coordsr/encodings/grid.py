"""Multiresolution feature grids (Mueller et al. 2022, "Instant Neural Graphics Primitives"),
in pure PyTorch.

L levels with resolutions growing geometrically from ``base_resolution`` to
``finest_resolution``. Level l has R_l + 1 vertices per axis laid on the cell edges of the
image: coordinate x in [-1, 1] maps to u = (x + 1) / 2 in [0, 1], then to vertex space
u * R_l, so x = -1 is vertex 0 and x = 1 is vertex R_l. A point's feature at a level is the
multilinear interpolation of its 2^D surrounding vertices. A level whose (R + 1)^D vertices fit
in the table is stored densely; a finer one is hashed into the table with Instant-NGP's spatial
hash, h(i) = XOR_d (i_d * pi_d) mod T, pi = (1, 2654435761, 805459861, ...). Coordinates
outside [-1, 1] are clamped to the border.

Layout: one parameter ``table`` of shape (n_features, total_rows). Level l owns columns
``level_offsets[l]`` to ``level_offsets[l] + level_sizes[l]``; a dense level's column is the
vertex index i_0 + i_1 (R + 1) + i_2 (R + 1)^2 (x fastest), so its block is, as a view, the
(1, F, R + 1, R + 1) image that ``F.grid_sample(..., align_corners=True)`` samples.

Three ways to evaluate a level, all equal up to float rounding (tests check it):
- dense level, 2-D or 3-D input: one ``grid_sample`` call on the block (a fused C++ kernel,
  with backward, and by far the fastest on CPU);
- hashed level, 2-D or 3-D input, many points: gather the level's vertex values into a dense
  image once ("materialise"; differentiable: its backward is a scatter-add into the table),
  then ``grid_sample``. Without autograd the image is kept until the table changes, so
  rendering a large output in tiles pays for it once;
- anything else (few points on a hashed level, other input dimensions): compute the corner
  indices with integer ops and fetch all such levels with one ``index_select``.

Output: the per-level features concatenated level by level, (..., n_levels * n_features).
The tensor returned may be a transposed view (feature-major in memory): the matrix product
of a following ``nn.Linear`` reads it without a copy.

>>> g = MultiresGrid(n_levels=4, base_resolution=2, finest_resolution=16)
>>> g.level_resolutions, g.out_dim
((2, 4, 8, 16), 8)
>>> g(torch.zeros(5, 7, 2)).shape
torch.Size([5, 7, 8])
"""

from __future__ import annotations

import functools
import itertools
import math
import operator

import torch
import torch.nn.functional as F
from torch import nn

# Instant-NGP's hash primes, one per input dimension (the first is 1 for cache coherence).
PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)

# A hashed level is materialised as a dense image only while that image stays below this many
# bytes; beyond it the corner-gather path is used.
MATERIALISE_MAX_BYTES = 256 * 2**20


def geometric_resolutions(n_levels: int, base: int, finest: int) -> tuple[int, ...]:
    """Instant-NGP's level resolutions floor(base * b^l), b = (finest / base)^(1 / (L - 1)).

    >>> geometric_resolutions(5, 16, 256)
    (16, 32, 64, 128, 256)
    """
    if n_levels < 1 or base < 1 or finest < base:
        raise ValueError(f"need n_levels >= 1 and 1 <= base <= finest; got "
                         f"{n_levels}, {base}, {finest}")
    if n_levels == 1:
        return (base,)
    growth = math.exp((math.log(finest) - math.log(base)) / (n_levels - 1))
    # The epsilon keeps base * b^(L-1) from flooring to finest - 1 through rounding.
    return tuple(int(math.floor(base * growth**level + 1e-6)) for level in range(n_levels))


# forward_grid interpolates an axis by a matrix product while a tile touches at most this many
# vertices along it (the product's cost grows with that count); by gathers beyond.
SEPARABLE_MATMUL_MAX = 64


def _axis_cells(t: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower vertex index and fraction of points t (N,) on levels of ``res`` (L, 1) cells:
    (L, N) each, border-clamped as ``grid_sample(..., padding_mode='border',
    align_corners=True)`` does."""
    pos = torch.minimum(((t + 1) * 0.5 * res).clamp(min=0), res.to(t.dtype))
    i0 = torch.minimum(pos.floor().long(), res - 1)
    return i0, pos - i0.to(pos.dtype)


def _lerp_matrices(i0: torch.Tensor, frac: torch.Tensor, n: int) -> torch.Tensor:
    """(G, N, n) matrices whose row k takes 1 - frac[g, k] of vertex i0[g, k] and frac of the next."""
    m = frac.new_zeros(*i0.shape, n)
    m.scatter_(2, i0.unsqueeze(-1), (1 - frac).unsqueeze(-1))
    m.scatter_(2, (i0 + 1).unsqueeze(-1), frac.unsqueeze(-1))
    return m


def _corners(dim: int) -> list[tuple[int, ...]]:
    """The 2^D corners of a cell as bit tuples, dimension 0 most significant."""
    return list(itertools.product((0, 1), repeat=dim))


def corner_weights(frac: torch.Tensor) -> torch.Tensor:
    """Multilinear weights of the 2^D corners: (D, ...) fractions -> (2^D, ...).

    Corner (c_0, .., c_{D-1}) gets prod_d (f_d if c_d else 1 - f_d), in ``_corners`` order.
    Dimension first, so every product is one contiguous elementwise op.
    """
    pairs = [(1 - f, f) for f in frac.unbind(0)]
    return torch.stack([functools.reduce(operator.mul, (p[c] for p, c in zip(pairs, bits)))
                        for bits in _corners(frac.shape[0])])


def corner_indices(i0: torch.Tensor, mult: torch.Tensor, hashed: bool) -> torch.Tensor:
    """Table rows of the 2^D corners of the cells whose lowest vertices are ``i0``.

    i0: (D, ...) integer vertex coordinates; mult: (D, ...) per-axis strides (dense) or hash
    primes (hashed), broadcastable to i0. Dense rows are sum_d i_d * stride_d; hashed rows are
    XOR_d i_d * prime_d, still to be reduced modulo the table size by the caller.
    Returns (2^D, ...), corners in ``corner_weights`` order.
    """
    lo = i0 * mult  # each axis' contribution at i_d
    hi = lo + mult  # and at i_d + 1, since (i + 1) * m = i * m + m
    pairs = list(zip(lo.unbind(0), hi.unbind(0)))
    combine = operator.xor if hashed else operator.add
    return torch.stack([functools.reduce(combine, (p[c] for p, c in zip(pairs, bits)))
                        for bits in _corners(i0.shape[0])])


class MultiresGrid(nn.Module):
    """Instant-NGP multiresolution grid: dense where a level fits the table, hashed above.

    Args:
        in_dim: number of input coordinates (2 for images); any D >= 1 works, D = 2 and 3 use
            ``grid_sample``; hashing supports D <= 7.
        n_levels: number of levels L.
        n_features: features per level F; the output has L * F channels.
        base_resolution: cells per axis of the coarsest level.
        finest_resolution: cells per axis of the finest level.
        log2_table_size: log2 of the rows T of a hashed level's table; a level with more than
            T vertices is hashed into T rows.
        hashed: hash the levels that do not fit; with False every level is dense, whatever its
            size.
        init_scale: features start uniform in [-init_scale, init_scale] (Instant-NGP: 1e-4).
    """

    def __init__(self, in_dim: int = 2, n_levels: int = 16, n_features: int = 2,
                 base_resolution: int = 16, finest_resolution: int = 512,
                 log2_table_size: int = 19, hashed: bool = True, init_scale: float = 1e-4):
        super().__init__()
        if in_dim < 1 or n_features < 1 or not 1 <= log2_table_size <= 40:
            raise ValueError(f"need in_dim >= 1, n_features >= 1, 1 <= log2_table_size <= 40; "
                             f"got {in_dim}, {n_features}, {log2_table_size}")
        self.in_dim, self.n_levels, self.n_features = in_dim, n_levels, n_features
        self.base_resolution, self.finest_resolution = base_resolution, finest_resolution
        self.log2_table_size, self.hashed = log2_table_size, bool(hashed)
        self.init_scale = init_scale
        self.out_dim = n_levels * n_features
        self.level_resolutions = geometric_resolutions(n_levels, base_resolution, finest_resolution)
        rows = 2**log2_table_size
        self.level_hashed = tuple(self.hashed and (r + 1)**in_dim > rows
                                  for r in self.level_resolutions)
        if any(self.level_hashed) and in_dim > len(PRIMES):
            raise ValueError(f"hashing supports in_dim <= {len(PRIMES)}, got {in_dim}")
        self.level_sizes = tuple(rows if h else (r + 1)**in_dim
                                 for r, h in zip(self.level_resolutions, self.level_hashed))
        self.level_offsets = tuple(sum(self.level_sizes[:i]) for i in range(n_levels))
        # Resolutions grow, so the hashed levels are a suffix: the table is [dense | hashed].
        self.n_dense = n_levels - sum(self.level_hashed)
        assert not any(self.level_hashed[:self.n_dense])
        table = torch.empty(n_features, sum(self.level_sizes)).uniform_(-init_scale, init_scale)
        self.table = nn.Parameter(table)  # (F, total_rows), feature-major
        # Materialised hashed levels, reused while the table is unchanged (inference only).
        self.cache_materialised = True
        self._cache: dict[int, tuple] = {}

    # ---- per-level views ------------------------------------------------------------------
    def _split_table(self) -> tuple[tuple[torch.Tensor, torch.Tensor], list[torch.Tensor]]:
        """(dense span, hashed span) and every level's rows, as views from ``split``.

        Splitting once per forward, rather than slicing per level, keeps the backward to one
        concatenation instead of a table-sized zero fill for every level.
        """
        n = self.n_dense
        spans = self.table.split([sum(self.level_sizes[:n]), sum(self.level_sizes[n:])], dim=1)
        blocks = (list(spans[0].split(self.level_sizes[:n], dim=1))
                  + list(spans[1].split(self.level_sizes[n:], dim=1)))
        return spans, blocks

    def level_block(self, level: int) -> torch.Tensor:
        """The rows of one level: (F, level_sizes[level]), a view into ``table``."""
        off = self.level_offsets[level]
        return self.table[:, off:off + self.level_sizes[level]]

    def level_image(self, level: int, block: torch.Tensor | None = None) -> torch.Tensor:
        """A level's vertex values as a (1, F, R+1, ..., R+1) image, axis order (.., y, x).

        A view into ``table`` (or into ``block``, the level's rows) for dense levels; a gather
        (differentiable) for hashed ones.
        """
        block = self.level_block(level) if block is None else block
        n = self.level_resolutions[level] + 1
        shape = (1, self.n_features) + (n,) * self.in_dim
        if not self.level_hashed[level]:
            return block.view(shape)
        axes = torch.arange(n, device=block.device)
        grids = torch.meshgrid(*([axes] * self.in_dim), indexing="ij")  # grids[d] varies on axis d
        # Vertex (i_0 = x, i_1 = y, ...) sits at image position [..., i_1, i_0]: reverse axes.
        rows = torch.zeros((n,) * self.in_dim, dtype=torch.long, device=block.device)
        for d in range(self.in_dim):
            rows ^= grids[self.in_dim - 1 - d] * PRIMES[d]
        rows &= self.level_sizes[level] - 1
        return block.index_select(1, rows.flatten()).view(shape)

    def _materialised(self, level: int, block: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or not self.cache_materialised:
            return self.level_image(level, block)
        t = self.table
        key = (t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
        hit = self._cache.get(level)
        if hit is not None and hit[0] == key:
            return hit[2]
        image = self.level_image(level, block)
        # Holding the storage keeps its address from being reused by another table.
        self._cache[level] = (key, t.untyped_storage(), image)
        return image

    # ---- evaluation -----------------------------------------------------------------------
    def _gather(self, span: torch.Tensor, u: torch.Tensor, levels: list[int],
                hashed: bool) -> torch.Tensor:
        """Interpolate ``levels`` by explicit corner gathers: u (N, D) in [0, 1] -> (F, G, N).

        span: the table columns of the dense prefix (hashed=False) or hashed suffix (True), so
        one ``index_select`` fetches every corner of every level.
        """
        dev, D = u.device, self.in_dim
        res = torch.tensor([self.level_resolutions[lv] for lv in levels], device=dev)  # (G,)
        pos = u.t().unsqueeze(1) * res.to(u.dtype).unsqueeze(-1)  # (D, G, N) in vertex units
        i0 = torch.minimum(pos.detach().floor().long(), (res - 1).unsqueeze(-1))  # (D, G, N)
        w = corner_weights(pos - i0.to(pos.dtype))  # (C, G, N), C = 2^D
        if hashed:
            mult = torch.tensor(PRIMES[:D], device=dev).view(D, 1, 1)
            rows = corner_indices(i0, mult, hashed=True) & (2**self.log2_table_size - 1)
        else:
            strides = (res + 1) ** torch.arange(D, device=dev).unsqueeze(-1)  # (D, G)
            rows = corner_indices(i0, strides.unsqueeze(-1), hashed=False)
        start = self.level_offsets[self.n_dense] if hashed else 0
        offsets = torch.tensor([self.level_offsets[lv] - start for lv in levels], device=dev)
        rows = rows + offsets.unsqueeze(-1)  # (C, G, N) columns of span
        vals = span.index_select(1, rows.flatten()).view(self.n_features, *rows.shape)
        return (vals * w).sum(1)  # (F, G, N)

    def forward_levels(self, x: torch.Tensor, max_level: int | None = None) -> torch.Tensor:
        """Per-level features: (..., D) -> (..., n_levels, n_features).

        Levels from ``max_level`` on are zero and cost nothing (coarse-to-fine training).
        Computation follows the table's dtype and device; x is cast to the table's dtype.
        """
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"expected (..., {self.in_dim}) coordinates, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        L, Fdim, D = self.n_levels, self.n_features, self.in_dim
        x = x.reshape(-1, D).to(self.table.dtype)
        N = x.shape[0]
        active = L if max_level is None else max(0, min(int(max_level), L))
        per_level: list[torch.Tensor | None] = [None] * L  # each (F, N)
        spans, blocks = self._split_table()
        use_sampler = D in (2, 3)
        gather_dense, gather_hashed = [], []
        for lv in range(active):
            if not use_sampler:
                (gather_hashed if self.level_hashed[lv] else gather_dense).append(lv)
            elif not self.level_hashed[lv]:
                per_level[lv] = self._sample(self.level_image(lv, blocks[lv]), x)
            else:
                n_vertices = (self.level_resolutions[lv] + 1)**D
                too_big = n_vertices * Fdim * x.element_size() > MATERIALISE_MAX_BYTES
                # With autograd the image is rebuilt on every call: worth it only when the
                # points need more corner fetches than the image has vertices.
                cheap = not torch.is_grad_enabled() or N * 2**D >= n_vertices
                if cheap and not too_big:
                    per_level[lv] = self._sample(self._materialised(lv, blocks[lv]), x)
                else:
                    gather_hashed.append(lv)
        if gather_dense or gather_hashed:
            u = ((x + 1) * 0.5).clamp(0, 1)  # (N, D) in [0, 1]
            for span, levels, hashed in ((spans[0], gather_dense, False),
                                         (spans[1], gather_hashed, True)):
                if levels:
                    out = self._gather(span, u, levels, hashed)  # (F, G, N)
                    for g, lv in enumerate(levels):
                        per_level[lv] = out[:, g]
        zeros = None
        for lv in range(active, L):
            if zeros is None:
                zeros = x.new_zeros(Fdim, N)
            per_level[lv] = zeros
        feats = torch.stack(per_level, dim=0) if L else x.new_zeros(0, Fdim, N)  # (L, F, N)
        return feats.permute(2, 0, 1).reshape(*lead, L, Fdim)

    @torch.no_grad()
    def forward_grid(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """Features on the separable grid of (xs[j], ys[i]) points: (W,), (H,) -> (H, W, L * F).

        Equals ``self(stack(meshgrid(ys, xs)))`` up to float rounding, but bilinear
        interpolation on a grid of points is separable: interpolate the vertices a tile touches
        along x, then along y. While a level's tile spans few vertices (the output is denser
        than the level: upscaling) both passes are small matrix products done for all such
        levels at once; other levels interpolate by gathers, and hashed levels too large to
        materialise by per-point corner fetches. Inference only (2-D input). Returns a
        transposed view, like ``forward``.
        """
        if self.in_dim != 2:
            raise ValueError(f"forward_grid needs 2-D input, this grid has in_dim={self.in_dim}")
        dtype, dev = self.table.dtype, self.table.device
        xs, ys = xs.to(dtype), ys.to(dtype)
        H, W, L, Fdim = ys.shape[0], xs.shape[0], self.n_levels, self.n_features
        feats = xs.new_empty(L, Fdim, H, W)
        spans, blocks = self._split_table()
        res = torch.tensor(self.level_resolutions, device=dev).unsqueeze(-1)  # (L, 1)
        i0, fx = _axis_cells(xs, res)  # (L, W)
        j0, fy = _axis_cells(ys, res)  # (L, H)
        bounds = torch.stack((i0.amin(1), i0.amax(1), j0.amin(1), j0.amax(1)), 1).tolist()
        small, gathered, fetched = [], [], []
        for lv, (c0, c1, r0, r1) in enumerate(bounds):
            n_vertices = (self.level_resolutions[lv] + 1)**2
            if self.level_hashed[lv] and n_vertices * Fdim * xs.element_size() > MATERIALISE_MAX_BYTES:
                fetched.append(lv)
            elif max(c1 - c0, r1 - r0) + 2 <= SEPARABLE_MATMUL_MAX:  # a few vertices a tile
                small.append(lv)
            else:
                gathered.append(lv)
        if small:  # both passes as batched matrix products over the levels' touched vertices
            kc = max(bounds[lv][1] - bounds[lv][0] for lv in small) + 2
            kr = max(bounds[lv][3] - bounds[lv][2] for lv in small) + 2
            subs = xs.new_zeros(len(small), Fdim, kr, kc)
            for g, lv in enumerate(small):
                c0, c1, r0, r1 = bounds[lv]
                subs[g, :, :r1 - r0 + 2, :c1 - c0 + 2] = self._level_view(lv, blocks[lv])[:, r0:r1 + 2, c0:c1 + 2]
            lo = torch.tensor([bounds[lv][::2] for lv in small], device=dev)  # (G, 2): c0, r0
            idx = torch.tensor(small, device=dev)
            mx = _lerp_matrices(i0[idx] - lo[:, :1], fx[idx], kc)  # (G, W, kc)
            my = _lerp_matrices(j0[idx] - lo[:, 1:], fy[idx], kr)  # (G, H, kr)
            across = subs @ mx.transpose(1, 2).unsqueeze(1)  # (G, F, kr, W)
            first = small[0]
            if small == list(range(first, first + len(small))) and across.dtype == feats.dtype:
                # consecutive levels (the coarse ones, as a rule): the product lands in place,
                # without an indexed copy of (G, F, H, W) (7% of a 1024x1024 render)
                torch.matmul(my.unsqueeze(1), across, out=feats[first:first + len(small)])
            else:
                feats[idx] = (my.unsqueeze(1) @ across).to(feats.dtype)  # (G, F, H, W); autocast may give bf16
        for lv in gathered:
            c0, c1, r0, r1 = bounds[lv]
            sub = self._level_view(lv, blocks[lv])[:, r0:r1 + 2, c0:c1 + 2]  # (F, r, c)
            ic, jr = i0[lv] - c0, j0[lv] - r0
            across = torch.lerp(sub.index_select(2, ic), sub.index_select(2, ic + 1), fx[lv])
            torch.lerp(across.index_select(1, jr), across.index_select(1, jr + 1),
                       fy[lv].unsqueeze(-1), out=feats[lv])
        if fetched:
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            u = ((torch.stack((xx, yy), dim=-1).view(-1, 2) + 1) * 0.5).clamp(0, 1)
            out = self._gather(spans[1], u, fetched, hashed=True)  # (F, G, N)
            for g, lv in enumerate(fetched):
                feats[lv] = out[:, g].view(Fdim, H, W)
        return feats.permute(2, 3, 0, 1).flatten(-2)  # (H, W, L * F), feature-major memory

    def footprint_weights(self, var: torch.Tensor) -> torch.Tensor:
        """Per-feature factors for a Gaussian footprint of per-axis variance ``var`` (in_dim,):
        each level's features are scaled by erf(1 / sqrt(8 sigma^2 R^2)), sigma the footprint's
        standard deviation in units of the grid's [0, 1] and R the level's cells per unit, so
        levels much finer than the footprint fade out (Zip-NeRF's feature downweighting, Barron
        et al. 2023, without its multisampling). Ones for a zero footprint. (out_dim,)."""
        sigma2 = var.mean() / 4  # x in [-1, 1] -> u in [0, 1]: standard deviations halve
        res = torch.tensor(self.level_resolutions, dtype=var.dtype, device=var.device)
        if float(sigma2) <= 0:
            return torch.ones(self.out_dim, dtype=var.dtype, device=var.device)
        weight = torch.erf(1 / torch.sqrt(8 * sigma2 * res.square()))
        return weight.repeat_interleave(self.n_features)  # levels in order, F features each

    def _level_view(self, level: int, block: torch.Tensor) -> torch.Tensor:
        """A level's (F, R+1, R+1) vertex image, axes (y, x): a view if dense, cached if hashed."""
        image = self._materialised(level, block) if self.level_hashed[level] else self.level_image(level, block)
        return image[0]

    @staticmethod
    def _sample(image: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Multilinear sample of a (1, F, n, .., n) vertex image at x (N, D) -> (F, N)."""
        grid = x.view((1,) * (x.shape[1] - 1) + (1,) + x.shape)  # (1, 1, N, 2) or (1, 1, 1, N, 3)
        # align_corners=True: x = -1 and 1 are the centres of the first and last vertices, which
        # is exactly u * R with the vertices on the cell edges; border padding clamps outside.
        out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.view(image.shape[1], x.shape[0])

    def forward(self, x: torch.Tensor, level_weights: torch.Tensor | None = None,
                max_level: int | None = None) -> torch.Tensor:
        """(..., D) -> (..., n_levels * n_features), levels in order, coarse first.

        level_weights: optional (n_levels,) multipliers of each level's features (a smooth
            coarse-to-fine window); max_level: levels from this index on are zero and skipped.
        """
        feats = self.forward_levels(x, max_level=max_level)  # (..., L, F)
        if level_weights is not None:
            if level_weights.shape != (self.n_levels,):
                raise ValueError(f"level_weights must have shape ({self.n_levels},), "
                                 f"got {tuple(level_weights.shape)}")
            feats = feats * level_weights.to(feats.dtype).unsqueeze(-1)
        return feats.flatten(-2)

    def extra_repr(self) -> str:
        n_hashed = sum(self.level_hashed)
        return (f"in_dim={self.in_dim}, n_levels={self.n_levels}, n_features={self.n_features}, "
                f"resolutions={self.level_resolutions[0]}..{self.level_resolutions[-1]}, "
                f"log2_table_size={self.log2_table_size}, dense_levels={self.n_levels - n_hashed}, "
                f"hashed_levels={n_hashed}")
