"""The web API in-process (FastAPI's TestClient): jobs, events, files, tiles, gallery, bad input."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from coordsr.images import decode_image_bytes, encode_image_bytes  # noqa: E402
from coordsr.methods import METHODS  # noqa: E402
from coordsr.methods.base import Upscaler  # noqa: E402
from coordsr.progress import Progress  # noqa: E402
from coordsr.server.app import Limits, create_app  # noqa: E402
from coordsr.server.storage import JobRecord, Store, new_job_id  # noqa: E402
from coordsr.server.tiles import Pyramid  # noqa: E402

FAST = {"method": "hashgrid", "steps": "60"}  # a real field in well under a second per job


# --- helpers --------------------------------------------------------------------------------------


def png(h: int = 32, w: int = 32, c: int = 3, seed: int = 0, noise: float = 0.05) -> bytes:
    """A smooth photo-like PNG with uniform noise of width ``noise`` (0.05: 3.7 levels of sigma)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    smooth = np.stack([np.sin(6 * xx + k) * np.cos(5 * yy - k) for k in range(c)], -1) * 0.4 + 0.5
    return encode_image_bytes((smooth + noise * rng.random((h, w, c))).astype(np.float32))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height RGB pixels but holds almost no data: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def upload(client, data: bytes | None = None, name: str = "in.png", **form):
    files = {"file": (name, png() if data is None else data, "image/png")}
    return client.post("/api/jobs", files=files, data={k: str(v) for k, v in form.items()})


def events(client, job_id: str, limit: float = 120) -> list[tuple[str, dict]]:
    """Read a job's event stream to its end: [(event name, data)]."""
    out, name, start = [], None, time.monotonic()
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
                if name == "end":
                    break
            assert time.monotonic() - start < limit, "the event stream did not end"
    return out


def wait(client, job_id: str, statuses=("done", "failed", "cancelled"), limit: float = 120) -> dict:
    start = time.monotonic()
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() - start < limit, f"job stuck in {job['status']}"
        time.sleep(0.05)


def image_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


# The fits here are tiny: one torch thread is as fast, and much faster on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def app_factory(tmp_path):
    """create_app on tmp_path, shut down (workers joined) after the test."""
    clients = []

    def make(data_dir: Path = tmp_path / "data", workers: int = 1, **limits) -> TestClient:
        app = create_app(data_dir, workers, Limits(**limits))
        app.state.manager.preview_interval = 0.0  # a preview with every report: tests see several
        client = TestClient(app, base_url="http://127.0.0.1:7860")  # a Host the server answers
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_factory) -> TestClient:
    return app_factory()


# Test-only methods, registered for one test with monkeypatch (the registry is a plain dict).
RELEASE = threading.Event()


@dataclass
class waiter(Upscaler):
    """Test method: reports progress until released, honouring cancellation through the callback."""

    steps: int = 100

    def _upscale(self, image, size, progress):
        step = 0
        while not RELEASE.wait(0.01):
            step += 1
            if progress is not None:
                progress(Progress(step=step, total=self.steps, loss=1.0 / step, psnr=10.0,
                                  preview=lambda: image))
        return np.zeros((*size, image.shape[2]), np.float32)


@dataclass
class crasher(Upscaler):
    """Test method: fails the way a bug does."""

    def _upscale(self, image, size, progress):
        raise RuntimeError("boom")


@pytest.fixture
def test_methods(monkeypatch):
    RELEASE.clear()
    monkeypatch.setitem(METHODS, "waiter", waiter)
    monkeypatch.setitem(METHODS, "crasher", crasher)
    yield
    RELEASE.set()


# --- methods and schema ------------------------------------------------------------------------------


def test_methods_lists_the_registry(client):
    info = client.get("/api/methods").json()
    names = [m["name"] for m in info["methods"]]
    assert names == [n for n, c in METHODS.items() if c.task == "upscale"]  # the page upscales
    assert info["default"] in names
    for m in info["methods"]:
        cls = METHODS[m["name"]]
        assert m["description"] == cls.description() and m["description"]
        assert m["fits_field"] == cls.fits_field
        if cls.fits_field:
            assert set(m["settings"]) >= {"steps", "seed", "fit"}


