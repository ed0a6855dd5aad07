"""The public Python API: ``import coordsr`` and call one function.

    import coordsr
    big = coordsr.upscale("photo.png", scale=4)                  # (H, W, C) float32 numpy array
    field = coordsr.fit(big, method="hashgrid", steps=200)       # a fitted coordinate network
    tile = field.render((512, 512), box=(-0.2, -0.2, 0.2, 0.2))  # any size, any region

Every function goes through the same registry and the same library calls as the CLI
(``coordsr.methods``, ``Upscaler.upscale``, ``FieldUpscaler.fit_field``, ``Field.save`` /
``load``, the tiled renderer): the CLI is words over these calls, this module is Python values
over them.

**Images in.** A path (``str`` or ``os.PathLike``: PNG, JPEG, TIFF, WebP, BMP, read as the CLI
reads it), a Pillow image, a numpy array or a torch tensor:

- numpy arrays are (H, W) or (H, W, C) with C in 1..4 (grey, grey + alpha, RGB, RGBA): uint8
  (0..255), uint16 (0..65535) or floats in [0, 1];
- torch tensors are (C, H, W) or (H, W, C) (or (H, W)), uint8 or floating point. The layout is
  read from the shape: **(C, H, W) when the first dimension is 1 to 4 and the last is not,
  (H, W, C) when the last is 1 to 4 and the first is not**; when both are (a 3 x 10 x 3
  tensor), torch's own (C, H, W) is taken. ``layout="hwc"`` or ``"chw"`` says it outright.

**Images out.** The type that came in, with its dtype, layout, dimensions and (tensors) device:
a uint8 array gives a uint8 array, a (C, H, W) float16 CUDA tensor a (C, H, W) float16 CUDA
tensor, a Pillow image a Pillow image (L, LA, RGB or RGBA, 8-bit; ``I;16`` for 16-bit grey). A
path gives an (H, W, C) float32 numpy array in [0, 1]. ``output="numpy"`` (float32 (H, W, C)
unless the input was a numpy array), ``"pil"`` or ``"tensor"`` (float32 (C, H, W) unless the
input was a tensor) chooses instead.

**Sizes** are (height, width), as in numpy shapes and ``torch.nn.functional.interpolate`` (the
CLI's ``--size`` is WIDTHxHEIGHT, as people write screen sizes).

**Errors** a caller can cause are :class:`coordsr.CoordsrError` subclasses, the classes the CLI
turns into its one-line messages: :class:`coordsr.ImageError` (an image that cannot be read or
is not an image), :class:`coordsr.SettingError` (an unknown method or setting, a value out of
range; also a ``ValueError``), :class:`coordsr.FieldFileError` (a field file that cannot be
read or written); a request too large for the memory available is a plain
:class:`coordsr.CoordsrError`. An object of an unsupported type is a ``TypeError``.

**Progress** is ``progress=True`` (a rich progress bar on stderr), or a callable that receives
each :class:`coordsr.Progress` report; raising :class:`coordsr.Cancelled` inside it stops the
work.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Union

import numpy as np

from coordsr.errors import CoordsrError, ImageError, SettingError
from coordsr.images import DEFAULT_MAX_PIXELS
from coordsr.progress import Progress

if TYPE_CHECKING:
    import torch
    from PIL import Image as PILImage

    from coordsr.content import Content
    from coordsr.field import Field as FieldModule
    from coordsr.fit import FitResult

ImageInput = Union[str, os.PathLike, "PILImage.Image", np.ndarray, "torch.Tensor"]
"""What the functions take as an image: a path, a Pillow image, a numpy array or a torch tensor."""
ImageOutput = Union[np.ndarray, "PILImage.Image", "torch.Tensor"]
"""What they give back: a numpy array, a Pillow image or a torch tensor (see ``output``)."""
OutputKind = Literal["numpy", "pil", "tensor"]
ProgressArg = Union[bool, Callable[[Progress], None], None]

BOX_LIMIT = 1000.0
"""Farthest a render box may reach in field coordinates (the image spans -1..1), as the CLI's."""


# --- images in and out ---------------------------------------------------------------------------


