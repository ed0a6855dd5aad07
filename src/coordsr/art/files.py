"""Art settings in files: CPPN field files, PNG text chunks, and loading any drawable source.

An art field file is the field file format (field.py: safetensors, JSON in the header) with
``format`` 'coordsr-art': the CPPN's ArtConfig and view beside its weights, so it re-renders
at any size or animates later with nothing else. A poster PNG carries the same record in a
``coordsr-art`` text chunk; since a CPPN is rebuilt from its seed, the PNG alone is enough.

``load_source`` opens whatever ``coordsr art --from`` is given: an art field, a field fitted
by ``coordsr fit``, or a PNG written by ``coordsr art``; anything else is a one-line error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

from torch import nn

from coordsr.art.generator import CPPN, ArtConfig
from coordsr.art.scene import View
from coordsr.atomic import atomic_path
from coordsr.errors import CoordsrError, FieldFileError

ART_FORMAT = "coordsr-art"
ART_FORMAT_VERSION = 1
PNG_KEY = "coordsr-art"
"""Name of the PNG text chunk that holds the record."""


def art_record(cfg: ArtConfig | None, view: View, **extra) -> dict:
    """The JSON record of a picture: format, CPPN settings (None for a fitted field), view."""
    return {"format": ART_FORMAT, "format_version": ART_FORMAT_VERSION,
            "art": asdict(cfg) if cfg is not None else None, "view": asdict(view), **extra}


def config_from_record(record: dict, where: str) -> tuple[ArtConfig | None, View]:
    """(ArtConfig or None, View) from a record; CoordsrError naming ``where`` if it is not one."""
    if not isinstance(record, dict) or record.get("format") != ART_FORMAT:
        raise CoordsrError(f"{where}: not a coordsr art record")
    if record.get("format_version") != ART_FORMAT_VERSION:
        raise CoordsrError(f"{where}: art format version {record.get('format_version')} is not supported "
                           f"(this coordsr reads version {ART_FORMAT_VERSION})")
    try:
        view_args = dict(record.get("view") or {})
        if "center" in view_args:
            view_args["center"] = tuple(view_args["center"])
        view = View(**{k: v for k, v in view_args.items() if k in {f.name for f in fields(View)}})
        cfg = ArtConfig(**record["art"]).check() if record.get("art") is not None else None
    except (TypeError, ValueError, KeyError) as e:
        raise CoordsrError(f"{where}: damaged art settings ({e})") from None
    return cfg, view


def save_art_field(net: CPPN, path: str | os.PathLike, view: View | None = None) -> None:
    """Write the CPPN (settings and weights) as one self-describing file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"coordsr": json.dumps(art_record(net.cfg, view or View()))})


def is_art_field(path: str | os.PathLike) -> bool:
    """True when ``path`` is a safetensors file written by ``coordsr art -o NAME.field``
    (False for anything else, fitted fields included: their loaders give the errors)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) == b"\x89PNG\r\n\x1a\n":
                return False
        return _safetensors_header(Path(path)).get("format") == ART_FORMAT
    except (OSError, CoordsrError):
        return False


def load_source(path: str | os.PathLike, device=None) -> tuple[nn.Module, View | None]:
    """Open an art field, a fitted field or an art PNG: (drawable module, its saved view or None)."""
    path = Path(path)
    if not path.is_file():
        raise CoordsrError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89PNG\r\n\x1a\n":
        return _load_png(path)
    header = _safetensors_header(path)
    if header.get("format") == ART_FORMAT:
        cfg, view = config_from_record(header, str(path))
        if cfg is None:
            raise CoordsrError(f"{path}: holds no CPPN")
        net = CPPN(cfg)
        try:
            from safetensors.torch import load_file

            net.load_state_dict(load_file(str(path)))
        except (RuntimeError, ValueError, KeyError) as e:
            raise FieldFileError(f"{path}: art field does not match its settings ({e})") from None
        return (net.to(device) if device is not None else net), view
    from coordsr.field import Field

    return Field.load(path, device=device), None  # its own one-line errors for other files


def _safetensors_header(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = json.loads((f.metadata() or {}).get("coordsr", "null"))
    except Exception as e:  # safetensors raises several types for files that are not its own
        raise FieldFileError(f"{path}: not a coordsr field file ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise FieldFileError(f"{path}: not a coordsr field file (a safetensors file from another tool)")
    return header


def _load_png(path: Path) -> tuple[nn.Module, View]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            text = im.text.get(PNG_KEY)  # tEXt / iTXt chunks
    except (OSError, SyntaxError, ValueError) as e:
        raise CoordsrError(f"{path}: cannot read this PNG ({e})") from None
    if text is None:
        raise CoordsrError(f"{path}: has no coordsr art settings (only PNGs written by coordsr art have them)")
    try:
        record = json.loads(text)
    except ValueError:
        raise CoordsrError(f"{path}: damaged art settings (not JSON)") from None
    cfg, view = config_from_record(record, str(path))
    if cfg is None:
        drawn = record.get("source") or "a fitted field"
        raise CoordsrError(f"{path}: was drawn from {drawn}; give that field to --from instead")
    return CPPN(cfg), view
