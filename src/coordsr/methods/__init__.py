"""The registry of methods (DESIGN.md section 3): upscalers and denoisers.

The key of each entry is the name of its class, so ``grep 'class siren'`` finds it. Each class
says its ``task`` ('upscale' or 'denoise') beside its ``family``; the CLI, the web page, the
benchmark and the tests iterate over ``methods_for(task)``: a new method is one new line here.
"""

from __future__ import annotations

from coordsr.methods.base import Upscaler
from coordsr.methods.denoisers import Denoiser, field, nlmeans, tv, wavelet, zsn2n
from coordsr.methods.fields import cppn, fourier, hashgrid, siren, wire
from coordsr.methods.interpolation import bicubic, bilinear, lanczos, nearest
from coordsr.methods.pretrained import pretrained
from coordsr.methods.zeroshot import zeroshot

METHODS: dict[str, type[Upscaler] | type[Denoiser]] = {
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
        nlmeans,
        wavelet,
        tv,
        field,
        zsn2n,
    )
}

TASKS: tuple[str, ...] = ("upscale", "denoise")

DEFAULT_METHOD = "pretrained"
"""What `coordsr upscale` uses when no method is named: the best measured per second (BENCHMARKS.md)."""
DEFAULT_DENOISER = "nlmeans"
"""What `coordsr denoise` and `upscale --denoise` use when no denoiser is named: the best measured
on Kodak24 at sigma 25 and 50 and in the joint test (BENCHMARKS.md, "Denoising")."""


def methods_for(task: str) -> dict[str, type]:
    """The registered methods of one task ('upscale' or 'denoise'), in registry order."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return {name: cls for name, cls in METHODS.items() if getattr(cls, "task", "upscale") == task}


def get_method(name: str) -> type[Upscaler]:
    """The upscaler class registered under ``name``; ValueError listing valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHODS)}") from None


__all__ = ["DEFAULT_DENOISER", "DEFAULT_METHOD", "Denoiser", "METHODS", "TASKS", "Upscaler", "get_method",
           "methods_for"]
