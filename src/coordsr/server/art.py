"""The Art tab's API: CPPN pictures and short animations, drawn while the client waits.

    GET /art                        the art page (static/art.html)
    GET /api/art/options            activations, palettes, symmetries, modes, limits
    GET /api/art/image.png?...      a CPPN picture; the PNG carries its settings (coordsr art --from)
    GET /api/art/animation.gif?...  a short latent walk, rotation or zoom, as a looping GIF

These are synchronous renders with hard limits (ART_LIMITS), not jobs of the fitting queue:
the queue (jobs.py) runs upscalers on uploaded images, and a CPPN render of a few megapixels
takes seconds. One render runs at a time; a request that waits longer than ``wait_s`` for its
turn gets 503. Larger posters and longer animations are for the CLI (`coordsr art`).
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

STATIC = Path(__file__).parent / "static"


@dataclass
class ArtLimits:
    """What one art request may ask for; each refusal is a 422 with a one-line detail."""

    max_pixels: int = 2048 * 2048
    """Most pixels of a picture."""
    max_frame_pixels: int = 256 * 256
    """Most pixels of an animation frame."""
    max_frames: int = 90
    """Most frames of an animation."""
    max_depth: int = 16
    """Deepest network."""
    max_width: int = 128
    """Widest layer."""
    wait_s: float = 60.0
    """How long a request waits for the render before it (503)."""


ART_LIMITS = ArtLimits()
_render_lock = threading.Lock()
router = APIRouter(tags=["art"])


def _config(seed, depth, width, activation, palette, symmetry, fold, mode, weight_scale, input_scale):
    from coordsr.art import ArtConfig

    if depth > ART_LIMITS.max_depth or width > ART_LIMITS.max_width:
        raise HTTPException(422, f"the page draws networks up to {ART_LIMITS.max_depth} layers of "
                                 f"{ART_LIMITS.max_width} units; use coordsr art for larger ones")
    try:
        return ArtConfig(seed=seed, depth=depth, width=width, activation=activation, palette=palette,
                         symmetry=symmetry, fold=fold, mode=mode, weight_scale=weight_scale,
                         input_scale=input_scale).check()
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def _view(zoom: float, angle: float):
    from coordsr.art import View

    try:
        return View(zoom=zoom, angle=angle).check()
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def _locked(render):
    """Run ``render()`` when no other art render runs; 503 if the wait is too long."""
    if not _render_lock.acquire(timeout=ART_LIMITS.wait_s):
        raise HTTPException(503, "the art renderer is busy; try again in a moment")
    try:
        return render()
    finally:
        _render_lock.release()


Seed = Annotated[int, Query(ge=0, lt=2**63, description="Seed of the CPPN")]
Depth = Annotated[int, Query(ge=1, description="Hidden layers")]
Width = Annotated[int, Query(ge=1, description="Units per layer")]
Side = Annotated[int, Query(ge=1, le=32768, description="Pixels")]


@router.get("/art", include_in_schema=False)
def art_page():
    return FileResponse(STATIC / "art.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/art/options")
def art_options() -> dict:
    """The words the art settings accept, and the server's art limits."""
    from coordsr.art import ACTIVATIONS, ANIMATIONS, COLOURINGS, MODES, SYMMETRIES

    return {"activations": [*ACTIVATIONS, "mix"], "palettes": list(COLOURINGS), "symmetries": list(SYMMETRIES),
            "modes": list(MODES), "animations": [a for a in ANIMATIONS if a in ("latent", "rotate", "zoom")],
            "limits": asdict(ART_LIMITS)}


@router.get("/api/art/image.png", responses={200: {"content": {"image/png": {}}}, 422: {}, 503: {}})
def art_image(seed: Seed = 0, depth: Depth = 8, width: Width = 32, activation: str = "tanh",
              palette: str = "rgb", symmetry: str = "none", fold: int = 6, mode: str = "rgb",
              weight_scale: float = 1.0, input_scale: float = 2.0, zoom: float = 1.0, angle: float = 0.0,
              w: Side = 256, h: Side = 256, download: bool = False):
    """A CPPN picture of w x h pixels (at most ``max_pixels``), settings in its PNG text chunk."""
    from coordsr.art import CPPN, Scene, draw
    from coordsr.art.files import art_record
    from coordsr.art.writers import png_bytes

    if w * h > ART_LIMITS.max_pixels:
        raise HTTPException(422, f"{w}x{h} is over the page's limit of {ART_LIMITS.max_pixels} pixels; "
                                 "use coordsr art for larger posters")
    cfg = _config(seed, depth, width, activation, palette, symmetry, fold, mode, weight_scale, input_scale)
    view = _view(zoom, angle)

    def render() -> bytes:
        net = CPPN(cfg)
        return png_bytes(draw(Scene(net, view), (h, w)), art_record(cfg, view, size=[w, h]))

    headers = {"Content-Disposition": f'attachment; filename="art-{seed}-{w}x{h}.png"'} if download else {}
    return Response(_locked(render), media_type="image/png", headers=headers)


@router.get("/api/art/animation.gif", responses={200: {"content": {"image/gif": {}}}, 422: {}, 503: {}})
def art_animation(seed: Seed = 0, depth: Depth = 8, width: Width = 32, activation: str = "tanh",
                  palette: str = "rgb", symmetry: str = "none", fold: int = 6, mode: str = "rgb",
                  weight_scale: float = 1.0, input_scale: float = 2.0, zoom: float = 1.0, angle: float = 0.0,
                  kind: str = "latent", frames: Annotated[int, Query(ge=1)] = 24,
                  fps: Annotated[float, Query(gt=0, le=60)] = 12.0,
                  w: Side = 128, h: Side = 128, download: bool = False):
    """A looping GIF: latent walk, one turn, or an 8x zoom (at most ``max_frames`` frames of
    ``max_frame_pixels`` pixels)."""
    from coordsr.art import CPPN, Animation, write_animation

    if kind not in ("latent", "rotate", "zoom"):
        raise HTTPException(422, f"unknown animation {kind!r}; the page draws latent, rotate or zoom")
    if frames > ART_LIMITS.max_frames or w * h > ART_LIMITS.max_frame_pixels:
        raise HTTPException(422, f"the page draws at most {ART_LIMITS.max_frames} frames of "
                                 f"{ART_LIMITS.max_frame_pixels} pixels; use coordsr art for more")
    cfg = _config(seed, depth, width, activation, palette, symmetry, fold, mode, weight_scale, input_scale)
    view = _view(zoom, angle)

    def render() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "art.gif"
            write_animation(path, CPPN(cfg), (h, w), view, Animation(kind=kind, frames=frames, fps=fps))
            return path.read_bytes()

    headers = {"Content-Disposition": f'attachment; filename="art-{seed}-{kind}.gif"'} if download else {}
    return Response(_locked(render), media_type="image/gif", headers=headers)
