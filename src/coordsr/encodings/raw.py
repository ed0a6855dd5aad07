"""Raw coordinates: the identity encoding, optionally with the radius (CPPN style).

>>> RawCoords(radius=True)(torch.tensor([[3.0, 4.0]]))
tensor([[3., 4., 5.]])
"""

from __future__ import annotations

import torch
from torch import nn


class RawCoords(nn.Module):
    """x -> x, or x -> (x, |x|) with ``radius=True``.

    Args:
        in_dim: number of input coordinates (2 for images).
        radius: append the Euclidean norm of the coordinates, as Stanley's CPPNs do, so a
            network can draw radially symmetric patterns without learning the norm.
    """

    def __init__(self, in_dim: int = 2, radius: bool = False):
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"in_dim must be >= 1, got {in_dim}")
        self.in_dim = in_dim
        self.radius = bool(radius)
        self.out_dim = in_dim + int(self.radius)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in_dim) -> (..., out_dim)
        if not self.radius:
            return x
        return torch.cat((x, torch.linalg.vector_norm(x, dim=-1, keepdim=True)), dim=-1)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, radius={self.radius}"
