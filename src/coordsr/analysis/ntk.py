"""The empirical neural tangent kernel of a field on a subsample of points (Jacot et al. 2018;
the view in which Tancik et al. 2020 explain Fourier features).

K[i, j] = <d f(x_i) / d theta, d f(x_j) / d theta> for the field's luma f and all its trainable
parameters theta. Each row of the Jacobian is one reverse pass (``torch.autograd.grad`` of
f(x_i)); rows of a parameter larger than ``dense_limit`` are kept sparse, since one point touches
a few entries of a hash table (millions of parameters), so memory holds n dense rows of the
network's weights and only the touched entries of its tables.

>>> lin = torch.nn.Linear(3, 1)
>>> X = torch.randn(5, 3)
>>> K = empirical_ntk(lambda x: lin(x)[..., 0], lin, X)
>>> bool(torch.allclose(K, (X @ X.T + 1).double(), atol=1e-5))
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


def empirical_ntk(f: Callable[[torch.Tensor], torch.Tensor], module: nn.Module, x: torch.Tensor,
                  *, dense_limit: int = 1 << 22) -> torch.Tensor:
    """(n, n) float64 kernel of the scalar outputs ``f(x)`` (n,) over ``module``'s trainable
    parameters; ``f`` calls ``module`` (it may wrap it, e.g. take the luma of a field)."""
    params = [p for p in module.parameters() if p.requires_grad]
    n = len(x)
    rows: list[list[torch.Tensor]] = [[] for _ in params]
    for i in range(n):
        with torch.enable_grad():
            y = f(x[i:i + 1].detach()).sum()
            grads = torch.autograd.grad(y, params, allow_unused=True)
        for k, (p, g) in enumerate(zip(params, grads)):
            g = torch.zeros(p.numel()) if g is None else g.detach().reshape(-1).float()
            if p.numel() > dense_limit:  # a hash table: one point touches a few rows of it
                idx = g.nonzero()[:, 0]
                g = (idx, g[idx])
            rows[k].append(g)
    K = torch.zeros(n, n, dtype=torch.float64)
    for k, p in enumerate(params):
        if p.numel() > dense_limit:
            cols = torch.unique(torch.cat([idx for idx, _ in rows[k]]))
            G = torch.zeros(n, len(cols), dtype=torch.float64)
            for i, (idx, val) in enumerate(rows[k]):
                G[i, torch.searchsorted(cols, idx)] = val.double()
        else:
            G = torch.stack(rows[k]).double()  # (n, numel)
        K += G @ G.T
        rows[k] = []
    return K


def spectrum(K: torch.Tensor) -> np.ndarray:
    """Eigenvalues of a kernel matrix, largest first (float64)."""
    return np.sort(torch.linalg.eigvalsh(K.double()).numpy())[::-1].copy()


def summarize(eig: np.ndarray) -> dict:
    """Numbers of an eigenvalue spectrum: the largest, the trace, the effective rank
    (exp of the entropy of the normalised eigenvalues), how many are above 1e-3 of the largest,
    and how many hold 90% of the trace."""
    eig = np.clip(np.asarray(eig, dtype=np.float64), 0, None)
    total = eig.sum()
    p = eig / total if total > 0 else eig
    nz = p[p > 0]
    return {"largest": float(eig[0]), "trace": float(total),
            "effective_rank": float(np.exp(-(nz * np.log(nz)).sum())) if len(nz) else 0.0,
            "above_1e-3": int((eig > 1e-3 * eig[0]).sum()) if eig[0] > 0 else 0,
            "rank_90": int(np.searchsorted(np.cumsum(p), 0.9) + 1) if total > 0 else 0}
