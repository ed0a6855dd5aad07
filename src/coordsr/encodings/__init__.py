"""Coordinate encodings: small modules mapping (..., in_dim) coordinates to (..., out_dim).

Every encoding has ``in_dim``, ``out_dim`` and ``forward(x[..., in_dim]) -> [..., out_dim]``
over any leading dimensions, and takes only numbers and booleans in its constructor, so a
field's config can rebuild it. ``ENCODINGS`` maps each class name to the class (the CLI's
words); ``encoding_class`` looks a name up with a helpful error.
"""

from __future__ import annotations

from torch import nn

from .fourier import FourierFeatures
from .grid import MultiresGrid
from .positional import PositionalEncoding
from .raw import RawCoords

ENCODINGS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (RawCoords, PositionalEncoding, FourierFeatures, MultiresGrid)
}


def encoding_class(name: str) -> type[nn.Module]:
    """The encoding class called ``name``; ValueError listing the valid names otherwise."""
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ValueError(f"unknown encoding {name!r}; valid: {', '.join(ENCODINGS)}") from None


__all__ = ["ENCODINGS", "FourierFeatures", "MultiresGrid", "PositionalEncoding", "RawCoords",
           "encoding_class"]
