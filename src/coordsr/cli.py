"""The command line: thin commands over the library, and the one place that turns words into objects.

``main(argv) -> int`` is the error boundary: a user error (CoordsrError, a bad option) becomes one
line on stderr and a non-zero status; ``--traceback`` shows the whole story. It uses only typer's
public exceptions (``typer.Exit``, ``typer.Abort``, ``typer.TyperException``, the base of every
usage error since typer vendors click, 0.29), so it needs no click. SIGINT and SIGTERM end a
command through the same unwinding as an error (coordsr.interrupt): temporary files removed,
one line, status 130 or 143.

No ``from __future__ import annotations`` here: typer reads every command's annotations on every
run, and string annotations had to be compiled each time (0.09 s of each command on the 2-core
Xeon, 2026-11-30); evaluated once at import, they come from the cached bytecode.
"""

import contextlib
import dataclasses
import math
import os
import sys
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from coordsr.errors import CoordsrError
from coordsr.interrupt import stop_on_signals
from coordsr.openmp_wait import short_spin

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Upscale images with coordinate-based neural networks.")

SHOW_TRACEBACK = False

# --- parsing words into values ----------------------------------------------------------------


MAX_SIDE = 1 << 20
"""Longest output side accepted (the memory check decides below it)."""

DEFAULT_MAX_PIXELS = 8192 * 8192
"""Most pixels of an input image, read from its header before decoding (--max-pixels): the value
of coordsr.images.DEFAULT_MAX_PIXELS, written out so that the CLI starts without the codecs."""


def check_max_pixels(max_pixels: int) -> None:
    if max_pixels < 1:
        raise CoordsrError(f"--max-pixels must be positive, got {max_pixels}")


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' (width x height) -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CoordsrError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    if w < 1 or h < 1:
        raise CoordsrError(f"--size {text!r}: width and height must be positive")
    _check_sides(h, w, f"--size {text}")
    return h, w


def _check_sides(h: int, w: int, given: str) -> None:
    if max(h, w) > MAX_SIDE:
        raise CoordsrError(f"{given}: gives a {w}x{h} output; the longest side allowed is {MAX_SIDE}")


def output_size(h: int, w: int, *, scale: float | None, size: str | None, width: int | None,
                height: int | None) -> tuple[int, int]:
    """The output (H, W) from exactly one of --scale, --size, --width, --height (aspect kept)."""
    given = [n for n, v in (("--scale", scale), ("--size", size), ("--width", width), ("--height", height))
             if v is not None]
    if len(given) > 1:
        raise CoordsrError(f"give one of --scale, --size, --width, --height, not {' and '.join(given)}")
    if size is not None:
        return parse_size(size)
    if width is not None:
        if width < 1:
            raise CoordsrError(f"--width must be positive, got {width}")
        _check_sides(1, width, f"--width {width}")
        out = max(1, round(h * width / w)), width
        _check_sides(*out, f"--width {width}")
        return out
    if height is not None:
        if height < 1:
            raise CoordsrError(f"--height must be positive, got {height}")
        _check_sides(height, 1, f"--height {height}")
        out = height, max(1, round(w * height / h))
        _check_sides(*out, f"--height {height}")
        return out
    scale = 4.0 if scale is None else scale
    if not (math.isfinite(scale) and scale > 0):
        raise CoordsrError(f"--scale must be a positive number, got {scale}")
    if min(h, w) * scale < 1:
        raise CoordsrError(f"--scale {scale:g}: a {w}x{h} input would be less than one pixel wide")
    if max(h, w) * scale > MAX_SIDE:  # also an overflow to inf
        raise CoordsrError(f"--scale {scale:g}: a {w}x{h} input would exceed the longest side allowed, {MAX_SIDE}")
    return max(1, round(h * scale)), max(1, round(w * scale))


def check_bit_depth(bit_depth: int | None) -> None:
    if bit_depth not in (None, 8, 16):
        raise CoordsrError(f"--bit-depth must be 8 or 16, got {bit_depth}")


BOX_LIMIT = 1000.0
"""Farthest a --box may reach in field coordinates (the image spans -1..1): beyond it, float32
coordinates no longer tell neighbouring pixels apart and grid encodings leave their tables."""


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' -> a region of field coordinates: finite, ordered, within +-BOX_LIMIT."""
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if not (len(box) == 4 and all(math.isfinite(v) and abs(v) <= BOX_LIMIT for v in box)
            and box[0] < box[2] and box[1] < box[3]):
        raise CoordsrError(f"--box {text!r}: expected x0,y0,x1,y1 with x0 < x1 and y0 < y1, "
                           f"finite numbers within +-{BOX_LIMIT:g} (the image is -1..1)")
    return box


def _convert(value: str, kind, name: str):
    origin = typing.get_origin(kind)
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise CoordsrError(f"setting {name}: expected true or false, got {value!r}")
    if kind in (int, float, str):
        try:
            return kind(value)
        except ValueError:
            raise CoordsrError(f"setting {name}: expected {kind.__name__}, got {value!r}") from None
    if origin is typing.Union:
        for k in typing.get_args(kind):
            if k is not type(None):
                return _convert(value, k, name)
    return value


def build_method(name: str, settings: dict[str, str], device: str, task: str = "upscale"):
    """Instantiate the registered method ``name`` of ``task`` with string settings converted to field types."""
    from coordsr.methods import check_method

    try:
        cls = check_method(name, task, settings)
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    kwargs = {"device": device, **typed_settings(name, settings)}
    try:
        return cls(**kwargs)  # checks every setting and the device (Upscaler.validate)
    except (ValueError, TypeError) as e:
        raise CoordsrError(f"method {name}: {e}") from None


def device_of(device: str):
    """--device as a torch.device, checked against this machine."""
    from coordsr.methods.base import resolve_device

    try:
        return resolve_device(device)
    except ValueError as e:
        raise CoordsrError(f"--device: {e}") from None


def typed_settings(name: str, raw: dict[str, str]) -> dict:
    """The settings in ``raw`` that method ``name`` has, converted to its field types."""
    from coordsr.methods import get_method

    cls = get_method(name)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: _convert(v, hints.get(k, str), k) for k, v in raw.items() if k in known}


