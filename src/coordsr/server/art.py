"""The Art tab's API: CPPN pictures and short animations, drawn while the client waits or as jobs.

    GET /art                        the art page (static/art.html)
    GET /api/art/options            activations, palettes, symmetries, modes, limits
    GET /api/art/image.png?...      a CPPN picture; the PNG carries its settings (coordsr art --from)
    GET /api/art/animation.gif?...  a short latent walk, rotation or zoom, as a looping GIF

and, for app.py's POST /api/art/posters and /api/art/animations (a poster or a GIF as a job of
the queue), their bodies, checks and records: ``poster_settings``, ``animation_settings``,
``new_art_job``.

The two GETs are synchronous renders with hard limits (ART_LIMITS): the page's live preview, and
small pictures for scripts. One runs at a time; a request that waits longer than ``wait_s`` for
its turn gets 503. Posters and animations rendered from the page are jobs (jobs.py), with larger
limits: queued -> running -> done, an event per tile or frame, cancel, kept on disk, shown in the
main page's gallery. ``render_art_job`` is what a worker runs for them (jobs.py). Larger still is
for the CLI (`coordsr art`). This module imports nothing of app.py or jobs.py: they import it.
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Callable

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from coordsr.art.writers import GIF_MIN_FPS
from coordsr.server.storage import JobRecord, Store, new_job_id

STATIC = Path(__file__).parent / "static"
PAGE_ANIMATIONS = ("latent", "rotate", "zoom")
ART_METHOD = "art"
"""The ``method`` of an art job's record (not a registry name: the registry has its own 'cppn',
an upscaler)."""
THUMB_SIDE = 128
"""Longer side of the still an art job shows in the gallery until (and, for a GIF, after) it ends."""


@dataclass
class ArtLimits:
    """What one art request may ask for; each refusal is a 422 with a one-line detail."""

    max_pixels: int = 2048 * 2048
    """Most pixels of a picture drawn while the request waits (GET image.png)."""
    max_frame_pixels: int = 256 * 256
    """Most pixels of a frame of an animation drawn while the request waits."""
    max_frames: int = 90
    """Most frames of an animation drawn while the request waits."""
    max_job_pixels: int = 4096 * 4096
    """Most pixels of a poster job."""
    max_job_frame_pixels: int = 512 * 512
    """Most pixels of a frame of an animation job."""
    max_job_frames: int = 180
    """Most frames of an animation job."""
    max_depth: int = 16
    """Deepest network."""
    max_width: int = 128
    """Widest layer."""
    wait_s: float = 60.0
    """How long a request waits for the render before it (503)."""


ART_LIMITS = ArtLimits()
_render_lock = threading.Lock()
router = APIRouter(tags=["art"])


class ArtSettings(BaseModel):
    """The CPPN and its view: what every art picture, animation and job is drawn from."""

    seed: int = Field(0, ge=0, lt=2**63, description="Seed of the CPPN")
    depth: int = Field(8, ge=1, description="Hidden layers")
    width: int = Field(32, ge=1, description="Units per layer")
    activation: str = Field("tanh", description="tanh, sin, gauss, relu, abs, a list cycled over layers, or mix")
    palette: str = Field("rgb", description="rgb, hsv or a gradient (GET /api/art/options)")
    symmetry: str = Field("none", description="none, mirror-x, mirror-y, mirror-xy, radial, kaleido or tile")
    fold: int = Field(6, description="Order of radial and kaleido symmetry; tiles of tile")
    mode: str = Field("rgb", description="grey, rgb or rgba")
    weight_scale: float = Field(1.0, description="Spread of the hidden weights")
    input_scale: float = Field(2.0, description="Spread of the first layer's weights: the base frequency")
    zoom: float = Field(1.0, description="Zoom of the view")
    angle: float = Field(0.0, description="Rotation of the view, degrees")


class PosterJobIn(ArtSettings):
    """A poster job: the settings and its size."""

    model_config = ConfigDict(extra="forbid")
    w: int = Field(1024, ge=1, le=32768, description="Width, pixels")
    h: int = Field(1024, ge=1, le=32768, description="Height, pixels")


class AnimationJobIn(ArtSettings):
    """An animation job (a looping GIF): the settings, the animation and the frame size."""

    model_config = ConfigDict(extra="forbid")
    animation: str = Field("latent", description="latent (a loop in z), rotate (one turn) or zoom (8x)")
    frames: int = Field(24, ge=1, description="Frames")
    fps: float = Field(12.0, ge=GIF_MIN_FPS, le=60,
                       description="Frames per second (a GIF frame lasts at most 655.35 s)")
    w: int = Field(128, ge=1, le=32768, description="Frame width, pixels")
    h: int = Field(128, ge=1, le=32768, description="Frame height, pixels")


def build(settings: dict):
    """(ArtConfig, View) from ArtSettings' fields (other keys ignored); ValueError, one line,
    for settings the page does not draw."""
    from coordsr.art import ArtConfig, View

    s = ArtSettings(**{k: v for k, v in settings.items() if k in ArtSettings.model_fields})
    if s.depth > ART_LIMITS.max_depth or s.width > ART_LIMITS.max_width:
        raise ValueError(f"the page draws networks up to {ART_LIMITS.max_depth} layers of "
                         f"{ART_LIMITS.max_width} units; use coordsr art for larger ones")
    cfg = ArtConfig(seed=s.seed, depth=s.depth, width=s.width, activation=s.activation, palette=s.palette,
                    symmetry=s.symmetry, fold=s.fold, mode=s.mode, weight_scale=s.weight_scale,
                    input_scale=s.input_scale).check()
    return cfg, View(zoom=s.zoom, angle=s.angle).check()


def _checked(settings: dict):
    """``build`` for a request: its ValueError becomes a 422."""
    try:
        return build(settings)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def _animation(kind: str):
    if kind not in PAGE_ANIMATIONS:
        raise HTTPException(422, f"unknown animation {kind!r}; the page draws {', '.join(PAGE_ANIMATIONS)}")


def _locked(render):
    """Run ``render()`` when no other art render runs; 503 if the wait is too long."""
    if not _render_lock.acquire(timeout=ART_LIMITS.wait_s):
        raise HTTPException(503, "the art renderer is busy; try again in a moment")
    try:
        return render()
    finally:
        _render_lock.release()


Side = Annotated[int, Query(ge=1, le=32768, description="Pixels")]
Settings = Annotated[ArtSettings, Query()]


@router.get("/art", include_in_schema=False)
def art_page():
    return FileResponse(STATIC / "art.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/art/options")
def art_options() -> dict:
    """The words the art settings accept, and the server's art limits."""
    from coordsr.art import ACTIVATIONS, ANIMATIONS, COLOURINGS, MODES, SYMMETRIES

    return {"activations": [*ACTIVATIONS, "mix"], "palettes": list(COLOURINGS), "symmetries": list(SYMMETRIES),
            "modes": list(MODES), "animations": [a for a in ANIMATIONS if a in PAGE_ANIMATIONS],
            "limits": asdict(ART_LIMITS)}


