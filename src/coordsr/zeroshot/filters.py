"""Internal learned filters (RAISR-like, trained on the input image alone, in closed form).

The same pairs as the internal network (a downscaled copy of the input, interpolated
consistently back to the copy's father, against the father), but the model is a set of linear
k x k filters on the interpolated image, one per *bucket* of local structure: the gradient's
angle (8 bins), strength (3, the training pixels' terciles) and coherence (3), from the
smoothed structure tensor (Romano et al. 2016). Each bucket's filter predicts the residual
(father - interpolation) at the centre pixel; it is found by ridge regression pulled toward
the filter of all pixels, so sparse buckets fall back to it. Channels share the filters.
Flips and rotations of the pairs are in the training set, so the filters are equivariant
and need no test-time ensemble.

Shapes: images (C, H, W); filters (n_buckets, k * k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ANGLES, STRENGTHS, COHERENCES = 8, 3, 3
N_BUCKETS = ANGLES * STRENGTHS * COHERENCES


@dataclass
class FilterBank:
    """Learned filters and the strength thresholds of their buckets."""

    weights: torch.Tensor
    """(N_BUCKETS, k * k) residual filters."""
    strength: torch.Tensor
    """(2,) thresholds on sqrt(lambda_1) between the 3 strength bins."""
    size: int
    """k: the filters' side."""