@dataclass
class _Source:
    """A decoded input and what is needed to give the result back in its type."""

    pixels: np.ndarray  # (H, W, C) float32 in [0, 1] (denoise inputs may stray outside)
    bit_depth: int  # 8 or 16
    kind: str  # 'path', 'pil', 'numpy' or 'tensor'
    dtype: Any = None  # numpy / torch dtype of an array or tensor input
    flat: bool = False  # the input was (H, W): give (H, W) back
    layout: str = "hwc"  # a tensor's layout: 'hwc' or 'chw'
    device: Any = None  # a tensor's device
    jpeg_quality: int | None = None  # a JPEG file's or Pillow image's saved quality (coordsr.quality)


def _read(image: ImageInput, *, layout: str | None, max_pixels: int | None) -> _Source:
    if layout not in (None, "hwc", "chw"):
        raise SettingError(f"layout must be 'hwc' or 'chw', got {layout!r}")
    if isinstance(image, (str, os.PathLike)):
        from coordsr.images import read_image

        data = read_image(image, max_pixels=max_pixels)
        return _Source(data.pixels, data.bit_depth, "path", jpeg_quality=data.jpeg_quality)
    from PIL import Image

    if isinstance(image, Image.Image):
        from coordsr.images import from_pillow

        data = from_pillow(image)
        return _Source(_checked(data.pixels), data.bit_depth, "pil", jpeg_quality=data.jpeg_quality)
    if isinstance(image, np.ndarray):
        pixels, depth = _from_array(image, "array")
        return _Source(_checked(pixels), depth, "numpy", dtype=image.dtype, flat=image.ndim == 2)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        return _from_tensor(image, layout)
    raise TypeError(f"expected a path, a PIL image, a numpy array or a torch tensor, got {type(image).__name__}")