def test_openapi_describes_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path, verb in [("/api/methods", "get"), ("/api/jobs", "post"), ("/api/jobs", "get"),
                       ("/api/jobs/{job_id}", "get"), ("/api/jobs/{job_id}", "delete"),
                       ("/api/jobs/{job_id}/events", "get"), ("/api/jobs/{job_id}/cancel", "post"),
                       ("/api/jobs/{job_id}/result.png", "get"), ("/api/jobs/{job_id}/field", "get"),
                       ("/api/jobs/{job_id}/tiles/{level}/{x}_{y}.png", "get")]:
        assert verb in paths[path], (path, verb)
    form = paths["/api/jobs"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in form


def test_page_and_vendored_viewer_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "cdn" not in page.text.lower()
    osd = client.get("/static/vendor/openseadragon/openseadragon.min.js")
    assert osd.status_code == 200 and b"OpenSeadragon" in osd.content[:2000]
    assert client.get("/static/vendor/openseadragon/images/zoomin_rest.png").status_code == 200


# --- a job from upload to tiles ----------------------------------------------------------------


def test_job_lifecycle_create_events_result_field_tiles_delete(client, tmp_path):
    from coordsr.field import Field
    from coordsr.render import render_field

    r = upload(client, png(32, 32), name="photo.png", scale=4, **FAST)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["status"] in ("queued", "running")
    assert job["label"] == "photo" and job["output"] == {"width": 128, "height": 128}
    assert job["settings"] == {"steps": 60}

    stream = events(client, job["id"])
    names = [n for n, _ in stream]
    assert names[0] == "state" and names[-1] == "end"
    progress = [d for n, d in stream if n == "progress" and d["stage"] == "fit"]
    assert progress and progress[-1]["step"] == 60 and progress[-1]["total"] == 60
    assert all(np.isfinite(d["loss"]) and d["psnr"] > 0 for d in progress)
    previews = [d["preview"] for d in progress if "preview" in d]
    assert previews and previews[0].startswith("data:image/png;base64,")
    end = stream[-1][1]
    assert end["status"] == "done", end
    assert end["first_preview_s"] is not None and end["first_preview_s"] > 0

    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "done" and done["has_field"] and done["progress"]["psnr"] > 10
    assert done["viewer"]["width"] == 1 << 20 and done["viewer"]["maxLevel"] == 20

    result = image_of(client.get(done["urls"]["result"]))
    assert result.shape == (128, 128, 3)
    assert image_of(client.get(done["urls"]["bicubic"])).shape == (128, 128, 3)
    download = client.get(done["urls"]["result_download"])
    assert 'filename="photo-hashgrid-128x128.png"' in download.headers["content-disposition"]

    field_file = client.get(done["urls"]["field"])
    assert field_file.status_code == 200
    assert "photo-hashgrid.field.safetensors" in field_file.headers["content-disposition"]
    saved = tmp_path / "downloaded.safetensors"
    saved.write_bytes(field_file.content)
    field = Field.load(saved)
    assert (field.meta.height, field.meta.width, field.meta.channels) == (32, 32, 3)
    assert field.file_header["method"] == "hashgrid"

    # Zoomed out: the whole image in one tile, resampled from the result.
    whole = image_of(client.get(f"/api/jobs/{job['id']}/tiles/7/0_0.png"))
    assert whole.shape == (128, 128, 3)
    assert np.abs(whole.astype(int) - result.astype(int)).max() <= 1
    # Deep zoom (level 20: 8192 virtual pixels per output pixel): drawn by the field itself.
    tile = image_of(client.get(f"/api/jobs/{job['id']}/tiles/20/2048_1024.png"))
    box, size = Pyramid.for_image(128, 128).tile_box(20, 2048, 1024)
    expected = render_field(field, size, box=box, dtype=np.uint8)
    assert tile.shape == (256, 256, 3)
    assert np.abs(tile.astype(int) - expected.astype(int)).max() <= 1
    assert client.get(f"/api/jobs/{job['id']}/tiles/20/4096_0.png").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/tiles/21/0_0.png").status_code == 404

    folder = tmp_path / "data" / "jobs" / job["id"]
    assert folder.is_dir()
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert not folder.exists()
    for url in (done["urls"]["self"], done["urls"]["result"], f"/api/jobs/{job['id']}/tiles/7/0_0.png"):
        r = client.get(url)
        assert r.status_code == 404 and "no job" in r.json()["detail"]
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 404
    assert client.get("/api/jobs").json()["jobs"] == []


def test_method_without_field_gets_tiles_from_its_image(client):
    r = upload(client, png(20, 30), method="bicubic", width=90)  # height follows the aspect
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"])
    assert job["status"] == "done" and not job["has_field"]
    assert job["output"]["width"] == 90 and job["output"]["height"] == 60
    assert "field" not in job["urls"]
    assert client.get(f"/api/jobs/{job['id']}/field").status_code == 404
    assert image_of(client.get(job["urls"]["result"])).shape == (60, 90, 3)
    v = job["viewer"]
    assert v["width"] == 1 << 20 and v["height"] == round((1 << 20) * 60 / 90)
    deep = image_of(client.get(f"/api/jobs/{job['id']}/tiles/20/100_100.png"))
    assert deep.shape == (256, 256, 3)


def test_pyramid_boxes_tile_the_field_exactly():
    p = Pyramid.for_image(300, 200)
    assert p.width == 1 << 20 and p.max_level == 20
    for level in (0, 3, 9, 12):
        lw, lh = p.level_size(level)
        nx, ny = int(np.ceil(lw / p.tile)), int(np.ceil(lh / p.tile))
        (x0, y0, _, _), _ = p.tile_box(level, 0, 0)
        (_, _, x1, y1), _ = p.tile_box(level, nx - 1, ny - 1)
        assert (x0, y0) == (-1, -1) and x1 == pytest.approx(1) and y1 == pytest.approx(1)
        if nx > 1:  # neighbours share an edge
            assert p.tile_box(level, 0, 0)[0][2] == p.tile_box(level, 1, 0)[0][0]


# --- persistence and recovery ----------------------------------------------------------------------


def test_gallery_survives_a_restart(app_factory, tmp_path):
    data = tmp_path / "data"
    first = app_factory(data)
    ids = [upload(first, png(24, 24, seed=i), name=f"img{i}.png", **FAST).json()["id"] for i in range(2)]
    for job_id in ids:
        assert wait(first, job_id)["status"] == "done"
    first.__exit__(None, None, None)  # the server stops

    second = app_factory(data)
    jobs = second.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in jobs] == ids[::-1]  # newest first
    assert [j["label"] for j in jobs] == ["img1", "img0"]
    for job in jobs:
        assert job["status"] == "done"
        assert image_of(second.get(job["urls"]["result"])).shape == (96, 96, 3)
        assert image_of(second.get(job["urls"]["thumb"])).shape[:2] == (24, 24)
        assert second.get(job["urls"]["field"]).status_code == 200
        assert image_of(second.get(f"/api/jobs/{job['id']}/tiles/19/1000_1000.png")).shape == (256, 256, 3)
        stream = events(second, job["id"])  # a finished job: a snapshot with its curve, then the end
        assert [n for n, _ in stream] == ["state", "end"]
        assert stream[0][1]["history"][-1]["step"] == 60


