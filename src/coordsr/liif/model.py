"""A local implicit image function (LIIF, Chen et al. CVPR 2021) built for the CPU.

The split is explicit and pure (no state kept between calls):

    encode(image (B, 3, h, w))               -> Features  (per-LR-pixel hidden vectors + the LR image)
    query(features, coords (B, N, 2), cell)  -> colours (B, N, 3)

Two changes from the paper make it fast on a CPU without losing its idea:

* The decoder's first layer is linear in [feature, relative coordinate, cell]. LIIF's feature
  unfolding (3x3 neighbourhood, 9C inputs) followed by that linear layer is exactly a 3x3
  convolution on the feature map, so it runs once per LR pixel inside ``encode``; each query
  only adds the small (coord, cell) part before the first nonlinearity. The 4-neighbour local
  ensemble then costs four gathers and four small MLP passes, not four 580-wide ones.
* The MLP predicts a residual over bicubic interpolation of the LR image at the query point,
  so an untrained model already renders bicubic and training only learns the correction.

``decoder="lte"`` swaps LIIF's first layer for the local texture estimator of LTE (Lee and Jin,
CVPR 2022): two 3x3 convolutions on the feature map give each LR pixel an amplitude and a set of
2D frequencies, a linear map of the cell gives a phase, and a query's first hidden vector is
amplitude * [cos, sin](pi * (frequencies . relative coordinate + phase)): a local Fourier basis
whose frequencies the encoder chooses, fed to the same MLP (one layer deeper: the basis is not
linear in the coordinate, so no part of it can be precomputed per LR pixel).

Features carry the box (field coordinates, DESIGN.md section 1) that their LR pixels cover, so a
query with global coordinates works on features of a crop: this is what lets ``upscale`` encode
and render a huge image one overlapping tile at a time with results identical to the one-shot
computation (the tile margin covers the encoder's receptive field and the query's footprint).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from coordsr.coords import FULL_BOX, Box, cell_size, pixel_centers
from coordsr.errors import FieldFileError
from coordsr.memory import reusing_memory
from coordsr.precision import autocast, relu_

FORMAT = "coordsr.liif"
FORMAT_VERSION = 1


@dataclass
class LIIFConfig:
    """Architecture of the local implicit model (everything ``load_weights`` needs to rebuild it)."""

    channels: int = 48
    """Width of the convolutional encoder."""
    blocks: int = 6
    """Residual blocks in the encoder (each two 3x3 convolutions)."""
    hidden: int = 64
    """Width of the decoder MLP."""
    mlp_layers: int = 2
    """Hidden-to-hidden layers after the first (precomputed) decoder layer."""
    in_channels: int = 3
    """Colour channels of the input and output (RGB)."""
    res_scale: float = 1.0
    """Scale of each residual branch (EDSR uses 0.1 for very deep encoders)."""
    decoder: str = "liif"
    """'liif' (LIIF's MLP on feature, relative coordinate and cell) or 'lte' (LTE's local texture
    estimator: a Fourier basis with per-pixel amplitudes and frequencies, then the MLP)."""

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; valid: {', '.join(DECODERS)}")
        if self.decoder == "lte" and self.hidden % 2:
            raise ValueError(f"decoder 'lte' needs an even hidden width (cos and sin halves), not {self.hidden}")


DECODERS = ("liif", "lte")


class ResBlock(nn.Module):
    """conv-relu-conv with a skip connection (EDSR's block, no batch norm)."""

    def __init__(self, c: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class Encoder(nn.Module):
    """EDSR-like: head conv, residual blocks, tail conv with a long skip. (B, 3, h, w) -> (B, C, h, w)."""

    def __init__(self, cfg: LIIFConfig):
        super().__init__()
        self.head = nn.Conv2d(cfg.in_channels, cfg.channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(cfg.channels, cfg.res_scale) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1)

    def forward(self, x):
        x = self.head(x)
        return x + self.tail(self.body(x))


@dataclass
class Features:
    """What ``encode`` returns: everything ``query`` needs, for the LR pixels inside ``box``."""

    hidden: torch.Tensor
    """(B, hidden, h, w): the decoder's first layer applied to each LR pixel's 3x3 feature patch
    (LTE: (B, 2 hidden, h, w), each LR pixel's hidden amplitudes, then hidden / 2 x frequencies and
    hidden / 2 y frequencies)."""
    image: torch.Tensor
    """(B, 3, h, w): the LR pixels themselves, in [0, 1] (bicubic base of the prediction)."""
    box: Box = FULL_BOX
    """(x0, y0, x1, y1) in field coordinates: the region these h x w LR pixels tile."""


class LIIF(nn.Module):
    """Encoder + decoder; use ``encode`` and ``query`` (there is no ``forward``)."""

    def __init__(self, cfg: LIIFConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or LIIFConfig()
        self.encoder = Encoder(cfg)
        if cfg.decoder == "lte":
            # Amplitudes and frequencies of each LR pixel's local basis, as one 3x3 convolution
            # (one gather per neighbour then fetches both); the phase from the cell, per query.
            self.proj = nn.Conv2d(cfg.channels, 2 * cfg.hidden, 3, padding=1)
            self.phase = nn.Linear(2, cfg.hidden // 2, bias=False)
            self.first = nn.Linear(cfg.hidden, cfg.hidden)
        else:
            # Feature unfolding + the first linear layer's feature part, as one 3x3 convolution.
            self.proj = nn.Conv2d(cfg.channels, cfg.hidden, 3, padding=1)
            # First layer's (relative coordinate, cell) part: added per query, no bias (proj has it).
            self.coord = nn.Linear(4, cfg.hidden, bias=False)
        layers: list[nn.Module] = []
        for _ in range(cfg.mlp_layers):
            layers += [nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU()]
        layers.append(nn.Linear(cfg.hidden, cfg.in_channels))
        self.mlp = nn.Sequential(*layers)
        nn.init.zeros_(self.mlp[-1].weight)  # start as plain bicubic
        nn.init.zeros_(self.mlp[-1].bias)

    def _hidden(self, g: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        """The MLP's last hidden activations on (feature part g + coordinate part of inp): every
        layer but the colour layer, with autograd (training). ``inp`` (M, 4) holds the relative
        coordinate and the cell, in LR pixels. Without grad, ``_decode`` does the same."""
        if self.cfg.decoder == "lte":
            z = self.first(self._texture(g, inp))  # its bias stands where proj's is in LIIF
        else:
            z = g + self.coord(inp)
        z = F.relu(z)
        for lin in [m for m in self.mlp if isinstance(m, nn.Linear)][:-1]:
            z = F.relu(lin(z))
        return z

    def _decode(self, table: torch.Tensor, idx: torch.Tensor, inp: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        """``_hidden`` and ``_colour`` without grad: ``table`` (R, hidden) each LR pixel's feature
        part, ``idx`` (B, 4, N) the rows of each query's 4 neighbours, ``inp`` (B, 4, N, 4) their
        relative coordinates and cells, ``weight`` (B, 4, N) -> (B, N, 3). Memory is bounded by
        the caller's chunk of queries (``query_chunked``).

        The coordinate part is added in place on the gathered rows, and the hidden layers write
        into two buffers by turns: a new 16 MB result cost as much as a third of its product, and
        copying the gathered rows into it as much again. On this project's 2-core Xeon (float32,
        best of 5, interleaved with the allocating code, 2026-11-30) a 64x64 -> 1024x1024 upscale
        took 0.74 s against 0.89 s, 256x256 -> 1024x1024 1.41 s against 1.46 s (the encoder is
        most of that); with the CLI's short OpenMP spin (coordsr.openmp_wait) 0.93 against 1.01 s
        and 1.50 against 1.63 s; the same output bit for bit. Not kept: cache-sized blocks of 2048
        queries (no faster, and slower under that short spin, where threads sleep between
        parallel regions: each op is one), and rows of 65 with a constant 1 carrying the bias
        into the product (no faster). Dtypes are explicit (the table's: bfloat16 under
        autocast), as autocast would make them.
        """
        b, _, n = idx.shape
        cd, hd = table.dtype, self.cfg.hidden
        z = table.index_select(0, idx.reshape(-1))  # (B*4*N, table width), ours to overwrite
        q = inp.reshape(-1, 4)
        if self.cfg.decoder == "lte":  # its first layer in the table's dtype, as autocast runs it
            z = torch.addmm(self.first.bias.to(cd), self._texture(z, q).to(cd), self.first.weight.t().to(cd))
        else:
            z.addmm_(q.to(cd), self.coord.weight.t().to(cd))
        z = relu_(z)
        spare = torch.empty_like(z)  # the hidden layers write into it and z by turns
        for lin in [m for m in self.mlp if isinstance(m, nn.Linear)][:-1]:
            z, spare = relu_(torch.addmm(lin.bias.to(cd), z, lin.weight.t().to(cd), out=spare)), z
        return self._colour(z.view(b, 4, n, hd), weight)

    def _texture(self, g: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        """LTE's local basis: ``g`` (M, 2 hidden) gathered from the neighbour (its amplitudes, x
        frequencies, y frequencies), ``inp`` (M, 4) relative coordinate and cell -> (M, hidden)
        amplitude * [cos, sin](pi * (fx * dx + fy * dy + phase(cell))).

        Computed in float32 even under bfloat16 autocast: with 8 bits of mantissa a frequency of
        10 would be off by 0.04, a tenth of a radian after the pi."""
        hd, h2 = self.cfg.hidden, self.cfg.hidden // 2
        with torch.autocast(g.device.type, enabled=False):
            g, inp = g.float(), inp.float()
            arg = torch.addcmul(F.linear(inp[:, 2:], self.phase.weight.float()), g[:, hd:hd + h2], inp[:, :1])
            arg = torch.addcmul(arg, g[:, hd + h2:], inp[:, 1:2])
            arg = arg * math.pi
            return g[:, :hd] * torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)

    def _colour(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The colour layer on the local ensemble: ``z`` (B, 4, N, hidden) the 4 neighbours' last
        hidden activations, ``weight`` (B, 4, N) their weights (summing to 1) -> (B, N, 3).

        The colour layer is affine and the weights sum to 1, so weighting the hidden vectors
        first and applying the layer once gives LIIF's weighted sum of 4 colours with a quarter
        of the layer's work. It runs in float32 even under bfloat16 autocast: bfloat16 would
        round the residual to about 1/256 of its range."""
        last = self.mlp[-1]
        with torch.autocast(z.device.type, enabled=False):
            if torch.is_grad_enabled():
                mixed = (z.float() * weight[..., None]).sum(1)
            else:  # the same sum, without a float32 copy of all 4 neighbours' activations
                mixed = z[:, 0] * weight[:, 0, :, None]
                for k in range(1, 4):
                    mixed.addcmul_(z[:, k], weight[:, k, :, None])
            b, n, hd = mixed.shape
            return torch.addmm(last.bias, mixed.view(b * n, hd), last.weight.t()).view(b, n, -1)

    @property
    def margin(self) -> int:
        """LR pixels of context a tile needs on each side so tiled encoding is exact."""
        return 2 * self.cfg.blocks + 3  # head + 2 per block + tail + proj, radius 1 each

    def encode(self, image: torch.Tensor, box: Box = FULL_BOX) -> Features:
        """LR image (B, 3, h, w) in [0, 1] covering ``box`` -> Features."""
        hidden = self.proj(self.encoder(image - 0.5))
        # Channels-last: each LR pixel's hidden vector contiguous, the rows ``query`` gathers
        # (a gather from the plain layout is strided, 20x slower than the conversion).
        return Features(hidden=hidden.contiguous(memory_format=torch.channels_last), image=image, box=box)

    def query(self, feats: Features, coords: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Colours at ``coords`` (B, N, 2), global (x, y) field coordinates; ``cell`` (B, N, 2) or (B, 2)
        is the size of one output pixel in field units. Returns (B, N, 3)."""
        hid, img = feats.hidden, feats.image
        b, hd, h, w = hid.shape
        n = coords.shape[1]
        x0, y0, x1, y1 = feats.box
        to_px = coords.new_tensor([w / (x1 - x0), h / (y1 - y0)])
        p = (coords - coords.new_tensor([x0, y0])) * to_px  # (B, N, 2) in LR pixels; centre j at j+0.5
        cellp = (cell * to_px).expand(b, n, 2) if cell.dim() == 3 else (cell * to_px)[:, None].expand(b, n, 2)
        size = coords.new_tensor([w, h])

        # The 4 LR pixel centres around each query (LIIF's local ensemble), clamped at the borders.
        lo = torch.floor(p - 0.5)
        offs = coords.new_tensor([[0, 0], [1, 0], [0, 1], [1, 1]])  # (4, 2) as (dx, dy)
        nb = lo[:, None] + offs[None, :, None]  # (B, 4, N, 2)
        nb = torch.minimum(torch.maximum(nb, torch.zeros_like(size)), size - 1)
        rel = p[:, None] - (nb + 0.5)  # (B, 4, N, 2) in LR pixels, within [-1, 1]
        idx = (nb[..., 1] * w + nb[..., 0]).long()  # (B, 4, N)
        idx = idx + (torch.arange(b, device=idx.device) * (h * w))[:, None, None]

        table = hid.permute(0, 2, 3, 1).reshape(b * h * w, hd)
        inp = torch.cat([rel, cellp[:, None].expand(b, 4, n, 2)], dim=-1)  # (B, 4, N, 4)

        # Each neighbour weighs by the area of the rectangle between the query and the opposite one.
        area = (rel[..., 0] * rel[..., 1]).abs() + 1e-9  # (B, 4, N)
        weight = area.flip(1) / area.sum(1, keepdim=True)
        if torch.is_grad_enabled():
            g = table.index_select(0, idx.reshape(-1))  # (B*4*N, hidden)
            z = self._hidden(g, inp.reshape(-1, 4)).view(b, 4, n, -1)  # (B, 4, N, hidden)
            out = self._colour(z, weight)  # (B, N, 3)
        else:
            out = self._decode(table, idx, inp, weight)

        grid = (p / size * 2 - 1)[:, None]  # (B, 1, N, 2) in the crop's own [-1, 1]
        with torch.autocast(grid.device.type, enabled=False):  # the bicubic base stays float32
            base = F.grid_sample(img.float(), grid.float(), mode="bicubic", padding_mode="border",
                                 align_corners=False)
            return out.float() + base[:, :, 0].transpose(1, 2)


def query_chunked(model: LIIF, feats: Features, coords: torch.Tensor, cell: torch.Tensor,
                  chunk: int = 16384) -> torch.Tensor:
    """``model.query`` over ``chunk`` queries at a time: same result, bounded memory."""
    if coords.shape[1] <= chunk:
        return model.query(feats, coords, cell)
    outs = []
    for s in range(0, coords.shape[1], chunk):
        c = cell[:, s:s + chunk] if cell.dim() == 3 else cell
        outs.append(model.query(feats, coords[:, s:s + chunk], c))
    return torch.cat(outs, dim=1)


def _box_of(r0: int, r1: int, c0: int, c1: int, h: int, w: int) -> Box:
    """Field box tiled by LR rows [r0, r1) and columns [c0, c1) of an h x w image."""
    return (2 * c0 / w - 1, 2 * r0 / h - 1, 2 * c1 / w - 1, 2 * r1 / h - 1)


def encode_region(model: LIIF, image: torch.Tensor, r0: int, r1: int, c0: int, c1: int) -> Features:
    """Features of LR rows [r0, r1) x cols [c0, c1) of ``image`` (B, 3, h, w), computed from a crop
    with ``model.margin`` pixels of context so they equal those of the whole image."""
    h, w = image.shape[-2:]
    m = model.margin
    a0, a1, b0, b1 = max(r0 - m, 0), min(r1 + m, h), max(c0 - m, 0), min(c1 + m, w)
    f = model.encode(image[..., a0:a1, b0:b1])
    hid = f.hidden[..., r0 - a0:r1 - a0, c0 - b0:c1 - b0].contiguous(memory_format=torch.channels_last)
    return Features(hidden=hid, image=image[..., r0:r1, c0:c1], box=_box_of(r0, r1, c0, c1, h, w))


def encode_tiled(model: LIIF, image: torch.Tensor, tile: int = 256) -> Features:
    """``model.encode(image)`` computed in overlapping tiles of ``tile`` LR pixels (same result)."""
    h, w = image.shape[-2:]
    hid = None
    for r in range(0, h, tile):
        for c in range(0, w, tile):
            f = encode_region(model, image, r, min(r + tile, h), c, min(c + tile, w))
            if hid is None:
                hid = torch.empty(*f.hidden.shape[:2], h, w, dtype=f.hidden.dtype, device=f.hidden.device,
                                  memory_format=torch.channels_last)
            hid[..., r:r + tile, c:c + tile] = f.hidden
    return Features(hidden=hid, image=image, box=FULL_BOX)


@torch.no_grad()
@reusing_memory()  # the same large per-chunk tensors again and again: keep freed memory for reuse
def upscale(model: LIIF, image: torch.Tensor, size: tuple[int, int], *, tile: int = 1024,
            chunk: int = 16384, on_tile: Callable[[int, int], None] | None = None,
            compute_dtype: torch.dtype = torch.float32, out: torch.Tensor | None = None) -> torch.Tensor:
    """Render LR ``image`` (B, 3, h, w) at ``size`` (H, W) -> (B, 3, H, W), in output tiles of
    ``tile`` pixels; each tile encodes only the LR region it needs, so memory stays bounded.
    ``compute_dtype`` torch.bfloat16 runs the convolutions and hidden layers under autocast
    (the colour layer and the bicubic base stay float32). ``out``: the (B, 3, H, W) tensor to
    fill (a caller can watch it fill from ``on_tile``, tiles in row-major order); new if None."""
    oh, ow = size
    if out is None:
        out = image.new_empty(image.shape[0], image.shape[1], oh, ow)
    n = -(-oh // tile) * -(-ow // tile)
    for k, (r, r1, c, c1, rgb) in enumerate(upscale_tiles(model, image, size, tile=tile, chunk=chunk,
                                                          compute_dtype=compute_dtype)):
        out[..., r:r1, c:c1] = rgb
        if on_tile is not None:
            on_tile(k + 1, n)
    return out


@torch.no_grad()
def upscale_tiles(model: LIIF, image: torch.Tensor, size: tuple[int, int], *, tile: int = 1024,
                  chunk: int = 16384, compute_dtype: torch.dtype = torch.float32,
                  ) -> Iterator[tuple[int, int, int, int, torch.Tensor]]:
    """The tiles of :func:`upscale` as they are computed, row-major: (r0, r1, c0, c1, (B, 3,
    r1 - r0, c1 - c0)). Memory is one tile's work: the LR region it needs, encoded with
    ``model.margin`` pixels of context (so the features equal the whole image's), and its queries."""
    h, w = image.shape[-2:]
    oh, ow = size
    b = image.shape[0]
    cell = cell_size(oh, ow, device=image.device, dtype=image.dtype)[None].expand(b, 2)
    halo = 3  # LR pixels around a tile's footprint: ensemble neighbours (1) + bicubic taps (2)
    with reusing_memory():  # a generator: the setting must hold while it runs, not when it is made
        for r in range(0, oh, tile):
            for c in range(0, ow, tile):
                r1, c1 = min(r + tile, oh), min(c + tile, ow)
                lr0 = max(math.floor(r * h / oh) - halo, 0)
                lr1 = min(math.ceil(r1 * h / oh) + halo, h)
                lc0 = max(math.floor(c * w / ow) - halo, 0)
                lc1 = min(math.ceil(c1 * w / ow) + halo, w)
                box = (2 * c / ow - 1, 2 * r / oh - 1, 2 * c1 / ow - 1, 2 * r1 / oh - 1)
                coords = pixel_centers(r1 - r, c1 - c, box=box, device=image.device, dtype=image.dtype)
                coords = coords.reshape(1, -1, 2).expand(b, -1, 2)
                with autocast(compute_dtype, image.device):
                    feats = encode_region(model, image, lr0, lr1, lc0, lc1)
                    rgb = query_chunked(model, feats, coords, cell, chunk)
                yield r, r1, c, c1, rgb.transpose(1, 2).reshape(b, -1, r1 - r, c1 - c)


# ---------------------------------------------------------------- weights files (safetensors)

def write_weights(state: dict[str, torch.Tensor], config: dict, path: str | Path, *, format: str,
                  version: int, dtype: torch.dtype | None = torch.float16,
                  extra: dict[str, str] | None = None) -> None:
    """Write ``state`` as a self-describing safetensors file (``format``, its version and the model's
    ``config`` as JSON in the metadata), atomically (temporary file, then rename). ``dtype`` None
    keeps each tensor's own type. Shared by every trained model of coordsr (no pickle)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu", dtype or v.dtype).contiguous() for k, v in state.items()}
    meta = {"format": format, "format_version": str(version), "config": json.dumps(config), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_file(tensors, str(tmp), metadata=meta)
        tmp.chmod(0o644)  # a shipped file, readable by everyone (the temporary one may be private)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_weights(path: str | Path, *, format: str, version: int) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config, tensors, metadata) of a file written by ``write_weights`` with this ``format`` and
    ``version``; FieldFileError naming what was expected otherwise."""
    from safetensors import safe_open

    path = Path(path)
    expect = f"expected a {format} weights file, format version {version}"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for truncated / garbage files
        raise FieldFileError(f"{path}: cannot read weights ({e}); {expect}") from None
    if meta.get("format") != format or meta.get("format_version") != str(version):
        raise FieldFileError(f"{path}: format {meta.get('format')!r} version "
                             f"{meta.get('format_version')!r}; {expect}")
    try:
        config = json.loads(meta["config"])
    except Exception as e:
        raise FieldFileError(f"{path}: unreadable config ({e}); {expect}") from None
    return config, tensors, meta


def save_weights(model: LIIF, path: str | Path, *, dtype: torch.dtype = torch.float16,
                 extra: dict[str, str] | None = None) -> None:
    """Write ``model`` as a self-describing safetensors file (config + format version in metadata),
    atomically (temporary file, then rename)."""
    write_weights(model.state_dict(), asdict(model.cfg), path, format=FORMAT, version=FORMAT_VERSION,
                  dtype=dtype, extra=extra)


def load_weights(path: str | Path, device=None) -> LIIF:
    """Rebuild the model from a file written by ``save_weights``; FieldFileError when it is not one."""
    path = Path(path)
    expect = f"expected a {FORMAT} weights file, format version {FORMAT_VERSION}"
    raw, tensors, _ = read_weights(path, format=FORMAT, version=FORMAT_VERSION)
    try:
        names = {f.name for f in fields(LIIFConfig)}
        cfg = LIIFConfig(**{k: v for k, v in raw.items() if k in names})
        model = LIIF(cfg)
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except Exception as e:
        raise FieldFileError(f"{path}: weights do not match their config ({e}); {expect}") from None
    return model.to(device).eval() if device is not None else model.eval()