def collect_settings(steps, seed, fit, extra: list[str] | None, *, until=None, precision=None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in extra or []:
        if "=" not in item:
            raise CoordsrError(f"--set {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        settings[key.strip().replace("-", "_")] = value.strip()
    for key, value in (("steps", steps), ("seed", seed), ("fit", fit), ("until", until), ("precision", precision)):
        if value is not None:
            settings[key] = str(value)
    return settings


def check_output_size(path: Path, out_size: tuple[int, int]) -> None:
    """A one-line error, before any work, when the output's format cannot hold ``out_size``
    (PNG, JPEG and WebP cap a side: coordsr.images.MAX_SIDES)."""
    from coordsr.images import SUFFIXES, check_format_size

    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is not None:
        check_format_size(fmt, out_size[0], out_size[1], str(path))


def check_output(path: Path, inputs: list[Path], force: bool, *, folder_format: bool = False) -> None:
    """Refuse outputs that would overwrite an input, an existing file (without --force), or
    land in a missing folder. ``folder_format``: the output is itself a folder (a Zarr image),
    which --force may replace when it is one already, never any other folder."""
    for src in inputs:
        if src.exists() and path.exists() and path.resolve() == src.resolve():
            raise CoordsrError(f"{path}: output would overwrite the input; choose another name")
    if path.is_dir() and not folder_format:
        raise CoordsrError(f"{path}: is a folder; give a file name")
    if path.is_dir() and not ((path / ".zgroup").is_file() or (path / "zarr.json").is_file()):
        raise CoordsrError(f"{path}: is a folder that is not a Zarr image; choose another name")
    if path.exists() and not force:
        raise CoordsrError(f"{path}: already exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise CoordsrError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise CoordsrError(f"{path}: cannot write to folder {path.parent} (permission denied)")


def check_image_output(path: Path, inputs: list[Path], force: bool, *, streamed: bool = False) -> None:
    """check_output, and a suffix we can write (an image; with ``streamed``, also .dzi, see
    coordsr.stream), before any work is done."""
    import importlib.util

    from coordsr.images import SUFFIXES
    from coordsr.stream import STREAM_SUFFIXES, dzi_files

    check_output(path, inputs, force, folder_format=streamed and path.suffix.lower() == ".zarr")
    known = {**SUFFIXES, **STREAM_SUFFIXES} if streamed else SUFFIXES
    if path.suffix.lower() not in known:
        raise CoordsrError(f"{path}: unknown image type {path.suffix!r}, use one of {', '.join(known)}")
    if path.suffix.lower() == ".zarr" and importlib.util.find_spec("zarr") is None:
        raise CoordsrError(f"{path}: writing OME-Zarr needs the zarr package: pip install 'coordsr[zarr]'")
    if path.suffix.lower() == ".dzi" and dzi_files(path).exists() and not force:
        raise CoordsrError(f"{path}: its tile folder {dzi_files(path)} already exists; use --force to replace it")


class ProgressBar:
    """A rich progress bar fed by coordsr.progress.Progress reports."""

    def __init__(self, description: str, quiet: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.quiet = quiet
        console = _console()
        # Not a terminal (a log, a pipe): rich would print only the bar's last frame, a second line
        # beside any error that follows; so a bar is drawn only where it can move.
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), transient=False, disable=quiet or not console.is_terminal,
                            console=console)
        self.task = self.bar.add_task(description, total=None, info="")

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is not None:
            self.bar.live.transient = True  # an error is one line: take the half-drawn bar away
        self.bar.__exit__(exc_type, *rest)

    def __call__(self, report) -> None:
        info = f"{report.stage}" + (f"  {report.psnr:.2f} dB" if report.psnr is not None else "")
        self.bar.update(self.task, completed=report.step, total=report.total, info=info)

    def tiles(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total, info="render (pixels)")


def _console():
    from rich.console import Console

    return Console(stderr=True)


# --- commands ---------------------------------------------------------------------------------

Scale = Annotated[Optional[float], typer.Option("--scale", "-s", help="Scale factor (default 4).")]
Size = Annotated[Optional[str], typer.Option("--size", help="Output WIDTHxHEIGHT, e.g. 1920x1080.")]
Width = Annotated[Optional[int], typer.Option("--width", help="Output width; height keeps the aspect.")]
Height = Annotated[Optional[int], typer.Option("--height", help="Output height; width keeps the aspect.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda, cuda:N.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Until = Annotated[Optional[str], typer.Option(
    "--until", help="When a fit is done: auto (the output stops changing; auto:LEVELS: how much change "
    "is visible), steps (all --steps), psnr:DB.")]
Precision = Annotated[Optional[str], typer.Option(
    "--precision", help="auto (bf16 where this CPU runs it faster), fp32 or bf16.")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Method setting NAME=VALUE (repeatable).")]
MaxPixels = Annotated[int, typer.Option(
    "--max-pixels", help="Refuse inputs with more pixels (read from the file's header, before decoding).")]
BitDepth = Annotated[Optional[int], typer.Option("--bit-depth", help="8 or 16 (default: the input's).")]
SigmaOpt = Annotated[Optional[float], typer.Option(
    "--sigma", help="Noise level in 8-bit levels (0-100); default: estimated from the image.")]
BatchFormat = Annotated[str, typer.Option(
    "--format", help="Many images: keep (each input's format), png, jpg, tif, webp or bmp.")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", help="Many images: processes (default 1), or Ray actors (default: one per CPU).")]
Ray = Annotated[Optional[str], typer.Option(
    "--ray", help="Many images: run on a Ray cluster: auto, or the head's ADDRESS (docs/cluster.md).")]
ContentOpt = Annotated[str, typer.Option(
    "--content", help="What the image shows, when no --method is given: auto (detected per image: a drawing "
    "gets the drawing model, pixel art nearest), photo, drawing or pixel-art.")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="What runs the trained models: auto (onnxruntime where it is installed and the model "
    "has an ONNX export, else torch), torch or onnx (docs/onnx.md).")]
DegradationOpt = Annotated[str, typer.Option(
    "--degradation", help="How a photo arrived, when no --method is given: auto (a JPEG's saved quality, "
    "blocks and noise detected per image), clean (the clean-photo model) or real (the blind model for "
    "compressed, noisy or soft photos).")]


@app.callback()
def _root(traceback: Annotated[bool, typer.Option("--traceback", help="Show tracebacks of errors.")] = False):
    global SHOW_TRACEBACK
    SHOW_TRACEBACK = traceback


def _default_method() -> str:
    from coordsr.defaults import DEFAULT_METHOD

    return DEFAULT_METHOD


@app.command()
def upscale(
    input: Annotated[Path, typer.Argument(help="Image to upscale (PNG, JPEG, TIFF, WebP, BMP); or many: a folder, "
                                          "a quoted glob ('photos/*.jpg') or @LIST (a file of paths).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result (a folder for many).")],
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="Registered method (see `coordsr methods`).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Fitting steps (per-image methods).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same result.")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Observation model: point, area, mip or consistent (FOOTPRINT.md).")] = None,
    bit_depth: BitDepth = None, max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    until: Until = None, precision: Precision = None,
    denoise_: Annotated[bool, typer.Option("--denoise", help="Denoise the input first (joint: noisy in, clean out).")] = False,
    denoiser: Annotated[Optional[str], typer.Option("--denoiser", help="Denoiser for --denoise (see `coordsr methods`).")] = None,
    sigma: SigmaOpt = None,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
    format_: BatchFormat = "keep", workers: Workers = None, ray: Ray = None,
    content: ContentOpt = "auto", degradation: DegradationOpt = "auto", backend: BackendOpt = "auto",
):
    """Upscale an image to a larger size with any registered method, or a folder, glob or list of
    them (.tif and .dzi outputs are streamed: tiles written as they are computed, with a pyramid
    of reduced levels; an .svg output is the upscale traced into curves, x8 unless a size is given)."""
    from coordsr.images import read_image, write_image
    from coordsr.stream import is_streamed, write_rows
    from coordsr.vector import DEFAULT_SCALE, is_svg

    method_name = _method_name(method, content, degradation)  # every option is checked before any work
    if _is_batch(input):  # a folder, glob or @LIST: the same options, handed over as they are
        return _upscale_batch(**locals())
    _single_image_only(format_, workers, ray)
    check_bit_depth(bit_depth)
    check_max_pixels(max_pixels)
    vector = is_svg(output)
    if vector:
        _check_svg_output(output, input, force, bit_depth)
    else:
        check_image_output(output, [input], force, streamed=True)
    settings = collect_settings(steps, seed, fit, set_, until=until, precision=precision)
    upscaler = _build_upscaler(method_name, settings, device, backend)
    by_content = _content_upscalers(method, content, degradation, settings, device, upscaler, backend)
    if not denoise_ and (denoiser is not None or sigma is not None):
        raise CoordsrError("--denoiser and --sigma go with --denoise")
    cleaner = _build_denoiser(denoiser, sigma, {}, device) if denoise_ else None
    img = read_image(input, max_pixels=max_pixels)
    if vector and all(v is None for v in (scale, size, width, height)):
        scale = DEFAULT_SCALE  # a finer raster to trace than the default x4
    out_size = output_size(img.height, img.width, scale=scale, size=size, width=width, height=height)
    chosen = _choose(img.pixels, method, content, degradation, out_size, img.jpeg_quality)
    if chosen is not None and by_content is not None:  # the input as it came, before --denoise
        upscaler, method_name = by_content[chosen.content.method], chosen.content.method
    streamed = not vector and is_streamed(output)  # .tif/.dzi: a row of tiles at a time (coordsr.stream)
    check_output_size(output, out_size)
    upscaler.check_memory(img.pixels.shape, out_size, streamed=streamed)
    pixels = img.pixels if cleaner is None else _apply_denoiser(input, img.pixels, cleaner, quiet)
    with ProgressBar(f"{method_name} {img.width}x{img.height} -> {out_size[1]}x{out_size[0]}", quiet) as bar:
        if streamed:
            write_rows(output, upscaler.upscale_rows(pixels, out_size, bit_depth=bit_depth or img.bit_depth,
                                                     progress=bar))
        else:
            result = upscaler.upscale(pixels, out_size, progress=bar)
    model = method_name if chosen is None else chosen.words
    if vector:
        _write_svg(output, result, quiet, f"traced from the {out_size[1]}x{out_size[0]} upscale, {model}")
        return
    if not streamed:
        write_image(output, result, bit_depth=bit_depth or img.bit_depth)
    _say(f"wrote {output} ({out_size[1]}x{out_size[0]}, {model})", quiet)


def _method_name(method: str | None, content: str, degradation: str = "auto") -> str:
    """The method named, or the one --content and --degradation name ('auto': the default until
    an image is seen)."""
    from coordsr.content import CONTENT_CHOICES, named_method
    from coordsr.quality import CHOICES

    if content not in CONTENT_CHOICES:
        raise CoordsrError(f"--content {content!r}: expected one of {', '.join(CONTENT_CHOICES)}")
    if degradation not in CHOICES:
        raise CoordsrError(f"--degradation {degradation!r}: expected one of {', '.join(CHOICES)}")
    try:
        return named_method(method, content, degradation)  # an explicit method wins over the content
    except ValueError as e:
        raise CoordsrError(f"--degradation {degradation} is for photos: --content {content} has its own model") from e


def _content_upscalers(method: str | None, content: str, degradation: str, settings: dict[str, str], device: str,
                       default, backend: str = "torch") -> dict | None:
    """When the image decides (no --method; --content auto, or photo with --degradation auto): the
    upscaler of each method it may pick, by name, built once (``default`` for the one set up
    already). Settings were checked against that one; each other method gets those it has.
    None when the method is already fixed."""
    from coordsr.content import candidate_methods

    names = candidate_methods(method, content, degradation)
    if names is None:
        return None
    out = {}
    for name in names:
        if name == _name_of(default):
            out[name] = default
        elif backend != "torch" and (found := _onnx_candidate(name, settings, device, backend)) is not None:
            out[name] = found
        elif backend != "torch":  # torch only if an image needs it: the onnx path never imports it
            out[name] = _LazyUpscaler(name, settings, device)
        else:
            out[name] = build_method(name, _known_settings(name, settings), device)
    return out


def _known_settings(name: str, settings: dict[str, str]) -> dict[str, str]:
    from coordsr.methods import get_method

    known = {f.name for f in dataclasses.fields(get_method(name))}
    return {k: v for k, v in settings.items() if k in known}


def _name_of(upscaler) -> str:
    """The registry name of an upscaler, whichever backend runs it."""
    return getattr(upscaler, "onnx_method", None) or type(upscaler).__name__


def _build_upscaler(name: str, settings: dict[str, str], device: str, backend: str):
    """The upscaler ``name`` on the backend --backend chooses (coordsr.onnx_backend: torch is not
    imported on the onnx path); ``build_method`` on torch."""
    from coordsr.onnx_backend import onnx_upscaler

    try:
        found = onnx_upscaler(name, settings, device, backend)
    except ValueError as e:
        raise CoordsrError(f"--backend {backend}: {e}") from None
    return found if found is not None else build_method(name, settings, device)


def _onnx_candidate(name: str, settings: dict[str, str], device: str, backend: str):
    """A content candidate on onnxruntime (the settings it has), or None for torch."""
    from coordsr.onnx_backend import SHIPPED, OnnxUpscaler, onnx_upscaler

    if name not in SHIPPED:
        return None
    try:
        return onnx_upscaler(name, {k: v for k, v in settings.items() if k in OnnxUpscaler.SETTINGS}, device,
                             "auto" if backend == "onnx" else backend)
    except ValueError as e:
        raise CoordsrError(f"--backend {backend}: {e}") from None


class _LazyUpscaler:
    """A torch upscaler built on first use (a content candidate no image may need), with the
    settings its method has."""

    def __init__(self, name: str, settings: dict[str, str], device: str):
        self._args, self._built = (name, settings, device), None

    def __getattr__(self, attr):
        if attr.startswith("__") or attr in ("_args", "_built"):
            raise AttributeError(attr)
        if self._built is None:
            name, settings, device = self._args
            self._built = build_method(name, _known_settings(name, settings), device)
        return getattr(self._built, attr)


@dataclasses.dataclass
class _Chosen:
    """What an image was taken for (detected, or as --content said), and the words of its line."""

    content: object  # coordsr.content.Content
    words: str


def _choose(pixels, method: str | None, content: str, degradation: str, out_size: tuple[int, int],
            jpeg_quality: int | None = None) -> "_Chosen | None":
    """What the image is taken for when no --method is given: classified (--content auto) or as
    --content says, and for a photo, clean or not (--degradation; ``jpeg_quality``: what a JPEG
    file was saved at). None for a clean photo (its line, method and pixels stay what they were
    before content was detected) and when --method named the method."""
    from coordsr.content import content_of, describe, scale_note

    if method is not None:
        return None
    found = content_of(pixels, content, degradation, jpeg_quality)
    if found.kind == "photo" and not found.degraded:
        return None
    note = scale_note(found.kind, pixels.shape[:2], out_size)
    return _Chosen(found, describe(found.method, found, note))


def _check_svg_output(output: Path, input: Path, force: bool, bit_depth: int | None) -> None:
    check_output(output, [input], force)
    if bit_depth is not None:
        raise CoordsrError(f"{output}: --bit-depth is for image outputs; an SVG has no bit depth")


def _write_svg(output: Path, pixels, quiet: bool, how: str) -> None:
    from coordsr.vector import trace, write_svg

    with ProgressBar("trace SVG", quiet) as bar:
        bar.bar.update(bar.task, completed=0, total=1, info="vtracer")
        svg = trace(pixels)
    write_svg(output, svg)
    _say(f"wrote {output} ({len(svg.encode()) / 1024:.0f} KB, {how})", quiet)


def _is_batch(input: Path) -> bool:
    from coordsr.batch import is_batch_input

    return is_batch_input(input)


def _single_image_only(format_: str, workers: int | None, ray: str | None) -> None:
    given_options = (("--format", format_ != "keep"), ("--workers", workers is not None), ("--ray", ray is not None))
    for name, given in given_options:
        if given:
            hint = "; for one image the suffix of -o names the format" if name == "--format" else ""
            raise CoordsrError(f"{name} goes with many images (a folder, a glob or @LIST){hint}")


def _upscale_batch(*, input: Path, output: Path, method: str | None, method_name: str, content: str, degradation: str,
                   scale, size,
                   width, height, steps, seed, fit, bit_depth, max_pixels, until, precision, denoise_, denoiser,
                   sigma, set_, device, force, quiet, format_, workers, ray, backend="auto", **_) -> int:
    """`coordsr upscale DIR|GLOB|@LIST -o OUTDIR`: coordsr.batch (or coordsr.cluster with --ray)."""
    import functools
    import time

    from coordsr import batch

    check_bit_depth(bit_depth)
    check_max_pixels(max_pixels)
    if workers is not None and workers < 1:
        raise CoordsrError(f"--workers must be at least 1, got {workers}")
    if ray is not None:
        from coordsr.cluster import import_ray

        import_ray()  # the missing extra is one line before any work
        if ray != "auto" and ray.count(":") != 1 and "://" not in ray:
            raise CoordsrError(f"--ray {ray}: expected auto or HOST:PORT (e.g. 10.0.0.1:6379)")
    if output.suffix.lower() == ".svg":
        raise CoordsrError(f"{output}: SVG output is for one image; -o takes a folder for many")
    settings = collect_settings(steps, seed, fit, set_, until=until, precision=precision)
    # Many images: --backend auto stays on torch. The start-up onnxruntime saves is paid once
    # here, and on CPUs with bfloat16 torch's compute is faster: 20 BSD200 images x2 took 34.6 s
    # on torch and 60.8 s on onnxruntime (float32), idle (benchmarks/results/onnx_speed.json).
    backend = "torch" if backend == "auto" else backend
    upscaler = _build_upscaler(method_name, settings, device, backend)
    by_content = _content_upscalers(method, content, degradation, settings, device, upscaler, backend)
    if not denoise_ and (denoiser is not None or sigma is not None):
        raise CoordsrError("--denoiser and --sigma go with --denoise")
    cleaner = _build_denoiser(denoiser, sigma, {}, device) if denoise_ else None
    size_of = functools.partial(output_size, scale=scale, size=size, width=width, height=height)  # sent to workers
    size_of(1000, 1000)  # a malformed or contradictory size option fails here, not once per image
    plan = batch.plan_batch(batch.find_inputs(input), output, fmt=format_, force=force)
    recipe = batch.Recipe(upscaler, size_of, bit_depth=bit_depth, max_pixels=max_pixels,
                          denoiser=cleaner.method if cleaner else None, sigma=cleaner.sigma if cleaner else None,
                          force=force, by_content=by_content, content=content, degradation=degradation)
    start = time.perf_counter()
    if ray is not None and plan.todo:
        from coordsr.cluster import connect

        connect(ray)  # before OUTDIR is made: an unreachable cluster leaves nothing behind
    plan.make_folder()
    with ProgressBar(f"upscale {method_name if by_content is None else 'by content'}", quiet) as bar:
        bar.bar.update(bar.task, completed=0, total=len(plan.todo), info="")

        def progress(done: int, total: int, name: str) -> None:
            bar.bar.update(bar.task, completed=done, total=total, info=name)

        if ray is not None:
            from coordsr.cluster import run_on_ray

            outcomes = run_on_ray(plan.todo, recipe, address=ray, workers=workers, progress=progress)
        else:
            outcomes = batch.run_batch(plan.todo, recipe, workers=workers or 1, progress=progress)
    for o in sorted((o for o in outcomes if o.status == "failed"), key=lambda o: o.src):
        typer.echo(f"coordsr: {o.message}", err=True)
    line = batch.summary(plan, outcomes, time.perf_counter() - start)
    code = batch.exit_status(outcomes)
    if code or not quiet:
        typer.echo(line, err=True)
    return code


@app.command("denoise")
def denoise_cmd(
    input: Annotated[Path, typer.Argument(help="Noisy image (PNG, JPEG, TIFF, WebP, BMP).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    sigma: SigmaOpt = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="A denoiser (see `coordsr methods`).")] = None,
    bit_depth: BitDepth = None, max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Remove Gaussian-like noise; the noise level is estimated from the image unless --sigma is given."""
    from coordsr.images import read_image, write_image

    check_bit_depth(bit_depth)  # every option is checked before any work
    check_max_pixels(max_pixels)
    check_image_output(output, [input], force)
    cleaner = _build_denoiser(method, sigma, collect_settings(None, None, None, set_), device)
    img = read_image(input, max_pixels=max_pixels)
    result = _apply_denoiser(input, img.pixels, cleaner, quiet)
    write_image(output, result, bit_depth=bit_depth or img.bit_depth)
    _say(f"wrote {output} ({img.width}x{img.height}, {cleaner.name})", quiet)


def _default_denoiser() -> str:
    from coordsr.defaults import DEFAULT_DENOISER

    return DEFAULT_DENOISER


@dataclasses.dataclass
class _Denoising:
    """A denoiser chosen and checked before any work; ``sigma`` None: estimate it from the image."""

    name: str
    method: object
    sigma: float | None


def _build_denoiser(method: str | None, sigma: float | None, settings: dict[str, str], device: str) -> _Denoising:
    from coordsr.denoise.protocol import check_sigma

    name = method or _default_denoiser()
    denoiser = build_method(name, settings, device, task="denoise")
    if sigma is not None:
        try:
            sigma = check_sigma(sigma)
        except ValueError as e:
            raise CoordsrError(f"--sigma: {e}") from None
    return _Denoising(name, denoiser, sigma)


def _apply_denoiser(path: Path, pixels, job: _Denoising, quiet: bool):
    """Denoise the pixels of ``path``: the level given, or estimated and reported."""
    from coordsr.denoise.protocol import CLEAN_SIGMA, estimate_sigma
    from coordsr.methods.denoisers import split_alpha

    sigma = job.sigma
    if sigma is None:
        sigma = estimate_sigma(split_alpha(pixels)[0])
        _say(f"{path}: estimated noise level sigma {sigma:.1f} (8-bit levels)", quiet)
        if sigma < CLEAN_SIGMA:
            _say(f"{path}: looks clean (sigma below {CLEAN_SIGMA:g}): pixels kept as they are", quiet)
    with ProgressBar(f"denoise {job.name} sigma {sigma:.1f}", quiet) as bar:
        try:
            return job.method.denoise(pixels, sigma, progress=bar)
        except ValueError as e:
            raise CoordsrError(f"{path}: {job.name}: {e}") from None


@app.command("fit")
def fit_cmd(
    input: Annotated[Path, typer.Argument(help="Image to fit.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Field file to write (.field).")],
    method: Annotated[str, typer.Option("--method", "-m", help="A per-image method.")] = "hashgrid",
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    steps: Annotated[Optional[int], typer.Option(help="Fitting steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed.")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Observation model: point, area, mip or consistent (FOOTPRINT.md).")] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS, until: Until = None, precision: Precision = None,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Fit a field to an image and save it; draw it later with `coordsr render`.

    The output size (--scale etc.) matters only to the consistent observation model, which fits
    the field as seen through the downsampling from that size.
    """
    from coordsr.images import read_image

    check_max_pixels(max_pixels)
    check_output(output, [input], force)
    upscaler = build_method(method, collect_settings(steps, seed, fit, set_, until=until, precision=precision), device)
    if not getattr(upscaler, "fits_field", False):
        from coordsr.methods import METHODS

        fitting = [n for n, c in METHODS.items() if getattr(c, "fits_field", False)]
        raise CoordsrError(f"method {method} does not fit a field; choose one of: {', '.join(fitting)}")
    img = read_image(input, max_pixels=max_pixels)
    out_size = output_size(img.height, img.width, scale=scale, size=size, width=width, height=height)
    upscaler.check_memory(img.pixels.shape, out_size)
    with ProgressBar(f"fit {method} {img.width}x{img.height}", quiet) as bar:
        field, result = upscaler.fit_field(img.pixels, out_size, bit_depth=img.bit_depth, progress=bar)
    field.save(output, method=method, settings={**upscaler.settings(), "out_size": list(out_size)})
    _say(f"wrote {output} ({result.steps} steps, {result.psnr:.2f} dB on the input, {result.seconds:.1f} s)",
         quiet)


@app.command()
def render(
    field_path: Annotated[Path, typer.Argument(metavar="FIELD", help="A field file from `coordsr fit`, or an art field from `coordsr art -o NAME.field`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image to write.")],
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    box: Annotated[Optional[str], typer.Option(help="Region x0,y0,x1,y1 in field coordinates ([-1,1]).")] = None,
    bit_depth: BitDepth = None,
    precision: Annotated[str, typer.Option(
        "--precision", help="auto (bf16 where this CPU runs it faster and the method allows), fp32, bf16.")] = "auto",
    footprint: Annotated[str, typer.Option(
        "--footprint", help="What a pixel shows: point (its centre), area (its cell's mean: closed form for "
                            "Fourier/positional/grid encodings, else 4x4 samples), supersample:K (K x K samples), "
                            "or auto (area for fields fitted with fit=area, else point).")] = "auto",
    device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Draw a saved field at any size, with no need for the source image (.tif and .dzi outputs
    are streamed: any size, memory of a row of tiles)."""
    from coordsr.render import parse_footprint
    from coordsr.art.files import is_art_field
    from coordsr.coords import FULL_BOX
    from coordsr.field import Field

    check_bit_depth(bit_depth)
    check_image_output(output, [field_path], force, streamed=True)
    if footprint != "auto":
        try:
            parse_footprint(footprint)
        except ValueError as e:
            raise CoordsrError(f"--footprint: {e}") from None
    sizes = dict(scale=scale, size=size, width=width, height=height)
    if is_art_field(field_path):
        return _render_art(field_path, output, sizes, box=box, bit_depth=bit_depth, precision=precision,
                           footprint="point" if footprint == "auto" else footprint, device=device, quiet=quiet)
    field = Field.load(field_path, device=device_of(device))
    if footprint == "auto":
        footprint = field.fitted_footprint()
    compute = _render_precision(precision, field, device_of(device))
    out_size = output_size(field.meta.height, field.meta.width, **sizes)
    _draw_to_file(output, field, out_size, field.meta.channels, box=FULL_BOX if box is None else parse_box(box),
                  convention=field.cfg.convention, depth=bit_depth or field.meta.bit_depth, compute=compute,
                  footprint=footprint, quiet=quiet)


def _render_art(path: Path, output: Path, sizes: dict, *, box: str | None, bit_depth: int | None,
                precision: str, footprint: str, device: str, quiet: bool) -> None:
    """`coordsr render` of an art field (`coordsr art -o NAME.field`): its CPPN seen through its
    saved view, the frame's shorter side spanning [-1, 1] as `coordsr art` draws it (or ``--box``
    in those coordinates). Size from --size/--width/--height/--scale against 1024x1024."""
    from coordsr.art.files import load_source
    from coordsr.art.scene import Scene, frame_box

    if precision not in ("auto", "fp32"):
        raise CoordsrError(f"--precision {precision}: art fields are drawn in float32 (auto or fp32)")
    source, view = load_source(path, device=device_of(device))
    scene = Scene(source, view)
    given = any(v is not None for v in sizes.values())
    h, w = output_size(1024, 1024, **sizes) if given else (1024, 1024)  # --scale: of 1024
    _draw_to_file(output, scene, (h, w), scene.channels, box=frame_box(h, w) if box is None else parse_box(box),
                  convention="cell", depth=bit_depth or 8, compute=None, footprint=footprint, quiet=quiet)


def _draw_to_file(output: Path, drawable, out_size: tuple[int, int], channels: int, *, box, convention: str,
                  depth: int, compute, footprint: str, quiet: bool) -> None:
    """Draw ``drawable`` (a field or an art scene) at ``out_size`` over ``box`` into ``output``:
    a row of tiles at a time for .tif / .dzi (coordsr.stream), whole for the other formats."""
    import numpy as np

    from coordsr.images import write_image
    from coordsr.render import check_fits_in_memory, render, render_rows
    from coordsr.stream import Rows, is_streamed, write_rows

    check_output_size(output, out_size)
    h, w = out_size
    dtype = np.uint16 if depth == 16 else np.uint8
    draw = dict(box=box, convention=convention, dtype=dtype, footprint=footprint)
    if compute is not None:  # None: render's default, float32
        draw["compute_dtype"] = compute
    with ProgressBar(f"render {w}x{h}", quiet) as bar:
        if is_streamed(output):
            write_rows(output, Rows(h, w, channels, np.dtype(dtype),
                                    render_rows(drawable, out_size, channels, progress=bar.tiles, **draw)))
        else:
            check_fits_in_memory(h, w, channels, dtype)
            write_image(output, render(drawable, out_size, channels, progress=bar.tiles, **draw), bit_depth=depth)
    _say(f"wrote {output} ({w}x{h})", quiet)


def _render_precision(word: str, field, device):
    """The compute dtype for drawing ``field``: 'auto' allows bfloat16 only for the methods that
    measured it negligible (their ``auto_bf16``)."""
    from coordsr.methods import METHODS
    from coordsr.precision import resolve_precision

    method = METHODS.get(getattr(field, "file_header", {}).get("method", ""))
    try:
        return resolve_precision(word, device, allow_auto_bf16=bool(getattr(method, "auto_bf16", False)))
    except ValueError as e:
        raise CoordsrError(f"--precision: {e}") from None


@app.command("export")
def export_cmd(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="pretrained, blind, drawing, trained (the denoiser) or a weights file (.safetensors).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The ONNX file to write (one self-contained graph).")] = None,
    runtime: Annotated[bool, typer.Option("--runtime", help="Instead, write the graphs the onnx backend runs beside the weights file (NAME.encoder.onnx, NAME.query.onnx).")] = False,
    force: Force = False, quiet: Quiet = False,
):
    """Export a trained model to ONNX (docs/onnx.md gives the graphs' inputs and outputs)."""
    import importlib.util

    if (output is None) == (not runtime):
        raise CoordsrError("give -o FILE.onnx (a self-contained graph) or --runtime, one of them")
    if importlib.util.find_spec("onnx") is None:
        raise CoordsrError("coordsr export needs the onnx package: pip install 'coordsr[export]'")
    if output is not None:
        if output.suffix.lower() != ".onnx":
            raise CoordsrError(f"{output}: an ONNX export is written to a .onnx file")
        check_output(output, [], force)
    from coordsr.onnx_export import export_runtime, export_standalone

    if runtime:
        written = export_runtime(model)
        _say(f"wrote {', '.join(str(p) for p in written)}", quiet)
    else:
        export_standalone(model, output)
        _say(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MB)", quiet)


@app.command()
def methods():
    """List the registered methods, one line each."""
    from coordsr.methods import DEFAULT_DENOISER, DEFAULT_METHOD, METHODS

    width = max(len(n) for n in METHODS)
    for name, cls in METHODS.items():
        mark = "*" if name in (DEFAULT_METHOD, DEFAULT_DENOISER) else " "
        typer.echo(f"{mark} {name:<{width}}  {cls.task:<8} {cls.family:<13}  {cls.description()}")
    typer.echo("* default of its task")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's pictures.")] = Path("demo_out"),
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="Method to show.")] = None,
    scale: Annotated[int, typer.Option("--scale", "-s", help="Scale factor.")] = 4,
    device: Device = "auto", quiet: Quiet = False,
):
    """Shrink a bundled photo, upscale it back, draw a bundled 32 px icon at 1024 x 1024, and write
    comparison pictures of both."""
    from coordsr.demo import run_demo, run_icon_demo

    method_name = method or _default_method()
    if not 2 <= scale <= 32:  # the bundled photo is 451x300: x32 leaves a 14x9 input
        raise CoordsrError(f"--scale must be between 2 and 32 for the demo, got {scale}")
    if out.exists() and not out.is_dir():
        raise CoordsrError(f"{out}: is a file; --out takes a folder")
    upscaler = build_method(method_name, {}, device)
    with ProgressBar(f"demo: {method_name} x{scale}", quiet) as bar:
        report = run_demo(upscaler, method_name, out, scale=scale, progress=bar)
    _say(report, quiet)
    icon_method = method or "drawing"  # the seed's own job: a 32 px icon drawn at 1024 x 1024
    with ProgressBar(f"demo: {icon_method} 32 -> 1024", quiet) as bar:
        report = run_icon_demo(build_method(icon_method, {}, device), icon_method, out, progress=bar)
    _say(report, quiet)


@app.command()
def bench(
    folder: Annotated[Optional[Path], typer.Argument(
        help="Folder of HR images (ground truth); with --task drawing, of large drawings.")] = None,
    scales: Annotated[Optional[str], typer.Option(
        help="Comma-separated scales, e.g. 2,3,4 (default; --task drawing: 16,32).")] = None,
    methods_: Annotated[Optional[str], typer.Option(
        "--methods", help="Comma-separated methods, or 'all' (of the task); default bicubic (upscale), "
        "trained (denoise), bicubic,drawing (drawing).")] = None,
    task: Annotated[str, typer.Option("--task", help="upscale (the SR protocol), denoise, or drawing (icons, "
                                      "emoji, logos: the input is the box downscale of FOLDER's drawings, "
                                      "alpha kept).")] = "upscale",
    lr: Annotated[Optional[Path], typer.Option(
        "--lr", help="Drawings: folder of small drawings, each the input as its file holds it (RGBA kept); "
        "with --hr, and no FOLDER.")] = None,
    hr: Annotated[Optional[Path], typer.Option(
        "--hr", help="Drawings: folder of the large drawings of the same names (the truth); the scale is "
        "large / small, a whole number.")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="Drawings: which files. val: only the drawing model's validation files (never "
        "trained on), train, all; auto (default): val when the truth folder is the Emoji layout's HR512/ "
        "(beside LR32/, the model's training data), all otherwise.")] = "auto",
    sigmas: Annotated[str, typer.Option(help="--task denoise: noise levels, e.g. 15,25,50.")] = "15,25,50",
    variant: Annotated[str, typer.Option(help="--task denoise: noise 'float' (the protocol) or '8bit'.")] = "float",
    blind: Annotated[bool, typer.Option("--blind", help="--task denoise: methods estimate sigma.")] = False,
    steps: Annotated[Optional[int], typer.Option(help="Fitting steps for the methods that fit.")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Observation model of the fitting methods.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every row to this JSON file.")] = None,
    figures: Annotated[Optional[Path], typer.Option(help="Folder for crop comparisons and the speed plot.")] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Folder of finished rows: a rerun resumes.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="NAME=VALUE for every method that has the setting, e.g. batch=4096 (repeatable).")] = None,
    degrade: Annotated[Optional[list[str]], typer.Option(
        "--degrade", help="Photos as they arrive: degrade each LR input, e.g. jpeg40, noise10,jpeg70 (noise, "
        "then JPEG), webp50, blur (before the downscale; blur0.6: sigma in LR pixels); repeatable, one run "
        "each. Rows, cache files and the table name it; GMSD is scored too.")] = None,
    device: Device = "auto",
):
    """Score methods: the SR protocol (mod-crop, MATLAB bicubic LR, Y-PSNR/SSIM, shaved borders); with
    --task denoise, the denoising protocol (AWGN, RGB PSNR over all pixels); with --task drawing or
    --lr/--hr, the drawing protocol (PSNR composited on white and on black, SSIM, GMSD, alpha PSNR).

    Drawings: coordsr bench --lr Emoji/LR32 --hr Emoji/HR512 (the designers' own small drawings), or
    coordsr bench Emoji/HR512 --task drawing --scales 16,32 (inputs made by area downscale).

    Degraded photos: coordsr bench Set5 --scales 4 --methods bicubic,pretrained --degrade jpeg40
    --degrade noise10,jpeg70 (the LR input degraded after the downscale, stored as 8 bits).
    """
    from coordsr import bench as runner
    from coordsr.methods import methods_for

    if degrade and (task != "upscale" or lr is not None or hr is not None):
        other = f"--task {task}" if task != "upscale" else "--lr/--hr"
        raise CoordsrError(f"--degrade is for photos (--task upscale), not {other}")
    specs: list[str | None] = []
    for spec in degrade or [None]:
        try:
            specs.append(runner.check_degradation(spec) if spec is not None else None)
        except ValueError as e:
            raise CoordsrError(f"--degrade {spec!r}: {e}") from None
    if task == "drawing" or lr is not None or hr is not None:
        if task not in ("upscale", "drawing"):
            raise CoordsrError(f"--lr and --hr are for drawings (--task drawing), not --task {task}")
        if figures is not None or cache is not None:
            raise CoordsrError(f"{'--figures' if figures is not None else '--cache'} is not available for drawings")
        return _bench_drawing(folder, lr, hr, scales, split, methods_, steps, fit, set_, device, json_path)
    if folder is None:
        raise CoordsrError("missing FOLDER of images to score (or --lr and --hr for drawings)")
    if not folder.is_dir():
        raise CoordsrError(f"{folder}: not a folder of images")
    if task == "denoise":
        return _bench_denoise(folder, methods_, sigmas, variant, blind, json_path, cache, set_, device)
    if task != "upscale":
        raise CoordsrError(f"--task {task!r}: expected upscale, denoise or drawing")
    methods_ = methods_ or "bicubic"
    METHODS = methods_for("upscale")
    scales = scales or "2,3,4"
    try:
        scale_list = [float(v) for v in scales.split(",") if v.strip()]
    except ValueError:
        scale_list = []
    if not scale_list or not all(math.isfinite(v) and 1 < v <= 64 for v in scale_list):
        raise CoordsrError(f"--scales {scales!r}: expected numbers between 1 and 64 like 2,3,4")
    device_of(device)
    names = list(METHODS) if methods_ == "all" else [m.strip() for m in methods_.split(",") if m.strip()]
    denoisers = [n for n in names if n in methods_for("denoise")]
    if denoisers:
        raise CoordsrError(f"{denoisers[0]} is a denoiser: use --task denoise")
    for out_path in (json_path,):
        if out_path is not None and not out_path.parent.is_dir():
            raise CoordsrError(f"{out_path}: folder {out_path.parent} does not exist")
    try:
        chosen = _bench_settings(names, steps, fit, set_, device)
        paths = runner.find_images(folder)
        outputs = (cache or figures) / "outputs" if figures else None
        if figures:
            figures.mkdir(parents=True, exist_ok=True)
        rows = []
        with runner.progress_bar(_console()) as cb:
            for spec in dict.fromkeys(specs):
                rows += runner.run_bench(paths, scale_list, chosen, dataset=folder.name, cache_dir=cache,
                                         outputs_dir=outputs, progress=cb, degradation=spec)
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    typer.echo(runner.format_table(rows))
    failed = [r for r in rows if r.get("error")]
    for r in failed:
        where = f" ({r['degradation']})" if r.get("degradation") else ""
        typer.echo(f"failed: {r['method']} on {r['image']}{where} x{r['scale']:g}: {r['error']}", err=True)
    if json_path:
        meta = {"command": "coordsr " + " ".join(sys.argv[1:])}
        if any(specs):
            meta["degradation"] = [s for s in dict.fromkeys(specs) if s]
        runner.write_json(rows, json_path, meta=meta)
    if figures:
        written = runner.make_figures(rows, paths, figures, outputs_dir=outputs)
        _say(f"wrote {len(written)} figures to {figures}", False)


def _bench_settings(names: list[str], steps: int | None, fit: str | None, set_: list[str] | None,
                    device: str) -> dict[str, dict]:
    """{method: settings} of `coordsr bench`: --steps and --fit where a method has them, --set
    NAME=VALUE for every method that has the setting (one that none has is an error), --device."""
    from coordsr import bench as runner

    extra = collect_settings(None, None, None, set_)
    typed = {n: typed_settings(n, extra) for n in names}
    unused = sorted(set(extra) - {k for n in names for k in typed[n]})
    if unused:
        raise CoordsrError(f"--set {unused[0]}: none of the methods {', '.join(names)} has this setting")
    return {n: {**runner.settings_for(n, steps=steps, fit=fit), **typed[n],
                **({"device": device} if device != "auto" else {})} for n in names}


def _drawing_scales(text: str) -> list[int]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(v.is_integer() and 2 <= v <= 64 for v in values):
        raise CoordsrError(f"--scales {text!r}: expected whole numbers between 2 and 64 like 16,32")
    return [int(v) for v in values]


def _bench_drawing(folder: Path | None, lr: Path | None, hr: Path | None, scales: str | None, split: str,
                   methods_: str | None, steps: int | None, fit: str | None, set_: list[str] | None,
                   device: str, json_path: Path | None) -> None:
    """`coordsr bench --lr SMALL --hr LARGE` or `coordsr bench LARGE --task drawing`: the drawing
    protocol (coordsr.drawing_bench)."""
    from coordsr import drawing_bench as runner
    from coordsr.methods import methods_for

    if (lr is None) != (hr is None):
        raise CoordsrError("--lr and --hr go together: the small drawings and the large ones")
    if lr is not None and folder is not None:
        raise CoordsrError(f"give either FOLDER ({folder}) or --lr and --hr, not both")
    if lr is None and folder is None:
        raise CoordsrError("missing FOLDER of large drawings (or --lr and --hr)")
    if lr is not None and scales is not None:
        raise CoordsrError("--scales: with --lr and --hr, the sizes of each pair set the scale")
    scale_list = _drawing_scales(scales or "16,32") if lr is None else []
    if split not in runner.SPLITS:
        raise CoordsrError(f"--split {split!r}: expected one of {', '.join(runner.SPLITS)}")
    for path in (lr, hr, folder):
        if path is not None and not path.is_dir():
            raise CoordsrError(f"{path}: not a folder of images")
    spec = methods_ or "bicubic,drawing"
    names = list(methods_for("upscale")) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    if not names:
        raise CoordsrError(f"--methods {spec!r}: name at least one method")
    if json_path is not None and not json_path.parent.is_dir():
        raise CoordsrError(f"{json_path}: folder {json_path.parent} does not exist")
    device_of(device)
    try:
        chosen = _bench_settings(names, steps, fit, set_, device)
        contenders = [runner.registry_contender(n, s) for n, s in chosen.items()]
    except (ValueError, TypeError) as e:  # an unknown method, a denoiser, a setting out of range
        raise CoordsrError(str(e)) from None
    try:
        if lr is not None:
            drawings, dataset = runner.find_pairs(lr, hr, split), runner.dataset_name(hr, lr)
        else:
            drawings, dataset = runner.find_drawings(folder, scale_list, split), runner.dataset_name(folder)
        with _console().status("drawing bench") as status:
            def progress(p):
                status.update(f"drawing bench {p.done}/{p.total}: {p.row['method']} {p.row['image']} "
                              f"x{p.row['scale']:g}")

            rows = runner.run_drawing_bench(drawings, contenders, scales=scale_list, dataset=dataset,
                                            progress=progress)
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    typer.echo(runner.format_table(rows))
    for r in rows:
        if r.get("error"):
            typer.echo(f"failed: {r['method']} on {r['image']} x{r['scale']:g}: {r['error']}", err=True)
    if json_path:
        runner.write_json(rows, json_path, meta={"command": "coordsr " + " ".join(sys.argv[1:]),
                                                 "split": runner.resolve_split(split, hr or folder)})


def _bench_denoise(folder: Path, methods_: str | None, sigmas: str, variant: str, blind: bool,
                   json_path: Path | None, cache: Path | None, set_: list[str] | None, device: str) -> None:
    """`coordsr bench --task denoise`: the denoising protocol over the folder's images."""
    from coordsr import bench as sr
    from coordsr.denoise import bench as runner
    from coordsr.denoise.protocol import VARIANTS, check_sigma
    from coordsr.methods import DEFAULT_DENOISER, methods_for

    try:
        levels = [check_sigma(float(v)) for v in sigmas.split(",") if v.strip()]
    except ValueError as e:
        raise CoordsrError(f"--sigmas {sigmas!r}: {e}") from None
    if not levels:
        raise CoordsrError(f"--sigmas {sigmas!r}: expected noise levels like 15,25,50")
    if variant not in VARIANTS:
        raise CoordsrError(f"--variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    spec = methods_ or DEFAULT_DENOISER
    names = list(methods_for("denoise")) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    for name in names:
        build_method(name, {}, device, task="denoise")  # unknown or not a denoiser: one line
    if json_path is not None and not json_path.parent.is_dir():
        raise CoordsrError(f"{json_path}: folder {json_path.parent} does not exist")
    extra = collect_settings(None, None, None, set_)
    typed = {n: typed_settings(n, extra) for n in names}
    unused = sorted(set(extra) - {k for n in names for k in typed[n]})
    if unused:
        raise CoordsrError(f"--set {unused[0]}: none of the methods {', '.join(names)} has this setting")
    chosen = {n: {**typed[n], **({"device": device} if device != "auto" else {})} for n in names}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    paths = sr.find_images(folder)
    if not paths:
        raise CoordsrError(f"{folder}: no images (PNG, JPEG, TIFF, WebP, BMP) in it")
    with _console().status("denoise bench") as status:
        def progress(p):
            status.update(f"denoise bench {p.done}/{p.total}: {p.method} {p.image} sigma {p.sigma:g}")

        try:
            rows = runner.run_denoise_bench(paths, levels, chosen, dataset=folder.name, variant=variant,
                                            blind=blind, progress=progress,
                                            cache=cache / f"denoise-{folder.name}.jsonl" if cache else None)
        except ValueError as e:
            raise CoordsrError(str(e)) from None
    typer.echo(runner.format_table(rows))
    if json_path:
        runner.write_json(rows, json_path, meta={"command": "coordsr " + " ".join(sys.argv[1:])})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the page to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Jobs, uploads and fields.")] = Path("~/.local/share/coordsr"),
    workers: Annotated[int, typer.Option(help="Jobs fitted at the same time.")] = 1,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload (MiB).")] = 20.0,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Most pixels of an uploaded image.")] = 2048 * 2048,
    max_output_pixels: Annotated[int, typer.Option("--max-output-pixels", help="Most pixels of an output.")] = 4096 * 4096,
    allow_host: Annotated[Optional[list[str]], typer.Option(
        "--allow-host", help="Also answer this Host name (repeatable; '*' answers any). The bound address "
                             "and localhost, 127.0.0.1, ::1 always are.")] = None,
):
    """Run the web page (upload, watch the fit, compare, zoom without end) and its JSON API."""
    try:
        from coordsr.server.app import Limits, serve as run_server
    except ImportError as e:
        raise CoordsrError(f"the web page needs the 'web' extra: pip install 'coordsr[web]' ({e.name} missing)") from None
    if workers < 1:
        raise CoordsrError(f"--workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise CoordsrError(f"--port must be between 0 and 65535, got {port}")
    try:
        limits = Limits(max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_output_pixels=max_output_pixels)
    except ValueError as e:  # name the option, not the field
        raise CoordsrError("--" + str(e).replace("_", "-")) from None
    run_server(host, port, data_dir.expanduser(), workers, limits, allow_hosts=allow_host or [])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context):
    """Train the local implicit model (`pretrained`) on folders of HR images; torchrun works too.

    Takes the options of `python -m coordsr.liif.train` (see `coordsr train --help-train`), e.g.
    coordsr train --data ../shared/data/T91 ../shared/data/BSD200 --out model.safetensors --resume
    """
    from coordsr.liif.train import main as train_main

    args = list(ctx.args)
    if "--help-train" in args:
        args = ["--help"]
    code = train_main(args, prog="coordsr train")  # prints its own line (and whether a checkpoint was written)
    if code:
        raise typer.Exit(code)

