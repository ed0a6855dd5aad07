"""A fitted field: encoding + network + the metadata of the image it was fitted to (DESIGN.md 4).

``Field`` maps coordinates (..., 2) in the house convention to colours (..., C) in [0, 1] units.
It saves to one self-describing file (safetensors: weights as tensors, everything else as JSON
in the header) and loads back with nothing else, so ``coordsr render`` can draw it at any size
without the source image.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from coordsr.atomic import atomic_path
from coordsr.coords import CONVENTIONS, Convention, aspect_scale
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

    def __post_init__(self):
        for name in ("height", "width", "channels", "bit_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"image {name} must be an integer, got {value!r}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be at least 1x1, got {self.width}x{self.height}")
        if not 1 <= self.channels <= 4:
            raise ValueError(f"image channels must be 1 to 4, got {self.channels}")
        if self.mode not in ("L", "LA", "RGB", "RGBA"):
            raise ValueError(f"image mode must be L, LA, RGB or RGBA, got {self.mode!r}")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"image bit_depth must be 8 or 16, got {self.bit_depth!r}")


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
    """Coordinate convention of the fit: 'cell' (house), or one of the seed's whole-grid
    normalisations: 'seed' (pixel index / (N-1)), 'centred' ([-1, 1]), 'standard' (unit variance)."""
    aspect: bool = True
    """Scale (x, y) so that input pixels are square before encoding (isotropic frequencies)."""

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {self.convention!r}")
        if not isinstance(self.encoding_args, dict) or not isinstance(self.activation_args, dict):
            raise ValueError("encoding_args and activation_args must be mappings")


# Counts that the modules loop over in Python: a header may not ask for millions of them (the
# meta-device check below would hang before it could compare shapes).
_MAX_COUNT = 4096


def _check_counts(cfg: FieldConfig) -> None:
    counts = {"layers": cfg.layers, **{k: v for k, v in cfg.encoding_args.items()
                                       if k in ("n_levels", "n_freqs", "in_dim")}}
    for name, value in counts.items():
        if isinstance(value, int) and value > _MAX_COUNT:
            raise ValueError(f"{name} = {value} is more than {_MAX_COUNT}")


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

    def forward(self, coords: torch.Tensor, *, var: torch.Tensor | None = None) -> torch.Tensor:
        """(..., 2) coordinates -> (..., C) colours (0.5-centred output, not clipped).

        ``var`` (2,): query a region instead of a point, a Gaussian footprint of that per-axis
        variance (field units) around each coordinate, through the encoding's expected value
        over it (:attr:`has_footprint` says whether the encoding has one)."""
        with torch.autocast(coords.device.type, enabled=False):  # encodings stay float32: positions
            feats = self._over_footprint(self.encoding(coords * self.coord_scale.to(coords.dtype)), var)
        return self.net(feats) + 0.5

    def forward_grid(self, xs: torch.Tensor, ys: torch.Tensor, *, var: torch.Tensor | None = None) -> torch.Tensor:
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
            feats = self._over_footprint(feats, var)
        return self.net(feats) + 0.5

    def fitted_footprint(self) -> str:
        """How this field's pixels were fitted, as a render footprint: 'area' for a field fitted
        with ``fit='area'`` (its file's settings say so), 'point' otherwise."""
        from coordsr.render import footprint_of_fit

        settings = (getattr(self, "file_header", None) or {}).get("settings") or {}
        return footprint_of_fit(settings.get("fit"))

    @property
    def has_footprint(self) -> bool:
        """Whether the encoding gives its expected value over a footprint in closed form
        (Fourier features, positional encoding, grids; not raw coordinates)."""
        return hasattr(self.encoding, "footprint_weights")

    def _over_footprint(self, feats: torch.Tensor, var: torch.Tensor | None) -> torch.Tensor:
        if var is None:
            return feats
        if not self.has_footprint:
            raise ValueError(f"the {self.cfg.encoding} encoding has no closed-form footprint; supersample instead")
        var = torch.as_tensor(var, dtype=torch.float32, device=feats.device) * self.coord_scale.square()
        weights = self.encoding.footprint_weights(var).to(feats.dtype)
        # in place when drawing (the encoding's output is fresh): no second copy of the features
        return feats * weights if torch.is_grad_enabled() else feats.mul_(weights)

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
        try:
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata={"coordsr": json.dumps(meta)})
        except OSError as e:  # read-only folder, full disk: one line, and no temporary file left
            raise FieldFileError(f"{path}: cannot write: {e.strerror or e}") from e
        except Exception as e:  # safetensors reports a failed write as its own error type
            raise FieldFileError(f"{path}: cannot write: {e}") from e

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
            cfg, meta = FieldConfig(**header["config"]), ImageMeta(**header["image"])
            _check_counts(cfg)
            # Built on the meta device first: a header that asks for a huge network fails the
            # comparison with the file's own tensors before any memory is taken.
            with torch.device("meta"):
                shapes = {k: tuple(v.shape) for k, v in cls(cfg, meta).state_dict().items()}
            found = {k: tuple(v.shape) for k, v in tensors.items()}
            if shapes != found:
                wrong = sorted(set(shapes) ^ set(found)) or [k for k in shapes if shapes[k] != found[k]]
                raise ValueError(f"tensors differ from the config's, first at {wrong[0]!r}")
            field_ = cls(cfg, meta)
            field_.load_state_dict(tensors)
        except (TypeError, KeyError, RuntimeError, ValueError, OverflowError) as e:
            why = " ".join(str(e).split())[:300]
            raise FieldFileError(f"{path}: field file does not match its config ({why})") from None
        field_.file_header = header
        return field_.to(device) if device is not None else field_
