"""Colour for a CPPN's raw outputs: named gradient palettes and an HSV colour space.

A palette is a list of colour stops spread evenly over [0, 1]; ``apply_palette`` looks a scalar
field t (..., 1) up in it by piecewise-linear interpolation, so a one-output network becomes an
RGB image in the palette's colours. ``hsv_to_rgb`` reads three outputs as hue, saturation and
value instead of red, green and blue (the colour space Picbreeder's CPPNs used).

>>> apply_palette(torch.tensor([[0.0], [1.0]]), "mono").tolist()
[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import torch

PALETTES: dict[str, tuple[str, ...]] = {
    "mono": ("#000000", "#ffffff"),
    "sunset": ("#0b0a2a", "#3d1c5c", "#9b2c5e", "#e8603c", "#f9b24a", "#fff3b0"),
    "ocean": ("#02111f", "#05386b", "#0f7aa8", "#3fc1c9", "#c8f4f0"),
    "forest": ("#0d1b0f", "#1f4d2b", "#4f8a3c", "#a7c957", "#f2e8cf"),
    "fire": ("#000000", "#4a0a00", "#b22200", "#ff6a00", "#ffd23f", "#ffffe0"),
    "ice": ("#ffffff", "#cfe9ff", "#7fb8e6", "#3a6ea5", "#13294b"),
    "neon": ("#120458", "#7a04eb", "#ff00a0", "#fe75fe", "#00f0ff"),
    "earth": ("#2b1d0e", "#6b4226", "#a47148", "#d9b38c", "#f4ead5"),
    "candy": ("#ff6f91", "#ffc75f", "#f9f871", "#5fd3b3", "#845ec2", "#ff6f91"),
}
"""Palette name -> colour stops (hex sRGB), first at t = 0, last at t = 1."""

COLOURINGS = ("rgb", "hsv", *PALETTES)
"""Every ``ArtConfig.palette``: the network's own RGB, HSV, or a named gradient."""


def check_palette(name: str) -> str:
    """``name`` if it is a colouring we know; ValueError listing the valid names otherwise."""
    if name not in COLOURINGS:
        raise ValueError(f"unknown palette {name!r}; valid: {', '.join(COLOURINGS)}")
    return name


def _stops(name: str, device=None, dtype=torch.float32) -> torch.Tensor:
    """(S, 3) stops of palette ``name`` in [0, 1]."""
    rgb = [[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in PALETTES[check_palette(name)]]
    return torch.tensor(rgb, device=device, dtype=dtype)


def apply_palette(t: torch.Tensor, name: str) -> torch.Tensor:
    """(..., 1) values in [0, 1] -> (..., 3) colours of palette ``name`` (linear between stops)."""
    stops = _stops(name, t.device, t.dtype)  # (S, 3)
    pos = t[..., 0].clamp(0, 1) * (stops.shape[0] - 1)  # (...,)
    lo = pos.floor().clamp_(max=stops.shape[0] - 2).long()
    frac = (pos - lo).unsqueeze(-1)
    return torch.lerp(stops[lo], stops[lo + 1], frac)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(..., 3) hue, saturation, value in [0, 1] -> (..., 3) RGB, as ``colorsys.hsv_to_rgb``."""
    h, s, v = hsv.clamp(0, 1).unbind(-1)
    # The classic formula without branches: each channel is v - v s clamp(|6h - k| shifted).
    k = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype)
    phase = (k + 6 * h.unsqueeze(-1)) % 6  # (..., 3)
    ramp = torch.minimum(phase, 4 - phase).clamp(0, 1)
    return v.unsqueeze(-1) - (v * s).unsqueeze(-1) * ramp