@app.command("train-denoiser", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_denoiser(ctx: typer.Context):
    """Train the denoiser (`trained`) on folders of clean images, noise levels 0-50.

    Takes the options of `python -m coordsr.denoise.train` (see `coordsr train-denoiser --help-train`), e.g.
    coordsr train-denoiser --data ../shared/data/T91 ../shared/data/BSD200 --out denoiser.safetensors --resume
    """
    from coordsr.denoise.train import main as train_main

    args = list(ctx.args)
    if "--help-train" in args:
        args = ["--help"]
    code = train_main(args, prog="coordsr train-denoiser")  # prints its own line
    if code:
        raise typer.Exit(code)


@app.command()
def art(
    output: Annotated[Path, typer.Option("--output", "-o", help="Image (.png keeps the settings), .field, "
                                         ".gif, .mp4, or a folder (no suffix) of PNG frames.")],
    seed: Annotated[Optional[int], typer.Option(help="Seed of the CPPN (default 0); with --from, of --jitter.")] = None,
    size: Annotated[Optional[str], typer.Option("--size", help="WIDTHxHEIGHT (default 1024x1024, "
                                                "512x512 animated; a field's aspect, an art PNG's size).")] = None,
    depth: Annotated[Optional[int], typer.Option(help="Hidden layers (default 8).")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Units per layer (default 32).")] = None,
    activation: Annotated[Optional[str], typer.Option(help="tanh, sin, gauss, relu, abs; a list "
                                                      "cycled over layers (tanh,sin); or mix (per unit).")] = None,
    weight_scale: Annotated[Optional[float], typer.Option("--weight-scale", help="Weight spread (default 1): larger is busier.")] = None,
    input_scale: Annotated[Optional[float], typer.Option("--input-scale", help="Base frequency of x, y, r (default 2).")] = None,
    latent: Annotated[Optional[int], typer.Option(help="Length of the latent vector z (default 8).")] = None,
    palette: Annotated[Optional[str], typer.Option(help="rgb, hsv, or a gradient: mono, sunset, ocean, "
                                                   "forest, fire, ice, neon, earth, candy.")] = None,
    mode: Annotated[Optional[str], typer.Option(help="grey, rgb or rgba.")] = None,
    symmetry: Annotated[Optional[str], typer.Option(help="none, mirror-x, mirror-y, mirror-xy, radial, kaleido, tile.")] = None,
    fold: Annotated[Optional[int], typer.Option(help="Order of radial/kaleido, tiles per axis of tile (default 6).")] = None,
    zoom: Annotated[Optional[float], typer.Option(help="Magnification; below 1 draws beyond the field's support.")] = None,
    center: Annotated[Optional[str], typer.Option(help="X,Y at the middle of the picture.")] = None,
    rotate: Annotated[Optional[float], typer.Option(help="Rotation of the view, degrees.")] = None,
    warp: Annotated[Optional[float], typer.Option(help="Sine warp of the coordinates (e.g. 0.1).")] = None,
    warp_frequency: Annotated[Optional[float], typer.Option("--warp-frequency", help="Waves per unit of the warp (default 3).")] = None,
    jitter: Annotated[float, typer.Option(help="Seeded noise on every weight, relative to its spread (e.g. 0.05).")] = 0.0,
    from_: Annotated[Optional[Path], typer.Option("--from", help="A field (coordsr fit, or an art .field) or a PNG from coordsr art.")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Morph --from into this field (implies --animate morph).")] = None,
    animate: Annotated[Optional[str], typer.Option(help="latent, zoom, pan, rotate or morph.")] = None,
    frames: Annotated[int, typer.Option(help="Frames of the animation.")] = 120,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 30.0,
    radius: Annotated[float, typer.Option(help="latent: radius of the loop in z, relative to |z|.")] = 0.5,
    zoom_to: Annotated[float, typer.Option("--zoom-to", help="zoom: magnification of the last frame.")] = 8.0,
    pan: Annotated[str, typer.Option(help="pan: DX,DY the centre moves over the animation.")] = "1,0",
    turns: Annotated[float, typer.Option(help="rotate: full turns.")] = 1.0,
    morph: Annotated[str, typer.Option(help="morph: outputs (any two fields) or weights (same networks).")] = "outputs",
    device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Draw a random CPPN, or a saved field, as a poster or an animation (docs/ART.md).

    coordsr art -o a.png --seed 7 --palette sunset --symmetry mirror-x --size 7680x4320
    coordsr art -o walk.mp4 --seed 7 --animate latent --frames 240
    coordsr art -o zoom.gif --from photo.field --animate zoom --frames 120
    """
    from coordsr.art import Animation, ArtConfig, make_art
    from coordsr.art.writers import animation_kind
    from coordsr.images import SUFFIXES
    from coordsr.methods.base import resolve_device

    cppn = {k: v for k, v in dict(seed=seed, depth=depth, width=width, activation=activation,
                                  weight_scale=weight_scale, input_scale=input_scale, latent=latent,
                                  palette=palette, mode=mode, symmetry=symmetry, fold=fold).items()
            if v is not None}
    if from_ is not None:
        given = sorted(k for k in cppn if k != "seed")
        if given:
            raise CoordsrError(f"--{given[0].replace('_', '-')}: the picture's settings come from --from {from_}; "
                               "drop it, or draw a new CPPN without --from")
    view_changes = {k: v for k, v in dict(zoom=zoom, angle=rotate, warp=warp,
                                          warp_frequency=warp_frequency).items() if v is not None}
    if center is not None:
        view_changes["center"] = _pair(center, "--center")
    if to is not None:  # --to is the end of a morph, as in: coordsr art -o m.mp4 --from a --to b
        if animate not in (None, "morph"):
            raise CoordsrError(f"--to is the end of a morph, not of --animate {animate}")
        animate = "morph"
    if animate is not None:
        if animation_kind(output) == "frames" and output.exists():  # .gif, .mp4 or a folder
            if not output.is_dir() or any(output.iterdir()):
                raise CoordsrError(f"{output}: already exists; the frames go to a new or empty folder")
        else:
            check_output(output, [p for p in (from_, to) if p], force)
    else:
        check_output(output, [p for p in (from_,) if p], force)
        if output.suffix.lower() not in (*SUFFIXES, ".field"):
            raise CoordsrError(f"{output}: unknown output type {output.suffix or '(no suffix)'!r}; a still is "
                               f"one of {', '.join(SUFFIXES)} or .field (animations: --animate)")
    out_size = parse_size(size) if size is not None else None
    try:
        animation = Animation(kind=animate, frames=frames, fps=fps, radius=radius, zoom_to=zoom_to,
                              pan_by=_pair(pan, "--pan"), turns=turns, morph=morph).check() if animate else None
        cfg = ArtConfig(**cppn).check() if from_ is None else None
        bars: list[ProgressBar] = []  # opened at the first step: a bad setting is one line, no bar

        def on_step(done: int, total: int) -> None:
            if not bars:
                bars.append(ProgressBar(f"art {'frames' if animate else 'pixels'}", quiet).__enter__())
            bars[0].bar.update(bars[0].task, completed=done, total=total, info=animate or "render")

        try:
            made = make_art(output, cfg=cfg, source=from_, to=to, size=out_size, view_changes=view_changes,
                            animation=animation, jitter=jitter, jitter_seed=seed or 0,
                            device=resolve_device(device), progress=on_step)
        finally:
            if bars:
                bars[0].__exit__(*sys.exc_info())
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    h, w = made.size
    _say(f"wrote {made.path} ({w}x{h}" + (f", {made.frames} frames" if animate else "") + ")", quiet)


ANALYZE_METHODS = "cppn,fourier,siren,wire,hashgrid"


@app.command("analyze")
def analyze_cmd(
    target: Annotated[Path, typer.Argument(metavar="FIELD_OR_IMAGE", help="A field file (.field) or an image.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the figures (PNG) and analysis.json.")],
    method: Annotated[Optional[list[str]], typer.Option(
        "--method", "-m", help=f"Methods to analyse on an image, comma-separated or repeated (default {ANALYZE_METHODS}).")] = None,
    hr: Annotated[Optional[Path], typer.Option("--hr", help="Ground truth: the input at an integer scale.")] = None,
    downscale: Annotated[Optional[int], typer.Option(
        "--downscale", help="Treat the image as the truth; analyse its MATLAB-bicubic downscale by this factor.")] = None,
    steps: Annotated[int, typer.Option(help="Fitting steps of each per-image method.")] = 300,
    crop: Annotated[int, typer.Option(help="Centre-crop the input to at most this side (0: whole image).")] = 64,
    ntk_points: Annotated[int, typer.Option(help="Input pixels in the empirical NTK.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the fits and the subsamples.")] = 0,
    set_: Sets = None, max_pixels: MaxPixels = DEFAULT_MAX_PIXELS, quiet: Quiet = False,
):
    """Diagnostics of coordinate networks (docs/ANALYSIS.md): linearity between samples, Jacobian
    norms and ReLU regions, power spectra at x4 and x8, empirical NTK eigenvalues; on an image, for
    each method (fitted briefly: --steps, random batches of 1024 pixels), on a field, for it. CPU."""
    try:
        import matplotlib  # noqa: F401  (a dependency of coordsr; a stripped install may lack it)
    except ImportError:
        raise CoordsrError("coordsr analyze draws with matplotlib: pip install matplotlib") from None
    from coordsr.analysis import AnalysisConfig, analyze, field_subject, image_subjects
    from coordsr.analysis.run import centre_crop, hr_scale
    from coordsr.field import Field
    from coordsr.images import read_image
    from coordsr.metrics import make_lr, modcrop

    check_max_pixels(max_pixels)
    for name, value, low in (("--steps", steps, 1), ("--crop", crop, 0), ("--ntk-points", ntk_points, 2)):
        if value < low:
            raise CoordsrError(f"{name} must be at least {low}, got {value}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CoordsrError(f"{out}: already exists; choose a new folder")
    if not out.parent.is_dir():
        raise CoordsrError(f"{out}: folder {out.parent} does not exist")
    if hr is not None and downscale is not None:
        raise CoordsrError("give --hr or --downscale, not both")
    cfg = AnalysisConfig(crop=crop, ntk_points=ntk_points, seed=seed)
    log = (lambda text: None) if quiet else (lambda text: _say(text, False))
    if target.suffix.lower() in (".field", ".safetensors"):
        if method or hr is not None or downscale is not None:
            raise CoordsrError(f"{target}: a field is analysed alone (no --method, --hr or --downscale)")
        field = Field.load(target, device="cpu")
        image = render_field_at_input(field)
        subjects, truth = [field_subject(field)], None
    else:
        image = read_image(target, max_pixels=max_pixels).pixels
        truth = None
        if downscale is not None:
            if downscale < 2:
                raise CoordsrError(f"--downscale must be 2 or more, got {downscale}")
            truth = image
            if crop:
                truth, _ = centre_crop(truth, crop * downscale)
            try:
                truth = modcrop(truth, downscale)
            except ValueError as e:
                raise CoordsrError(f"{target}: {e}") from None
            image = make_lr(truth, downscale).astype("float32")
        elif hr is not None:
            truth = read_image(hr, max_pixels=max_pixels).pixels
            hr_scale(image, truth, str(hr))
            image, truth = centre_crop(image, crop, truth)
        else:
            image, _ = centre_crop(image, crop)
        if min(image.shape[:2]) < 4:
            raise CoordsrError(f"{target}: the analysed input must be at least 4x4 pixels, got "
                               f"{image.shape[1]}x{image.shape[0]}")
        names = [n.strip() for item in (method or [ANALYZE_METHODS]) for n in item.split(",") if n.strip()]
        upscalers = {}
        for name in names:
            settings = collect_settings(None, None, None, set_)
            cls_fits = getattr(build_method(name, {}, "cpu"), "fits_field", False)
            if cls_fits:
                settings = {"steps": str(steps), "until": "steps", "batch": "1024", "seed": str(seed), **settings}
            else:
                settings = {}
            upscalers[name] = build_method(name, settings, "cpu")
        scale = hr_scale(image, truth) if truth is not None else cfg.scale
        subjects = image_subjects(image, upscalers, scale=scale, log=log)
    numbers = analyze(image, subjects, out, hr=truth, cfg=cfg, log=log)
    _say(f"wrote {out} ({len(numbers['methods'])} methods: {', '.join(numbers['methods'])})", quiet)


def render_field_at_input(field):
    """A field drawn at the size of the image it was fitted to (its own samples)."""
    from coordsr.render import render_field

    return render_field(field, (field.meta.height, field.meta.width))


def _pair(text: str, option: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise CoordsrError(f"{option} {text!r}: expected two numbers X,Y, e.g. 0.5,-0.2") from None
    return x, y


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(text, err=True)


# --- the error boundary ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status instead of exiting (tests call this in-process)."""
    global SHOW_TRACEBACK
    args = list(sys.argv[1:] if argv is None else argv)
    SHOW_TRACEBACK = "--traceback" in args
    if not args:  # typer would print the whole help as an "error"
        return _fail("missing command; try 'coordsr --help'", 2)
    with stop_on_signals() as stopped, _quiet_pillow_bomb_warning():
        try:
            code = _run(args)
        except KeyboardInterrupt:  # a Ctrl-C that typer did not turn into Exit(130)
            code = 130
            if not stopped:
                typer.echo("coordsr: interrupted", err=True)
    if stopped:  # typer returns Exit(130) for any KeyboardInterrupt: say which signal it was
        typer.echo(f"coordsr: {stopped[0].describe()}", err=True)
        return stopped[0].exit_code
    return code


def _run(args: list[str]) -> int:
    try:
        result = app(args=args, prog_name="coordsr", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:  # end of input at a prompt
        return _fail("aborted", 1)
    except typer.TyperException as e:  # usage errors: missing option, bad value, unknown command
        if SHOW_TRACEBACK:
            raise
        return _fail(e.format_message(), e.exit_code)
    except CoordsrError as e:
        if SHOW_TRACEBACK:
            raise
        return _fail(str(e), e.exit_code)
    except (MemoryError, FloatingPointError) as e:
        if SHOW_TRACEBACK:
            raise
        return _fail(f"{type(e).__name__}: {e}", 1)
    except OSError as e:  # a file the library did not expect to fail (disk full, I/O error)
        if SHOW_TRACEBACK:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}", 1)
    # non-standalone typer returns a typer.Exit's code (--help: 0) or the command's value (None)
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    """One line on stderr, whatever the message held."""
    typer.echo(f"coordsr: {' '.join(str(message).split())}", err=True)
    return code


@contextlib.contextmanager
def _quiet_pillow_bomb_warning():
    """Pillow warns about images over its own pixel limit; coordsr checks --max-pixels itself,
    from the header, so the warning is only noise to a user (issue 11)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def app_main() -> None:
    short_spin(os.environ)  # before anything imports torch (coordsr.openmp_wait says why)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    app_main()