@router.get("/api/art/image.png", responses={200: {"content": {"image/png": {}}}, 422: {}, 503: {}})
def art_image(s: Settings, w: Side = 256, h: Side = 256, download: bool = False):
    """A CPPN picture of w x h pixels (at most ``max_pixels``), settings in its PNG text chunk."""
    from coordsr.art import CPPN, Scene, draw
    from coordsr.art.files import art_record
    from coordsr.art.writers import png_bytes

    if w * h > ART_LIMITS.max_pixels:
        raise HTTPException(422, f"{w}x{h} is over the page's limit of {ART_LIMITS.max_pixels} pixels for a "
                                 "picture drawn while you wait; render it as a poster job "
                                 "(POST /api/art/posters)")
    cfg, view = _checked(s.model_dump())

    def render() -> bytes:
        return png_bytes(draw(Scene(CPPN(cfg), view), (h, w)), art_record(cfg, view, size=[w, h]))

    headers = {"Content-Disposition": f'attachment; filename="art-{s.seed}-{w}x{h}.png"'} if download else {}
    return Response(_locked(render), media_type="image/png", headers=headers)


@router.get("/api/art/animation.gif", responses={200: {"content": {"image/gif": {}}}, 422: {}, 503: {}})
def art_animation(s: Settings, kind: str = "latent", frames: Annotated[int, Query(ge=1)] = 24,
                  fps: Annotated[float, Query(ge=GIF_MIN_FPS, le=60)] = 12.0,
                  w: Side = 128, h: Side = 128, download: bool = False):
    """A looping GIF: latent walk, one turn, or an 8x zoom (at most ``max_frames`` frames of
    ``max_frame_pixels`` pixels)."""
    from coordsr.art import CPPN, Animation, write_animation

    _animation(kind)
    if frames > ART_LIMITS.max_frames or w * h > ART_LIMITS.max_frame_pixels:
        raise HTTPException(422, f"the page draws at most {ART_LIMITS.max_frames} frames of "
                                 f"{ART_LIMITS.max_frame_pixels} pixels while you wait; render it as an "
                                 "animation job (POST /api/art/animations)")
    cfg, view = _checked(s.model_dump())

    def render() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "art.gif"
            write_animation(path, CPPN(cfg), (h, w), view, Animation(kind=kind, frames=frames, fps=fps))
            return path.read_bytes()

    headers = {"Content-Disposition": f'attachment; filename="art-{s.seed}-{kind}.gif"'} if download else {}
    return Response(_locked(render), media_type="image/gif", headers=headers)