def _from_array(arr: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """(H, W[, C]) uint8 / uint16 / float -> ((H, W, C) float32, bit depth)."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and not 1 <= arr.shape[2] <= 4):
        raise ImageError(f"expected an (H, W) or (H, W, C) {what} with C in 1..4, got shape {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        pixels, depth = arr.astype(np.float32) / 255, 8
    elif arr.dtype == np.uint16:
        pixels, depth = arr.astype(np.float32) / 65535, 16
    elif arr.dtype.kind == "f":
        pixels, depth = arr.astype(np.float32), 16
        if not np.isfinite(pixels).all():
            raise ImageError(f"the {what} holds NaN or infinite values")
    else:
        raise ImageError(f"expected a uint8, uint16 or floating-point {what}, got {arr.dtype}")
    return (pixels if pixels.ndim == 3 else pixels[:, :, None]), depth


def _from_tensor(t: "torch.Tensor", layout: str | None) -> _Source:
    import torch

    if t.ndim == 3 and layout is None:
        first, last = 1 <= t.shape[0] <= 4, 1 <= t.shape[-1] <= 4
        layout = "hwc" if last and not first else "chw"
    elif t.ndim != 3:
        layout = "hwc"
    if t.ndim not in (2, 3):
        raise ImageError(f"expected a (C, H, W), (H, W, C) or (H, W) tensor, got shape {tuple(t.shape)}")
    x = t.detach().to("cpu")
    if x.dtype.is_floating_point:
        x = x.to(torch.float32)
    elif x.dtype not in (torch.uint8,):
        raise ImageError(f"expected a uint8 or floating-point tensor, got {x.dtype}")
    if t.ndim == 3 and layout == "chw":
        x = x.permute(1, 2, 0)
    pixels, depth = _from_array(np.ascontiguousarray(x.numpy()), "tensor")
    return _Source(_checked(pixels), depth, "tensor", dtype=t.dtype, flat=t.ndim == 2, layout=layout,
                   device=t.device)


def _checked(pixels: np.ndarray) -> np.ndarray:
    from coordsr.methods.base import check_image

    try:
        return check_image(pixels)
    except ValueError as e:
        raise ImageError(str(e)) from None


def _quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    return (np.clip(pixels, 0, 1) * top).round().astype(dtype)


def _give(pixels: np.ndarray, src: _Source, output: OutputKind | None) -> ImageOutput:
    """The (H, W, C) float32 result in the type ``src`` came in, or the ``output`` asked for."""
    kind = output or {"path": "numpy"}.get(src.kind, src.kind)
    if kind == "numpy":
        if src.kind != "numpy":
            return pixels
        if src.dtype in (np.uint8, np.uint16):
            out = _quantize(pixels, 8 if src.dtype == np.uint8 else 16)
        else:
            out = pixels.astype(src.dtype, copy=False)
        return out[:, :, 0] if src.flat else out
    if kind == "pil":
        return _to_pil(pixels, src.bit_depth)
    if kind == "tensor":
        import torch

        if src.kind != "tensor":
            return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
        if src.dtype == torch.uint8:
            t = torch.from_numpy(_quantize(pixels, 8))
        else:
            t = torch.from_numpy(np.ascontiguousarray(pixels)).to(src.dtype)
        t = t[:, :, 0] if src.flat else (t.permute(2, 0, 1) if src.layout == "chw" else t)
        return t.contiguous().to(src.device)
    raise SettingError(f"output must be 'numpy', 'pil' or 'tensor', got {output!r}")


def _to_pil(pixels: np.ndarray, bit_depth: int) -> "PILImage.Image":
    from PIL import Image

    if pixels.shape[2] == 1 and bit_depth == 16:
        return Image.fromarray(_quantize(pixels[:, :, 0], 16))  # mode I;16
    q = _quantize(pixels, 8)
    return Image.fromarray(q[:, :, 0] if q.shape[2] == 1 else q)


def _check_output(output: OutputKind | None) -> None:
    if output not in (None, "numpy", "pil", "tensor"):
        raise SettingError(f"output must be 'numpy', 'pil' or 'tensor', got {output!r}")


def _out_size(h: int, w: int, scale: float | None, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) from ``size`` (height, width) or ``scale`` (default 4, as the CLI's)."""
    if scale is not None and size is not None:
        raise SettingError("give scale or size, not both")
    if size is not None:
        try:
            out = (int(size[0]), int(size[1]))
            ok = len(size) == 2 and out[0] >= 1 and out[1] >= 1 and out == tuple(size)
        except (TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            raise SettingError(f"size must be (height, width), two positive integers, got {size!r}")
        return out
    scale = 4.0 if scale is None else scale
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise SettingError(f"scale must be a positive number, got {scale!r}")
    if min(h, w) * scale < 1:
        raise SettingError(f"scale {scale:g}: a {w}x{h} image would be less than one pixel wide")
    return max(1, round(h * scale)), max(1, round(w * scale))


# --- methods -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting of a method (a field of its dataclass), as ``coordsr.methods()`` lists it."""

    name: str
    """Keyword to pass, e.g. ``coordsr.upscale(img, method="siren", lr=1e-4)``."""
    type: str
    """Its type as written in the source, e.g. 'int', 'float', 'str | None'."""
    default: Any
    """Its default: the value that reproduces the method's measured best."""
    doc: str
    """What it does (the docstring under the field)."""


@dataclass(frozen=True)
class MethodInfo:
    """One entry of the registry: what ``coordsr methods`` prints, with the settings."""

    name: str
    """The name to pass as ``method=``."""
    task: str
    """'upscale' or 'denoise'."""
    family: str
    """'interpolation', 'per-image', 'zero-shot', 'pretrained' (upscalers); 'classical',
    'per-image', 'zero-shot' (denoisers)."""
    description: str
    """One line: what the method is."""
    default: bool
    """Whether it is the default of its task."""
    fits_field: bool
    """Whether :func:`coordsr.fit` takes it (it fits a field that can be saved and rendered)."""
    settings: dict[str, Setting]
    """Its settings by name (``device`` is an argument of its own, not listed)."""


def methods(task: str | None = None) -> dict[str, MethodInfo]:
    """The registered methods, in registry order: every one, or those of one ``task``.

    Args:
        task: 'upscale', 'denoise', or None for both.

    Returns:
        ``{name: MethodInfo}``, e.g. ``coordsr.methods()["siren"].settings["w0"].default`` is 30.0.

    Raises:
        SettingError: an unknown task.
    """
    from dataclasses import MISSING, fields

    from coordsr.methods import DEFAULT_DENOISER, DEFAULT_METHOD, METHODS, methods_for

    if task is None:
        chosen = METHODS
    else:
        try:
            chosen = methods_for(task)
        except ValueError as e:
            raise SettingError(str(e)) from None
    out = {}
    for name, cls in chosen.items():
        docs = cls.setting_docs()
        settings = {f.name: Setting(f.name, f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)),
                                    f.default if f.default is not MISSING else None, docs.get(f.name, ""))
                    for f in fields(cls) if f.name != "device"}
        out[name] = MethodInfo(name=name, task=cls.task, family=cls.family, description=cls.description(),
                               default=name in (DEFAULT_METHOD, DEFAULT_DENOISER),
                               fits_field=bool(getattr(cls, "fits_field", False)), settings=settings)
    return out


