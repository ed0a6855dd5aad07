"""coordsr: upscale images with coordinate-based neural networks.

The public API is the names in ``__all__`` (documented in ``coordsr.api`` and on the
documentation site's "Python API" page); everything else is internal and may change.

    import coordsr
    big = coordsr.upscale("photo.png", scale=4)

Names are loaded on first use, so ``import coordsr`` (and the CLI's start) stays cheap.

Three public functions share their names with internal modules: ``coordsr.fit`` (the fitting
loop, ``coordsr/fit.py``), ``coordsr.methods`` (the registry) and ``coordsr.denoise`` (the
denoising protocol). The attribute is always the function; the modules are imported by their
dotted names (``from coordsr.fit import FitConfig``, ``importlib.import_module("coordsr.fit")``),
never as ``import coordsr.fit as F``, which would give the function.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from coordsr.errors import Cancelled, CoordsrError, FieldFileError, ImageError, SettingError, StopEarly

if TYPE_CHECKING:
    from coordsr.api import Field, MethodInfo, Setting, classify, denoise, fit, load_field, methods, train, upscale
    from coordsr.progress import Progress

__all__ = [
    "__version__",
    "upscale",
    "classify",
    "fit",
    "load_field",
    "Field",
    "denoise",
    "train",
    "methods",
    "MethodInfo",
    "Setting",
    "Progress",
    "CoordsrError",
    "ImageError",
    "SettingError",
    "FieldFileError",
    "Cancelled",
    "StopEarly",
]

_LAZY = {"upscale": "coordsr.api", "classify": "coordsr.api", "fit": "coordsr.api", "load_field": "coordsr.api",
         "Field": "coordsr.api",
         "denoise": "coordsr.api", "train": "coordsr.api", "methods": "coordsr.api", "MethodInfo": "coordsr.api",
         "Setting": "coordsr.api", "Progress": "coordsr.progress"}


_SHADOWED = frozenset({"fit", "methods", "denoise"})
"""Public functions named like internal modules: importing the module does not replace them."""


class _Package(types.ModuleType):
    """The package's module type: the import system sets ``coordsr.fit = <module coordsr.fit>``
    when it loads that module; here the name stays the public function (see the docstring)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the module is in sys.modules under its dotted name
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("coordsr")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'coordsr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
