"""Endpoints the web page needs beyond the job API: method notes, example images, the queue,
"stop and keep", other output formats, comparisons between jobs of one input, a zip of results.

``add_page_routes`` adds them to the app that ``create_app`` builds; each is small and reads the
same store and job manager. Every error a client can cause is a 4xx ``{"detail": "one line"}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response, StreamingResponse

from coordsr.atomic import atomic_path
from coordsr.server.storage import ID_RE, JobRecord, Store

log = logging.getLogger("coordsr.server")
NOTES = Path(__file__).with_name("method_notes.json")
SAMPLE_SIDE = 256
"""Example images are shrunk to at most this many pixels on their longer side: quick to fit."""
BICUBIC_NOW_SIDE = 512
"""The bicubic shown at once fills a 200-pixel box (400 on a dense screen): no need for more."""
FORMATS = {  # name -> (media type, file suffix)
    "png": ("image/png", "png"),
    "png16": ("image/png", "png"),
    "jpeg": ("image/jpeg", "jpg"),
    "webp": ("image/webp", "webp"),
    "tiff": ("image/tiff", "tif"),
}


@lru_cache(maxsize=1)
def method_notes() -> dict:
    """The plain-words notes of each method (method_notes.json), read once."""
    return json.loads(NOTES.read_text())["methods"]


@lru_cache(maxsize=8)
def sample_png(name: str) -> bytes:
    """A bundled example image, shrunk to SAMPLE_SIDE, as PNG bytes."""
    from coordsr.images import encode_image_bytes
    from coordsr.samples import load_sample
    from coordsr.server.app import thumbnail

    return encode_image_bytes(thumbnail(load_sample(name), SAMPLE_SIDE), "PNG", 8)


def sample_size(name: str) -> tuple[int, int]:
    """(width, height) of an example as served."""
    from coordsr.samples import SAMPLES

    h, w = SAMPLES[name][:2]
    k = max(h, w) / SAMPLE_SIDE
    return (w, h) if k <= 1 else (max(1, round(w / k)), max(1, round(h / k)))


def encode_as(pixels: np.ndarray, fmt: str, quality: int, bit_depth: int) -> bytes:
    """Encode a result in one of FORMATS; JPEG drops alpha by compositing on white."""
    from PIL import Image

    from coordsr.images import encode_image_bytes

    if fmt in ("png", "png16", "tiff"):
        return encode_image_bytes(pixels, "TIFF" if fmt == "tiff" else "PNG", 16 if fmt == "png16" else bit_depth)
    arr = np.clip(pixels, 0, 1)
    if fmt == "jpeg" and arr.shape[2] in (2, 4):  # JPEG has no alpha
        alpha = arr[..., -1:]
        arr = arr[..., :-1] * alpha + (1 - alpha)
    q = np.rint(arr * 255).astype(np.uint8)
    if q.shape[2] == 2:  # grey + alpha: WebP has no grey mode
        q = np.concatenate([q[..., :1]] * 3 + [q[..., 1:]], axis=2)
    im = Image.fromarray(q[..., 0] if q.shape[2] == 1 else q)
    if fmt == "webp" and im.mode == "L":
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, fmt.upper(), quality=quality, **({"subsampling": 0} if fmt == "jpeg" else {}))
    return buf.getvalue()


def add_page_routes(app: FastAPI, store: Store, manager) -> None:
    """Add the page's endpoints to ``app`` (built by ``create_app``)."""
    from coordsr.methods import METHODS, methods_for
    from coordsr.samples import SAMPLES

    input_hashes: dict[str, str] = {}  # job id -> sha256 of input.png (inputs never change)

    def record(job_id: str) -> JobRecord:
        rec = store.get(job_id) if ID_RE.fullmatch(job_id) else None
        if rec is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return rec

    def done_file(rec: JobRecord, name: str) -> Path:
        path = store.job_dir(rec.id) / name
        if rec.status != "done" or not path.is_file():
            raise HTTPException(409 if rec.status in ("queued", "running") else 404,
                                f"job {rec.id} is {rec.status}: it has no {name}")
        return path

    def input_hash(rec: JobRecord) -> str | None:
        if rec.id not in input_hashes:
            try:
                data = (store.job_dir(rec.id) / "input.png").read_bytes()
            except OSError:
                return None
            input_hashes[rec.id] = hashlib.sha256(data).hexdigest()
        return input_hashes[rec.id]

    @app.get("/api/method-notes", tags=["page"])
    def get_method_notes() -> dict:
        """Each registry method in plain words, with its measured quality and speed and the
        fitting budget the page proposes."""
        notes = method_notes()
        return {"methods": {name: notes.get(name, {}) for name in methods_for("upscale")}}

    @app.get("/api/samples", tags=["page"])
    def list_samples() -> dict:
        """Example images bundled with scikit-image, one click away in the page."""
        out = []
        for name in SAMPLES:
            w, h = sample_size(name)
            out.append({"name": name, "width": w, "height": h, "url": f"/api/samples/{name}.png"})
        return {"samples": out}

    @app.get("/api/samples/{name}.png", response_class=Response, tags=["page"],
             responses={200: {"content": {"image/png": {}}}})
    def get_sample(name: str):
        """One example image as PNG (at most SAMPLE_SIDE pixels on its longer side)."""
        if name not in SAMPLES:
            raise HTTPException(404, f"no example {name!r}; valid: {', '.join(SAMPLES)}")
        return Response(sample_png(name), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/queue", tags=["page"])
    def get_queue() -> dict:
        """Running jobs, and waiting jobs in the order they will run (the queue is first in,
        first out)."""
        active = [r for r in store.list(1000) if r.status in ("queued", "running")]
        active.sort(key=lambda r: r.created)
        return {"running": [r.id for r in active if r.status == "running"],
                "queued": [r.id for r in active if r.status == "queued"]}

    @app.post("/api/jobs/{job_id}/stop", status_code=202, tags=["page"])
    def stop_and_keep(job_id: str) -> dict:
        """End a running fit at its next report and finish the job with the field as it is
        (drawn at the output size, downloadable). 409 for jobs that fit no field or are not running."""
        rec = record(job_id)
        if rec.kind != "upscale" or not getattr(METHODS.get(rec.method), "fits_field", False):
            raise HTTPException(409, f"method {rec.method!r} fits no field: there is nothing to keep early")
        if rec.status != "running" or not manager.keep_current(job_id):
            raise HTTPException(409, f"job {job_id} is {rec.status}: only a running fit can stop and keep")
        return {"id": job_id, "stopping": True}

    @app.get("/api/jobs/{job_id}/export", response_class=Response, tags=["page"])
    def export(job_id: str,
               format: Annotated[Literal["png", "png16", "jpeg", "webp", "tiff"], Query()] = "png",
               quality: Annotated[int, Query(ge=1, le=100)] = 92):
        """The result in another format, as a download. `png16` is 16-bit: the field drawn again
        at 16 bits for methods with a field, or the 16-bit result of a 16-bit input; 409 otherwise."""
        from coordsr.images import read_image

        from coordsr.errors import ImageError
        from coordsr.images import check_format_size

        rec = record(job_id)
        path = done_file(rec, "result.png")
        try:  # before any decoding or drawing
            check_format_size({"png16": "png"}.get(format, format), rec.out_height, rec.out_width,
                              f"the result of job {job_id}")
        except ImageError as exc:
            raise HTTPException(422, str(exc)) from None
        if format == "png16" and rec.bit_depth != 16:
            if not rec.has_field:
                raise HTTPException(409, f"job {job_id}: a 16-bit PNG needs a field or a 16-bit input "
                                         f"({rec.method} on an 8-bit image has 8 bits to give)")
            from coordsr.field import Field
            from coordsr.render import render_field

            field = Field.load(store.job_dir(rec.id) / "field.safetensors", device="cpu")
            pixels = render_field(field, (rec.out_height, rec.out_width), dtype=np.uint16,
                                  footprint=field.fitted_footprint())
        else:
            pixels = read_image(path).pixels
        data = encode_as(pixels, format, quality, rec.bit_depth)
        media, suffix = FORMATS[format]
        name = rec.download_name(suffix, "-16bit" if format == "png16" else "")
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/jobs/{job_id}/peers", tags=["page"])
    def peers(job_id: str) -> dict:
        """Other finished jobs of the same input (same pixels) and output size: what the
        comparison slider can set against this job."""
        rec = record(job_id)
        mine = input_hash(rec)
        out = []
        for other in store.list(1000):
            if (other.id == rec.id or other.status != "done" or (other.in_width, other.in_height) != (rec.in_width, rec.in_height)
                    or (other.out_width, other.out_height) != (rec.out_width, rec.out_height)):
                continue
            if mine is not None and input_hash(other) == mine:
                out.append({"id": other.id, "method": other.method, "settings": other.settings,
                            "result": f"/api/jobs/{other.id}/result.png"})
        return {"peers": out}

    @app.get("/api/jobs/{job_id}/bicubic-now.png", response_class=Response, tags=["page"],
             responses={200: {"content": {"image/png": {}}}})
    def bicubic_now(job_id: str):
        """Bicubic of the input at the output size (at most BICUBIC_NOW_SIDE pixels on the longer
        side), for any job, at once: what the page shows while a method works."""
        from coordsr.images import encode_image_bytes, read_image
        from coordsr.methods.interpolation import bicubic

        rec = record(job_id)
        try:
            pixels = read_image(store.job_dir(rec.id) / "input.png").pixels
        except Exception:
            raise HTTPException(404, f"job {job_id} has no input") from None
        k = max(1.0, max(rec.out_width, rec.out_height) / BICUBIC_NOW_SIDE)
        size = (max(1, round(rec.out_height / k)), max(1, round(rec.out_width / k)))
        return Response(encode_image_bytes(bicubic(device="cpu").upscale(pixels, size), "PNG", 8),
                        media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/api/jobs/{job_id}/result-thumb.png", response_class=Response, tags=["page"],
             responses={200: {"content": {"image/png": {}}}})
    def result_thumb(job_id: str):
        """A small picture of the result for the gallery (made on first request, kept with the job)."""
        from coordsr.images import encode_image_bytes, read_image
        from coordsr.server.app import thumbnail

        rec = record(job_id)
        path = done_file(rec, "result.png")
        cached = store.job_dir(rec.id) / "result-thumb.png"
        try:
            data = cached.read_bytes()
        except OSError:
            data = encode_image_bytes(thumbnail(read_image(path).pixels, 240), "PNG", 8)
            try:  # a temporary name of its own: requests that race each make theirs, the last rename wins
                with atomic_path(cached) as tmp:
                    tmp.write_bytes(data)
            except OSError as exc:  # a full disk: served all the same, kept next time
                log.warning("job %s: result thumbnail not kept: %s", rec.id, exc)
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/zip", response_class=Response, tags=["page"],
             responses={200: {"content": {"application/zip": {}}}})
    def zip_results(ids: Annotated[str, Query(description="Job ids, comma-separated")]):
        """The results of several finished jobs in one zip (PNG files, and GIFs of art animations,
        named as single downloads)."""
        wanted = [i for i in ids.split(",") if i]
        if not wanted:
            raise HTTPException(422, "ids: give at least one job id")
        if len(wanted) > 200:
            raise HTTPException(422, f"ids: at most 200 jobs in one zip, got {len(wanted)}")
        records = [record(job_id) for job_id in wanted]
        paths = [done_file(rec, rec.result_file) for rec in records]  # every refusal before any work
        buf, names = tempfile.SpooledTemporaryFile(max_size=32 << 20), set()  # big zips go to disk
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for rec, path in zip(records, paths):
                name = rec.download_name()
                if name in names:  # the same input and method twice: keep both
                    stem, suffix = name.rsplit(".", 1)
                    name = f"{stem}-{rec.id[:6]}.{suffix}"
                names.add(name)
                zf.write(path, name)
        size = buf.tell()
        buf.seek(0)

        def chunks():
            with buf:
                while chunk := buf.read(1 << 20):
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/zip", headers={
            "Content-Disposition": 'attachment; filename="coordsr-results.zip"', "Content-Length": str(size)})


__all__ = ["add_page_routes", "encode_as", "method_notes"]