def _make(name: str, task: str, device: str, settings: dict):
    """The registered method ``name`` of ``task``, its settings checked before any work."""
    from coordsr.methods import check_method

    try:
        cls = check_method(name, task, settings)
        return cls(device=device, **settings)  # checks every setting and the device
    except (ValueError, TypeError) as e:
        text = str(e)
        raise SettingError(text if text.startswith("method ") or text.startswith("unknown method")
                           else f"method {name}: {text}") from None


# --- progress ------------------------------------------------------------------------------------


class _Bar:
    """A rich progress bar on stderr fed by Progress reports (``progress=True``)."""

    def __init__(self, description: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
            TimeElapsedColumn

        self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                console=Console(stderr=True))
        self.task = self.bar.add_task(description, total=None, info="")

    def __call__(self, report: Progress) -> None:
        info = report.stage + (f"  {report.psnr:.2f} dB" if report.psnr is not None else "")
        self.bar.update(self.task, completed=report.step, total=report.total, info=info)


@contextlib.contextmanager
def _progress(progress: ProgressArg, description: str) -> Iterator[Callable[[Progress], None] | None]:
    if progress is None or progress is False:
        yield None
    elif progress is True:
        bar = _Bar(description)
        with bar.bar:
            yield bar
    elif callable(progress):
        yield progress
    else:
        raise SettingError(f"progress must be True, False, None or a callable, got {progress!r}")


# --- the functions -------------------------------------------------------------------------------


def upscale(image: ImageInput, *, scale: float | None = None, size: tuple[int, int] | None = None,
            method: str | None = None, content: str = "auto", degradation: str = "auto", device: str = "auto",
            precision: str | None = None, progress: ProgressArg = None, output: OutputKind | None = None, layout: str | None = None,
            max_pixels: int | None = DEFAULT_MAX_PIXELS, **settings: Any) -> ImageOutput:
    """Upscale an image with any registered method (``coordsr upscale``).

    Args:
        image: a path, a Pillow image, a numpy array or a torch tensor (see the module's rules).
        scale: output size as a multiple of the input's (default 4).
        size: output (height, width) instead of ``scale``.
        method: a registered upscaler (:func:`coordsr.methods`); it wins over ``content``. Default:
            the one ``content`` picks.
        content: what the image shows, when no ``method`` is given: 'auto' (the default:
            :func:`coordsr.classify` decides; a photo gets ``pretrained``, a drawing ``drawing``,
            pixel art ``nearest``), or 'photo', 'drawing', 'pixel-art' to say it outright. Call
            :func:`coordsr.classify` on the same image to see the choice and its reason.
        degradation: how a photo arrived, when no ``method`` is given: 'auto' (the default: a
            JPEG's saved quality, block artefacts and noise decide: :mod:`coordsr.quality`), 'clean'
            (``pretrained``) or 'real' (``blind``, for compressed, noisy or soft photos).
        device: 'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.
        precision: 'auto', 'fp32' or 'bf16', for the methods that have the setting.
        progress: True for a progress bar, or a callable taking each :class:`coordsr.Progress`.
        output: 'numpy', 'pil' or 'tensor'; default the type of ``image``.
        layout: 'hwc' or 'chw' for a 3-D tensor whose shape does not say.
        max_pixels: refuse a file of more pixels (read from its header; None: no limit).
        **settings: the method's settings, e.g. ``steps=500, fit="consistent", seed=3``.

    Returns:
        The upscaled image, in the type of ``image`` unless ``output`` says otherwise.

    Raises:
        SettingError: an unknown method, content, degradation, setting or value (checked before
            the image is read).
        ImageError: an image that cannot be read or is not an image.
        CoordsrError: an output too large for the memory available.

    Example:
        >>> big = upscale(np.zeros((16, 16, 3), np.uint8), scale=2, method="bicubic")
        >>> big.shape, big.dtype
        ((32, 32, 3), dtype('uint8'))
    """
    _check_output(output)
    name = _method_for_content(method, content, degradation)
    if precision is not None:
        settings["precision"] = precision
    upscaler = _make(name, "upscale", device, settings)
    src = _read(image, layout=layout, max_pixels=max_pixels)
    from coordsr.content import candidate_methods, content_of

    if candidate_methods(method, content, degradation):  # the image decides
        chosen = content_of(src.pixels, content, degradation, src.jpeg_quality).method
        if chosen != name:  # settings were checked against the default; each method gets those it has
            upscaler = _make(chosen, "upscale", device, _settings_of(chosen, settings))
            name = chosen
    h, w = src.pixels.shape[:2]
    out_size = _out_size(h, w, scale, size)
    upscaler.check_memory(src.pixels.shape, out_size)
    with _progress(progress, f"{name} {w}x{h} -> {out_size[1]}x{out_size[0]}") as callback:
        result = upscaler.upscale(src.pixels, out_size, progress=callback)
    return _give(result, src, output)


