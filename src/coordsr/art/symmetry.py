"""Symmetries as folds of the plane: (..., 2) coordinates -> (..., 2) coordinates.

A pattern drawn through a fold has the fold's symmetry whatever the network behind it:
mirror-x draws f(|x|, y), so the left half is the right half's reflection; radial n-fold maps
every point into one wedge of angle 2 pi / n, so a rotation by that angle leaves the picture
unchanged; kaleido also mirrors inside the wedge (the dihedral group, like a kaleidoscope);
tile repeats the square [-1, 1]^2 ``n`` times along each axis with mirrored (seamless) edges.

>>> fold(torch.tensor([[-0.5, 0.25]]), "mirror-x").tolist()
[[0.5, 0.25]]
"""

from __future__ import annotations

import math

import torch

SYMMETRIES = ("none", "mirror-x", "mirror-y", "mirror-xy", "radial", "kaleido", "tile")
"""Every ``ArtConfig.symmetry``."""


def check_symmetry(name: str, n: int) -> None:
    """ValueError for an unknown symmetry or an order below 1 (or 2 where it turns)."""
    if name not in SYMMETRIES:
        raise ValueError(f"unknown symmetry {name!r}; valid: {', '.join(SYMMETRIES)}")
    if name in ("radial", "kaleido") and not 2 <= n <= 64:
        raise ValueError(f"symmetry {name} needs an order (fold) from 2 to 64, got {n}")
    if name == "tile" and not 1 <= n <= 64:
        raise ValueError(f"symmetry tile needs a count (fold) from 1 to 64, got {n}")


def fold(p: torch.Tensor, name: str, n: int = 6) -> torch.Tensor:
    """Fold coordinates p (..., 2) by symmetry ``name`` of order ``n``."""
    if name == "none":
        return p
    x, y = p.unbind(-1)
    if name in ("mirror-x", "mirror-xy"):
        x = x.abs()
    if name in ("mirror-y", "mirror-xy"):
        y = y.abs()
    if name in ("radial", "kaleido"):
        wedge = 2 * math.pi / n
        r, theta = torch.hypot(x, y), torch.atan2(y, x)
        theta = torch.remainder(theta, wedge)  # [0, wedge)
        if name == "kaleido":
            theta = (theta - wedge / 2).abs()  # mirror about the wedge's middle
        x, y = r * torch.cos(theta), r * torch.sin(theta)
    if name == "tile":
        # A triangle wave of period 2/n: continuous, so neighbouring tiles meet without a seam.
        x, y = (_triangle(v * n) for v in (x, y))
    return torch.stack((x, y), dim=-1)


def _triangle(v: torch.Tensor) -> torch.Tensor:
    """Triangle wave with values in [-1, 1], equal to v on [-1, 1] and mirrored on each
    neighbouring interval of length 2 (period 4: a tile and its mirror image)."""
    return 1 - (torch.remainder(v + 1, 4) - 2).abs()
