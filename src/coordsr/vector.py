"""Resolution-free output: an upscaled drawing traced into an SVG file (vtracer).

    svg = trace(pixels)              # (H, W, C) floats in [0, 1] -> SVG text, H x W user units
    write_svg(Path("icon.svg"), svg)  # atomic: a temporary beside it, then renamed

The raster is traced as it is upscaled (``coordsr upscale icon.png -o icon.svg``): the larger
the traced raster, the closer the curves follow it, at the cost of time and file size.
``DEFAULT_SCALE`` is x8. On 10 Emoji validation drawings (``benchmarks/svg_fidelity.py``,
``benchmarks/results/svg_fidelity.json``), the SVG traced from the 256 px upscale and drawn at
1024 px scores a PSNR of 22.9 dB on white and 22.6 dB on black against the 1024 px raster
(186 KB, traced in 0.12 s); traced from the 1024 px upscale, 22.9 / 24.6 dB for ten times the
file (1.8 MB) and 35 times the time.

Alpha: vtracer keys out fully transparent pixels and draws every other pixel opaque, so the
semi-transparent rim of an antialiased edge would become an opaque, off-colour fringe (handed
the alpha as it is: 14.2 / 17.5 dB). The alpha is cut at ``alpha_cut`` first: the outline then
runs where the drawing is half covered, and the renderer antialiases that outline at any size.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from coordsr.atomic import atomic_path
from coordsr.errors import CoordsrError, ImageError

SVG_SUFFIX = ".svg"
DEFAULT_SCALE = 8.0
"""The upscale traced when no size is given (a 32 px icon is traced at 256 px)."""


class TraceError(CoordsrError):
    """The tracer failed on the way: a run that failed, not bad input (exit status 1)."""

    exit_code = 1


@dataclass(frozen=True)
class TraceConfig:
    """vtracer's settings, chosen on Emoji validation drawings (benchmarks/svg_fidelity.py)."""

    colormode: str = "color"
    """'color' keeps the drawing's colours ('binary' is for black-on-white line art)."""
    hierarchical: str = "stacked"
    """Shapes stacked on one another (vtracer's default): no hairline gaps between neighbours."""
    mode: str = "spline"
    """Curves (Bezier splines), the smooth outlines a drawing has. 'polygon' scores the same at
    1024 px (22.8 / 23.0 dB) in a third of the file, but its straight segments show when drawn
    larger, which is what an SVG is for."""
    filter_speckle: int = 4
    """Drop specks smaller than this many pixels a side: the model's faint noise, not the art
    (2 keeps 10% more paths for +0.02 dB)."""
    color_precision: int = 8
    """Bits of each colour channel kept when clustering (vtracer's default is 6)..."""
    layer_difference: int = 8
    """...and the colour difference between stacked layers (default 16): finer steps in gradients.
    Traced at x8 the two gain 0.4 dB over vtracer's defaults; traced at 1024 px, where a gradient
    spans many pixels, vtracer's defaults band it (7 dB lower on white on the one emoji tried)."""
    path_precision: int = 2
    """Decimals of the coordinates: 0.01 px of the traced raster, far below a visible change."""
    alpha_cut: float | None = 0.5
    """Pixels below this alpha are transparent, the rest opaque (see the module docstring); None
    hands vtracer the alpha as it is (it keys out alpha 0 only)."""

    def vtracer_kwargs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "alpha_cut"}


def _vtracer():
    try:
        import vtracer
    except ImportError:
        raise CoordsrError("writing SVG needs the vtracer package: pip install vtracer") from None
    return vtracer


def is_svg(path: Path) -> bool:
    return Path(path).suffix.lower() == SVG_SUFFIX


def _rgba8_cut(pixels: np.ndarray, alpha_cut: float | None) -> np.ndarray:
    """(H, W, C) floats, C in 1..4 -> (H, W, 4) uint8 RGBA with alpha 0 or 255 (colour 0 where 0);
    ``alpha_cut`` None: the alpha as it is."""
    from coordsr.images import quantize

    x = np.asarray(pixels, dtype=np.float32)
    x = x[:, :, None] if x.ndim == 2 else x
    c = x.shape[2]
    rgb = x[:, :, :3] if c >= 3 else np.repeat(x[:, :, :1], 3, axis=2)
    a = x[:, :, -1:] if c in (2, 4) else np.ones_like(x[:, :, :1])
    if alpha_cut is not None:
        a = (a >= alpha_cut).astype(np.float32)
        rgb = rgb * a
    return np.ascontiguousarray(quantize(np.concatenate([rgb, a], axis=2), 8))


def trace(pixels: np.ndarray, cfg: TraceConfig = TraceConfig()) -> str:
    """An (H, W, C) image of floats in [0, 1] traced into SVG text whose user units are its pixels,
    with a viewBox, so any viewer scales it to any size."""
    import imagecodecs

    rgba = _rgba8_cut(pixels, cfg.alpha_cut)
    h, w = rgba.shape[:2]
    png = bytes(imagecodecs.png_encode(rgba, level=1))  # vtracer reads encoded images
    vtracer = _vtracer()
    try:
        svg = vtracer.convert_raw_image_to_svg(png, img_format="png", **cfg.vtracer_kwargs())
    except BaseException as e:  # a Rust panic arrives as pyo3's PanicException, a BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise TraceError(f"vtracer could not trace the {w}x{h} image: {type(e).__name__}: {e}") from e
    return _with_viewbox(svg, w, h)


def _with_viewbox(svg: str, w: int, h: int) -> str:
    """vtracer writes width and height but no viewBox: without one a browser does not scale it."""
    head = re.search(r"<svg\b[^>]*>", svg)
    if head is None or "viewBox" in head.group(0):
        return svg
    tag = head.group(0)[:-1] + f' viewBox="0 0 {w} {h}">'
    return svg[:head.start()] + tag + svg[head.end():]


def write_svg(path: Path, svg: str) -> None:
    """Write SVG text atomically: a failed write leaves neither a partial file nor a clobbered one."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(svg, encoding="utf-8")
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror or exc}") from exc


__all__ = ["DEFAULT_SCALE", "SVG_SUFFIX", "TraceConfig", "TraceError", "is_svg", "trace", "write_svg"]