def _method_for_content(method: str | None, content: str, degradation: str = "auto") -> str:
    """The method named, or the one ``content`` and ``degradation`` name ('auto': the default
    until the image is seen)."""
    from coordsr.content import named_method

    try:
        return named_method(method, content, degradation)
    except ValueError as e:
        raise SettingError(str(e)) from None


def _settings_of(name: str, settings: dict) -> dict:
    """The settings method ``name`` has."""
    from dataclasses import fields

    from coordsr.methods import get_method

    known = {f.name for f in fields(get_method(name))}
    return {k: v for k, v in settings.items() if k in known}


def classify(image: ImageInput, *, degradation: str = "auto", layout: str | None = None,
             max_pixels: int | None = DEFAULT_MAX_PIXELS) -> "Content":
    """What an image shows, as :func:`upscale` with ``content="auto"`` sees it: a photo, a drawing
    (icons, emoji, logos) or pixel art, and why.

    The decision rests on a few measured features: a transparent background, the number of
    distinct colours, how much of the picture its 16 commonest colours cover (flat regions),
    antialiasing (in-between colours at edges; pixel art has none) and the size.

    Args:
        image: a path, a Pillow image, a numpy array or a torch tensor.
        degradation: 'auto' (the default) also checks a photo for compression and noise, as
            :func:`upscale` does (``degradation``: its measurements and reason); 'clean' skips it.
        layout: 'hwc' or 'chw' for a 3-D tensor whose shape does not say.
        max_pixels: refuse a file of more pixels (None: no limit).

    Returns:
        A ``Content`` with ``kind`` ('photo', 'drawing' or 'pixel-art'), ``reason`` (plain words,
        e.g. 'drawing: transparent background, 23 colours, flat regions: 91% of it in 16
        colours'), ``method`` (the upscaler ``content="auto"`` runs for it) and ``features``
        (the measurements).

    Raises:
        ImageError: an image that cannot be read or is not an image.

    Example:
        >>> sprite = np.zeros((16, 16, 4), np.uint8); sprite[4:12, 4:12] = (255, 0, 0, 255)
        >>> found = classify(sprite)
        >>> found.kind, found.method
        ('pixel-art', 'nearest')
    """
    from coordsr.content import content_of
    from coordsr.quality import check_degradation

    try:
        check_degradation(degradation)
    except ValueError as e:
        raise SettingError(str(e)) from None
    src = _read(image, layout=layout, max_pixels=max_pixels)
    return content_of(src.pixels, "auto", degradation, src.jpeg_quality)


def denoise(image: ImageInput, *, sigma: float | None = None, method: str | None = None,
            device: str = "auto", progress: ProgressArg = None, output: OutputKind | None = None,
            layout: str | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
            **settings: Any) -> ImageOutput:
    """Remove white Gaussian-like noise (``coordsr denoise``).

    Args:
        image: a path, a Pillow image, a numpy array or a torch tensor; float inputs may stray
            outside [0, 1] (unclipped noise).
        sigma: the noise level in 8-bit levels (0 to 100); None estimates it from the image. A
            level below 0.5 gives the image back unchanged.
        method: a registered denoiser (``coordsr.methods("denoise")``); default ``trained``.
        device: 'auto', 'cpu', 'cuda' or 'cuda:N' (for the denoisers that fit networks).
        progress: True for a progress bar, or a callable taking each :class:`coordsr.Progress`.
        output: 'numpy', 'pil' or 'tensor'; default the type of ``image``.
        layout: 'hwc' or 'chw' for a 3-D tensor whose shape does not say.
        max_pixels: refuse a file of more pixels (None: no limit).
        **settings: the denoiser's settings, e.g. ``h=0.8`` for ``nlmeans``.

    Returns:
        The denoised image, the size of the input, in [0, 1]; an alpha channel is kept as it is.

    Raises:
        SettingError: an unknown denoiser, setting or value, or ``sigma`` out of range.
        ImageError: an image that cannot be read or is not an image.
    """
    from coordsr.denoise.protocol import check_sigma
    from coordsr.methods import DEFAULT_DENOISER

    _check_output(output)
    name = method or DEFAULT_DENOISER
    cleaner = _make(name, "denoise", device, settings)
    if sigma is not None:
        try:
            sigma = check_sigma(sigma)
        except (TypeError, ValueError) as e:
            raise SettingError(f"sigma: {e}") from None
    src = _read(image, layout=layout, max_pixels=max_pixels)
    with _progress(progress, f"denoise {name}") as callback:
        try:
            result = cleaner.denoise(src.pixels, sigma, progress=callback)
        except ValueError as e:
            raise CoordsrError(f"{name}: {e}") from None
    return _give(result, src, output)


