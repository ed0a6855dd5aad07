"""The registry of upscalers (DESIGN.md section 3).

The key of each entry is the name of its class, so ``grep 'class siren'`` finds it. The CLI,
the web page, the benchmark and the tests iterate over ``METHODS``: a new method is one new
line here.
"""

from __future__ import annotations

from coordsr.methods.base import Upscaler
from coordsr.methods.fields import cppn, fourier, hashgrid, siren, wire
from coordsr.methods.interpolation import bicubic, bilinear, lanczos, nearest
from coordsr.methods.pretrained import pretrained
from coordsr.methods.zeroshot import zeroshot

METHODS: dict[str, type[Upscaler]] = {
    cls.__name__: cls
    for cls in (
        nearest,
        bilinear,
        bicubic,
        lanczos,
        cppn,
        fourier,
        siren,
        wire,
        hashgrid,
        zeroshot,
        pretrained,
    )
}

DEFAULT_METHOD = "pretrained"
"""What `coordsr upscale` uses when no method is named: the best measured per second (BENCHMARKS.md)."""


def get_method(name: str) -> type[Upscaler]:
    """The upscaler class registered under ``name``; ValueError listing valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHODS)}") from None


__all__ = ["DEFAULT_METHOD", "METHODS", "Upscaler", "get_method"]
