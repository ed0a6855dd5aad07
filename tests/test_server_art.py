"""The Art tab's API in-process (FastAPI's TestClient): pictures drawn while the client waits,
posters and animations as jobs of the queue; and the art page in a real browser."""

from __future__ import annotations

import io
import json
import sqlite3
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from coordsr.server.app import Limits, create_app  # noqa: E402
from coordsr.server.storage import SCHEMA_VERSION, Store  # noqa: E402
from test_server import app_factory, events, wait  # noqa: E402,F401  app_factory: an app of one's own

SMALL = {"depth": 3, "width": 8}
SLOW = {"depth": 8, "width": 64, "w": 4096, "h": 4096}
"""A poster that takes a minute or more (256 tiles): still running when a test stops it."""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with TestClient(create_app(tmp_path_factory.mktemp("art-data"), 1, Limits()),
                    base_url="http://127.0.0.1:7860") as c:  # a Host the server answers
        yield c
    torch.set_num_threads(threads)


def test_options_list_the_words_and_the_limits(client):
    doc = client.get("/api/art/options").json()
    assert "sunset" in doc["palettes"] and "kaleido" in doc["symmetries"] and "mix" in doc["activations"]
    assert doc["limits"]["max_pixels"] > 0
    assert doc["limits"]["max_job_pixels"] == 4096 * 4096 > doc["limits"]["max_pixels"]
    assert client.get("/art").text.count("art.js") == 1


def test_image_is_the_cli_picture_with_its_settings(client, tmp_path):
    from coordsr.cli import main

    r = client.get("/api/art/image.png", params={"seed": 7, "palette": "sunset", "symmetry": "mirror-x",
                                                 "w": 48, "h": 32, **SMALL})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    assert im.size == (48, 32) and json.loads(im.text["coordsr-art"])["art"]["seed"] == 7
    # The command line draws the same pixels from the same settings.
    assert main(["art", "-o", str(tmp_path / "a.png"), "--seed", "7", "--palette", "sunset", "--symmetry",
                 "mirror-x", "--depth", "3", "--width", "8", "--size", "48x32", "-q"]) == 0
    assert np.array_equal(np.asarray(im), np.asarray(Image.open(tmp_path / "a.png")))


def test_animation_is_a_looping_gif(client):
    r = client.get("/api/art/animation.gif", params={"kind": "rotate", "frames": 4, "w": 24, "h": 24, **SMALL})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    im = Image.open(io.BytesIO(r.content))
    assert im.n_frames == 4 and im.size == (24, 24) and im.info["loop"] == 0


@pytest.mark.parametrize("path,params,message", [
    ("/api/art/image.png", {"palette": "nope"}, "unknown palette 'nope'"),
    ("/api/art/image.png", {"w": 4096, "h": 4096}, "render it as a poster job"),
    ("/api/art/image.png", {"depth": 40}, "up to 16 layers"),
    ("/api/art/image.png", {"depth": 0}, "depth"),
    ("/api/art/image.png", {"symmetry": "radial", "fold": 1}, "order"),
    ("/api/art/animation.gif", {"frames": 1000}, "at most 90 frames"),
    ("/api/art/animation.gif", {"kind": "morph"}, "unknown animation 'morph'"),
    ("/api/art/animation.gif", {"frames": 0}, "frames"),
    ("/api/art/animation.gif", {"fps": 0.0001, "frames": 2, "w": 8, "h": 8}, "fps"),  # was a 500
])
def test_bad_settings_are_one_line_422s(client, path, params, message):
    r = client.get(path, params=params)
    assert r.status_code == 422 and message in r.json()["detail"]
    assert "\n" not in r.json()["detail"]


# --- the page in a real browser ------------------------------------------------------------------


from test_web_e2e import server  # noqa: E402,F401  the page's live-server fixture: uvicorn on a free port


