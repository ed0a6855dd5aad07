"""The page's own endpoints (coordsr.server.page_api), in-process: method notes, examples, queue,
stop and keep, output formats, comparisons between jobs, zip of results."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from coordsr.images import decode_image_bytes, encode_image_bytes  # noqa: E402
from coordsr.methods import methods_for  # noqa: E402
from coordsr.samples import SAMPLES  # noqa: E402
from coordsr.server.app import Limits, create_app  # noqa: E402
from test_server import wait  # noqa: E402


def png(h: int = 24, w: int = 32, c: int = 3) -> bytes:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return encode_image_bytes(np.stack([np.sin(6 * xx + k) * np.cos(5 * yy - k) for k in range(c)], -1)
                              .astype(np.float32) * 0.4 + 0.5)


def upload(client, data: bytes | None = None, **form):
    files = {"file": ("in.png", png() if data is None else data, "image/png")}
    return client.post("/api/jobs", files=files, data={k: str(v) for k, v in form.items()})


# The fits here are tiny: one torch thread is as fast, and much faster on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def client(tmp_path: Path):
    app = create_app(tmp_path / "data", 1, Limits())
    app.state.manager.preview_interval = 0.0  # every report reaches the record
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:  # a Host the server answers
        yield c


def test_every_registry_method_has_plain_notes(client):
    notes = client.get("/api/method-notes").json()["methods"]
    assert list(notes) == list(methods_for("upscale"))
    for name, cls in methods_for("upscale").items():
        n = notes[name]
        assert n["title"] and n["plain"] and n["speed"] and "dB" in n["measured"], name
        # a page budget exactly for the methods that fit a field, within the server's limit
        assert ("page_steps" in n) == bool(cls.fits_field), name
        if cls.fits_field:
            assert 1 <= n["page_steps"] <= Limits().max_steps


def test_examples_are_listed_and_served_small(client):
    samples = client.get("/api/samples").json()["samples"]
    assert [s["name"] for s in samples] == list(SAMPLES)
    for s in samples[:2]:
        r = client.get(s["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        im = Image.open(io.BytesIO(r.content))
        assert im.size == (s["width"], s["height"]) and max(im.size) <= 256
    r = client.get("/api/samples/nope.png")
    assert r.status_code == 404 and "valid: astronaut" in r.json()["detail"]


def test_stop_and_keep_ends_the_fit_with_a_field(client):
    job_id = upload(client, method="hashgrid", steps=20000).json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{job_id}").json()["progress"]["step"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post(f"/api/jobs/{job_id}/stop").status_code == 202
    job = wait(client, job_id)
    assert job["status"] == "done" and job["has_field"]
    assert 1 <= job["progress"]["step"] < 20000 and job["progress"]["total"] == 20000
    out = decode_image_bytes(client.get(job["urls"]["result"]).content, "result")
    assert (out.width, out.height) == (128, 96)
    assert client.get(job["urls"]["field"]).status_code == 200
    r = client.post(f"/api/jobs/{job_id}/stop")
    assert r.status_code == 409 and "only a running fit" in r.json()["detail"]


def test_stop_and_keep_is_refused_for_methods_without_a_field(client):
    job_id = upload(client, method="bicubic").json()["id"]
    r = client.post(f"/api/jobs/{job_id}/stop")
    assert r.status_code == 409 and "fits no field" in r.json()["detail"]
    assert client.post("/api/jobs/0123456789abcdef/stop").status_code == 404


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("jpeg", b"\xff\xd8"), ("webp", b"RIFF"),
                                       ("tiff", b"II*\x00")])
def test_export_formats(client, fmt, magic):
    job = wait(client, upload(client, data=png(c=4), method="bicubic", scale=2).json()["id"])
    r = client.get(f"/api/jobs/{job['id']}/export", params={"format": fmt, "quality": 80})
    assert r.status_code == 200, r.text
    assert r.content.startswith(magic)
    assert "attachment" in r.headers["content-disposition"] and "in-bicubic-64x48" in r.headers["content-disposition"]
    im = decode_image_bytes(r.content, fmt)
    assert (im.width, im.height) == (64, 48)
    assert im.channels == (3 if fmt == "jpeg" else 4)  # JPEG has no alpha


def test_png16_is_the_field_drawn_at_16_bits_and_refused_without_a_field(client):
    field_job = wait(client, upload(client, method="hashgrid", steps=30).json()["id"])
    r = client.get(f"/api/jobs/{field_job['id']}/export", params={"format": "png16"})
    im = decode_image_bytes(r.content, "png16")
    assert im.bit_depth == 16 and (im.width, im.height) == (128, 96)
    values = np.rint(im.pixels * 65535).astype(np.int64)
    assert np.any(values % 257 != 0)  # real 16-bit values, not 8-bit ones widened
    plain = wait(client, upload(client, method="bicubic").json()["id"])
    r = client.get(f"/api/jobs/{plain['id']}/export", params={"format": "png16"})
    assert r.status_code == 409 and "16-bit" in r.json()["detail"]
    assert client.get(f"/api/jobs/{plain['id']}/export", params={"format": "gif"}).status_code == 422


def test_peers_are_finished_jobs_of_the_same_input_and_size(client):
    a = wait(client, upload(client, method="bicubic").json()["id"])
    b = wait(client, upload(client, method="lanczos").json()["id"])
    wait(client, upload(client, method="nearest", scale=2).json()["id"])  # another output size
    wait(client, upload(client, data=png(w=31), method="nearest").json()["id"])  # another input
    peers = client.get(f"/api/jobs/{a['id']}/peers").json()["peers"]
    assert [p["id"] for p in peers] == [b["id"]] and peers[0]["method"] == "lanczos"
    assert client.get(peers[0]["result"]).status_code == 200


def test_bicubic_now_and_result_thumb(client):
    job = wait(client, upload(client, method="nearest", scale=8).json()["id"])
    r = client.get(f"/api/jobs/{job['id']}/bicubic-now.png")
    assert Image.open(io.BytesIO(r.content)).size == (256, 192)
    job = wait(client, upload(client, method="nearest", scale=32).json()["id"])  # 1024x768 output
    r = client.get(f"/api/jobs/{job['id']}/bicubic-now.png")
    assert Image.open(io.BytesIO(r.content)).size == (512, 384)
    r = client.get(f"/api/jobs/{job['id']}/result-thumb.png")
    assert r.status_code == 200 and max(Image.open(io.BytesIO(r.content)).size) == 240


def test_queue_lists_waiting_jobs_in_order(client):
    first = upload(client, method="hashgrid", steps=20000).json()["id"]
    second = upload(client, method="hashgrid", steps=30).json()["id"]
    third = upload(client, method="bicubic").json()["id"]
    wait(client, first, statuses=("running",))
    q = client.get("/api/queue").json()
    assert q["running"] == [first] and q["queued"] == [second, third]
    r = client.post(f"/api/jobs/{second}/stop")
    assert r.status_code == 409 and "is queued" in r.json()["detail"]
    client.post(f"/api/jobs/{first}/cancel")
    wait(client, third)


def test_zip_holds_every_result_named_for_download(client):
    a = wait(client, upload(client, method="bicubic").json()["id"])
    b = wait(client, upload(client, method="bicubic").json()["id"])
    r = client.get("/api/zip", params={"ids": f"{a['id']},{b['id']}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert len(names) == 2 and names[0] == "in-bicubic-128x96.png" and names[1].startswith("in-bicubic-128x96-")
    assert client.get("/api/zip", params={"ids": ""}).status_code == 422
    assert client.get("/api/zip", params={"ids": f"{a['id']},0123456789abcdef"}).status_code == 404


@pytest.mark.parametrize("fmt,width,words", [("webp", 16384, "WebP holds at most 16383 pixels a side"),
                                             ("jpeg", 65536, "JPEG holds at most 65500 pixels a side")])
def test_an_export_the_format_cannot_hold_is_a_4xx_before_any_work(client, fmt, width, words, monkeypatch):
    """A result 16384 wide as WebP, 65536 wide as JPEG (were 500s from the encoders): 422, one
    line, refused from the record before the result is read."""
    import coordsr.images

    job = wait(client, upload(client, data=png(h=2, w=width // 64), method="nearest", width=width,
                              height=2).json()["id"])
    assert job["status"] == "done", job
    monkeypatch.setattr(coordsr.images, "read_image", lambda *a, **k: pytest.fail("the result was read"))
    r = client.get(f"/api/jobs/{job['id']}/export", params={"format": fmt})
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_concurrent_first_requests_of_a_result_thumb_all_get_it(client, monkeypatch):
    """24 GETs of a fresh job's result-thumb.png at once (one was a 500: they shared a temporary
    file name): every one is the same picture, and no temporary file is left."""
    import threading

    import coordsr.server.app

    job = wait(client, upload(client, data=png(h=96, w=128), method="nearest", scale=8).json()["id"])
    shrink = coordsr.server.app.thumbnail

    def slow_thumbnail(*args, **kwargs):  # every request makes its own before any has kept one
        time.sleep(0.3)
        return shrink(*args, **kwargs)

    monkeypatch.setattr(coordsr.server.app, "thumbnail", slow_thumbnail)
    answers, start = [], threading.Barrier(24)

    def get():
        start.wait()
        answers.append(client.get(f"/api/jobs/{job['id']}/result-thumb.png"))

    threads = [threading.Thread(target=get) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in answers] == [200] * 24
    assert len({r.content for r in answers}) == 1
    folder = client.app.state.store.job_dir(job["id"])
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    assert (folder / "result-thumb.png").read_bytes() == answers[0].content


def test_an_output_png_cannot_hold_is_refused_up_front(client):
    """A 200000x2 upload asked for 1000001 wide: 422 at once (was 202, then "internal error:
    PngError" from the worker)."""
    data = encode_image_bytes(np.zeros((2, 200000, 3), np.float32))
    before = client.get("/api/jobs").json()["jobs"]
    r = upload(client, data=data, method="nearest", width=1000001)
    assert r.status_code == 422 and "PNG" in r.json()["detail"] and "1,000,000" in r.json()["detail"], r.text
    assert client.get("/api/jobs").json()["jobs"] == before