def fit(image: ImageInput, *, method: str = "hashgrid", fit: str | None = None, steps: int | None = None,
        until: str | None = None, seed: int | None = None, scale: float | None = None,
        size: tuple[int, int] | None = None, device: str = "auto", precision: str | None = None,
        progress: ProgressArg = None, layout: str | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS, **settings: Any) -> Field:
    """Fit a coordinate network to an image (``coordsr fit``); draw it later at any size.

    Args:
        image: a path, a Pillow image, a numpy array or a torch tensor.
        method: a per-image method (those with ``fits_field`` in :func:`coordsr.methods`):
            'hashgrid' (the default, as the CLI's), 'siren', 'fourier', 'wire', 'cppn'.
        fit: the observation model: 'point' (the network matches the pixel centres, the seed's
            method), 'area' (each pixel is the field's mean over its cell), 'mip' (area, at the
            input's pixels and at its 2x2, 4x4, 8x8 block means) or 'consistent' (drawn at the
            output size and taken down with the bicubic that made the data, it matches the
            input). Default the method's, 'point'.
        steps: the most steps of the fit (default the method's).
        until: when the fit is done: 'auto' (the drawn output stops changing; 'auto:LEVELS'
            with its own threshold), 'steps' (all of them) or 'psnr:DB' (that PSNR on the input).
        seed: the same seed gives the same field.
        scale: the output size the fit is for, as a multiple of the input's (default 4); only
            the consistent model depends on it.
        size: that output size as (height, width) instead.
        device: 'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.
        precision: 'auto', 'fp32' or 'bf16'.
        progress: True for a progress bar, or a callable taking each :class:`coordsr.Progress`;
            it may raise :class:`coordsr.StopEarly` to keep the field as it is now.
        layout: 'hwc' or 'chw' for a 3-D tensor whose shape does not say.
        max_pixels: refuse a file of more pixels (None: no limit).
        **settings: the method's other settings, e.g. ``lr=1e-3, hidden=128``.

    Returns:
        The fitted :class:`coordsr.Field`.

    Raises:
        SettingError: an unknown method, a method that fits no field, a bad setting.
        ImageError: an image that cannot be read or is not an image.
        CoordsrError: a fit too large for the memory available.
    """
    for key, value in (("fit", fit), ("steps", steps), ("until", until), ("seed", seed), ("precision", precision)):
        if value is not None:
            settings[key] = value
    upscaler = _make(method, "upscale", device, settings)
    if not getattr(upscaler, "fits_field", False):
        fitting = [n for n, m in methods("upscale").items() if m.fits_field]
        raise SettingError(f"method {method} does not fit a field; choose one of: {', '.join(fitting)}")
    src = _read(image, layout=layout, max_pixels=max_pixels)
    h, w = src.pixels.shape[:2]
    out_size = _out_size(h, w, scale, size)
    upscaler.check_memory(src.pixels.shape, out_size)
    with _progress(progress, f"fit {method} {w}x{h}") as callback:
        module, result = upscaler.fit_field(src.pixels, out_size, bit_depth=src.bit_depth, progress=callback)
    return Field(module, method=method, settings={**upscaler.settings(), "out_size": list(out_size)},
                 result=result)