# --- art as jobs of the queue --------------------------------------------------------------------


def poster_settings(body: PosterJobIn) -> dict:
    """The record's settings of a poster job; 422 (one line) over ``max_job_pixels`` or for
    settings the page does not draw."""
    if body.w * body.h > ART_LIMITS.max_job_pixels:
        side = math.isqrt(ART_LIMITS.max_job_pixels)
        raise HTTPException(422, f"a poster of {body.w}x{body.h} is over the poster job limit of "
                                 f"{ART_LIMITS.max_job_pixels:,} pixels ({side}x{side}); "
                                 "use coordsr art for larger posters")
    settings = ArtSettings(**body.model_dump()).model_dump()
    _checked(settings)
    return settings


def animation_settings(body: AnimationJobIn) -> dict:
    """The record's settings of an animation job (the art settings, animation, frames, fps); 422
    over ``max_job_frames`` or ``max_job_frame_pixels``, or for settings the page does not draw."""
    _animation(body.animation)
    if body.frames > ART_LIMITS.max_job_frames or body.w * body.h > ART_LIMITS.max_job_frame_pixels:
        raise HTTPException(422, f"an animation job has at most {ART_LIMITS.max_job_frames} frames of "
                                 f"{ART_LIMITS.max_job_frame_pixels:,} pixels (the animation job limit), "
                                 f"got {body.frames} of {body.w}x{body.h}; use coordsr art for more")
    settings = {**ArtSettings(**body.model_dump()).model_dump(), "animation": body.animation,
                "frames": body.frames, "fps": body.fps}
    _checked(settings)
    return settings


def new_art_job(store: Store, kind: str, settings: dict, w: int, h: int) -> JobRecord:
    """The record of an art job of checked settings, its folder made with its small still
    (thumb.png, the gallery's picture); 507 when the disk refuses (nothing is left)."""
    from coordsr.art import CPPN, Scene, draw
    from coordsr.art.writers import png_bytes

    cfg, view = build(settings)
    k = max(1.0, max(w, h) / THUMB_SIDE)
    still = draw(Scene(CPPN(cfg), view), (max(1, round(h / k)), max(1, round(w / k))))  # (h', w', C) uint8
    c = still.shape[2]
    rec = JobRecord(id=new_job_id(), label=f"art-{cfg.seed}", method=ART_METHOD, settings=settings,
                    in_width=0, in_height=0, channels=c, mode={1: "L", 3: "RGB", 4: "RGBA"}[c],
                    bit_depth=8, out_width=w, out_height=h, kind=kind)
    folder = store.job_dir(rec.id)
    try:
        folder.mkdir(parents=True)
        (folder / "thumb.png").write_bytes(png_bytes(still))
    except OSError as exc:  # a full or read-only disk: no half-made job is left
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(507, f"cannot store the job: {' '.join(str(exc).split())}") from None
    return rec


def render_art_job(rec: JobRecord, folder: Path, report: Callable[[dict], None]) -> None:
    """Draw an art job's result into ``folder``: result.png for a poster (its settings in the PNG
    text chunk, written a band of rows at a time) or result.gif for an animation.

    ``report(event)`` after each tile of a poster (stage 'render': step and total in pixels, and
    tile of tiles) or each frame of an animation (stage 'frame'); it may raise to stop the job,
    and then no result is left."""
    from coordsr.art import CPPN, Animation, Scene, draw, write_animation
    from coordsr.art.files import art_record
    from coordsr.art.writers import write_png_rows
    from coordsr.render import tiles

    cfg, view = build(rec.settings)
    size = (rec.out_height, rec.out_width)
    if rec.kind == "art-poster":
        count, n = itertools.count(1), sum(1 for _ in tiles(*size))  # render's tiles, in its order

        def on_tile(done: int, total: int) -> None:
            report({"stage": "render", "step": done, "total": total, "tile": next(count), "tiles": n})

        frame = draw(Scene(CPPN(cfg), view), size, progress=on_tile)
        record = art_record(cfg, view, size=[rec.out_width, rec.out_height])
        write_png_rows(folder / rec.result_file, frame, record)
    elif rec.kind == "art-animation":
        s = rec.settings
        write_animation(folder / rec.result_file, CPPN(cfg), size, view,
                        Animation(kind=s["animation"], frames=s["frames"], fps=s["fps"]),
                        progress=lambda i, n: report({"stage": "frame", "step": i, "total": n}))
    else:
        raise ValueError(f"not an art job: {rec.kind!r}")
