"""A fitted field: encoding + network + the metadata of the image it was fitted to (DESIGN.md 4).

``Field`` maps coordinates (..., 2) in the house convention to colours (..., C) in [0, 1] units.
It saves to one self-describing file (safetensors: weights as tensors, everything else as JSON
in the header) and loads back with nothing else, so ``coordsr render`` can draw it at any size
without the source image.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from coordsr.coords import Convention, aspect_scale
from coordsr.errors import FieldFileError

FORMAT = "coordsr-field"
FORMAT_VERSION = 1


@dataclass
class ImageMeta:
    """What the field needs to know about the image it was fitted to."""

    height: int
    """Input height in pixels."""
    width: int
    """Input width in pixels."""
    channels: int
    """1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)."""
    mode: str = "RGB"
    """'L', 'LA', 'RGB' or 'RGBA'."""
    bit_depth: int = 8
    """8 or 16: the depth the upscaled image is written with by default."""


@dataclass
class FieldConfig:
    """How to build a field's modules. Names refer to the registries in encodings/ and networks."""

    encoding: str = "RawCoords"
    """Class name in ``coordsr.encodings.ENCODINGS``."""
    encoding_args: dict = field(default_factory=dict)
    """Keyword arguments of the encoding."""
    activation: str = "relu"
    """Key in ``coordsr.networks.ACTIVATIONS``."""
    activation_args: dict = field(default_factory=dict)
    """Keyword arguments of the activation (e.g. w0 for sine)."""
    hidden: int = 256
    """Width of the hidden layers."""
    layers: int = 3
    """Number of hidden layers."""
    convention: Convention = "cell"
    """Coordinate convention of the fit: 'cell' (house) or 'seed' (pixel index / (N-1))."""
    aspect: bool = True
    """Scale (x, y) so that input pixels are square before encoding (isotropic frequencies)."""


class Field(nn.Module):
    """f(x, y) -> colour, with the metadata needed to render it later."""

    def __init__(self, cfg: FieldConfig, meta: ImageMeta):
        super().__init__()
        from coordsr.encodings import ENCODINGS
        from coordsr.networks import ACTIVATIONS, MLP

        self.cfg, self.meta = cfg, meta
        if cfg.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {cfg.encoding!r}; valid: {', '.join(ENCODINGS)}")
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {cfg.activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.encoding = ENCODINGS[cfg.encoding](**cfg.encoding_args)
        act = ACTIVATIONS[cfg.activation]
        activation = (lambda: act(**cfg.activation_args)) if cfg.activation_args else act
        self.net = MLP(self.encoding.out_dim, meta.channels, hidden=cfg.hidden, layers=cfg.layers,
                       activation=activation)
        scale = aspect_scale(meta.height, meta.width) if cfg.aspect else torch.ones(2)
        self.register_buffer("coord_scale", scale, persistent=False)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates -> (..., C) colours (0.5-centred output, not clipped)."""
        with torch.autocast(coords.device.type, enabled=False):  # encodings stay float32: positions
            feats = self.encoding(coords * self.coord_scale.to(coords.dtype))
        return self.net(feats) + 0.5

    def forward_grid(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """Colours on the grid of every (xs[j], ys[i]): (W,), (H,) -> (H, W, C); equals
        ``self(stack(meshgrid(ys, xs)))`` up to float rounding. Encodings with a separable
        ``forward_grid`` (the multiresolution grid) use it: the renderer's fast path."""
        sx, sy = self.coord_scale.to(xs.dtype)
        xs, ys = xs * sx, ys * sy
        with torch.autocast(xs.device.type, enabled=False):  # encodings stay float32 (see forward)
            if hasattr(self.encoding, "forward_grid") and getattr(self.encoding, "in_dim", 2) == 2:
                feats = self.encoding.forward_grid(xs, ys)
            else:
                yy, xx = torch.meshgrid(ys, xs, indexing="ij")
                feats = self.encoding(torch.stack((xx, yy), dim=-1))
        return self.net(feats) + 0.5

    # --- files -------------------------------------------------------------------------------

    def header(self, extra: dict | None = None) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": asdict(self.cfg),
                "image": asdict(self.meta), **(extra or {})}

    def save(self, path: str | os.PathLike, *, method: str = "", settings: dict | None = None) -> None:
        """Write one self-describing safetensors file, atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        if not path.parent.is_dir():
            raise FieldFileError(f"{path}: folder {path.parent} does not exist")
        meta = self.header({"method": method, "settings": settings or {}})
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"coordsr": json.dumps(meta)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device=None) -> "Field":
        """Rebuild a field from its file; FieldFileError for anything that is not one we can read."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FieldFileError(f"{path}: no such field file")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                header = json.loads((f.metadata() or {}).get("coordsr", "null"))
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises several types for corrupt files
            raise FieldFileError(f"{path}: not a coordsr field file ({type(e).__name__}: {e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise FieldFileError(f"{path}: not a coordsr field file (expected format {FORMAT!r})")
        if header.get("format_version") != FORMAT_VERSION:
            raise FieldFileError(f"{path}: field format version {header.get('format_version')} "
                                 f"is not supported (this coordsr reads version {FORMAT_VERSION})")
        try:
            field_ = cls(FieldConfig(**header["config"]), ImageMeta(**header["image"]))
            field_.load_state_dict(tensors)
        except (TypeError, KeyError, RuntimeError, ValueError) as e:
            raise FieldFileError(f"{path}: field file does not match its config ({e})") from None
        field_.file_header = header
        return field_.to(device) if device is not None else field_
