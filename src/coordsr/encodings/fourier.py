"""Gaussian random Fourier features (Tancik et al. 2020, "Fourier Features Let Networks Learn
High Frequency Functions in Low Dimensional Domains").

gamma(x) = (cos(2 pi B x), sin(2 pi B x)), B ~ N(0, sigma^2) of shape (n_features, in_dim),
drawn once from ``seed`` and stored as a buffer so a saved field reloads the same B.

Units: B is in cycles per unit of coordinate. Our images span [-1, 1] (two units), while
Tancik et al. map images to [0, 1]; their sigma therefore corresponds to sigma / 2 here
(their image-regression sigma = 10 is sigma = 5 in this module).

>>> FourierFeatures(n_features=4).out_dim
8
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """x -> (cos(2 pi B x), sin(2 pi B x)) with a fixed Gaussian B.

    Args:
        in_dim: number of input coordinates (2 for images).
        n_features: number of random frequencies (rows of B); the output has twice as many.
        sigma: standard deviation of B's entries, in cycles per coordinate unit.
        seed: seed of the generator that draws B (the draw is on CPU, in float64, so it is the
            same on every machine).
    """

    B: torch.Tensor

    def __init__(self, in_dim: int = 2, n_features: int = 256, sigma: float = 10.0, seed: int = 0):
        super().__init__()
        if in_dim < 1 or n_features < 1 or sigma < 0:
            raise ValueError(f"need in_dim >= 1, n_features >= 1, sigma >= 0; got "
                             f"{in_dim}, {n_features}, {sigma}")
        self.in_dim, self.n_features, self.sigma, self.seed = in_dim, n_features, float(sigma), seed
        self.out_dim = 2 * n_features
        gen = torch.Generator().manual_seed(seed)
        B = torch.randn(n_features, in_dim, generator=gen, dtype=torch.float64) * sigma
        self.register_buffer("B", B.float())  # (n_features, in_dim), saved with the state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., 2 n_features)
        phase = (2 * math.pi) * (x @ self.B.to(x.dtype).t())  # (..., n_features)
        return torch.cat((phase.cos(), phase.sin()), dim=-1)

    def footprint_weights(self, var: torch.Tensor) -> torch.Tensor:
        """Per-feature factors that turn the encoding of a point into its expected value over a
        Gaussian footprint of per-axis variance ``var`` (in_dim,) around it (Mip-NeRF's
        integrated encoding, Barron et al. 2021): E[cos(w.x)] = cos(w.mu) exp(-w^T diag(var) w / 2),
        the same for sin. Ones for a zero footprint. (out_dim,)."""
        w = 2 * math.pi * self.B.to(var.dtype)  # (n_features, in_dim), radians per unit
        damp = torch.exp(-0.5 * (w.square() * var).sum(-1))
        return torch.cat((damp, damp))

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, n_features={self.n_features}, sigma={self.sigma}, "
                f"seed={self.seed}")
