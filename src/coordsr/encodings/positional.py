"""NeRF's positional encoding: sin and cos of each coordinate at octave-spaced frequencies.

gamma(x) = (x, sin(2^0 pi x), cos(2^0 pi x), ..., sin(2^(K-1) pi x), cos(2^(K-1) pi x)),
each term a vector over the input coordinates (the layout of the NeRF reference code,
which however omits the pi; Mildenhall et al.'s paper has it, and so do we).
Coordinates span [-1, 1], so frequency 2^k pi is 2^k half-periods per image width: the
highest useful k for an N-pixel axis is about log2(N) - 1 (Nyquist: N/2 periods per width).

>>> PositionalEncoding(in_dim=1, n_freqs=2)(torch.tensor([[0.125]]))
tensor([[0.1250, 0.3827, 0.9239, 0.7071, 0.7071]])
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """x -> (x, sin(2^k pi x), cos(2^k pi x) for k < n_freqs).

    Args:
        in_dim: number of input coordinates (2 for images).
        n_freqs: number of octaves K; frequencies are 2^0 pi ... 2^(K-1) pi.
        include_input: put the raw coordinates first in the output.
    """

    def __init__(self, in_dim: int = 2, n_freqs: int = 10, include_input: bool = True):
        super().__init__()
        if in_dim < 1 or n_freqs < 0:
            raise ValueError(f"need in_dim >= 1 and n_freqs >= 0, got {in_dim}, {n_freqs}")
        self.in_dim = in_dim
        self.n_freqs = n_freqs
        self.include_input = bool(include_input)
        self.out_dim = in_dim * (int(self.include_input) + 2 * n_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., D (1 + 2K))
        # Powers of two times pi, built in float64 so every dtype gets correctly rounded values.
        freqs = (2.0 ** torch.arange(self.n_freqs, device=x.device, dtype=torch.float64) * math.pi)
        phase = x.unsqueeze(-2) * freqs.to(x.dtype).unsqueeze(-1)  # (..., K, D)
        enc = torch.cat((phase.sin(), phase.cos()), dim=-1).flatten(-2)  # (..., 2KD)
        return torch.cat((x, enc), dim=-1) if self.include_input else enc

    def footprint_weights(self, var: torch.Tensor) -> torch.Tensor:
        """Factors giving the expected encoding over a Gaussian footprint of per-axis variance
        ``var`` (in_dim,): sin and cos of frequency f damped by exp(-f^2 var / 2) (Mip-NeRF's
        integrated positional encoding); the raw coordinates are their own mean. (out_dim,)."""
        freqs = (2.0 ** torch.arange(self.n_freqs, dtype=torch.float64) * math.pi).to(var.dtype)
        damp = torch.exp(-0.5 * freqs[:, None].square() * var)  # (K, D)
        per_octave = torch.cat((damp, damp), dim=-1).flatten()  # sin then cos of each octave, as forward
        return torch.cat((torch.ones_like(var), per_octave)) if self.include_input else per_octave

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, n_freqs={self.n_freqs}, include_input={self.include_input}"
