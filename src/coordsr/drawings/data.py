"""Training data for the drawing model: real pairs of small and large drawings, and procedural
scenes, as premultiplied RGBA.

Colour is premultiplied by alpha everywhere (inputs, targets, the model's output): a fully
transparent pixel then carries no colour at all, so nothing of what an editor left under
alpha 0 can bleed into an edge, and a composite on any background is linear in the prediction
(on black: the colour; on white: colour + 1 - alpha), which is what the benchmark scores.

A batch is a pure function of (pools, seed, step): resuming a run replays nothing.

* real x16 pairs: an emoji's own 32 px drawing and its 512 px drawing (``Emoji/LR32``,
  ``Emoji/HR512``), or a procedural scene rasterized at 32 and at 512;
* any scale from ``scale_min`` to ``scale_max`` (log-uniform): a random crop of a large drawing
  (emoji or scene) and its area (box) downscale, stored as 8-bit levels as files are;
* a share of samples flattened onto a random plain colour (opaque RGB icons and logos).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from coordsr.coords import cell_size
from coordsr.liif.data import Batch, _augment, hash_seed, is_validation  # the photo model's 8 dihedral transforms
from coordsr.resize import imresize


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight alpha -> (H, W, 4) uint8 premultiplied (rounded)."""
    a = rgba[..., 3:].astype(np.uint16)
    rgb = (rgba[..., :3].astype(np.uint16) * a + 127) // 255
    return np.concatenate([rgb.astype(np.uint8), rgba[..., 3:]], axis=-1)


def unpremultiply(x: torch.Tensor) -> torch.Tensor:
    """(..., 4, H, W) predicted premultiplied RGBA -> straight alpha in [0, 1]: alpha clipped to
    [0, 1], colour to [0, alpha] (a premultiplied colour cannot exceed its alpha), then divided
    by alpha (0 where alpha is 0)."""
    a = x[..., 3:, :, :].clamp(0, 1)
    rgb = torch.minimum(x[..., :3, :, :].clamp(min=0), a)
    return torch.cat([torch.where(a > 0, rgb / a.clamp(min=1e-6), torch.zeros_like(rgb)), a], dim=-3)


def read_premultiplied(path: Path) -> torch.Tensor:
    """An image file as (4, H, W) uint8 premultiplied RGBA (opaque where it has no alpha)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGBA"))
    return torch.from_numpy(premultiply(a).copy()).permute(2, 0, 1).contiguous()


VALIDATION_FRACTION = 0.1
"""Share of the emoji files the drawing model never trains on: its validation files, and the
held-out part the drawing benchmark scores (``coordsr bench --split val``)."""


def is_held_out(name: str) -> bool:
    """Whether the drawing model's training left the file ``name`` out (split by name hash)."""
    return is_validation(Path(name), VALIDATION_FRACTION)


def emoji_pairs(folder: str | Path, *, validation: bool) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, LR (4, 32, 32), HR (4, 512, 512)) uint8 premultiplied pairs of ``folder``'s
    ``LR32/`` and ``HR512/``, the training or the validation part (split by file-name hash)."""
    folder = Path(folder)
    names = sorted(p.name for p in (folder / "LR32").glob("*.png"))
    keep = [n for n in names if is_held_out(n) == validation]
    return [(n, read_premultiplied(folder / "LR32" / n), read_premultiplied(folder / "HR512" / n)) for n in keep]


def scene_pairs(seeds: range, small: int = 32, large: int = 512) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Procedural scenes ``seeds`` rasterized at ``small`` and ``large``: (4, s, s) uint8 pairs."""
    from coordsr.drawings.scenes import draw

    def t(a):
        return torch.from_numpy(a).permute(2, 0, 1).contiguous()

    return [(t(draw(s, small)), t(draw(s, large))) for s in seeds]


