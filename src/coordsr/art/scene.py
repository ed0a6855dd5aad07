"""What a frame shows: a source (a CPPN or a fitted field), seen through a view and warps.

Coordinates here are *physical*: the output's shorter side spans [-1, 1] and a unit is the same
length on both axes, so rotating a 16:9 frame does not shear it. ``frame_box(h, w)`` is the
region of that plane an h x w output covers; ``Scene`` maps it through the view (zoom about a
centre, rotation), an optional coordinate warp, and the source's own aspect (a fitted field
covers [-1, 1]^2 whatever its image's shape) before asking the source for colours. A zoom
below 1 shows the field beyond its support: a fitted field outside the image it was fitted to.

``perturbed`` is the other kind of warp: a copy of a network with seeded noise on its weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from coordsr.coords import Box


@dataclass
class View:
    """Where the camera looks, and how the plane is bent before the source sees it."""

    zoom: float = 1.0
    """Magnification: 2 shows half the width; below 1 shows beyond the field's support."""
    center: tuple[float, float] = (0.0, 0.0)
    """Point (x, y) at the middle of the frame, in the source's coordinates."""
    angle: float = 0.0
    """Rotation of the view in degrees (counter-clockwise)."""
    warp: float = 0.0
    """Amplitude of a smooth sine warp of the coordinates (0: none; 0.1 bends gently)."""
    warp_frequency: float = 3.0
    """Spatial frequency of the warp, in waves per unit."""

    def check(self) -> "View":
        if not (math.isfinite(self.zoom) and 1e-6 <= self.zoom <= 1e9):
            raise ValueError(f"zoom must be from 1e-6 to 1e9, got {self.zoom}")
        for name, v in (("center", self.center[0]), ("center", self.center[1]), ("angle", self.angle),
                        ("warp", self.warp), ("warp frequency", self.warp_frequency)):
            if not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v}")
        if not 0 <= self.warp <= 10:
            raise ValueError(f"warp must be from 0 to 10, got {self.warp}")
        return self


def frame_box(h: int, w: int) -> Box:
    """The physical region an h x w frame covers: its shorter side spans [-1, 1]."""
    m = min(h, w)
    return (-w / m, -h / m, w / m, h / m)


def source_aspect(source) -> tuple[float, float]:
    """Physical half-extent of a source's [-1, 1]^2: (1, 1) for a CPPN, the image's aspect
    (shorter side 1) for a fitted field."""
    meta = getattr(source, "meta", None)
    if meta is None:
        return (1.0, 1.0)
    m = min(meta.height, meta.width)
    return (meta.width / m, meta.height / m)


def source_channels(source) -> int:
    meta = getattr(source, "meta", None)
    return meta.channels if meta is not None else source.channels


class Scene:
    """Callable (..., 2) physical coordinates -> (..., C) colours of ``source`` under ``view``."""

    def __init__(self, source: Callable[[torch.Tensor], torch.Tensor], view: View | None = None,
                 z: torch.Tensor | None = None):
        self.source, self.view, self.z = source, (view or View()).check(), z
        self.channels = source_channels(source)
        self.aspect = source_aspect(source)

    def parameters(self):  # render() reads the device from here
        return getattr(self.source, "parameters", lambda: iter(()))()

    def coords(self, p: torch.Tensor) -> torch.Tensor:
        """Physical frame coordinates -> the source's coordinates."""
        v = self.view
        if v.angle:
            a = math.radians(v.angle)
            c, s = math.cos(a), math.sin(a)
            x, y = p.unbind(-1)
            p = torch.stack((c * x - s * y, s * x + c * y), dim=-1)
        p = p / v.zoom + torch.tensor(v.center, dtype=p.dtype, device=p.device)
        if v.warp:
            x, y = p.unbind(-1)
            f = v.warp_frequency * math.pi
            # Each axis is pushed along by a sine of the other: smooth, and zero at warp 0.
            p = torch.stack((x + v.warp * torch.sin(f * y), y + v.warp * torch.sin(f * x + 1.0)), dim=-1)
        ax, ay = self.aspect
        if (ax, ay) != (1.0, 1.0):
            p = p / torch.tensor([ax, ay], dtype=p.dtype, device=p.device)
        return p

    @torch.no_grad()
    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        q = self.coords(p)
        if self.z is not None:
            return self.source(q, self.z)
        return self.source(q)


class Blend(nn.Module):
    """(1 - t) a + t b, evaluated point by point: the 'outputs' morph of two fields."""

    def __init__(self, a: nn.Module, b: nn.Module, t: float):
        super().__init__()
        self.a, self.b, self.t = a, b, float(t)
        self.meta = getattr(a, "meta", None)
        self.channels = source_channels(a)

    @torch.no_grad()
    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.lerp(self.a(p), self.b(p), self.t)


def check_morphable(a: nn.Module, b: nn.Module, weights: bool, names: tuple[str, str]) -> None:
    """ValueError unless a and b can be morphed (same channels; same architecture for weights)."""
    ca, cb = source_channels(a), source_channels(b)
    if ca != cb:
        raise ValueError(f"{names[0]} has {ca} channels and {names[1]} has {cb}: a morph needs the same")
    if weights:
        sa, sb = a.state_dict(), b.state_dict()
        same = sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
        same = same and all(torch.equal(sa[k], sb[k]) for k in sa if not sa[k].is_floating_point())
        if not same or type(a) is not type(b):
            raise ValueError(f"{names[0]} and {names[1]} have different networks: morph their outputs "
                             "instead (--morph outputs)")


def lerp_weights(a: nn.Module, b: nn.Module, t: float, into: nn.Module) -> nn.Module:
    """Set ``into``'s floating-point tensors to (1 - t) a + t b (same architecture); return it."""
    sa, sb = a.state_dict(), b.state_dict()
    with torch.no_grad():
        for name, tensor in into.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.lerp(sa[name], sb[name], t))
    return into


def perturbed(net: nn.Module, amount: float, seed: int) -> nn.Module:
    """A copy of ``net`` with N(0, amount x the tensor's std) noise on each weight tensor."""
    if not 0 <= amount <= 10:
        raise ValueError(f"jitter must be from 0 to 10, got {amount}")
    if amount == 0:
        return net
    out = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in out.named_parameters():
            if param.numel() > 1:
                noise = torch.randn(param.shape, generator=gen).to(param)
                param.add_(noise * (amount * float(param.std())))
    return out
