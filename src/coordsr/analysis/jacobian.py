"""The input-output Jacobian of a field (Novak et al. 2018) and the linear regions of a ReLU
network (Hanin and Rolnick 2019).

- ``jacobian_norm``: |d luma / d(x, y)| at given coordinates, by autograd (every point's output
  depends on that point alone, so one backward pass of the sum gives every point's gradient).
  In 8-bit levels per input pixel, so fields, bicubic and the HR truth share one unit.
- ``finite_difference_norm``: the same from an image drawn at scale s (central differences),
  for methods that are not fields and for the truth.
- ``activation_patterns``: the on/off pattern of every ReLU of a field's network at each point;
  ``regions_along_line`` counts where the pattern changes along a segment, ``region_map`` marks
  the boundaries over a grid. Where the encoding is nonlinear (Fourier features, grids) a
  region is a set of constant pattern, not a set where the field is linear.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from coordsr.analysis.common import LUMA, luma
from coordsr.coords import pixel_spacing


def luma_of(out: torch.Tensor) -> torch.Tensor:
    """(..., C) colours -> (...,) luma, differentiably (BT.601 on RGB(A), grey on L(A))."""
    if out.shape[-1] >= 3:
        return out[..., :3] @ torch.as_tensor(LUMA, dtype=out.dtype, device=out.device)
    return out[..., 0]


def pixel_step(field, axis_pixels: tuple[int, int]) -> torch.Tensor:
    """Field units per input pixel along (x, y) in the field's convention: (2,)."""
    convention = getattr(getattr(field, "cfg", None), "convention", "cell")
    return torch.tensor(pixel_spacing(*axis_pixels, convention=convention))


def jacobian(field: nn.Module, coords: torch.Tensor, *, chunk: int = 16384) -> torch.Tensor:
    """d luma / d(x, y) of ``field`` at ``coords`` (N, 2): (N, 2), in luma per field unit."""
    grads = []
    for part in coords.split(chunk):
        x = part.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            y = luma_of(field(x).float()).sum()
            (g,) = torch.autograd.grad(y, x)
        grads.append(g.detach())
    return torch.cat(grads)


def jacobian_norm(field: nn.Module, coords: torch.Tensor, input_size: tuple[int, int], **kw) -> np.ndarray:
    """|d luma / d(x, y)| in 8-bit levels per input pixel at ``coords`` (..., 2): (...,)."""
    g = jacobian(field, coords.reshape(-1, 2), **kw) * pixel_step(field, input_size)
    return (255.0 * g.norm(dim=-1)).reshape(coords.shape[:-1]).numpy().astype(np.float64)


def finite_difference_norm(image: np.ndarray, scale: int) -> np.ndarray:
    """|grad luma| of an image drawn at ``scale``, in 8-bit levels per input pixel: (H, W)."""
    gy, gx = np.gradient(luma(image))
    return 255.0 * scale * np.hypot(gx, gy)


def relu_modules(field: nn.Module) -> list[nn.Module]:
    """The ReLU activations of a field's network, in order (empty for other activations)."""
    return [m for m in field.modules() if isinstance(m, nn.ReLU)]


@torch.no_grad()
def activation_patterns(field: nn.Module, coords: torch.Tensor, *, chunk: int = 1024) -> np.ndarray:
    """On/off pattern of every ReLU at each point: (N, units) bool; ValueError without ReLUs.

    Chunks of at most 1024 points: larger ones take the MLP's fused inference path, which skips
    the ReLU modules and so their hooks."""
    relus = relu_modules(field)
    if not relus:
        raise ValueError("the field's network has no ReLU activations")
    found: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: found.append(inp[0] > 0)) for m in relus]
    try:
        rows = []
        for part in coords.reshape(-1, 2).split(chunk):
            found.clear()
            field(part)
            rows.append(torch.cat([f.reshape(len(part), -1) for f in found], dim=1))
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(rows).numpy()


def regions_along_line(field: nn.Module, start, end, points: int = 4096) -> dict:
    """Activation-pattern changes along the segment from ``start`` to ``end`` (field units):
    ``changes`` (consecutive samples whose patterns differ: a lower bound on the regions
    crossed, minus one) and ``flips`` (units that switch, summed: about the boundaries crossed)."""
    t = torch.linspace(0, 1, points)[:, None]
    line = (1 - t) * torch.tensor(start, dtype=torch.float32) + t * torch.tensor(end, dtype=torch.float32)
    pat = activation_patterns(field, line)
    diff = pat[1:] != pat[:-1]
    return {"points": points, "changes": int(diff.any(axis=1).sum()), "flips": int(diff.sum()),
            "units": int(pat.shape[1])}


def region_map(field: nn.Module, coords: torch.Tensor) -> tuple[np.ndarray, int]:
    """Boundary map (H, W) bool (the pattern differs from the right or lower neighbour) over a
    grid of coordinates (H, W, 2), and the number of distinct patterns on it."""
    h, w = coords.shape[:2]
    pat = activation_patterns(field, coords).reshape(h, w, -1)
    edge = np.zeros((h, w), dtype=bool)
    edge[:, :-1] |= (pat[:, 1:] != pat[:, :-1]).any(-1)
    edge[:-1, :] |= (pat[1:, :] != pat[:-1, :]).any(-1)
    distinct = len(np.unique(np.packbits(pat.reshape(h * w, -1), axis=1), axis=0))
    return edge, distinct