def _flatten(x: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Premultiplied (4, h, w) floats composited onto an opaque plain ``colour`` (3,)."""
    a = x[3:]
    return torch.cat([x[:3] + (1 - a) * colour[:, None, None], torch.ones_like(a)])


def edge_weights(hr: torch.Tensor) -> torch.Tensor:
    """(H * W,) sampling weights of a (4, H, W) drawing's pixels: the largest change to a
    4-neighbour over the channels (premultiplied), so edges, outlines and strokes weigh most."""
    d = torch.zeros(hr.shape[1:])
    dy = (hr[:, 1:] - hr[:, :-1]).abs().amax(0)
    dx = (hr[:, :, 1:] - hr[:, :, :-1]).abs().amax(0)
    d[1:] = torch.maximum(d[1:], dy)
    d[:-1] = torch.maximum(d[:-1], dy)
    d[:, 1:] = torch.maximum(d[:, 1:], dx)
    d[:, :-1] = torch.maximum(d[:, :-1], dx)
    return d.flatten()


def _queries(hr: torch.Tensor, queries: int, gen: torch.Generator, edge_share: float = 0.0):
    """``queries`` output pixels of ``hr``: a share ``edge_share`` drawn in proportion to
    ``edge_weights`` (where a drawing's error is: its flat regions are easy), the rest uniformly."""
    _, H, W = hr.shape
    n_edge = int(round(queries * edge_share))
    pick = torch.randint(0, H * W, (queries - n_edge,), generator=gen)
    if n_edge:
        w = edge_weights(hr)
        if float(w.sum()) > 0:
            pick = torch.cat([pick, torch.multinomial(w, n_edge, replacement=True, generator=gen)])
        else:  # a plain picture: nothing to weigh
            pick = torch.cat([pick, torch.randint(0, H * W, (n_edge,), generator=gen)])
    rows, cols = pick // W, pick % W
    coords = torch.stack(((2 * cols + 1) / W - 1, (2 * rows + 1) / H - 1), dim=-1).float()
    return coords, cell_size(H, W), hr.reshape(4, -1)[:, pick].t()


def make_batch(pairs: list[tuple[torch.Tensor, torch.Tensor]], *, batch: int, queries: int, seed: int,
               step: int, real_share: float = 0.5, flat_share: float = 0.2, scale_min: float = 2.0,
               scale_max: float = 32.0, lr_size: int = 32, edge_share: float = 0.0) -> Batch:
    """The batch of ``step``. ``pairs``: (LR, HR) uint8 premultiplied, LR ``lr_size`` and HR
    16 x that (real x16 pairs). With probability ``real_share`` the whole batch is real x16
    pairs; otherwise one scale for the batch, log-uniform in [scale_min, scale_max], crops of the
    large drawings and their box downscales."""
    gen = torch.Generator().manual_seed(hash_seed(seed, step))
    real = float(torch.rand((), generator=gen)) < real_share
    if real:
        s, n = 16.0, lr_size
    else:
        s = math.exp(math.log(scale_min) + (math.log(scale_max) - math.log(scale_min)) * float(torch.rand((), generator=gen)))
        big = pairs[0][1].shape[-1]
        n = max(8, min(lr_size, int(big // s)))
    lrs, cs, cells, ts = [], [], [], []
    for _ in range(batch):
        lr8, hr8 = pairs[int(torch.randint(0, len(pairs), (1,), generator=gen))]
        code = int(torch.randint(0, 8, (1,), generator=gen))
        if real:
            lr, hr = lr8.float() / 255, hr8.float() / 255
        else:
            H = min(round(n * s), hr8.shape[-1])
            top, left = (int(torch.randint(0, hr8.shape[-1] - H + 1, (1,), generator=gen)) for _ in range(2))
            hr = hr8[:, top:top + H, left:left + H].float() / 255
            lr = imresize(hr, (n, n), scale=n / H, kernel="box").clamp(0, 1)
            lr = (lr * 255).round() / 255
        lr, hr = _augment(lr, code), _augment(hr, code)
        if float(torch.rand((), generator=gen)) < flat_share:
            colour = torch.rand(3, generator=gen)
            lr, hr = _flatten(lr, colour), _flatten(hr, colour)
        c, cell, t = _queries(hr, queries, gen, edge_share)
        lrs.append(lr), cs.append(c), cells.append(cell), ts.append(t)
    return Batch(lr=torch.stack(lrs), coords=torch.stack(cs), cell=torch.stack(cells), target=torch.stack(ts))
