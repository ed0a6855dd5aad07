"""A smoothness prior on the output: total variation, minimised among images consistent with the input."""

from __future__ import annotations

import torch

from coordsr.zeroshot.ops import back_project, downscale


def tv_refine(x: torch.Tensor, y: torch.Tensor, weight: float, steps: int = 100, lr: float = 2e-3,
              eps: float = 1e-3, kernel: str = "cubic") -> torch.Tensor:
    """Adam on the pixels of x (C, H, W): ||D(x) - y||^2 + weight * TV_eps(x), then back-projected.

    TV_eps is the mean Charbonnier gradient magnitude, sqrt(d^2 + eps^2), along each axis.
    """
    if weight <= 0 or steps <= 0:
        return x
    x = x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        dx, dy = x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]
        tv = torch.sqrt(dx ** 2 + eps ** 2).mean() + torch.sqrt(dy ** 2 + eps ** 2).mean()
        loss = ((downscale(x, y.shape[-2:], kernel) - y) ** 2).mean() + weight * tv
        loss.backward()
        opt.step()
    return back_project(x.detach(), y, kernel)