@pytest.mark.browser
def test_art_page_previews_and_renders_a_poster_as_a_job_of_the_gallery(server):
    live_server, app = server
    from playwright.sync_api import sync_playwright

    from test_web_e2e import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        try:
            page.goto(f"{live_server}/art")
            page.wait_for_function("document.getElementById('art-preview').dataset.stage === '512x512'",
                                   timeout=120_000)
            first = page.get_attribute("#art-preview", "src")
            # A slider moves: a new preview, small at once, then full size.
            page.fill("#poster-w", "64")
            page.fill("#poster-h", "48")
            page.select_option("#palette", "sunset")
            page.wait_for_function("""(first) => { const i = document.getElementById('art-preview');
                                       return i.src !== first && i.dataset.stage === '512x512'; }""",
                                   arg=first, timeout=120_000)
            # Render poster from the keyboard: a job of the queue, followed here to its end.
            page.focus("#render-poster")
            page.keyboard.press("Enter")
            page.wait_for_selector("#art-gallery .art-item[data-status='done'] img[data-result]", timeout=120_000)
            job_id = page.get_attribute("#art-gallery .art-item", "data-id")
            rec = app.state.store.get(job_id)
            assert rec.kind == "art-poster" and rec.status == "done" and rec.settings["palette"] == "sunset"
            page.wait_for_function("document.querySelector('#art-gallery img').naturalWidth === 64")
            size = page.evaluate("""() => { const i = document.querySelector('#art-gallery img');
                                   return [i.naturalWidth, i.naturalHeight]; }""")
            assert size == [64, 48]
            assert "poster, seed 7, 64x48" in page.inner_text("#art-gallery")
            assert "open it in the gallery" in page.inner_text("#job-note")
            # Over the job limit: one line in the error banner, no job added.
            page.fill("#poster-w", "9000")
            page.fill("#poster-h", "9000")
            page.click("#render-poster")
            page.wait_for_selector("#error:not([hidden])", timeout=60_000)
            assert "over the poster job limit" in page.inner_text("#error-text")
            assert page.locator("#art-gallery .art-item").count() == 1
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "art-page.png"), full_page=True)
            # On a phone: nothing wider than the screen.
            page.set_viewport_size({"width": 375, "height": 800})
            overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            assert page.evaluate(overflow) <= 0
            page.screenshot(path=str(ARTIFACTS / "art-page-phone.png"), full_page=True)
            # The job's link opens it in the main page: finished in the gallery, its picture alone.
            page.set_viewport_size({"width": 1200, "height": 1000})
            page.click(f"#art-gallery .art-item[data-id='{job_id}'] a:text('Open in the gallery')")
            page.wait_for_selector("body[data-ready='1']")
            card = page.locator(f".job-card[data-id='{job_id}']")
            card.wait_for()
            assert card.locator(".badge").inner_text() == "done" and "poster · 64×48" in card.inner_text()
            page.wait_for_selector("#result:not([hidden])", timeout=30_000)
            assert page.is_hidden("#compare-part") and page.is_hidden("#zoom-part")
            assert page.is_hidden("#input-img") and "art-7: poster, 64×48" in page.inner_text("#job-title")
            assert page.is_hidden("#curve") and page.is_hidden("#keep")  # no fit, no curve
            page.wait_for_function("document.getElementById('preview').naturalWidth === 64")
            assert page.get_attribute("#download-result", "href").endswith(f"/api/jobs/{job_id}/result.png?download=1")
            page.locator("#job").screenshot(path=str(ARTIFACTS / "art-job-in-main-page.png"))
            # An animation from the Art page: a GIF of its frames.
            page.go_back()
            page.wait_for_function("document.querySelectorAll('#anim-kind option').length > 0")
            page.fill("#anim-frames", "3")
            page.fill("#anim-w", "32")
            page.fill("#anim-h", "24")
            page.click("#render-animation")
            page.wait_for_selector("#art-gallery .art-item[data-status='done'] img[src$='result.gif']",
                                   timeout=120_000)
            page.wait_for_function("document.querySelector('#art-gallery img').naturalWidth === 32")
            # A long poster, watched and cancelled in the main page: per-tile progress, then cancelled.
            import httpx

            slow = httpx.post(f"{live_server}/api/art/posters", json=SLOW).json()["id"]
            page.goto(f"{live_server}/#job/{slow}")
            page.wait_for_function("/tile \\d+ of 256/.test(document.getElementById('stats').innerText)",
                                   timeout=60_000)
            page.click("#cancel")
            page.wait_for_function("document.getElementById('job-status').innerText.startsWith('cancelled')",
                                   timeout=60_000)
            assert app.state.store.get(slow).status == "cancelled"
        finally:
            browser.close()


