"""The command line: thin commands over the library, and the one place that turns words into objects.

``main(argv) -> int`` is the error boundary: a user error (CoordsrError, a bad option) becomes one
line on stderr and a non-zero status; ``--traceback`` shows the whole story.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from coordsr.errors import CoordsrError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Upscale images with coordinate-based neural networks.")

SHOW_TRACEBACK = False

# --- parsing words into values ----------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' (width x height) -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CoordsrError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    if w < 1 or h < 1:
        raise CoordsrError(f"--size {text!r}: width and height must be positive")
    return h, w


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
        return max(1, round(h * width / w)), width
    if height is not None:
        if height < 1:
            raise CoordsrError(f"--height must be positive, got {height}")
        return height, max(1, round(w * height / h))
    scale = 4.0 if scale is None else scale
    if not scale > 0:
        raise CoordsrError(f"--scale must be positive, got {scale}")
    return max(1, round(h * scale)), max(1, round(w * scale))


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
    from coordsr.methods import get_method, methods_for

    try:
        cls = get_method(name)
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    if getattr(cls, "task", "upscale") != task:
        raise CoordsrError(f"method {name} does not {task} (it is a {cls.task} method); "
                           f"choose one of: {', '.join(methods_for(task))}")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in settings:
        if key not in known:
            raise CoordsrError(f"method {name} has no setting {key!r}; its settings: "
                               f"{', '.join(sorted(known - {'device'})) or 'none'}")
    kwargs = {"device": device, **typed_settings(name, settings)}
    try:
        method = cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise CoordsrError(f"method {name}: {e}") from None
    if "fit" in known and method.fit not in ("point", "consistent"):
        raise CoordsrError(f"--fit {method.fit!r}: expected point or consistent")
    return method


def typed_settings(name: str, raw: dict[str, str]) -> dict:
    """The settings in ``raw`` that method ``name`` has, converted to its field types."""
    from coordsr.methods import get_method

    cls = get_method(name)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: _convert(v, hints.get(k, str), k) for k, v in raw.items() if k in known}


def collect_settings(steps, seed, fit, extra: list[str] | None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in extra or []:
        if "=" not in item:
            raise CoordsrError(f"--set {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        settings[key.strip().replace("-", "_")] = value.strip()
    for key, value in (("steps", steps), ("seed", seed), ("fit", fit)):
        if value is not None:
            settings[key] = str(value)
    return settings


def check_output(path: Path, inputs: list[Path], force: bool) -> None:
    """Refuse outputs that would overwrite an input, an existing file (without --force), or
    land in a missing folder."""
    for src in inputs:
        if src.exists() and path.exists() and path.resolve() == src.resolve():
            raise CoordsrError(f"{path}: output would overwrite the input; choose another name")
    if path.exists() and path.is_dir():
        raise CoordsrError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise CoordsrError(f"{path}: already exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise CoordsrError(f"{path}: folder {path.parent} does not exist")


def check_image_output(path: Path, inputs: list[Path], force: bool) -> None:
    """check_output, and a suffix we can write, before any work is done."""
    from coordsr.images import SUFFIXES

    check_output(path, inputs, force)
    if path.suffix.lower() not in SUFFIXES:
        raise CoordsrError(f"{path}: unknown image type {path.suffix!r}, use one of {', '.join(SUFFIXES)}")


class ProgressBar:
    """A rich progress bar fed by coordsr.progress.Progress reports."""

    def __init__(self, description: str, quiet: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.quiet = quiet
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), transient=False, disable=quiet,
                            console=_console())
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
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Method setting NAME=VALUE (repeatable).")]
SigmaOpt = Annotated[Optional[float], typer.Option(
    "--sigma", help="Noise level in 8-bit levels (0-100); default: estimated from the image.")]


@app.callback()
def _root(traceback: Annotated[bool, typer.Option("--traceback", help="Show tracebacks of errors.")] = False):
    global SHOW_TRACEBACK
    SHOW_TRACEBACK = traceback


def _default_method() -> str:
    from coordsr.methods import DEFAULT_METHOD

    return DEFAULT_METHOD


@app.command()
def upscale(
    input: Annotated[Path, typer.Argument(help="Image to upscale (PNG, JPEG, TIFF, WebP, BMP).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="Registered method (see `coordsr methods`).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Fitting steps (per-image methods).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same result.")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Observation model: point or consistent.")] = None,
    bit_depth: Annotated[Optional[int], typer.Option("--bit-depth", help="8 or 16 (default: the input's).")] = None,
    denoise_: Annotated[bool, typer.Option("--denoise", help="Denoise the input first (joint: noisy in, clean out).")] = False,
    denoiser: Annotated[Optional[str], typer.Option("--denoiser", help="Denoiser for --denoise (see `coordsr methods`).")] = None,
    sigma: SigmaOpt = None,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Upscale an image to a larger size with any registered method."""
    from coordsr.images import read_image, write_image
    from coordsr.render import check_fits_in_memory

    method_name = method or _default_method()
    check_image_output(output, [input], force)
    img = read_image(input)
    out_size = output_size(img.height, img.width, scale=scale, size=size, width=width, height=height)
    check_fits_in_memory(out_size[0], out_size[1], img.channels)
    upscaler = build_method(method_name, collect_settings(steps, seed, fit, set_), device)
    pixels = img.pixels
    if denoise_ or denoiser is not None or sigma is not None:
        if not denoise_:
            raise CoordsrError("--denoiser and --sigma go with --denoise")
        pixels = _run_denoiser(input, pixels, denoiser, sigma, {}, device, quiet)
    with ProgressBar(f"{method_name} {img.width}x{img.height} -> {out_size[1]}x{out_size[0]}", quiet) as bar:
        result = upscaler.upscale(pixels, out_size, progress=bar)
    write_image(output, result, bit_depth=bit_depth or img.bit_depth)
    _say(f"wrote {output} ({out_size[1]}x{out_size[0]}, {method_name})", quiet)