def _gauss(sigma: float, radius: int, dtype) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def structure(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Angle bin, sqrt(lambda_1) and coherence bin of each pixel of x (N, H, W): each (N, H, W)."""
    xp = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")
    gx = (xp[..., 1:-1, 2:] - xp[..., 1:-1, :-2]) / 2
    gy = (xp[..., 2:, 1:-1] - xp[..., :-2, 1:-1]) / 2
    g = _gauss(1.5, 3, x.dtype).to(x.device)
    def smooth(a):
        a = F.conv2d(F.pad(a, (3, 3, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
        return F.conv2d(F.pad(a, (0, 0, 3, 3), mode="replicate"), g.view(1, 1, -1, 1))
    sxx, syy, sxy = smooth(gx * gx)[:, 0], smooth(gy * gy)[:, 0], smooth(gx * gy)[:, 0]
    tr, det = sxx + syy, sxx * syy - sxy * sxy
    disc = torch.sqrt(((sxx - syy) / 2) ** 2 + sxy * sxy)
    l1, l2 = (tr / 2 + disc).clamp(min=0), (tr / 2 - disc).clamp(min=0)
    r1, r2 = l1.sqrt(), l2.sqrt()
    coh = (r1 - r2) / (r1 + r2 + 1e-12)
    theta = 0.5 * torch.atan2(2 * sxy, sxx - syy) % math.pi  # orientation of the gradient in [0, pi)
    angle = (theta / math.pi * ANGLES).long().clamp(max=ANGLES - 1)
    cbin = (coh > 0.25).long() + (coh > 0.5).long()
    return angle, r1, cbin


def buckets(x: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Bucket index of each pixel of x (N, H, W): (N, H, W) long."""
    angle, r1, cbin = structure(x)
    sbin = (r1 > strength[0]).long() + (r1 > strength[1]).long()
    return (angle * STRENGTHS + sbin) * COHERENCES + cbin


def patches(x: torch.Tensor, k: int) -> torch.Tensor:
    """k x k neighbourhoods of each pixel of x (N, H, W), replicate-padded: (N * H * W, k * k)."""
    r = k // 2
    cols = F.unfold(F.pad(x[:, None], (r, r, r, r), mode="replicate"), k)  # (N, k*k, H*W)
    return cols.transpose(1, 2).reshape(-1, k * k)


def patches_at(x: torch.Tensor, k: int, flat: torch.Tensor) -> torch.Tensor:
    """k x k neighbourhoods (replicate-padded) of the pixels ``flat`` (indices into H * W) of x (H, W)."""
    h, w = x.shape
    r = k // 2
    xp = F.pad(x[None, None], (r, r, r, r), mode="replicate")[0, 0].reshape(-1)
    row, col = flat // w, flat % w
    base = row * (w + 2 * r) + col  # top-left of the window in the padded image
    offs = (torch.arange(k)[:, None] * (w + 2 * r) + torch.arange(k)[None, :]).reshape(-1)
    return xp[base[:, None] + offs[None, :]]


def fit_filters(pairs: list[tuple[torch.Tensor, torch.Tensor]], k: int = 7, ridge: float = 1e-2,
                max_samples: int = 400_000, generator: torch.Generator | None = None) -> FilterBank:
    """Least-squares filters from (interpolated, target) pairs of (C, H, W) images.

    Trained on the 8 flips/rotations of each pair and each channel, on at most ``max_samples``
    random pixels in all. ``ridge`` is relative to the mean diagonal of the normal matrix; every
    bucket is pulled toward the all-pixels filter with that weight.
    """
    from coordsr.zeroshot.ops import dihedral

    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    planes = []  # (interpolated, target) single-channel planes, all orientations
    for inp, tgt in pairs:
        for d in range(8):
            for a, b in zip(dihedral(inp, d), dihedral(tgt, d)):
                planes.append((a, b))
    r1 = torch.cat([structure(a[None])[1].flatten() for a, _ in planes[::8]])
    sub = r1[torch.randperm(len(r1), generator=gen)[:200_000]]
    strength = torch.quantile(sub.double(), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)).to(r1.dtype)
    dim = k * k
    ata = torch.zeros(N_BUCKETS, dim, dim, dtype=torch.float64)
    atb = torch.zeros(N_BUCKETS, dim, dtype=torch.float64)
    total = sum(a.numel() for a, _ in planes)
    keep = min(1.0, max_samples / max(total, 1))
    rows, res, ids = [], [], []
    for a, t in planes:
        n = a.numel()
        m = max(1, round(n * keep))
        flat = torch.randperm(n, generator=gen)[:m] if m < n else torch.arange(n)
        ids.append(buckets(a[None], strength).reshape(-1)[flat])
        rows.append(patches_at(a, k, flat))
        res.append((t - a).reshape(-1)[flat])
    _grouped_gram(ata, atb, torch.cat(rows), torch.cat(res), torch.cat(ids))
    eye = torch.eye(dim, dtype=torch.float64)
    g_ata, g_atb = ata.sum(0), atb.sum(0)
    lam = ridge * g_ata.diagonal().mean() / N_BUCKETS + 1e-12
    w_all = torch.linalg.solve(g_ata + lam * N_BUCKETS * eye, g_atb)
    w = torch.linalg.solve(ata + lam * eye, (atb + lam * w_all)[..., None])[..., 0]
    return FilterBank(weights=w.float(), strength=strength.float(), size=k)


def _grouped_gram(ata, atb, a, b, idx):
    """Add each bucket's a^T a and a^T b (rows of a grouped by idx) to ata and atb, in place."""
    order = torch.argsort(idx)
    a, b = a[order], b[order]
    counts = torch.bincount(idx, minlength=N_BUCKETS).tolist()
    start = 0
    for j, n in enumerate(counts):
        if n:
            aj = a[start:start + n].double()
            ata[j] += aj.T @ aj
            atb[j] += aj.T @ b[start:start + n].double()
        start += n


def apply_filters(bank: FilterBank, x: torch.Tensor) -> torch.Tensor:
    """x (C, H, W) plus the residual its buckets' filters predict: (C, H, W)."""
    c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(c):  # one channel at a time keeps the patch matrix small
        xi = x[i:i + 1]
        idx = buckets(xi, bank.strength.to(x.dtype)).reshape(-1)
        a = patches(xi, bank.size)
        res = (a * bank.weights.to(x.dtype)[idx]).sum(1)
        out[i] = xi[0] + res.reshape(h, w)
    return out