# --- posters and animations as jobs of the queue ---------------------------------------------------


def reports(stream: list) -> list[dict]:
    """The progress a client saw: the snapshot's latest report (it may connect after the first
    ones), then each progress event."""
    last = stream[0][1]["last"]
    return ([last] if last else []) + [d for n, d in stream if n == "progress"]


def test_render_art_job_reports_each_tile_of_a_poster_and_each_frame_of_an_animation(tmp_path):
    from coordsr.server.art import render_art_job
    from coordsr.server.storage import JobRecord

    def job(kind, w, h, **more):
        return JobRecord(id="0" * 16, label="t", method="art", settings={"seed": 1, **SMALL, **more}, in_width=0,
                         in_height=0, channels=3, mode="RGB", bit_depth=8, out_width=w, out_height=h, kind=kind)

    seen: list[dict] = []
    render_art_job(job("art-poster", 300, 260), tmp_path, seen.append)
    assert [(e["tile"], e["tiles"], e["stage"]) for e in seen] == [(i, 4, "render") for i in range(1, 5)]
    assert [e["step"] for e in seen] == [256 * 256, 256 * 300, 256 * 300 + 4 * 256, 300 * 260]  # pixels
    assert Image.open(tmp_path / "result.png").size == (300, 260)
    seen.clear()
    render_art_job(job("art-animation", 16, 8, animation="zoom", frames=3, fps=10.0), tmp_path, seen.append)
    assert [(e["step"], e["total"], e["stage"]) for e in seen] == [(1, 3, "frame"), (2, 3, "frame"), (3, 3, "frame")]
    assert Image.open(tmp_path / "result.gif").n_frames == 3

    def stop(event):
        raise KeyboardInterrupt  # what a cancelled job's report does (it raises Cancelled)

    (tmp_path / "x").mkdir()
    with pytest.raises(KeyboardInterrupt):
        render_art_job(job("art-animation", 16, 8, animation="latent", frames=3, fps=10.0), tmp_path / "x", stop)
    assert list((tmp_path / "x").iterdir()) == []  # a stopped animation leaves nothing


