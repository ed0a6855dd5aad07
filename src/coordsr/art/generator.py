"""A random CPPN: a small MLP on (x, y, r, z) whose weights come from a seed (Stanley's CPPNs).

``CPPN(cfg)`` draws every weight from ``torch.Generator().manual_seed(cfg.seed)`` in a fixed
order, so the same seed and settings give the same network, and the same picture, on the same
platform. Its inputs are the (symmetry-folded) coordinates x, y, their radius r and a latent
vector z; z is constant over a picture, so it is folded into the first layer's bias, and a latent
walk (animate.py) only changes that bias. Outputs go through a sigmoid and a colouring
(palettes.py): the network's own RGB, HSV, or a named gradient; alpha is one more output.

The hidden activations are chosen per layer (``"tanh"``, a cycle ``"tanh,sin,gauss"``) or per
unit (``"mix"``: each unit draws its own from the seed, Picbreeder's mixed node functions).

>>> net = CPPN(ArtConfig(seed=1, depth=2, width=8))
>>> net(torch.zeros(4, 5, 2)).shape
torch.Size([4, 5, 3])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from coordsr.art.palettes import PALETTES, apply_palette, check_palette, hsv_to_rgb
from coordsr.art.symmetry import check_symmetry, fold
from coordsr.networks import floored_exp

ACTIVATIONS = ("tanh", "sin", "gauss", "relu", "abs")
"""Hidden activations of a CPPN; ``ArtConfig.activation`` names one, a list, or 'mix'."""
GAINS = (4.0, 1.5, 4.0, 1.6, 1.2)
"""Weight gain after each activation of ACTIVATIONS (same order), chosen by eye for variety."""
MODES = {"grey": 1, "rgb": 3, "rgba": 4}
"""Output mode -> channels of the picture."""
MAX_DEPTH, MAX_WIDTH, MAX_LATENT = 64, 512, 256


@dataclass
class ArtConfig:
    """Everything that decides a CPPN picture except its size and view (the file's 'art' record)."""

    seed: int = 0
    """Seed of every weight, of the latent vector and of the per-unit activations."""
    depth: int = 8
    """Hidden layers."""
    width: int = 32
    """Units per hidden layer."""
    activation: str = "tanh"
    """Hidden activation: one of tanh, sin, gauss, relu, abs; a comma-separated list cycled over
    the layers (e.g. 'tanh,sin'); or 'mix', each unit its own, drawn from the seed."""
    weight_scale: float = 1.0
    """Spread of the weights (1: unit-variance pre-activations); larger draws busier pictures."""
    input_scale: float = 2.0
    """Spread of the first layer's weights on x, y and r: the picture's base frequency."""
    latent: int = 8
    """Length of the latent vector z (0: no z, and no latent walk)."""
    palette: str = "rgb"
    """Colouring: 'rgb' (the network's own), 'hsv', or a gradient (see coordsr art --help)."""
    mode: str = "rgb"
    """Output: 'grey', 'rgb' or 'rgba' (alpha is one more network output)."""
    symmetry: str = "none"
    """none, mirror-x, mirror-y, mirror-xy, radial, kaleido or tile (symmetry.py)."""
    fold: int = 6
    """Order of radial / kaleido symmetry, or tiles per axis of tile."""

    def check(self) -> "ArtConfig":
        """ValueError, one line, for any setting out of range; the config itself otherwise."""
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth must be from 1 to {MAX_DEPTH}, got {self.depth}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width must be from 1 to {MAX_WIDTH}, got {self.width}")
        if not 0 <= self.latent <= MAX_LATENT:
            raise ValueError(f"latent must be from 0 to {MAX_LATENT}, got {self.latent}")
        for name, value in (("weight scale", self.weight_scale), ("input scale", self.input_scale)):
            if not (math.isfinite(value) and 0 < value <= 100):
                raise ValueError(f"{name} must be above 0 and at most 100, got {value}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be from 0 to 2^63 - 1, got {self.seed}")
        layer_activations(self.activation, self.depth)
        check_palette(self.palette)
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.mode == "grey" and self.palette != "rgb":
            raise ValueError(f"palette {self.palette} colours the picture: use mode rgb or rgba, not grey")
        check_symmetry(self.symmetry, self.fold)
        return self


def layer_activations(spec: str, depth: int) -> list[str]:
    """'tanh' -> every layer tanh; 'tanh,sin' -> cycled over ``depth`` layers; 'mix' -> 'mix'."""
    names = [s.strip() for s in spec.split(",")]
    if names == ["mix"]:
        return ["mix"] * depth
    for name in names:
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}, "
                             "a comma-separated list of them, or mix")
    return [names[i % len(names)] for i in range(depth)]