def train(data: str | os.PathLike | list[str | os.PathLike], out: str | os.PathLike = "model.safetensors", *,
          steps: int = 10_000, device: str = "auto", precision: str = "fp32", progress: ProgressArg = None,
          **settings: Any) -> Path:
    """Train the local implicit model behind ``method="pretrained"`` on folders of HR images
    (``coordsr train``); use the result with ``upscale(img, method="pretrained", weights=path)``.

    Args:
        data: a folder of HR images, or several (never the benchmark sets).
        out: where the best weights (by validation PSNR) are written, as safetensors; the
            training checkpoint goes beside it (``.ckpt``).
        steps: optimizer steps.
        device: 'auto' (CUDA when present), 'cpu' or 'cuda'.
        precision: 'fp32', 'bf16' or 'auto'.
        progress: True for a progress bar, or a callable taking each :class:`coordsr.Progress`
            (stage 'train', with the loss).
        **settings: the training settings (``patch``, ``batch``, ``lr``, ``seed``, ``resume``,
            ``val_every``...) and the model's (``channels``, ``blocks``, ``hidden``,
            ``mlp_layers``), as ``python -m coordsr.liif.train --help`` lists them.

    Returns:
        The path of the weights file.

    Raises:
        SettingError: a setting that training does not have.
        CoordsrError: no training images, or a loss that became NaN (the last good
            checkpoint is kept).
    """
    from dataclasses import fields

    from coordsr.liif.model import LIIFConfig
    from coordsr.liif.train import TrainConfig, train as run_training

    folders = [str(data)] if isinstance(data, (str, os.PathLike)) else [str(d) for d in data]
    model_keys = {f.name for f in fields(LIIFConfig)}
    train_keys = {f.name for f in fields(TrainConfig)} - {"data", "out", "model", "steps", "device", "precision"}
    for key in settings:
        if key not in model_keys | train_keys:
            raise SettingError(f"training has no setting {key!r}; its settings: {', '.join(sorted(model_keys | train_keys))}")
    model = LIIFConfig(**{k: v for k, v in settings.items() if k in model_keys})
    cfg = TrainConfig(data=folders, out=str(out), steps=steps, device=device, precision=precision, model=model,
                      **{k: v for k, v in settings.items() if k in train_keys})
    with _progress(progress, f"train {steps} steps") as callback:
        run_training(cfg, callback)
    return Path(out)


def load_field(path: str | os.PathLike, *, device: str = "auto") -> Field:
    """Load a field saved by :meth:`Field.save` or ``coordsr fit`` (``coordsr render``'s input).

    Raises:
        FieldFileError: a missing file, not a field file, another format version, or tensors
            that do not match the file's own config.
        SettingError: a device this machine does not have.
    """
    from coordsr.field import Field as FieldModule
    from coordsr.methods.base import resolve_device

    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise SettingError(f"device: {e}") from None
    module = FieldModule.load(path, device=dev)
    header = getattr(module, "file_header", {})
    settings = header.get("settings") if isinstance(header.get("settings"), dict) else {}
    return Field(module, method=str(header.get("method") or ""), settings=settings)


