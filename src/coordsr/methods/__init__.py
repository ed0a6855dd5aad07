"""The registry of methods (DESIGN.md section 3): upscalers and denoisers.

The key of each entry is the name of its class, so ``grep 'class siren'`` finds it. Each class
says its ``task`` ('upscale' or 'denoise') beside its ``family``; the CLI, the web page, the
benchmark and the tests iterate over ``methods_for(task)``: a new method is one new line here.
"""

from __future__ import annotations

from coordsr.methods.base import Upscaler
from coordsr.methods.blind import blind
from coordsr.methods.drawing import drawing
from coordsr.methods.denoisers import Denoiser, field, nlmeans, trained, tv, wavelet, zsn2n, zsnlm
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
        blind,
        drawing,
        nlmeans,
        wavelet,
        tv,
        field,
        zsn2n,
        zsnlm,
        trained,
    )
}

TASKS: tuple[str, ...] = ("upscale", "denoise")

from coordsr.defaults import DEFAULT_DENOISER, DEFAULT_METHOD  # noqa: E402  (defined without the registry)


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


def check_method(name: str, task: str, settings) -> type:
    """The class registered under ``name`` if it does ``task`` and has every setting named in
    ``settings``; ValueError saying which of these fails otherwise (the CLI and the Python API
    both choose methods through here, so they refuse the same requests with the same words)."""
    from dataclasses import fields

    cls = get_method(name)
    if getattr(cls, "task", "upscale") != task:
        raise ValueError(f"method {name} does not {task} (it is a {cls.task} method); "
                         f"choose one of: {', '.join(methods_for(task))}")
    known = {f.name for f in fields(cls)}
    for key in settings:
        if key not in known:
            raise ValueError(f"method {name} has no setting {key!r}; its settings: "
                             f"{', '.join(sorted(known - {'device'})) or 'none'}")
    return cls


__all__ = ["DEFAULT_DENOISER", "DEFAULT_METHOD", "Denoiser", "METHODS", "TASKS", "Upscaler", "check_method",
           "get_method", "methods_for"]