def _activate(h: torch.Tensor, name: str) -> torch.Tensor:
    """Apply activation ``name`` to h in place (h is a fresh block of activations)."""
    if name == "tanh":
        # tanh(x) = 2 sigmoid(2x) - 1: PyTorch's CPU sigmoid is about 5x faster than its tanh
        # (80 vs 430 ns per 32 values on one core, measured), and tanh is most of a CPPN's time.
        return h.mul_(2).sigmoid_().mul_(2).sub_(1)
    if name == "sigmoid":  # a tanh unit whose affine parts live in the weights (CPPN._folded)
        return h.sigmoid_()
    if name == "sin":
        return h.sin_()
    if name == "gauss":  # exp(-x^2 / 2): a bump, symmetric patterns
        return floored_exp(h.square_().mul_(-0.5), inplace=True)
    if name == "relu":
        return h.relu_()
    return h.abs_()  # "abs"


class CPPN(nn.Module):
    """(..., 2) coordinates -> (..., C) colours in [0, 1]; C from ``cfg.mode``."""

    def __init__(self, cfg: ArtConfig):
        super().__init__()
        self.cfg = cfg.check()
        self.channels = MODES[cfg.mode]
        gen = torch.Generator().manual_seed(cfg.seed)
        per_layer = layer_activations(cfg.activation, cfg.depth)
        # Per-unit activation indices: drawn only for 'mix', so other settings keep their weights.
        units = [torch.randint(len(ACTIVATIONS), (cfg.width,), generator=gen) if a == "mix"
                 else torch.full((cfg.width,), ACTIVATIONS.index(a)) for a in per_layer]
        self.register_buffer("units", torch.stack(units))  # (depth, width) indices into ACTIVATIONS
        out = self._raw_outputs()
        weights = []
        fan_in = 3 + cfg.latent
        for i in range(cfg.depth + 1):
            width_out = cfg.width if i < cfg.depth else out
            if i == 0:  # x, y, r at input_scale; z at unit scale per dimension over its length
                w = torch.randn(width_out, fan_in, generator=gen)
                w[:, :3] *= cfg.input_scale
                w[:, 3:] *= cfg.weight_scale / math.sqrt(max(cfg.latent, 1))
            else:
                # Each column is scaled by the gain of the unit that feeds it, over sqrt(width):
                # saturating units (tanh) get a large gain for the crisp shapes of classic CPPNs,
                # unbounded ones (relu, abs) about He's, so deep networks neither fade nor blow up.
                gains = torch.tensor(GAINS)[self.units[i - 1]]  # (width,)
                w = torch.randn(width_out, cfg.width, generator=gen) * gains * (cfg.weight_scale / math.sqrt(cfg.width))
            b = torch.randn(width_out, generator=gen) * (0.5 * cfg.weight_scale)
            weights += [nn.Parameter(w, requires_grad=False), nn.Parameter(b, requires_grad=False)]
        self.weights = nn.ParameterList(weights)
        self.register_buffer("z", torch.randn(cfg.latent, generator=gen))
        # Rows per block of inference: 4096 x 32 floats is 512 KiB, cache-sized (networks.MLP).
        self.block_rows = max(1024, 2**17 // cfg.width)

    def _raw_outputs(self) -> int:
        colour = {"rgb": 3, "hsv": 3}.get(self.cfg.palette, 1)
        if self.cfg.mode == "grey":
            colour = 1
        return colour + (1 if self.cfg.mode == "rgba" else 0)

    def inputs(self, p: torch.Tensor) -> torch.Tensor:
        """(..., 2) -> (..., 3): the folded x, y and their radius."""
        q = fold(p, self.cfg.symmetry, self.cfg.fold)
        return torch.cat((q, q.norm(dim=-1, keepdim=True)), dim=-1)

    @torch.no_grad()
    def forward(self, p: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        z = self.z if z is None else z.to(self.z)
        w0, b0 = self.weights[0], self.weights[1]
        bias0 = b0 + w0[:, 3:] @ z if self.cfg.latent else b0  # z is constant: fold it in
        lead = p.shape[:-1]
        feats = self.inputs(p.to(w0.dtype)).reshape(-1, 3)
        raw = feats.new_empty(feats.shape[0], self.weights[-1].shape[0])
        layers, groups = self._folded(bias0)
        for s in range(0, feats.shape[0], self.block_rows):
            raw[s:s + self.block_rows] = self._block(feats[s:s + self.block_rows], layers, groups).t()
        return self._colour(raw.sigmoid_()).reshape(*lead, self.channels)

    def _folded(self, bias0: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]],
                                                     list[list[tuple[str, int, int]]]]:
        """The layers as (weight (out, in), bias (out, 1)) for :meth:`_block`, and per hidden layer
        its units' activations as (name, first, end) runs of rows.

        Two rewrites that compute the same function:
        - each tanh unit's tanh(a) = 2 sigmoid(2a) - 1 folded in: its row of the layer before
          doubled (the 2a), its column of the layer after doubled and that column's sum taken from
          the bias (the 2 s - 1), so a tanh layer is one pass of sigmoid instead of four;
        - each layer's units sorted by activation (its rows, and the next layer's columns,
          permuted alike), so that under 'mix' every activation runs over one contiguous block
          of :meth:`_block`'s feature-major activations instead of a gather and a scatter of
          scattered columns."""
        tanh = self.units == ACTIVATIONS.index("tanh")  # (depth, width)
        order = [torch.argsort(u, stable=True) for u in self.units]
        ws = [self.weights[0][:, :3], *self.weights[2::2]]
        bs = [bias0, *self.weights[3::2]]
        layers = []
        for i, (w, b) in enumerate(zip(ws, bs)):
            w, b = w.clone(), b.clone()
            if i > 0:  # inputs are 2 s - 1 for the tanh units of the layer before
                into = tanh[i - 1]
                b -= w[:, into].sum(dim=1)
                w[:, into] *= 2
                w = w[:, order[i - 1]]
            if i < len(tanh):  # pre-activations of this layer's tanh units: 2a
                w[tanh[i]] *= 2
                b[tanh[i]] *= 2
                w, b = w[order[i]], b[order[i]]
            layers.append((w.contiguous(), b[:, None].contiguous()))
        runs = []
        for units, o in zip(self.units, order):
            names, start, layer = units[o].tolist(), 0, []
            for k in sorted(set(names)):
                end = start + names.count(k)
                layer.append(("sigmoid" if ACTIVATIONS[k] == "tanh" else ACTIVATIONS[k], start, end))
                start = end
            runs.append(layer)
        return layers, runs

    @staticmethod
    def _block(x: torch.Tensor, layers, runs_per_layer) -> torch.Tensor:
        """(rows, 3) inputs -> (raw outputs, rows): feature-major, so that each unit's values are
        one contiguous row and every activation pass runs on whole vectors."""
        w, b = layers[0]
        h = torch.addmm(b, w, x.t())
        for (w, b), runs in zip(layers[1:], runs_per_layer):
            for name, start, end in runs:
                _activate(h[start:end], name)
            h = torch.addmm(b, w, h)
        return h

    def _colour(self, raw: torch.Tensor) -> torch.Tensor:
        """(N, raw outputs) in [0, 1] -> (N, channels)."""
        palette, alpha = self.cfg.palette, raw[:, -1:] if self.cfg.mode == "rgba" else None
        colour = raw[:, :-1] if alpha is not None else raw
        if palette == "hsv":
            colour = hsv_to_rgb(colour)
        elif palette in PALETTES:
            colour = apply_palette(colour, palette)
        return torch.cat((colour, alpha), dim=-1) if alpha is not None else colour
