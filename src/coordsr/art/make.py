"""One call per ``coordsr art`` run: a still, an art field or an animation, from settings.

``make_art`` is what the CLI calls after turning words into ArtConfig, View and Animation;
a Python caller gets the same result with the same call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from coordsr.art.animate import Animation, draw, write_animation
from coordsr.art.files import art_record, load_source, save_art_field
from coordsr.art.generator import CPPN, ArtConfig
from coordsr.art.scene import Scene, View, perturbed
from coordsr.art.writers import animation_kind, write_png_rows
from coordsr.errors import CoordsrError

MAX_SIDE = 32768
"""Longest side of a still, in pixels."""
MAX_STILL_PIXELS = 16384 * 16384
"""Most pixels of a still (an 8K poster is 33 MP; memory is checked too)."""
MAX_FRAME_PIXELS = 4096 * 4096
"""Most pixels of one animation frame."""


@dataclass
class Made:
    """What ``make_art`` wrote."""

    path: Path
    size: tuple[int, int]
    """(H, W) of the picture or of each frame."""
    frames: int = 1
    kind: str = "png"
    """'png' (or another image type), 'field', 'gif', 'mp4' or 'frames'."""


def check_size(size: tuple[int, int], animated: bool) -> None:
    h, w = size
    limit = MAX_FRAME_PIXELS if animated else MAX_STILL_PIXELS
    what = "an animation frame" if animated else "a still"
    if h < 1 or w < 1 or max(h, w) > MAX_SIDE or h * w > limit:
        raise CoordsrError(f"--size {w}x{h}: over the limit for {what} ({limit / 1e6:.0f} MP, "
                           f"{MAX_SIDE} px a side)")


def default_size(source: nn.Module, animated: bool, saved: tuple[int, int] | None) -> tuple[int, int]:
    """The picture's own size for an art PNG; a fitted field's aspect with a 1024 (still) or
    512 (animation) longer side; square otherwise."""
    side = 512 if animated else 1024
    if saved is not None and not animated:
        return saved
    meta = getattr(source, "meta", None)
    if meta is None:
        return side, side
    m = max(meta.height, meta.width)
    return max(1, round(meta.height * side / m)), max(1, round(meta.width * side / m))


def make_art(output: Path, *, cfg: ArtConfig | None = None, source: Path | None = None,
             to: Path | None = None, size: tuple[int, int] | None = None, view: View | None = None,
             view_changes: dict | None = None, animation: Animation | None = None, jitter: float = 0.0, jitter_seed: int = 0,
             device=None, progress: Callable[[int, int], None] | None = None) -> Made:
    """Draw a CPPN (``cfg``) or a saved source (``source``: a field or an art PNG) to ``output``.

    With ``animation`` the output is a .gif, .mp4 or a folder of PNG frames; otherwise an image
    (a PNG keeps the settings in a text chunk) or, for a CPPN, a .field file. ``view=None``
    takes the source's saved view, if any, and ``view_changes`` (View fields) are applied to
    it. ``progress(done, total)``: pixels of a still,
    frames of an animation."""
    output = Path(output)
    saved_size = None
    if source is not None:
        net, saved_view = load_source(source, device=device)
        view = view if view is not None else (saved_view or View())
        saved_size = _png_size(source)
    else:
        net = CPPN(cfg or ArtConfig())
        if device is not None:
            net = net.to(device)
        view = view or View()
    view = replace(view, **(view_changes or {})).check()
    names = (str(source) if source else "the CPPN", str(to) if to else "--to")
    other = load_source(to, device=device)[0] if to is not None else None
    if other is not None and (animation is None or animation.kind != "morph"):
        raise CoordsrError("--to is the end of a morph: give --animate morph too")
    if jitter:
        net = perturbed(net, jitter, jitter_seed)
    animated = animation is not None
    size = size or default_size(net, animated, saved_size)
    check_size(size, animated)
    if animated:
        kind = animation_kind(output)
        count = write_animation(output, net, size, view, animation, to=other, names=names, progress=progress)
        return Made(output, size, count, kind)
    if output.suffix.lower() == ".field":
        if not isinstance(net, CPPN):
            raise CoordsrError(f"{output}: only a CPPN is saved as an art field; a fitted field is a file already")
        save_art_field(net, output, view)
        return Made(output, size, 1, "field")
    pixels = draw(Scene(net, view), size, progress=progress)
    record = art_record(net.cfg if isinstance(net, CPPN) else None, view, size=[size[1], size[0]],
                        **({"source": Path(source).name} if source is not None and not isinstance(net, CPPN) else {}),
                        **({"jitter": jitter, "jitter_seed": jitter_seed} if jitter else {}))
    _write_still(output, pixels, record)
    return Made(output, size, 1, output.suffix.lower().lstrip(".") or "png")


def _write_still(path: Path, pixels: np.ndarray, record: dict) -> None:
    if path.suffix.lower() == ".png":
        write_png_rows(path, pixels, record)  # memory: the array and one band of rows
    else:
        from coordsr.images import write_image

        write_image(path, pixels)  # other formats carry no settings


def _png_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of an art PNG, None for other files."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format == "PNG":
                return im.height, im.width
    except (OSError, SyntaxError, ValueError):
        pass
    return None