@app.command("denoise")
def denoise_cmd(
    input: Annotated[Path, typer.Argument(help="Noisy image (PNG, JPEG, TIFF, WebP, BMP).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    sigma: SigmaOpt = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="A denoiser (see `coordsr methods`).")] = None,
    bit_depth: Annotated[Optional[int], typer.Option("--bit-depth", help="8 or 16 (default: the input's).")] = None,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Remove Gaussian-like noise; the noise level is estimated from the image unless --sigma is given."""
    from coordsr.images import read_image, write_image

    check_image_output(output, [input], force)
    img = read_image(input)
    result = _run_denoiser(input, img.pixels, method, sigma, collect_settings(None, None, None, set_),
                           device, quiet)
    write_image(output, result, bit_depth=bit_depth or img.bit_depth)
    _say(f"wrote {output} ({img.width}x{img.height}, {method or _default_denoiser()})", quiet)


def _default_denoiser() -> str:
    from coordsr.methods import DEFAULT_DENOISER

    return DEFAULT_DENOISER


def _run_denoiser(path: Path, pixels, method: str | None, sigma: float | None, settings: dict[str, str],
                  device: str, quiet: bool):
    """Denoise the pixels of ``path``: the level given, or estimated and reported."""
    from coordsr.denoise.protocol import CLEAN_SIGMA, check_sigma, estimate_sigma
    from coordsr.methods.denoisers import split_alpha

    name = method or _default_denoiser()
    denoiser = build_method(name, settings, device, task="denoise")
    if sigma is None:
        sigma = estimate_sigma(split_alpha(pixels)[0])
        _say(f"{path}: estimated noise level sigma {sigma:.1f} (8-bit levels)", quiet)
        if sigma < CLEAN_SIGMA:
            _say(f"{path}: looks clean (sigma below {CLEAN_SIGMA:g}): pixels kept as they are", quiet)
    else:
        try:
            sigma = check_sigma(sigma)
        except ValueError as e:
            raise CoordsrError(f"--sigma: {e}") from None
    with ProgressBar(f"denoise {name} sigma {sigma:.1f}", quiet) as bar:
        try:
            return denoiser.denoise(pixels, sigma, progress=bar)
        except ValueError as e:
            raise CoordsrError(f"{path}: {name}: {e}") from None


@app.command("fit")
def fit_cmd(
    input: Annotated[Path, typer.Argument(help="Image to fit.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Field file to write (.field).")],
    method: Annotated[str, typer.Option("--method", "-m", help="A per-image method.")] = "hashgrid",
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    steps: Annotated[Optional[int], typer.Option(help="Fitting steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed.")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Observation model: point or consistent.")] = None,
    set_: Sets = None, device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Fit a field to an image and save it; draw it later with `coordsr render`.

    The output size (--scale etc.) matters only to the consistent observation model, which fits
    the field as seen through the downsampling from that size.
    """
    from coordsr.images import read_image

    check_output(output, [input], force)
    upscaler = build_method(method, collect_settings(steps, seed, fit, set_), device)
    if not getattr(upscaler, "fits_field", False):
        from coordsr.methods import METHODS

        fitting = [n for n, c in METHODS.items() if getattr(c, "fits_field", False)]
        raise CoordsrError(f"method {method} does not fit a field; choose one of: {', '.join(fitting)}")
    img = read_image(input)
    out_size = output_size(img.height, img.width, scale=scale, size=size, width=width, height=height)
    with ProgressBar(f"fit {method} {img.width}x{img.height}", quiet) as bar:
        field, result = upscaler.fit_field(img.pixels, out_size, bit_depth=img.bit_depth, progress=bar)
    field.save(output, method=method, settings={**upscaler.settings(), "out_size": list(out_size)})
    _say(f"wrote {output} ({result.steps} steps, {result.psnr:.2f} dB on the input, {result.seconds:.1f} s)",
         quiet)


@app.command()
def render(
    field_path: Annotated[Path, typer.Argument(metavar="FIELD", help="A field file from `coordsr fit`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image to write.")],
    scale: Scale = None, size: Size = None, width: Width = None, height: Height = None,
    box: Annotated[Optional[str], typer.Option(help="Region x0,y0,x1,y1 in field coordinates ([-1,1]).")] = None,
    bit_depth: Annotated[Optional[int], typer.Option("--bit-depth", help="8 or 16 (default: the input's).")] = None,
    device: Device = "auto", force: Force = False, quiet: Quiet = False,
):
    """Draw a saved field at any size, with no need for the source image."""
    import numpy as np

    from coordsr.coords import FULL_BOX
    from coordsr.field import Field
    from coordsr.images import write_image
    from coordsr.methods.base import resolve_device
    from coordsr.render import render_field

    check_image_output(output, [field_path], force)
    field = Field.load(field_path, device=resolve_device(device))
    meta = field.meta
    out_size = output_size(meta.height, meta.width, scale=scale, size=size, width=width, height=height)
    region = FULL_BOX
    if box is not None:
        try:
            region = tuple(float(v) for v in box.split(","))
            assert len(region) == 4 and region[0] < region[2] and region[1] < region[3]
        except (ValueError, AssertionError):
            raise CoordsrError(f"--box {box!r}: expected x0,y0,x1,y1 with x0 < x1 and y0 < y1") from None
    depth = bit_depth or meta.bit_depth
    with ProgressBar(f"render {out_size[1]}x{out_size[0]}", quiet) as bar:
        pixels = render_field(field, out_size, box=region, dtype=np.uint16 if depth == 16 else np.uint8,
                              progress=bar.tiles)
    write_image(output, pixels, bit_depth=depth)
    _say(f"wrote {output} ({out_size[1]}x{out_size[0]})", quiet)


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
    """Shrink a bundled photo, upscale it back, and write a comparison picture."""
    from coordsr.demo import run_demo

    method_name = method or _default_method()
    upscaler = build_method(method_name, {}, device)
    with ProgressBar(f"demo: {method_name} x{scale}", quiet) as bar:
        report = run_demo(upscaler, method_name, out, scale=scale, progress=bar)
    _say(report, quiet)


@app.command()
def bench(
    folder: Annotated[Path, typer.Argument(help="Folder of HR images (ground truth).")],
    scales: Annotated[str, typer.Option(help="Comma-separated scales, e.g. 2,3,4.")] = "2,3,4",
    methods_: Annotated[Optional[str], typer.Option(
        "--methods", help="Comma-separated methods, or 'all' (of the task); default bicubic / nlmeans.")] = None,
    task: Annotated[str, typer.Option("--task", help="upscale (the SR protocol) or denoise.")] = "upscale",
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
    device: Device = "auto",
):
    """Score methods: the SR protocol (mod-crop, MATLAB bicubic LR, Y-PSNR/SSIM, shaved borders) or,
    with --task denoise, the denoising protocol (AWGN, RGB PSNR over all pixels)."""
    from coordsr import bench as runner
    from coordsr.methods import methods_for

    if not folder.is_dir():
        raise CoordsrError(f"{folder}: not a folder of images")
    if task == "denoise":
        return _bench_denoise(folder, methods_, sigmas, variant, blind, json_path, cache, set_, device)
    if task != "upscale":
        raise CoordsrError(f"--task {task!r}: expected upscale or denoise")
    methods_ = methods_ or "bicubic"
    METHODS = methods_for("upscale")
    try:
        scale_list = [float(v) for v in scales.split(",") if v.strip()]
    except ValueError:
        raise CoordsrError(f"--scales {scales!r}: expected numbers like 2,3,4") from None
    names = list(METHODS) if methods_ == "all" else [m.strip() for m in methods_.split(",") if m.strip()]
    denoisers = [n for n in names if n in methods_for("denoise")]
    if denoisers:
        raise CoordsrError(f"{denoisers[0]} is a denoiser: use --task denoise")
    for out_path in (json_path,):
        if out_path is not None and not out_path.parent.is_dir():
            raise CoordsrError(f"{out_path}: folder {out_path.parent} does not exist")
    extra = collect_settings(None, None, None, set_)
    try:
        typed = {n: typed_settings(n, extra) for n in names}
        chosen = {n: {**runner.settings_for(n, steps=steps, fit=fit), **typed[n],
                      **({"device": device} if device != "auto" else {})} for n in names}
        unused = sorted(set(extra) - {k for n in names for k in typed[n]})
        if unused:
            raise CoordsrError(f"--set {unused[0]}: none of the methods {', '.join(names)} has this setting")
        paths = runner.find_images(folder)
        outputs = (cache or figures) / "outputs" if figures else None
        if figures:
            figures.mkdir(parents=True, exist_ok=True)
        with runner.progress_bar(_console()) as cb:
            rows = runner.run_bench(paths, scale_list, chosen, dataset=folder.name, cache_dir=cache,
                                    outputs_dir=outputs, progress=cb)
    except ValueError as e:
        raise CoordsrError(str(e)) from None
    typer.echo(runner.format_table(rows))
    failed = [r for r in rows if r.get("error")]
    for r in failed:
        typer.echo(f"failed: {r['method']} on {r['image']} x{r['scale']:g}: {r['error']}", err=True)
    if json_path:
        runner.write_json(rows, json_path, meta={"command": "coordsr " + " ".join(sys.argv[1:])})
    if figures:
        written = runner.make_figures(rows, paths, figures, outputs_dir=outputs)
        _say(f"wrote {len(written)} figures to {figures}", False)


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
):
    """Run the web page (upload, watch the fit, compare, zoom without end) and its JSON API."""
    try:
        from coordsr.server.app import Limits, serve as run_server
    except ImportError as e:
        raise CoordsrError(f"the web page needs the 'web' extra: pip install 'coordsr[web]' ({e.name} missing)") from None
    if workers < 1:
        raise CoordsrError(f"--workers must be at least 1, got {workers}")
    limits = Limits(max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_output_pixels=max_output_pixels)
    run_server(host, port, data_dir.expanduser(), workers, limits)


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
    code = train_main(args)
    if code:
        raise typer.Exit(code)


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(text, err=True)


# --- the error boundary ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status instead of exiting (tests call this in-process)."""
    import click

    global SHOW_TRACEBACK
    args = list(sys.argv[1:] if argv is None else argv)
    SHOW_TRACEBACK = "--traceback" in args
    try:
        app(args=args, prog_name="coordsr", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        if SHOW_TRACEBACK:
            raise
        typer.echo(f"coordsr: {e.format_message()}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        typer.echo("coordsr: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("coordsr: interrupted", err=True)
        return 130
    except CoordsrError as e:
        if SHOW_TRACEBACK:
            raise
        typer.echo(f"coordsr: {e}", err=True)
        return e.exit_code
    except (MemoryError, FloatingPointError) as e:
        if SHOW_TRACEBACK:
            raise
        typer.echo(f"coordsr: {type(e).__name__}: {e}", err=True)
        return 1


def app_main() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    app_main()