def test_poster_job_reaches_done_with_a_png_that_keeps_its_settings(client):
    settings = {"seed": 7, "palette": "sunset", "symmetry": "mirror-x", **SMALL}
    r = client.post("/api/art/posters", json={**settings, "w": 300, "h": 260})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "art-poster" and job["status"] == "queued" and job["input"] is None
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    stream = events(client, job["id"])
    progress = reports(stream)
    assert [p["tile"] for p in progress] == list(range(progress[0]["tile"], 5)) and progress[-1]["tiles"] == 4
    assert progress[-1]["step"] == progress[-1]["total"] == 300 * 260 and progress[-1]["stage"] == "render"
    assert stream[-1][0] == "end" and stream[-1][1]["status"] == "done"
    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["urls"]["result"].endswith("/result.png") and done["viewer"] is None
    r = client.get(done["urls"]["result_download"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert 'filename="art-7-300x260.png"' in r.headers["content-disposition"]
    im = Image.open(io.BytesIO(r.content))
    record = json.loads(im.text["coordsr-art"])
    assert im.size == (300, 260) and record["size"] == [300, 260]
    assert {k: record["art"][k] for k in ("seed", "palette", "symmetry", "depth", "width")} == {
        "seed": 7, "palette": "sunset", "symmetry": "mirror-x", **SMALL}
    # The same pixels as the picture drawn while the client waits (which is the CLI's).
    now = client.get("/api/art/image.png", params={**settings, "w": 300, "h": 260})
    assert np.array_equal(np.asarray(im), np.asarray(Image.open(io.BytesIO(now.content))))
    # A job of the gallery like the others: listed, with its still; no input, no tiles, no GIF.
    listed = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}[job["id"]]
    assert listed["kind"] == "art-poster" and listed["status"] == "done" and listed["label"] == "art-7"
    assert listed["method"] == "art"  # not the registry's upscaler 'cppn'
    assert client.post(f"/api/jobs/{job['id']}/stop").status_code == 409  # no fit to stop and keep
    assert max(Image.open(io.BytesIO(client.get(listed["urls"]["thumb"]).content)).size) == 128
    assert client.get(f"/api/jobs/{job['id']}/result-thumb.png").status_code == 200
    for gone in ("input.png", "result.gif", "tiles/0/0_0.png"):
        r = client.get(f"/api/jobs/{job['id']}/{gone}")
        assert r.status_code == 404 and "\n" not in r.json()["detail"], gone


def test_a_client_that_connects_after_the_end_is_shown_the_last_report(client):
    # A small poster may end before its page subscribes: the stream's snapshot still says how it ended.
    r = client.post("/api/art/posters", json={"seed": 2, **SMALL, "w": 64, "h": 48})
    assert r.status_code == 202, r.text
    assert wait(client, r.json()["id"])["status"] == "done"
    # The status is stored before the end is published to live subscribers; wait for the worker
    # to let the job go, so that this client really connects after the end.
    deadline = time.time() + 30
    while client.app.state.manager.live(r.json()["id"]) is not None and time.time() < deadline:
        time.sleep(0.02)
    stream = events(client, r.json()["id"])
    assert [name for name, _ in stream] == ["state", "end"] and stream[0][1]["ended"]
    last = stream[0][1]["last"]
    assert (last["tile"], last["tiles"], last["step"], last["total"]) == (1, 1, 64 * 48, 64 * 48)


def test_animation_job_gives_a_gif_with_its_frames(client):
    r = client.post("/api/art/animations", json={"seed": 3, "animation": "rotate", "frames": 5, "w": 24, "h": 16,
                                                 **SMALL})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "art-animation" and job["settings"]["frames"] == 5
    stream = events(client, job["id"])
    frames = [(p["step"], p["total"], p["stage"]) for p in reports(stream)]
    assert frames == [(i, 5, "frame") for i in range(frames[0][0], 6)]
    done = stream[-1][1]
    assert done["status"] == "done" and done["urls"]["result"].endswith("/result.gif")
    r = client.get(done["urls"]["result_download"])
    assert r.headers["content-type"] == "image/gif" and 'filename="art-3-rotate-24x16.gif"' in r.headers["content-disposition"]
    im = Image.open(io.BytesIO(r.content))
    assert im.n_frames == 5 and im.size == (24, 16) and im.info["loop"] == 0
    assert client.get(f"/api/jobs/{job['id']}/result.png").status_code == 404
    import zipfile

    z = zipfile.ZipFile(io.BytesIO(client.get("/api/zip", params={"ids": job["id"]}).content))
    assert z.namelist() == ["art-3-rotate-24x16.gif"]


def test_cancel_a_queued_and_a_running_art_job(app_factory, tmp_path):
    client = app_factory()
    running = client.post("/api/art/posters", json=SLOW).json()["id"]
    wait(client, running, statuses=("running",))
    queued = client.post("/api/art/animations", json={"frames": 2, "w": 8, "h": 8, **SMALL}).json()["id"]
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "queued"
    assert client.post(f"/api/jobs/{queued}/cancel").status_code == 202
    job = client.get(f"/api/jobs/{queued}").json()
    assert job["status"] == "cancelled" and "before it started" in job["error"]
    assert client.post(f"/api/jobs/{running}/cancel").status_code == 202
    start = time.monotonic()
    assert wait(client, running, limit=60)["status"] == "cancelled"
    print(f"cancelled a running poster in {time.monotonic() - start:.2f} s (within a tile)")
    assert not (tmp_path / "data" / "jobs" / running / "result.png").exists()
    assert not list((tmp_path / "data" / "jobs" / running).glob(".*.tmp"))
    after = client.post("/api/art/posters", json={"w": 8, "h": 8, **SMALL}).json()["id"]
    assert wait(client, after)["status"] == "done"  # the worker goes on


def test_a_running_art_job_is_failed_by_a_restart(app_factory, tmp_path):
    first = app_factory()
    job_id = first.post("/api/art/posters", json=SLOW).json()["id"]
    wait(first, job_id, statuses=("running",))
    first.__exit__(None, None, None)  # the server stops in the middle of the poster
    job = app_factory().get(f"/api/jobs/{job_id}").json()
    assert job["kind"] == "art-poster" and job["status"] == "failed" and "server stopped" in job["error"]


@pytest.mark.parametrize("path,body,message", [
    ("/api/art/posters", {"w": 5000, "h": 5000}, "over the poster job limit of 16,777,216 pixels (4096x4096)"),
    ("/api/art/posters", {"w": 0}, "w: Input should be greater than or equal to 1"),
    ("/api/art/posters", {"palette": "nope"}, "unknown palette 'nope'"),
    ("/api/art/posters", {"depth": 40}, "up to 16 layers"),
    ("/api/art/posters", {"symmetry": "radial", "fold": 1}, "order"),
    ("/api/art/posters", {"sides": 3}, "sides: Extra inputs are not permitted"),
    ("/api/art/animations", {"frames": 1000}, "the animation job limit"),
    ("/api/art/animations", {"w": 1024, "h": 1024}, "the animation job limit"),
    ("/api/art/animations", {"animation": "morph"}, "unknown animation 'morph'"),
    ("/api/art/animations", {"fps": 0}, "fps"),
    ("/api/art/animations", {"fps": 0.0001, "frames": 2, "w": 8, "h": 8}, "fps"),  # was 202, then "internal error"
])
def test_bad_art_job_settings_are_one_line_422s_and_make_no_job(client, path, body, message):
    before = len(client.get("/api/jobs").json()["jobs"])
    r = client.post(path, json=body)
    assert r.status_code == 422 and message in r.json()["detail"], r.json()
    assert "\n" not in r.json()["detail"]
    assert len(client.get("/api/jobs").json()["jobs"]) == before


SCHEMA_1 = """CREATE TABLE jobs (id TEXT PRIMARY KEY, label TEXT NOT NULL, method TEXT NOT NULL,
    settings TEXT NOT NULL, in_width INTEGER NOT NULL, in_height INTEGER NOT NULL, channels INTEGER NOT NULL,
    mode TEXT NOT NULL, bit_depth INTEGER NOT NULL, out_width INTEGER NOT NULL, out_height INTEGER NOT NULL,
    status TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL, error TEXT,
    step INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, psnr REAL,
    has_field INTEGER NOT NULL DEFAULT 0, first_preview_s REAL);
CREATE INDEX jobs_created ON jobs (created);
PRAGMA user_version=1;"""
"""The table as coordsr wrote it before jobs had a kind."""


def test_a_record_stored_before_kinds_loads_as_an_upscale(app_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "coordsr.sqlite3")
    db.executescript(SCHEMA_1)
    db.execute("INSERT INTO jobs VALUES ('00112233445566aa', 'old', 'bicubic', '{}', 8, 6, 3, 'RGB', 8, 32, 24, "
               "'done', 1700000000.0, 1700000001.0, 1700000002.0, NULL, 0, 0, NULL, 0, NULL)")
    db.commit()
    db.close()
    store = Store(data)
    rec = store.get("00112233445566aa")
    assert rec.kind == "upscale" and rec.label == "old" and rec.result_file == "result.png"
    assert rec.content is None and rec.choice is None  # schema 3's columns, empty for old rows
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    store.close()
    client = app_factory(data)  # the server on the old folder: the old job listed, new art jobs beside it
    old = client.get("/api/jobs/00112233445566aa").json()
    assert old["kind"] == "upscale" and old["input"]["width"] == 8 and old["output"]["width"] == 32
    new = client.post("/api/art/posters", json={"w": 8, "h": 8, **SMALL}).json()["id"]
    assert wait(client, new)["status"] == "done"
    assert [j["kind"] for j in client.get("/api/jobs").json()["jobs"]] == ["art-poster", "upscale"]


def test_a_gif_frame_lasts_at_most_its_16_bit_delay(tmp_path):
    """GIF delays are 16 bits of 1/100 s: the slowest fps is written, a slower one refused in one line."""
    from PIL import Image

    from coordsr.art.writers import GIF_MIN_FPS, GifWriter
    from coordsr.errors import CoordsrError

    with GifWriter(tmp_path / "slow.gif", (4, 4), GIF_MIN_FPS) as w:
        for _ in range(2):
            w.write(np.zeros((4, 4, 3), np.uint8))
    assert Image.open(tmp_path / "slow.gif").info["duration"] == 655350
    with pytest.raises(CoordsrError, match="fps must be at least"):
        GifWriter(tmp_path / "slower.gif", (4, 4), GIF_MIN_FPS / 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.gif"]
