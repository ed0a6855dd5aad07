"""The web application: a JSON API over the job queue, and the static page that uses it.

    coordsr serve                      # http://127.0.0.1:7860, data in ~/.local/share/coordsr
    coordsr serve --host 0.0.0.0 --port 8000 --workers 2

``create_app`` builds the FastAPI app (tests use it in-process); ``serve`` runs it with uvicorn.
Every error a client can cause is a 4xx answer ``{"detail": "one line"}``; the API is described
by the OpenAPI schema at ``/openapi.json`` (and browsable at ``/docs``). See docs/web.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, HTTPException, Path as PathParam, Query, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from coordsr.errors import CoordsrError, ImageError
from coordsr.server.art import AnimationJobIn, PosterJobIn, animation_settings, new_art_job, poster_settings
from coordsr.server.art import router as art_router
from coordsr.server.guards import RequestGuard, default_allowed_hosts
from coordsr.server.jobs import FINAL, JobManager, QueueFull, read_history, read_last
from coordsr.server.lock import DataDirLock
from coordsr.server.page_api import add_page_routes
from coordsr.server.storage import ID_RE, JobRecord, Store, new_job_id, safe_label, storage_refused
from coordsr.server.tiles import Pyramid, TileRangeError, TileRenderer

log = logging.getLogger("coordsr.server")
STATIC = Path(__file__).parent / "static"
FIT_MODELS = ("point", "area", "consistent")
JobId = Annotated[str, PathParam(description="The job's id: 16 hex digits")]


@dataclass
class Limits:
    """What one request may ask of the server. Each refusal is a 4xx JSON error."""

    max_upload_mb: float = 20.0
    """Largest upload, in MiB (the whole request body); larger is refused with 413."""
    max_pixels: int = 2048 * 2048
    """Most pixels of an uploaded image, read from its header before any decoding (422)."""
    max_output_pixels: int = 4096 * 4096
    """Most pixels of the upscaled output (width x height, 422)."""
    max_scale: float = 64.0
    """Largest scale factor on either axis; scales must also be above 0 (422)."""
    max_steps: int = 20000
    """Largest fitting budget (steps) a job may ask for (422)."""
    queue_size: int = 8
    """Jobs that may wait for a worker; one more is refused with 503."""
    body_idle_s: float = 15.0
    """A request body that sends nothing for this long is cut with 408."""
    min_body_rate: float = 1024.0
    """Bytes per second a request body must average once it is ``body_idle_s`` old (else 408);
    an upload slower than this holds no place of the queue's (a trickle blocks no one)."""
    tile_cache_mb: int = 64
    """Memory for rendered viewer tiles (LRU)."""
    decode_slots: int = 1
    """Uploads decoded at the same time; the others wait their turn (bounds the memory of a burst)."""

    def __post_init__(self):
        for name in ("max_upload_mb", "max_pixels", "max_output_pixels", "max_scale", "max_steps", "queue_size",
                     "decode_slots", "body_idle_s", "min_body_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.tile_cache_mb < 0:
            raise ValueError(f"tile_cache_mb must be 0 or more, got {self.tile_cache_mb!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


# --- response models: what /openapi.json tells clients ---------------------------------------


class ErrorOut(BaseModel):
    detail: str


class MethodOut(BaseModel):
    name: str
    description: str
    family: str
    fits_field: bool
    settings: dict
    """Per-job settings the method accepts, with their defaults (steps, seed, fit)."""


class MethodsOut(BaseModel):
    default: str
    methods: list[MethodOut]


class SizeInfo(BaseModel):
    width: int
    height: int


class ImageInfo(SizeInfo):
    channels: int
    mode: str
    """'L', 'LA', 'RGB' or 'RGBA'."""
    bit_depth: int


class ProgressInfo(BaseModel):
    step: int
    total: int
    psnr: float | None


class ViewerInfo(BaseModel):
    width: int
    height: int
    tileSize: int
    minLevel: int
    maxLevel: int
    tiles: str
    """URL template with {level}, {x} and {y}."""


class JobOut(BaseModel):
    id: str
    kind: Literal["upscale", "art-poster", "art-animation"]
    """What the job makes: an upscaled upload, or a poster (PNG) or animation (GIF) of the Art page."""
    label: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    method: str
    """The upscaler; 'art' for art jobs."""
    settings: dict
    """The upscaler's settings, or the art settings (GET /api/art/options)."""
    created: float
    started: float | None
    finished: float | None
    error: str | None
    input: ImageInfo | None
    """The uploaded image; None for art jobs, which have none."""
    output: SizeInfo
    progress: ProgressInfo
    has_field: bool
    first_preview_s: float | None
    urls: dict[str, str]
    viewer: ViewerInfo | None
    content: Literal["photo", "drawing", "pixel-art"] | None = None
    """What the picture was taken for (detected, or the `content` asked for); None when the
    method was named, for art jobs and for jobs stored before content existed."""
    choice: str | None = None
    """Which model ran and why, in plain words: 'Drawing model: detected a drawing (...)'."""


class JobsOut(BaseModel):
    jobs: list[JobOut]


ERRORS = {code: {"model": ErrorOut} for code in (400, 403, 404, 408, 409, 413, 422, 503, 507)}


def job_json(rec: JobRecord) -> dict:
    base = f"/api/jobs/{rec.id}"
    upscale = rec.kind == "upscale"  # art jobs have no input, no bicubic, no field, no viewer
    urls = {"self": base, "events": f"{base}/events", "thumb": f"{base}/thumb.png"}
    if upscale:
        urls["input"] = f"{base}/input.png"
    viewer = None
    if rec.status == "done":
        result = f"{base}/{rec.result_file}"
        urls.update(result=result, result_download=f"{result}?download=1")
        if upscale:
            urls["bicubic"] = f"{base}/bicubic.png"
            viewer = {**Pyramid.for_image(rec.out_width, rec.out_height).as_json(),
                      "tiles": f"{base}/tiles/{{level}}/{{x}}_{{y}}.png"}
        if rec.has_field:
            urls["field"] = f"{base}/field"
    return {
        "id": rec.id, "kind": rec.kind, "label": rec.label, "status": rec.status, "method": rec.method,
        "settings": rec.settings, "created": rec.created, "started": rec.started,
        "finished": rec.finished, "error": rec.error,
        "input": {"width": rec.in_width, "height": rec.in_height, "channels": rec.channels,
                  "mode": rec.mode, "bit_depth": rec.bit_depth} if upscale else None,
        "output": {"width": rec.out_width, "height": rec.out_height},
        "progress": {"step": rec.step, "total": rec.total, "psnr": rec.psnr},
        "has_field": rec.has_field, "first_preview_s": rec.first_preview_s,
        "urls": urls, "viewer": viewer, "content": rec.content, "choice": rec.choice,
    }


def method_json(name: str, cls) -> dict:
    names = {f.name: f for f in fields(cls)}
    settings = {k: names[k].default for k in ("steps", "seed", "fit") if k in names}
    return {"name": name, "description": cls.description(), "family": cls.family,
            "fits_field": bool(cls.fits_field), "settings": settings}


# --- request checks ----------------------------------------------------------------------------


def output_size(h: int, w: int, scale: float | None, width: int | None, height: int | None,
                limits: Limits) -> tuple[int, int]:
    """(H, W) of the output from a scale or a width and/or height; HTTPException(422) if absurd."""
    if scale is not None and (width is not None or height is not None):
        raise HTTPException(422, "give either scale or width/height, not both")
    if scale is None and width is None and height is None:
        scale = 4.0
    if scale is not None:
        if not math.isfinite(scale) or scale <= 0 or scale > limits.max_scale:
            raise HTTPException(422, f"scale must be above 0 and at most {limits.max_scale:g}, got {scale:g}")
        oh, ow = round(h * scale), round(w * scale)
        if oh < 1 or ow < 1:
            raise HTTPException(422, f"scale {scale:g} makes the {w}x{h} image smaller than one pixel")
    else:
        for name, v in (("width", width), ("height", height)):
            if v is not None and v < 1:
                raise HTTPException(422, f"{name} must be at least 1, got {v}")
        # one side given: the other keeps the aspect
        ow = width if width is not None else max(1, round(w * height / h))
        oh = height if height is not None else max(1, round(h * width / w))
        worst = max(ow / w, oh / h)
        if worst > limits.max_scale:
            raise HTTPException(422, f"{ow}x{oh} is {worst:g} times the {w}x{h} input; "
                                     f"the largest scale is {limits.max_scale:g}")
    from coordsr.images import MAX_SIDES

    if max(ow, oh) > MAX_SIDES["PNG"]:  # a job keeps its result as a PNG
        raise HTTPException(422, f"an output of {ow}x{oh} is over PNG's {MAX_SIDES['PNG']:,} pixels a side, "
                                 "which the result is stored as")
    if ow * oh > limits.max_output_pixels:
        raise HTTPException(422, f"an output of {ow}x{oh} = {ow * oh:,} pixels is over the limit of "
                                 f"{limits.max_output_pixels:,}")
    return oh, ow


def method_settings(cls, steps: int | None, seed: int | None, fit: str | None, limits: Limits) -> dict:
    names = {f.name for f in fields(cls)}
    settings = {}
    for key, value in (("steps", steps), ("seed", seed), ("fit", fit)):
        if value is None:
            continue
        if key not in names:
            raise HTTPException(422, f"method {cls.__name__!r} has no setting {key!r}")
        settings[key] = value
    if "steps" in settings and not 1 <= settings["steps"] <= limits.max_steps:
        raise HTTPException(422, f"steps must be between 1 and {limits.max_steps}, got {settings['steps']}")
    if "fit" in settings and settings["fit"] not in FIT_MODELS:
        raise HTTPException(422, f"fit must be one of {', '.join(FIT_MODELS)}, got {settings['fit']!r}")
    if "seed" in settings and not 0 <= settings["seed"] < 2**63:
        raise HTTPException(422, f"seed must be between 0 and 2^63 - 1, got {settings['seed']}")
    return settings


CONTENT_MODELS = {"photo": "Photo model", "drawing": "Drawing model",
                  "pixel-art": "Pixel art, hard pixels kept"}
"""How the result line names the model each kind of picture gets (coordsr.content.method_for)."""
CONTENT_WORDS = {"photo": "a photo", "drawing": "a drawing", "pixel-art": "pixel art"}
CONTENT_CHOSEN = {"photo": "Photo", "drawing": "Drawing, icon or logo", "pixel-art": "Pixel art"}
"""The page's names for the kinds, as a person picks them."""


def method_title(name: str) -> str:
    """The plain title of a method (method_notes.json), or its name."""
    from coordsr.server.page_api import method_notes

    try:
        return method_notes().get(name, {}).get("title") or name
    except Exception:  # notes are words for people: never a reason to refuse a job
        return name


def check_content(content: str | None) -> str:
    """The ``content`` form field: 'auto' (the default), 'photo', 'drawing' or 'pixel-art'; 422 otherwise."""
    from coordsr import content as kinds

    try:
        return kinds.check_content((content or "auto").strip())
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def check_degradation(value: str | None) -> str:
    """The ``degradation`` form field: 'auto' (the default), 'clean' or 'real'; 422 otherwise."""
    from coordsr.quality import check_degradation as check

    try:
        return check((value or "auto").strip())
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def content_choice(found, asked: str, in_size: tuple[int, int], out_size: tuple[int, int]) -> str:
    """Plain words for which model ran and why: 'Drawing model: detected a drawing (23 colours, ...)'."""
    model = CONTENT_MODELS[found.kind]
    if found.degraded:
        d = found.degradation
        how = "you chose “compressed or noisy”" if d.reason.startswith("as ") else f"detected {d.reason}"
        return f"Photo model for compressed or noisy photos: {how}"
    if asked == "auto":
        details = found.reason.split(": ", 1)[-1]
        words = f"{model}: detected {CONTENT_WORDS[found.kind]} ({details})"
    else:
        words = f"{model}: you chose \u201c{CONTENT_CHOSEN[found.kind]}\u201d"
    (h, w), (oh, ow) = in_size, out_size
    if found.kind == "pixel-art" and (oh % h or ow % w):
        words += f"; x{ow / w:.3g} is not a whole scale, so the pixels come out of uneven sizes"
    return words


def refuse_when_full(manager: JobManager, limits: Limits) -> None:
    """503 (with Retry-After) when the queue has no room for one more job."""
    if manager.waiting() >= limits.queue_size:
        raise HTTPException(503, f"the job queue is full ({limits.queue_size} waiting); try again later",
                            headers={"Retry-After": "30"})


def enqueue(store: Store, manager: JobManager, rec: JobRecord, response: Response) -> dict:
    """Store a job whose folder is made and queue it; its JSON, Location set. 503 when the queue
    filled meanwhile (nothing is left of the job)."""
    try:
        store.insert(rec)
    except Exception as exc:  # a full disk: SQLite cannot add the row; no half-made job is left
        shutil.rmtree(store.job_dir(rec.id), ignore_errors=True)
        why = storage_refused(exc)
        if why is None:
            raise
        raise HTTPException(507, f"storage is full: cannot store the job ({why})") from None
    try:
        manager.submit(rec)
    except QueueFull as exc:
        store.delete(rec.id)
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from None
    response.headers["Location"] = f"/api/jobs/{rec.id}"
    return job_json(rec)


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes without reading it all, and one
    that comes too slowly.

    The declared Content-Length is checked first; a body that is streamed (or lies about its
    length) is counted as it arrives and cut off with the same 413. A body that sends nothing
    for ``idle_s``, or averages under ``min_rate`` bytes a second once it is ``idle_s`` old, is cut
    with 408: a client trickling a byte every few seconds holds a connection for seconds, not
    for as long as it likes.
    """

    def __init__(self, app, limit: int, limit_mb: float, idle_s: float = 15.0, min_rate: float = 1024.0):
        self.app, self.limit, self.limit_mb = app, limit, limit_mb
        self.idle_s, self.min_rate = idle_s, min_rate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = f"upload too large: the limit is {self.limit_mb:g} MiB"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await JSONResponse({"detail": detail}, 413)(scope, receive, send)
        seen, start, done = 0, time.monotonic(), False

        async def counted():
            nonlocal seen, done
            if done:  # the body is read: what comes now is the disconnect, whenever it comes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=self.idle_s)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"request body too slow: nothing came for {self.idle_s:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if seen > self.limit:
                    raise HTTPException(413, detail)
                age = time.monotonic() - start
                if not done and age > self.idle_s and seen < self.min_rate * age:
                    raise HTTPException(408, f"request body too slow: {seen / age:.0f} bytes/s, under the "
                                             f"{self.min_rate:g} bytes/s the server waits for")
            return message

        await self.app(scope, counted, send)


class StorageFull:
    """ASGI middleware: a request that fails because the disk refuses a write (full, over quota,
    read-only: ``storage_refused``) is answered 507 with the reason, never 500. Endpoints that
    clean up after such a failure (uploads) answer their own 507 first."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            why = storage_refused(exc)
            if why is None or started:
                raise
            log.error("%s %s: storage refused a write: %s", scope.get("method"), scope.get("path"), exc)
            await JSONResponse({"detail": f"storage is full: {why}; free some space (delete old jobs) "
                                          "and try again"}, 507)(scope, receive, send)


class UploadGate:
    """ASGI middleware: refuse a new job (503) before its upload is read when the queue has no room.

    ``JobManager.admit`` counts the jobs waiting and the uploads still being received that make
    progress (told here of every chunk), so a burst of uploads is refused at once instead of
    being read and decoded first, at most ``queue_size`` uploads that make progress are inside the
    server (their bodies spooled to disk past 1 MiB by the multipart parser), and clients that
    trickle their bodies take no one's place (BodyLimit cuts them).
    """

    def __init__(self, app, manager: JobManager, queue_size: int, min_rate: float = 1024.0):
        self.app, self.manager, self.queue_size, self.min_rate = app, manager, queue_size, min_rate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/api/jobs":
            return await self.app(scope, receive, send)
        upload = self.manager.admit(self.min_rate)
        if upload is None:
            detail = f"the job queue is full ({self.queue_size} waiting or arriving); try again later"
            return await JSONResponse({"detail": detail}, 503, headers={"Retry-After": "30"})(scope, receive, send)

        async def told():
            message = await receive()
            if message["type"] == "http.request":
                upload.received(len(message.get("body", b"")), message.get("more_body", False))
            return message

        try:
            await self.app(scope, told, send)
        finally:
            self.manager.admitted_done(upload)


# --- the app -----------------------------------------------------------------------------------


def create_app(data_dir: Path, workers: int = 1, limits: Limits | None = None, *,
               host: str = "127.0.0.1", allow_hosts: list[str] | tuple[str, ...] = (),
               lock: DataDirLock | None = None) -> FastAPI:
    """The FastAPI app, with its job workers started and interrupted jobs marked failed.

    ``host`` is the address the server is bound to: it and the loopback names are the Host
    headers answered, with ``allow_hosts`` (``"*"``: any). The data folder is locked for the
    app's life (``lock``, when the caller holds it already; DataDirBusy when another has it)
    before any job in it is touched.
    """
    from coordsr.methods import DEFAULT_METHOD, get_method, methods_for
    from coordsr.methods.base import resolve_device

    limits = limits or Limits()
    lock = lock or DataDirLock.acquire(Path(data_dir), address="(in-process app)")
    try:
        store = Store(Path(data_dir))
        manager = JobManager(store, workers=workers, queue_size=limits.queue_size)
    except BaseException:
        lock.release()
        raise
    tiles = TileRenderer(cache_bytes=limits.tile_cache_mb << 20, device=str(resolve_device("auto")))
    decoding = threading.BoundedSemaphore(max(1, limits.decode_slots))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.to_thread(manager.stop)
        store.close()
        lock.release()

    # FastAPIOffline: /docs and /redoc from assets shipped in the package, no CDN (and no badge
    # fetched from the Swagger validator).
    app = FastAPIOffline(title="coordsr", version="1", lifespan=lifespan,
                         summary="Upscale images with coordinate-based neural networks; zoom without end.",
                         swagger_ui_parameters={"validatorUrl": None})
    app.state.store, app.state.manager, app.state.tiles, app.state.limits = store, manager, tiles, limits
    app.state.lock = lock
    # The body limit wraps the whole app (at the end): 64 KiB of slack for the multipart envelope.
    body_limit = limits.max_upload_bytes + (64 << 10)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI answers 400 for any error while it reads a form, a full spool folder included.
        why = storage_refused(exc.__cause__) if exc.status_code == 400 else None
        if why is not None:
            log.error("%s %s: cannot receive the upload: %s", request.method, request.url.path, exc.__cause__)
            return JSONResponse({"detail": f"storage is full: cannot receive the upload ({why})"}, 507)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        # FastAPI's default is a list of objects; the page and curl users get one line instead.
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, 422)

    def record(job_id: str) -> JobRecord:
        rec = store.get(job_id) if ID_RE.fullmatch(job_id) else None
        if rec is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return shown(rec)

    def shown(rec: JobRecord) -> JobRecord:
        """The record, with the end a full disk kept from it (JobManager.unsettled)."""
        changes = manager.unsettled(rec.id)
        return replace(rec, **changes) if changes else rec

    def job_file(rec: JobRecord, name: str, *, download: str | None = None,
                 media_type: str = "image/png") -> FileResponse:
        path = store.job_dir(rec.id) / name
        if not path.is_file():
            if rec.status in FINAL:
                raise HTTPException(404, f"job {rec.id} has no {name} (status {rec.status})")
            raise HTTPException(409, f"job {rec.id} is {rec.status}: {name} is not ready yet")
        if download:
            return FileResponse(path, media_type=media_type, filename=download)
        return FileResponse(path, media_type=media_type)

    # --- methods and limits ------------------------------------------------------------------

    @app.get("/api/methods", response_model=MethodsOut, tags=["methods"])
    def list_methods():
        """The upscalers of the registry, with their one-line descriptions and per-job settings."""
        return {"default": DEFAULT_METHOD,
                "methods": [method_json(name, cls) for name, cls in methods_for("upscale").items()]}

    @app.get("/api/limits", tags=["methods"])
    def get_limits() -> dict:
        """The server's limits on uploads, sizes and budgets."""
        return {**asdict(limits), "workers": workers}

    # --- jobs --------------------------------------------------------------------------------

    @app.post("/api/jobs", status_code=202, response_model=JobOut, responses=ERRORS, tags=["jobs"])
    def create_job(
        response: Response,
        file: Annotated[UploadFile, File(description="The image: PNG, JPEG, TIFF, WebP or BMP")],
        method: Annotated[str | None, Form(description="Registry name (GET /api/methods); wins over "
                                                        "`content`")] = None,
        content: Annotated[str, Form(description="What the picture is, when no method is named: 'auto' "
                                                 "(detected: the server classifies the upload), 'photo', "
                                                 "'drawing' (icon, emoji, logo) or 'pixel-art'")] = "auto",
        degradation: Annotated[str, Form(description="How a photo arrived, when no method is named: 'auto' "
                                                     "(a JPEG's quality, blocks and noise detected), 'clean' "
                                                     "or 'real' (compressed, noisy or soft)")] = "auto",
        scale: Annotated[float | None, Form(description="Output = input x scale; default 4")] = None,
        width: Annotated[int | None, Form(description="Output width (instead of scale)")] = None,
        height: Annotated[int | None, Form(description="Output height (instead of scale)")] = None,
        steps: Annotated[int | None, Form(description="Fitting budget (per-image methods)")] = None,
        seed: Annotated[int | None, Form(description="Seed of the fit")] = None,
        fit: Annotated[str | None, Form(description="'point' or 'consistent'")] = None,
    ):
        """Upload an image and queue an upscaling job. Answers 202 with the job; follow its events."""
        from coordsr.images import decode_image_bytes, write_image

        from coordsr.content import candidate_methods, content_of, named_method

        created = time.time()
        content = check_content(content)
        degradation = check_degradation(degradation)
        method = (method or "").strip() or None  # an explicit method wins over the content
        named = method is not None

        def checked(name: str, only_known: bool = False) -> tuple[str, dict]:
            try:
                cls = get_method(name)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            if getattr(cls, "task", "upscale") != "upscale":
                raise HTTPException(422, f"method {name!r} is a {cls.task} method; the page upscales")
            known = {f.name for f in fields(cls)} if only_known else {"steps", "seed", "fit"}
            settings = method_settings(cls, *(v if k in known else None for k, v in
                                              (("steps", steps), ("seed", seed), ("fit", fit))), limits)
            try:
                cls(device="cpu", **settings)  # the settings' own checks, before anything is decoded
            except (TypeError, ValueError) as exc:
                raise HTTPException(422, f"bad settings for {name}: {exc}") from None
            return name, settings

        if method is not None:
            method, settings = checked(method)
        elif candidate_methods(method, content, degradation) is None:  # the kind named fixes the model
            try:
                method, settings = checked(named_method(method, content, degradation))
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
        label = safe_label(file.filename)
        # One upload decoded at a time (decode_slots): the bytes, the decoded pixels and their PNG
        # copies of a burst of uploads never sit in memory together.
        with decoding:
            data = file.file.read(limits.max_upload_bytes + 1)
            if len(data) > limits.max_upload_bytes:
                raise HTTPException(413, f"upload too large: the limit is {limits.max_upload_mb:g} MiB")
            if not data:
                raise HTTPException(422, "the uploaded file is empty")
            try:
                image = decode_image_bytes(data, label, max_pixels=limits.max_pixels)
            except ImageError as exc:
                raise HTTPException(422, str(exc)) from None
            del data
            oh, ow = output_size(image.height, image.width, scale, width, height, limits)
            kind, choice = None, f"{method_title(method)}: the method you chose" if named else None
            if not named:
                found = content_of(image.pixels, content, degradation, image.jpeg_quality)  # on at most MEASURE_SIDE^2 px
                if method is None:  # detected: the settings given go to the method picked if it has them
                    method, settings = checked(found.method, only_known=True)
                kind, choice = found.kind, content_choice(found, content, (image.height, image.width), (oh, ow))
            refuse_when_full(manager, limits)
            rec = JobRecord(id=new_job_id(), label=label, method=method, settings=settings,
                            content=kind, choice=choice,
                            in_width=image.width, in_height=image.height, channels=image.channels,
                            mode=image.mode, bit_depth=image.bit_depth, out_width=ow, out_height=oh,
                            created=created)
            folder = store.job_dir(rec.id)
            try:
                folder.mkdir(parents=True)
                write_image(folder / "input.png", image.pixels, bit_depth=image.bit_depth)
                write_image(folder / "thumb.png", thumbnail(image.pixels), bit_depth=8)
            except (OSError, ImageError) as exc:  # a full or read-only disk: no half-made job is left
                shutil.rmtree(folder, ignore_errors=True)
                log.error("job %s: cannot store the upload: %s", rec.id, exc)
                raise HTTPException(507, f"cannot store the upload: {' '.join(str(exc).split())}") from None
            del image
        return enqueue(store, manager, rec, response)

    @app.get("/api/jobs", response_model=JobsOut, tags=["jobs"])
    def list_jobs(limit: Annotated[int, Query(ge=1, le=1000)] = 200):
        """The gallery: past and current jobs, newest first."""
        return {"jobs": [job_json(shown(r)) for r in store.list(limit)]}

    @app.get("/api/jobs/{job_id}", response_model=JobOut, responses=ERRORS, tags=["jobs"])
    def get_job(job_id: JobId):
        """A job's status, progress and links."""
        return job_json(record(job_id))

    @app.post("/api/jobs/{job_id}/cancel", status_code=202, response_model=JobOut, responses=ERRORS,
              tags=["jobs"])
    def cancel_job(job_id: JobId):
        """Stop a queued or running job (it ends 'cancelled'); 409 if it has already ended."""
        rec = record(job_id)
        if not manager.cancel(job_id):
            raise HTTPException(409, f"job {job_id} has already ended ({rec.status})")
        return job_json(record(job_id))

    @app.delete("/api/jobs/{job_id}", status_code=204, responses=ERRORS, tags=["jobs"])
    def delete_job(job_id: JobId):
        """Delete a job, its files and its cached tiles (a running job is cancelled first)."""
        record(job_id)
        manager.cancel(job_id)
        try:
            store.delete(job_id)
        except Exception as exc:
            why = storage_refused(exc)
            if why is None:
                raise
            raise HTTPException(507, f"storage is full ({why}): the files of job {job_id} are removed but its "
                                     "record could not be; delete it again when there is space") from None
        finally:
            tiles.forget(job_id)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"], responses=ERRORS,
             response_class=StreamingResponse)
    async def job_events(job_id: JobId):
        """Server-sent events: `state` (a snapshot) first, then `status`, `progress` and one `end`.

        The snapshot holds the fit's curve so far (`history`), the latest preview and the latest
        `progress` report (`last`); a client that connects after the end gets only `state` (with
        the job's last report) and `end`.

        `progress` data: step, total, stage ('fit' or 'render'), loss, psnr, elapsed, eta (s) and,
        about once a second, `preview` (a PNG data: URL). `end` data: the job (as GET /api/jobs/{id}).
        """
        rec = record(job_id)
        live = manager.live(job_id)
        if live is not None:
            snapshot, events = live.subscribe(asyncio.get_running_loop())
        else:
            folder = store.job_dir(job_id)
            snapshot = {"history": read_history(folder), "preview": None, "last": read_last(folder),
                        "ended": True}
            events = None

        def sse(name: str, data) -> str:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"

        async def stream():
            try:
                current = store.get(job_id) or rec
                yield "retry: 2000\n\n"
                yield sse("state", {"job": job_json(current), **snapshot})
                if events is None or snapshot["ended"]:
                    yield sse("end", job_json(current))
                    return
                while True:
                    try:
                        name, data = await asyncio.wait_for(events.get(), timeout=15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if name == "end":
                        latest = store.get(job_id)
                        yield sse("end", job_json(latest) if latest else {**job_json(current), **data})
                        return
                    yield sse(name, data)
            finally:
                if live is not None:
                    live.unsubscribe(events)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # --- files -------------------------------------------------------------------------------

    @app.get("/api/jobs/{job_id}/result.png", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_result(job_id: JobId, download: bool = False):
        """The upscaled image (PNG at the input's bit depth) or an art poster (its settings in a
        PNG text chunk); `?download=1` names it for saving."""
        rec = record(job_id)
        return job_file(rec, "result.png", download=rec.download_name() if download else None)

    @app.get("/api/jobs/{job_id}/result.gif", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_result_gif(job_id: JobId, download: bool = False):
        """An art animation (a looping GIF); `?download=1` names it for saving."""
        rec = record(job_id)
        return job_file(rec, "result.gif", download=rec.download_name() if download else None,
                        media_type="image/gif")

    @app.get("/api/jobs/{job_id}/bicubic.png", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_bicubic(job_id: JobId):
        """The same output size by bicubic interpolation: the 'before' of the comparison."""
        return job_file(record(job_id), "bicubic.png")

    @app.get("/api/jobs/{job_id}/input.png", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_input(job_id: JobId):
        """The uploaded image, decoded and stored as PNG."""
        return job_file(record(job_id), "input.png")

    @app.get("/api/jobs/{job_id}/thumb.png", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_thumb(job_id: JobId):
        """A small picture of the input for the gallery."""
        return job_file(record(job_id), "thumb.png")

    @app.get("/api/jobs/{job_id}/field", response_class=FileResponse, responses=ERRORS, tags=["files"])
    def get_field(job_id: JobId):
        """The fitted field (safetensors; `coordsr render` draws it at any size). 404 for methods
        without a field."""
        rec = record(job_id)
        if rec.status == "done" and not rec.has_field:
            raise HTTPException(404, f"method {rec.method!r} makes no field")
        return job_file(rec, "field.safetensors", download=f"{rec.label}-{rec.method}.field.safetensors",
                        media_type="application/octet-stream")

    @app.get("/api/jobs/{job_id}/tiles/{level}/{x}_{y}.png", responses={200: {"content": {"image/png": {}}}, **ERRORS},
             response_class=Response, tags=["files"])
    def get_tile(job_id: JobId, level: int, x: int, y: int):
        """Tile (x, y) of `level` of the viewer's virtual image (see `viewer` in the job), drawn
        from the field on demand at any depth."""
        rec = record(job_id)
        if rec.kind != "upscale":
            raise HTTPException(404, f"job {job_id} is an {rec.kind} job: only upscales have viewer tiles")
        if rec.status != "done":
            raise HTTPException(409, f"job {job_id} is {rec.status}: tiles exist only when it is done")
        try:
            data = tiles.tile(rec.id, store.job_dir(rec.id), (rec.out_height, rec.out_width),
                              rec.has_field, level, x, y)
        except TileRangeError as exc:
            raise HTTPException(404, str(exc)) from None
        except (OSError, ImageError) as exc:
            if store.get(job_id) is None:  # deleted meanwhile
                raise HTTPException(404, f"no job {job_id!r}") from None
            raise HTTPException(404, f"cannot draw tile: {exc}") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

    add_page_routes(app, store, manager)  # notes, examples, queue, stop and keep, formats, zip

    # --- the page ----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    # --- the Art tab (server/art.py): pictures while the client waits; posters and GIFs as jobs --

    app.include_router(art_router)

    @app.post("/api/art/posters", status_code=202, response_model=JobOut, responses=ERRORS, tags=["art"])
    def art_poster_job(body: PosterJobIn, response: Response):
        """Queue a poster: w x h pixels (at most `max_job_pixels` of GET /api/art/options), a PNG
        with its settings in a text chunk. Answers 202 with the job; its events come per tile."""
        settings = poster_settings(body)
        refuse_when_full(manager, limits)
        return enqueue(store, manager, new_art_job(store, "art-poster", settings, body.w, body.h), response)

    @app.post("/api/art/animations", status_code=202, response_model=JobOut, responses=ERRORS, tags=["art"])
    def art_animation_job(body: AnimationJobIn, response: Response):
        """Queue an animation: a looping GIF of at most `max_job_frames` frames of
        `max_job_frame_pixels` pixels. Answers 202 with the job; its events come per frame."""
        settings = animation_settings(body)
        refuse_when_full(manager, limits)
        return enqueue(store, manager, new_art_job(store, "art-animation", settings, body.w, body.h), response)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # The last added is the outermost: who may ask, then how much, then whether there is room.
    app.add_middleware(UploadGate, manager=manager, queue_size=limits.queue_size, min_rate=limits.min_body_rate)
    app.add_middleware(BodyLimit, limit=body_limit, limit_mb=limits.max_upload_mb, idle_s=limits.body_idle_s,
                       min_rate=limits.min_body_rate)
    app.add_middleware(RequestGuard, allowed_hosts=[*default_allowed_hosts(host), *allow_hosts])
    app.add_middleware(StorageFull)
    return app


def thumbnail(pixels, side: int = 192):
    """A float image shrunk (box filter) to at most ``side`` pixels on its longer side."""
    import numpy as np
    from PIL import Image

    h, w = pixels.shape[:2]
    arr = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    im.thumbnail((side, side), Image.BOX)
    out = np.asarray(im, dtype=np.float32) / 255
    return out[..., None] if out.ndim == 2 else out


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; CoordsrError (one line) when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        why = os.strerror(exc.errno) if getattr(exc, "errno", None) else str(exc)
        raise CoordsrError(f"cannot listen on {host}:{port}: {why}") from None


def use_spool_dir(data_dir: Path) -> Path:
    """Uploads past 1 MiB are spooled to a temporary file by the multipart parser: keep those in
    ``<data-dir>/spool`` (emptied here, under the data folder's lock) rather than the system's temp
    folder, which is often memory (tmpfs)."""
    spool = data_dir / "spool"
    spool.mkdir(exist_ok=True)
    for leftover in spool.iterdir():  # from a server that was killed mid-upload
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    tempfile.tempdir = str(spool)
    return spool


def serve(host: str, port: int, data_dir: Path, workers: int, limits: Limits,
          allow_hosts: list[str] | tuple[str, ...] = ()) -> None:
    """Run the web page and its API with uvicorn until interrupted.

    In this order, so that a refusal changes nothing: lock the data folder (DataDirBusy names the
    server that holds it), take the port, then open the jobs (marking interrupted ones failed).
    """
    import torch
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    data_dir = Path(data_dir).expanduser()
    shown = f"[{host}]" if ":" in host else host
    lock = DataDirLock.acquire(data_dir, address=f"http://{shown}:{port}/")
    try:
        sock = listen(host, port)
        port = sock.getsockname()[1]  # the real one when asked for port 0
        lock.set_address(f"http://{shown}:{port}/")
        # Each worker fits with its share of the cores: oversubscribed thread pools crawl.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(workers, 1)))
        use_spool_dir(data_dir)
        app = create_app(data_dir, workers, limits, host=host, allow_hosts=allow_hosts, lock=lock)
        log.info("coordsr: serving http://%s:%d/ (data in %s, %d worker(s))", shown, port, data_dir, workers)
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("listening on %s: anyone who can reach this port can upload and run jobs "
                        "(there is no authentication)", host)
        if "*" not in allow_hosts:
            log.info("answering Host names: %s (more with --allow-host)",
                     ", ".join([*default_allowed_hosts(host), *allow_hosts]))
        config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        lock.release()