class Field:
    """A fitted field: a network f(x, y) -> colour with the metadata of the image it was fitted
    to. Made by :func:`coordsr.fit` or :func:`coordsr.load_field`; draws itself at any size
    (:meth:`render`) and saves to one self-describing file (:meth:`save`).

    The image it was fitted to covers [-1, 1] x [-1, 1] in field coordinates (x to the right, y
    down), whatever its resolution; a ``box`` of (x0, y0, x1, y1) draws a region of it, or
    beyond it.
    """

    def __init__(self, module: "FieldModule", *, method: str = "", settings: dict | None = None,
                 result: "FitResult | None" = None):
        self._module = module
        self._method = method
        self._settings = dict(settings or {})
        self._result = result

    @property
    def method(self) -> str:
        """The method that fitted it, e.g. 'hashgrid' ('' when the file does not say)."""
        return self._method

    @property
    def settings(self) -> dict:
        """The method's settings of the fit (and ``out_size``, the size it was fitted for)."""
        return dict(self._settings)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the image it was fitted to."""
        return self._module.meta.height, self._module.meta.width

    @property
    def channels(self) -> int:
        """1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)."""
        return self._module.meta.channels

    @property
    def steps(self) -> int | None:
        """Steps the fit ran (None for a field loaded from a file)."""
        return self._result.steps if self._result is not None else None

    @property
    def psnr(self) -> float | None:
        """PSNR (dB) of the fit on the input's own pixels (None for a loaded field)."""
        return self._result.psnr if self._result is not None else None

    @property
    def module(self) -> "torch.nn.Module":
        """The torch module itself: ``module(coords)`` maps (..., 2) coordinates to (..., C)
        colours (for research use; its class is not part of the stable API)."""
        return self._module

    def __repr__(self) -> str:
        h, w = self.image_size
        fitted = f", {self.steps} steps, {self.psnr:.2f} dB" if self._result is not None else ""
        return f"Field(method={self.method!r}, image {w}x{h}x{self.channels}{fitted})"

    def render(self, size: tuple[int, int] | None = None, *, scale: float | None = None,
               box: tuple[float, float, float, float] | None = None, output: OutputKind = "numpy",
               precision: str = "auto", footprint: str = "auto", progress: ProgressArg = None) -> ImageOutput:
        """Draw the field at any size (``coordsr render``), in tiles: memory beyond the output
        is one tile's.

        Args:
            size: output (height, width).
            scale: or the output size as a multiple of the fitted image's (default 4).
            box: the region (x0, y0, x1, y1) to draw; default the whole image, (-1, -1, 1, 1).
            output: 'numpy' (float32 (H, W, C) in [0, 1]), 'pil' (8-bit, or 16-bit grey for a
                16-bit source; drawn straight into integers, a quarter of the memory) or 'tensor'
                (float32 (C, H, W)).
            precision: 'auto' (bfloat16 only where the method measured it harmless and this
                machine runs it faster), 'fp32' or 'bf16'.
            footprint: what a pixel shows: 'point' (its centre), 'area' (its cell's mean),
                'supersample:K', or 'auto' ('area' when fitted with ``fit='area'``, else 'point').
            progress: True for a progress bar, or a callable taking each :class:`coordsr.Progress`
                (stage 'render', steps in pixels).

        Raises:
            SettingError: a bad size, box, output, precision or footprint.
            CoordsrError: an output too large for the memory available.
        """
        from coordsr.coords import FULL_BOX
        from coordsr.methods import METHODS
        from coordsr.precision import resolve_precision
        from coordsr.render import footprint_of_fit, parse_footprint, render_field

        _check_output(output)
        if footprint == "auto":
            footprint = footprint_of_fit(self._settings.get("fit"))
        try:
            parse_footprint(footprint)
        except ValueError as e:
            raise SettingError(f"footprint: {e}") from None
        meta = self._module.meta
        out_size = _out_size(meta.height, meta.width, scale, size)
        region = FULL_BOX if box is None else _check_box(box)
        device = next(self._module.parameters()).device
        auto_bf16 = bool(getattr(METHODS.get(self.method), "auto_bf16", False))
        try:
            compute = resolve_precision(precision, device, allow_auto_bf16=auto_bf16)
        except ValueError as e:
            raise SettingError(f"precision: {e}") from None
        depth = 16 if meta.bit_depth == 16 and meta.channels == 1 else 8
        dtype = (np.uint16 if depth == 16 else np.uint8) if output == "pil" else np.float32
        with _progress(progress, f"render {out_size[1]}x{out_size[0]}") as callback:
            tiles = None if callback is None else (
                lambda done, total: callback(Progress(step=done, total=total, stage="render")))
            pixels = render_field(self._module, out_size, box=region, dtype=dtype, compute_dtype=compute,
                                  footprint=footprint, progress=tiles)
        if output == "pil":
            from PIL import Image

            return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
        if output == "tensor":
            import torch

            return torch.from_numpy(pixels).permute(2, 0, 1)
        return pixels

    def save(self, path: str | os.PathLike) -> None:
        """Write the field to one self-describing file (safetensors: the weights, the config, the
        image's size, channels and bit depth, the method and its settings), atomically; an
        existing file is replaced. ``coordsr render`` and :func:`coordsr.load_field` read it.

        Raises:
            FieldFileError: the folder is missing or cannot be written.
        """
        self._module.save(Path(path), method=self.method, settings=self.settings)


def _check_box(box) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        values = ()
    if not (len(values) == 4 and all(math.isfinite(v) and abs(v) <= BOX_LIMIT for v in values)
            and values[0] < values[2] and values[1] < values[3]):
        raise SettingError(f"box must be (x0, y0, x1, y1) with x0 < x1 and y0 < y1, finite numbers within "
                           f"+-{BOX_LIMIT:g} (the image is -1..1), got {box!r}")
    return values