def test_jobs_killed_by_a_crash_are_marked_failed_on_start(app_factory, tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    ids = {}
    for status in ("running", "queued", "done"):
        job_id = new_job_id()
        store.job_dir(job_id).mkdir()
        (store.job_dir(job_id) / "input.png").write_bytes(png(8, 8))
        (store.job_dir(job_id) / ".result.png.1234.tmp").write_bytes(b"half")
        store.insert(JobRecord(id=job_id, label=status, method="hashgrid", settings={}, in_width=8,
                               in_height=8, channels=3, mode="RGB", bit_depth=8, out_width=16,
                               out_height=16, status=status))
        ids[status] = job_id
    store.close()  # the process died here: nothing ran these jobs to their end

    client = app_factory(data)
    running = client.get(f"/api/jobs/{ids['running']}").json()
    queued = client.get(f"/api/jobs/{ids['queued']}").json()
    assert running["status"] == "failed" and "interrupted" in running["error"]
    assert queued["status"] == "failed" and "before this job started" in queued["error"]
    assert client.get(f"/api/jobs/{ids['done']}").json()["status"] == "done"
    assert not list((data / "jobs" / ids["running"]).glob("*.tmp"))
    assert [n for n, _ in events(client, ids["running"])] == ["state", "end"]


def test_a_crashing_method_fails_its_job_and_the_worker_goes_on(client, test_methods):
    bad = upload(client, method="crasher").json()
    job = wait(client, bad["id"])
    assert job["status"] == "failed" and "RuntimeError: boom" in job["error"]
    good = upload(client, method="bicubic").json()
    assert wait(client, good["id"])["status"] == "done"


def test_shutdown_marks_the_running_job_failed(app_factory, tmp_path, test_methods):
    data = tmp_path / "data"
    first = app_factory(data)
    job_id = upload(first, method="waiter").json()["id"]
    wait(first, job_id, statuses=("running",))
    first.__exit__(None, None, None)
    job = app_factory(data).get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "failed" and "server stopped" in job["error"]


# --- queue, cancel --------------------------------------------------------------------------------


def test_cancel_a_running_job(client, test_methods):
    job_id = upload(client, method="waiter").json()["id"]
    wait(client, job_id, statuses=("running",))
    r = client.post(f"/api/jobs/{job_id}/cancel")
    assert r.status_code == 202
    job = wait(client, job_id)
    assert job["status"] == "cancelled"
    r = client.post(f"/api/jobs/{job_id}/cancel")
    assert r.status_code == 409 and "already ended" in r.json()["detail"]
    assert client.get(f"/api/jobs/{job_id}/result.png").status_code == 404


def test_a_cancel_that_lands_as_the_worker_starts_the_job_still_ends_it(client, test_methods, monkeypatch):
    # The click arrives after the worker found the job queued and before it marked it running: the
    # cancel must not settle the job as "cancelled" while the worker goes on to run it (its record
    # then stayed "running" for ever; seen once in the browser tests). The worker's switch to
    # running is delayed until the cancel, from another thread, has had its chance to land.
    manager, store = client.app.state.manager, client.app.state.store
    update, raced = store.update, []

    def update_with_a_click_in_between(job_id, **changes):
        if changes.get("status") == "running":
            click = threading.Thread(target=manager.cancel, args=(job_id,))
            click.start()
            click.join(0.3)  # with the start and a cancel settled one after the other it waits here
            raced.append(job_id)
        update(job_id, **changes)

    monkeypatch.setattr(store, "update", update_with_a_click_in_between)
    job_id = upload(client, method="waiter").json()["id"]
    job = wait(client, job_id, limit=20)
    assert raced == [job_id]
    assert job["status"] == "cancelled"
    assert manager.live(job_id) is None or manager.live(job_id).ended


def test_full_queue_answers_503_and_a_queued_job_can_be_cancelled(app_factory, test_methods):
    client = app_factory(workers=1, queue_size=1)
    running = upload(client, method="waiter").json()["id"]
    wait(client, running, statuses=("running",))
    queued = upload(client, method="waiter").json()["id"]
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "queued"
    r = upload(client, method="waiter")
    assert r.status_code == 503 and "queue is full" in r.json()["detail"]
    assert r.headers["retry-after"]
    assert len(client.get("/api/jobs").json()["jobs"]) == 2  # the refused one left nothing behind
    assert client.get(f"/api/jobs/{queued}/tiles/0/0_0.png").status_code == 409
    assert client.post(f"/api/jobs/{queued}/cancel").status_code == 202
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "cancelled"
    RELEASE.set()
    assert wait(client, running)["status"] == "done"


def test_deleting_a_running_job_stops_it(client, test_methods, tmp_path):
    job_id = upload(client, method="waiter").json()["id"]
    wait(client, job_id, statuses=("running",))
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    time.sleep(0.3)
    assert not (tmp_path / "data" / "jobs" / job_id).exists()
    assert wait(client, upload(client, method="bicubic").json()["id"])["status"] == "done"


# --- bad input: each a 4xx with one line of detail ------------------------------------------------


BAD_FORMS = [
    ({"method": "nope"}, 422, "unknown method 'nope'"),
    ({"scale": 0}, 422, "scale must be above 0"),
    ({"scale": -2}, 422, "scale must be above 0"),
    ({"scale": 65}, 422, "at most 64"),
    ({"scale": "inf"}, 422, "scale"),
    ({"scale": "abc"}, 422, "scale"),
    ({"scale": 0.001}, 422, "smaller than one pixel"),
    ({"scale": 2, "width": 64}, 422, "not both"),
    ({"width": 0}, 422, "width must be at least 1"),
    ({"width": 32 * 65}, 422, "the largest scale is 64"),
    ({"scale": 64}, 422, "over the limit"),  # 2048x2048 > max_output_pixels of the fixture below
    ({"method": "hashgrid", "steps": 0}, 422, "steps must be between"),
    ({"method": "hashgrid", "steps": 10**9}, 422, "steps must be between"),
    ({"method": "hashgrid", "fit": "bogus"}, 422, "fit must be one of"),
    ({"method": "bicubic", "steps": 10}, 422, "has no setting 'steps'"),
    ({"content": "cartoon"}, 422, "content must be one of auto, photo, drawing, pixel-art, got 'cartoon'"),
    ({"content": "cartoon", "method": "bicubic"}, 422, "content must be one of"),  # checked even then
    ({"degradation": "awful"}, 422, "degradation must be one of auto, clean, real, got 'awful'"),
    ({"content": "drawing", "degradation": "real"}, 422, "degradation 'real' is for photos"),
]


@pytest.mark.parametrize("form, status, words", BAD_FORMS, ids=[str(f) for f, _, _ in BAD_FORMS])
def test_bad_parameters_are_refused(app_factory, form, status, words):
    client = app_factory(max_output_pixels=1024 * 1024)
    r = upload(client, **form)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and words in r.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []


# --- the kind of picture (content): the model picked for it ------------------------------------


def drawing_png() -> bytes:
    """A 32 px smiley on a transparent background, antialiased as an icon is: a drawing."""
    from PIL import ImageDraw

    im = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((10, 10, 118, 118), fill=(250, 200, 0, 255), outline=(60, 30, 0, 255), width=6)
    d.ellipse((40, 40, 56, 60), fill=(60, 30, 0, 255))
    d.ellipse((72, 40, 88, 60), fill=(60, 30, 0, 255))
    buf = io.BytesIO()
    im.resize((32, 32), Image.LANCZOS).save(buf, "PNG")
    return buf.getvalue()


def test_content_auto_picks_the_drawing_model_for_a_drawing(client):
    r = upload(client, drawing_png(), name="smiley.png", scale=2)  # no method, no content: auto
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["method"] == "drawing" and job["content"] == "drawing"
    assert job["choice"].startswith("Drawing model: detected a drawing (transparent background, "), job["choice"]
    assert "colours" in job["choice"] and job["input"]["mode"] == "RGBA"
    done = wait(client, job["id"])
    assert done["status"] == "done", done["error"]
    assert (done["method"], done["content"], done["choice"]) == ("drawing", "drawing", job["choice"])  # stored
    listed = client.get("/api/jobs").json()["jobs"][0]
    assert listed["choice"] == job["choice"]


def test_content_auto_picks_the_photo_model_for_a_clean_photo_and_the_blind_one_for_a_noisy_one(client):
    r = upload(client, png(64, 64, noise=0.01), name="photo.png", content="auto", scale=2)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["method"] == "pretrained" and job["content"] == "photo"
    assert job["choice"].startswith("Photo model: detected a photo ("), job["choice"]
    job = upload(client, png(64, 64, noise=0.1), name="noisy.png", scale=2).json()  # 7 levels of noise
    assert job["method"] == "blind" and job["content"] == "photo"
    assert job["choice"].startswith("Photo model for compressed or noisy photos: detected noise (about "), job["choice"]
    job = upload(client, png(64, 64, noise=0.1), scale=2, degradation="clean").json()
    assert job["method"] == "pretrained"
    buf = io.BytesIO()
    Image.open(io.BytesIO(png(64, 64, noise=0.01))).save(buf, "JPEG", quality=45)
    job = upload(client, buf.getvalue(), name="small.jpg", scale=2).json()
    assert (job["method"], job["choice"]) == ("blind", "Photo model for compressed or noisy photos: detected JPEG quality 45")
    job = upload(client, png(64, 64, noise=0.01), scale=2, degradation="real").json()
    assert (job["method"], job["choice"]) == ("blind", "Photo model for compressed or noisy photos: you chose \u201ccompressed or noisy\u201d")


@pytest.mark.parametrize("content, method, words", [
    ("drawing", "drawing", "Drawing model: you chose \u201cDrawing, icon or logo\u201d"),
    ("pixel-art", "nearest", "Pixel art, hard pixels kept: you chose \u201cPixel art\u201d"),
    ("photo", "pretrained", "Photo model: you chose \u201cPhoto\u201d"),
])
def test_content_named_picks_its_model_without_detecting(client, content, method, words):
    job = upload(client, png(32, 32), content=content, degradation="clean", scale=2).json()  # a photo, taken as asked
    assert (job["method"], job["content"], job["choice"]) == (method, content, words)


def test_an_explicit_method_wins_over_the_content(client):
    job = upload(client, drawing_png(), method="bicubic", content="drawing", scale=2).json()
    assert job["method"] == "bicubic" and job["content"] is None
    assert job["choice"] == "Bicubic: the method you chose"
    job = upload(client, drawing_png(), method="", content="photo", scale=2).json()  # an empty method: none
    assert job["method"] == "pretrained" and job["content"] == "photo"


def test_pixel_art_at_an_uneven_scale_says_so(client):
    job = upload(client, png(32, 32), content="pixel-art", scale=2.5).json()
    assert job["method"] == "nearest" and "x2.5 is not a whole scale" in job["choice"]


@pytest.mark.parametrize("data, words", [
    (b"%PDF-1.4 not an image at all", "not an image"),
    (b"", "empty"),
    (png(32, 32)[:60], "truncated or corrupt"),
    (png(1, 40), "too small"),
])
def test_bad_images_are_refused(client, data, words):
    r = upload(client, data, name="upload.bin")
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_decompression_bomb_is_refused_before_decoding(client):
    import resource

    bomb = png_header_only(100_000, 100_000)  # 30 GB of pixels in 100 bytes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    r = upload(client, bomb, name="bomb.png")
    assert r.status_code == 422 and "pixels" in r.json()["detail"], r.text
    assert time.monotonic() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing decoded
    r = upload(client, png_header_only(3000, 3000), name="big.png")  # under Pillow's bomb limit, over ours
    assert r.status_code == 422 and "too many pixels" in r.json()["detail"]


def test_pixel_limit_is_configurable(app_factory):
    client = app_factory(max_pixels=500)
    r = upload(client, png(32, 32))
    assert r.status_code == 422 and "the limit is 500" in r.json()["detail"]


def test_upload_size_limit(app_factory):
    client = app_factory(max_upload_mb=0.01)  # 10 KiB
    big = encode_image_bytes(np.random.default_rng(0).random((100, 100, 3)).astype(np.float32))
    assert len(big) > 20_000
    r = upload(client, big)
    assert r.status_code == 413 and "upload too large" in r.json()["detail"]

    def chunks():  # a streamed body has no Content-Length: it is counted as it arrives
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
        for _ in range(100):
            yield b"\0" * 4096

    r = client.post("/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "upload too large" in r.json()["detail"]
    assert upload(client, png(16, 16), method="bicubic").status_code == 202  # small ones still pass


def test_missing_file_and_unknown_job(client):
    r = client.post("/api/jobs", data={"method": "bicubic"})
    assert r.status_code == 422 and r.json()["detail"] == "file: Field required"
    for url in ("/api/jobs/0123456789abcdef", "/api/jobs/..%2F..%2Fetc", "/api/jobs/nothex/result.png",
                "/api/jobs/0123456789abcdef/tiles/0/0_0.png", "/api/jobs/0123456789abcdef/events"):
        r = client.get(url)
        assert r.status_code == 404 and isinstance(r.json()["detail"], str), url


def test_upload_names_are_labels_never_paths(client, tmp_path):
    r = upload(client, png(16, 16), name="../../../../tmp/evil name;rm -rf.png", method="bicubic")
    assert r.status_code == 202
    job = r.json()
    assert job["label"] == "evil_name_rm_-rf"
    assert sorted(p.name for p in (tmp_path / "data" / "jobs").iterdir()) == [job["id"]]
    assert len(job["id"]) == 16 and int(job["id"], 16) >= 0


def test_images_keep_their_mode_and_bit_depth(client):
    grey16 = encode_image_bytes(np.linspace(0, 1, 24 * 24, dtype=np.float32).reshape(24, 24), bit_depth=16)
    job = upload(client, grey16, method="bicubic", scale=2).json()
    assert job["input"] == {"width": 24, "height": 24, "channels": 1, "mode": "L", "bit_depth": 16}
    wait(client, job["id"])
    out = decode_image_bytes(client.get(f"/api/jobs/{job['id']}/result.png").content, "result")
    assert out.mode == "L" and out.bit_depth == 16 and out.pixels.shape == (48, 48, 1)
    tile = image_of(client.get(f"/api/jobs/{job['id']}/tiles/20/7_7.png"))
    assert tile.shape == (256, 256)  # 8-bit grey


@pytest.mark.parametrize("convention", ["seed", "centred", "standard"])
def test_whole_grid_convention_fields_are_tiled_in_the_house_convention(tmp_path, convention):
    """The seed's conventions have no boxes: tiles map the box into them, so a full-image tile at
    the input's size lands on the convention's own pixel positions (for the seed, j / (N - 1))."""
    from coordsr.methods.fields import cppn
    from coordsr.render import render_field
    from coordsr.server.tiles import TileRenderer

    image = decode_image_bytes(png(12, 16), "in").pixels
    field, _ = cppn(device="cpu", steps=5, hidden=16, layers=2, convention=convention).fit_field(image, (24, 32))
    field.save(tmp_path / "field.safetensors", method="cppn")
    tiles = TileRenderer(device="cpu")
    drawn = tiles._render_field("0" * 16, tmp_path, (-1.0, -1.0, 1.0, 1.0), (12, 16))
    expected = render_field(field, (12, 16), dtype=np.uint8)
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1
    half = tiles._render_field("0" * 16, tmp_path, (-1.0, -1.0, 0.0, 0.0), (12, 16))
    assert not np.array_equal(half, drawn)  # the box is honoured, not ignored


# --- who may ask: Host (DNS rebinding) and Origin (CSRF) -------------------------------------------


def test_unknown_host_headers_are_refused(client):
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST", "127.0.0.1"):
        assert client.get("/api/jobs", headers={"host": host}).status_code == 200, host
    for host in ("attacker.example", "attacker.example:7860", "127.0.0.1.attacker.example", "[::1", "a b"):
        r = client.get("/api/jobs", headers={"host": host})
        assert r.status_code == 400, host
        assert isinstance(r.json()["detail"], str) and "host" in r.json()["detail"].lower()
    r = client.get("/", headers={"host": "attacker.example"})  # the page too, not only the API
    assert r.status_code == 400 and "--allow-host attacker.example" in r.json()["detail"]


def test_allow_host_adds_names(tmp_path):
    app = create_app(tmp_path / "data", 1, Limits(), allow_hosts=["coordsr.lan", "*.example.org"])
    with TestClient(app, base_url="http://coordsr.lan:7860") as client:
        assert client.get("/api/methods").status_code == 200
        assert client.get("/api/methods", headers={"host": "a.b.example.org"}).status_code == 200
        assert client.get("/api/methods", headers={"host": "example.org.evil"}).status_code == 400
    app = create_app(tmp_path / "data", 1, Limits(), allow_hosts=["*"])
    with TestClient(app, base_url="http://anything.example") as client:
        assert client.get("/api/methods").status_code == 200


def test_default_hosts_follow_the_bound_address():
    from coordsr.server.guards import default_allowed_hosts, split_host

    assert default_allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "::1"]
    assert "10.1.2.3" in default_allowed_hosts("10.1.2.3")
    import socket

    assert socket.gethostname().lower() in default_allowed_hosts("0.0.0.0")
    assert split_host("[::1]:7860") == ("::1", 7860) and split_host("x:99999") is None


@pytest.mark.parametrize("headers", [
    {"origin": "http://attacker.example"},
    {"origin": "http://localhost:3000"},  # same site, another origin (port)
    {"origin": "null"},  # a sandboxed frame or a file: page
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
    {"referer": "http://attacker.example/page.html"},
], ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_cross_origin_writes_are_refused(client, headers):
    files = {"file": ("in.png", png(16, 16), "image/png")}
    r = client.post("/api/jobs", files=files, data={"method": "bicubic"}, headers=headers)
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"], r.text
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was started


def test_same_origin_and_non_browser_writes_pass(client):
    files = {"file": ("in.png", png(16, 16), "image/png")}
    page = {"origin": "http://127.0.0.1:7860", "sec-fetch-site": "same-origin",
            "referer": "http://127.0.0.1:7860/"}
    job = client.post("/api/jobs", files=files, data={"method": "bicubic"}, headers=page).json()
    wait(client, job["id"])
    assert client.delete(f"/api/jobs/{job['id']}", headers={"origin": "http://attacker.example"}).status_code == 403
    assert client.get(f"/api/jobs/{job['id']}").status_code == 200  # still there
    curl = client.post("/api/jobs", files=files, data={"method": "bicubic"})  # no Origin: curl, a script
    assert curl.status_code == 202
    wait(client, curl.json()["id"])
    assert client.delete(f"/api/jobs/{job['id']}", headers=page).status_code == 204
    # Reads from anywhere are answered (the Host check is what stops a rebound name from reading).
    assert client.get("/api/jobs", headers={"origin": "http://attacker.example"}).status_code == 200


def test_serve_passes_allow_host_to_the_server(monkeypatch, tmp_path):
    import coordsr.server.app as server_app
    from coordsr.cli import main

    seen = {}
    monkeypatch.setattr(server_app, "serve", lambda *args, **kw: seen.update(args=args, **kw))
    assert main(["serve", "--data-dir", str(tmp_path), "--allow-host", "a.lan", "--allow-host", "b.lan"]) == 0
    assert seen["allow_hosts"] == ["a.lan", "b.lan"]


@pytest.mark.parametrize("args, words", [
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--max-upload-mb", "-1"], "--max-upload-mb must be a positive number"),
    (["--max-pixels", "0"], "--max-pixels must be a positive number"),
])
def test_serve_refuses_bad_ports_and_limits_before_starting(tmp_path, capsys, args, words):
    from coordsr.cli import main

    assert main(["serve", "--data-dir", str(tmp_path / "web"), *args]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("coordsr: ") and words in err[0], err
    assert not (tmp_path / "web").exists()


def test_a_port_in_use_is_refused_in_one_line():
    import socket

    from coordsr.errors import CoordsrError
    from coordsr.server.app import listen

    with socket.create_server(("127.0.0.1", 0)) as taken:
        with pytest.raises(CoordsrError, match=r"cannot listen on 127.0.0.1:\d+: Address already in use$"):
            listen("127.0.0.1", taken.getsockname()[1])


# --- one server per data folder --------------------------------------------------------------------


def test_a_second_server_on_the_same_data_dir_is_refused_and_changes_nothing(app_factory, tmp_path,
                                                                              test_methods):
    import os

    from coordsr.server.lock import DataDirBusy

    data = tmp_path / "data"
    first = app_factory(data, queue_size=2)
    running = upload(first, method="waiter").json()["id"]
    wait(first, running, statuses=("running",))
    queued = upload(first, method="waiter").json()["id"]
    with pytest.raises(DataDirBusy, match=rf"in use by another coordsr server \(pid {os.getpid()}\b"):
        create_app(data, 1, Limits())
    assert first.get(f"/api/jobs/{running}").json()["status"] == "running"
    assert first.get(f"/api/jobs/{queued}").json()["status"] == "queued"
    RELEASE.set()
    assert wait(first, queued)["status"] == "done"
    first.__exit__(None, None, None)  # the lock goes with the server
    assert app_factory(data).get(f"/api/jobs/{running}").json()["status"] == "done"


def test_coordsr_serve_on_a_locked_dir_says_who_holds_it(tmp_path, capsys):
    import os

    from coordsr.cli import main
    from coordsr.server.lock import DataDirLock

    holder = DataDirLock.acquire(tmp_path, address="http://127.0.0.1:7861/")
    try:
        assert main(["serve", "--data-dir", str(tmp_path), "--port", "0"]) != 0
    finally:
        holder.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("coordsr: "), err
    assert f"pid {os.getpid()}" in err[0] and "http://127.0.0.1:7861/" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serve.lock"]  # no database, no jobs folder


def test_a_lock_left_by_a_killed_server_is_taken_over(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from coordsr.server.lock import DataDirLock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from coordsr.server.lock import DataDirLock; "
         "lock = DataDirLock.acquire(sys.argv[1], 'http://127.0.0.1:1/'); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from coordsr.server.lock import DataDirBusy

        with pytest.raises(DataDirBusy, match=f"pid {holder.pid}"):
            DataDirLock.acquire(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert f'"pid": {holder.pid}' in (tmp_path / "serve.lock").read_text()  # the dead holder's note
    lock = DataDirLock.acquire(tmp_path, address="http://127.0.0.1:2/")
    assert f'"pid": {os.getpid()}' in (tmp_path / "serve.lock").read_text()
    lock.release()


# --- uploads: refused before they are read, decoded one at a time ------------------------------------


def test_admission_counts_waiting_jobs_and_uploads_in_flight(tmp_path):
    from coordsr.server.jobs import JobManager

    manager = JobManager(Store(tmp_path / "data"), workers=1, queue_size=2)
    try:
        first, second = manager.admit(), manager.admit()
        assert first and second
        assert not manager.admit()  # two uploads on their way fill a queue of two
        manager.admitted_done(first)
        assert manager.admit()
    finally:
        manager.stop()


def test_a_full_queue_refuses_an_upload_without_reading_it(app_factory, test_methods):
    client = app_factory(workers=1, queue_size=1)
    running = upload(client, method="waiter").json()["id"]
    wait(client, running, statuses=("running",))
    upload(client, method="waiter")  # the one queued job
    read = []

    def body():  # the server would have to pull this to read the upload
        read.append(True)
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
        yield png(16, 16) + b"\r\n--x--\r\n"

    r = client.post("/api/jobs", content=body(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 503 and "queue is full" in r.json()["detail"] and r.headers["retry-after"]
    assert read == []
    RELEASE.set()


def test_uploads_are_decoded_one_at_a_time(client, monkeypatch):
    import coordsr.images

    decode, inside, most = coordsr.images.decode_image_bytes, [0], [0]
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        try:
            return decode(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(coordsr.images, "decode_image_bytes", counting)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(upload(client, png(16, 16), method="bicubic")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [202] * 4
    assert most[0] == 1


@pytest.fixture
def real_server(tmp_path, test_methods):
    """create_app under uvicorn on a free loopback port (a thread); yields (host, port, app)."""
    import socket

    import uvicorn

    app = create_app(tmp_path / "data", 1, Limits(queue_size=1, max_upload_mb=1))
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield "127.0.0.1", sock.getsockname()[1], app
    RELEASE.set()
    server.should_exit = True
    thread.join(10)


def raw_request(host: str, port: int, head: str, timeout: float = 5.0) -> tuple[int, dict]:
    """Send only ``head`` (request line and headers, no body) and read the answer: (status, JSON)."""
    import socket

    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                dict(line.split(b": ", 1) for line in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
                     if b": " in line).get(b"content-length", b"0")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"null")


def test_real_server_answers_before_the_body_arrives(real_server):
    """Over a real socket: the answers come while the client has sent headers only."""
    import urllib.request

    host, port, app = real_server
    post = (f"POST /api/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; "
            f"boundary=x\r\nContent-Length: {{n}}\r\n\r\n")
    status, body = raw_request(host, port, post.format(n=50 << 20))  # 50 MiB declared, 1 MiB allowed
    assert status == 413 and "upload too large" in body["detail"]
    rebinding = "GET /api/jobs HTTP/1.1\r\nHost: attacker.example\r\n\r\n"
    assert raw_request(host, port, rebinding)[0] == 400

    def send(form: dict) -> dict:
        boundary = "b0undary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in form.items()]
        payload = "".join(parts).encode() + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + png(16, 16) + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(f"http://{host}:{port}/api/jobs", data=payload, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    running = send({"method": "waiter"})["id"]
    while app.state.store.get(running).status != "running":
        time.sleep(0.02)
    send({"method": "waiter"})  # queued: the queue (1) is full
    start = time.monotonic()
    status, body = raw_request(host, port, post.format(n=10 << 10))  # a body that never comes
    assert status == 503 and "queue is full" in body["detail"]
    assert time.monotonic() - start < 3


def test_an_upload_that_cannot_be_stored_leaves_no_half_job(client, monkeypatch, tmp_path):
    import coordsr.images
    from coordsr.errors import ImageError

    def full_disk(path, *args, **kwargs):
        raise ImageError(f"{path}: cannot write: No space left on device")

    monkeypatch.setattr(coordsr.images, "write_image", full_disk)
    r = upload(client, png(16, 16), method="bicubic")
    assert r.status_code == 507 and "No space left on device" in r.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_uploads_spool_into_the_data_dir(tmp_path, monkeypatch):
    import tempfile

    from coordsr.server.app import use_spool_dir

    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored after the test
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "tmpleft").write_bytes(b"half an upload from a killed server")
    spool = use_spool_dir(tmp_path)
    assert spool == tmp_path / "spool" and list(spool.iterdir()) == []
    with tempfile.SpooledTemporaryFile(max_size=10) as f:  # what the multipart parser uses
        f.write(b"more than ten bytes")
        f.rollover()
        assert Path(f"/proc/self/fd/{f.fileno()}").resolve().parent == spool.resolve()


# --- files, docs ----------------------------------------------------------------------------------


def test_job_files_are_written_with_the_umask(client, tmp_path):
    from coordsr.atomic import new_file_mode

    job = upload(client, png(16, 16), **FAST).json()
    assert wait(client, job["id"])["status"] == "done"
    folder = tmp_path / "data" / "jobs" / job["id"]
    expected = new_file_mode()
    assert expected == 0o666 & ~int(Path("/proc/self/status").read_text().split("Umask:")[1].split()[0], 8)
    for name in ("field.safetensors", "result.png", "input.png", "history.json"):
        assert (folder / name).stat().st_mode & 0o777 == expected, name


def test_api_docs_are_served_without_a_cdn(client):
    import re

    for url in ("/docs", "/redoc"):
        page = client.get(url)
        assert page.status_code == 200
        links = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
        assert links, url
        for link in links:
            assert link.startswith("/") and not link.startswith("//"), (url, link)
            assert client.get(link).status_code == 200, link
        assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "SwaggerUIBundle" in client.get("/static-offline-docs/swagger-ui-bundle.js").text[:200_000]


def test_web_docs_name_the_default_method():
    from coordsr.methods import DEFAULT_METHOD

    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "web.md").read_text().split())
    assert f"(default: the registry's default, `{DEFAULT_METHOD}`)" in text
    assert f'{{"default":"{DEFAULT_METHOD}",' in text


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs, mounted for the test: needs root; skipped otherwise)."""
    import os
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem has not one byte left (unbuffered: each write is seen)."""
    import errno

    with open(path, "ab", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_full_disk_never_kills_the_worker_and_jobs_run_once_space_is_back(app_factory, small_disk, test_methods,
                                                                           monkeypatch):
    """On a real full filesystem: a cancel whose end SQLite cannot write, a queued job that cannot
    be started, uploads (small and spooled) and a delete get 507 or wait; the worker lives; once
    space is freed the queued job runs and new uploads are done."""
    import tempfile

    from coordsr.server.app import use_spool_dir

    data = small_disk / "data"
    client = app_factory(data_dir=data, workers=1)
    manager = client.app.state.manager
    manager.retry_s = (0.05, 0.2)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    use_spool_dir(data)  # as serve does: big uploads are spooled on the data disk
    running = upload(client, png(16, 16), method="waiter").json()["id"]
    wait(client, running, statuses=("running",))
    queued = upload(client, png(16, 16), method="bicubic").json()["id"]
    spare = upload(client, png(16, 16), method="bicubic")  # its files are deleted below to test DELETE
    assert spare.status_code == 202
    filler = small_disk / "filler"
    fill(filler)

    assert client.post(f"/api/jobs/{running}/cancel").status_code == 202
    deadline = time.monotonic() + 20
    while manager.unsettled(running) is None:  # SQLite refused to store the end of the job
        assert time.monotonic() < deadline, "the cancel was never settled"
        time.sleep(0.02)
    assert client.get(f"/api/jobs/{running}").json()["status"] == "cancelled"  # shown all the same
    time.sleep(0.5)  # the worker tries to start the queued job, and cannot write "running"
    assert all(t.is_alive() for t in manager._threads)
    assert client.app.state.store.get(queued).status == "queued"

    r = upload(client, png(16, 16), method="bicubic")
    assert r.status_code == 507 and "No space left" in r.json()["detail"], r.text
    big = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG", compress_level=0)  # 1.4 MiB: spooled to the full disk
    r = upload(client, buf.getvalue(), method="bicubic")
    assert r.status_code == 507 and "storage is full" in r.json()["detail"], r.text

    import shutil

    shutil.rmtree(data / "jobs" / spare.json()["id"])  # its space goes to the filler, so that
    fill(filler)  # deleting it frees nothing: the row cannot go
    r = client.delete(f"/api/jobs/{spare.json()['id']}")
    assert r.status_code == 507 and "storage is full" in r.json()["detail"], r.text

    filler.unlink()  # space is back
    assert wait(client, queued, limit=60)["status"] == "done"
    assert client.delete(f"/api/jobs/{spare.json()['id']}").status_code == 204
    deadline = time.monotonic() + 20
    while client.app.state.store.get(running).status != "cancelled":  # the kept end is written
        assert time.monotonic() < deadline, "the cancelled job's end was never stored"
        time.sleep(0.05)
    again = upload(client, png(16, 16), method="bicubic").json()["id"]
    assert wait(client, again, limit=60)["status"] == "done"
    assert all(t.is_alive() for t in manager._threads)


def test_storage_errors_anywhere_are_507_not_500(client, monkeypatch):
    """Injected at the storage layer: a full database on insert (an upload), on delete, on any
    other endpoint's write is 507 with one line, and leaves no half-made job."""
    import sqlite3

    from coordsr.server.storage import Store

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "insert", full)
    r = upload(client, png(16, 16), method="bicubic")
    assert r.status_code == 507 and "database or disk is full" in r.json()["detail"]
    assert list(client.app.state.store.jobs_dir.iterdir()) == []
    monkeypatch.undo()
    job = upload(client, png(16, 16), method="bicubic").json()["id"]
    wait(client, job)
    monkeypatch.setattr(Store, "list", full)
    r = client.get("/api/jobs")
    assert r.status_code == 507 and r.json()["detail"].startswith("storage is full")


# --- slow clients -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_eight_trickling_uploads_block_no_one_and_are_cut(tmp_path, test_methods):
    """Over real sockets against uvicorn: eight connections that send half a body, then a byte
    every 5 s, take no place in the queue once their first seconds are past (an upload gets 202),
    and each is answered 408 once its pace is known (bounded: within 30 s)."""
    import socket

    import uvicorn

    app = create_app(tmp_path / "data", 1, Limits(queue_size=8, body_idle_s=8, min_body_rate=1024))
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\nbicubic\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + png(16, 16) + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    slow, answers = [], {}
    stop = threading.Event()
    try:
        for _ in range(8):
            s = socket.create_connection((host, port), timeout=40)
            s.sendall(head + body[:len(body) // 2])
            slow.append(s)

        def trickle(i: int, s: socket.socket) -> None:
            """A byte every 5 s until the server answers; then its whole answer."""
            sent, data = len(body) // 2, b""
            s.settimeout(5.0)
            while not stop.is_set() and not data and sent < len(body) - 1:
                try:
                    data = s.recv(65536) or b"(closed without an answer)"
                except socket.timeout:
                    s.send(body[sent:sent + 1])
                    sent += 1
            s.settimeout(1.0)
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except OSError:
                pass
            answers[i] = data

        threads = [threading.Thread(target=trickle, args=(i, s), daemon=True) for i, s in enumerate(slow)]
        for t in threads:
            t.start()
        time.sleep(3.0)  # past the uploads' first seconds: a trickle holds no place now
        import urllib.request

        req = urllib.request.Request(f"http://{host}:{port}/api/jobs", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202
            job = json.loads(r.read())["id"]
        for t in threads:
            t.join(30)
        assert len(answers) == 8 and all(a.startswith(b"HTTP/1.1 408") for a in answers.values()), answers
        assert all(b"too slow" in a for a in answers.values())
        while app.state.store.get(job).status not in ("done", "failed"):
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        assert app.state.store.get(job).status == "done"
    finally:
        stop.set()
        for s in slow:
            s.close()
        server.should_exit = True
        thread.join(10)
