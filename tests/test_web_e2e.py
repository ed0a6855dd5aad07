"""The web page end to end: a real server (uvicorn, 127.0.0.1, a free port) and a real headless
Chromium (Debian's, driven by Playwright): upload, live progress, result, infinite zoom, download.

Screenshots of each stage go to test-artifacts/web/ (git-ignored), with timings.json.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_server import drawing_png  # noqa: E402  the same 32 px smiley the API tests upload

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def skip_reason() -> str | None:
    if sync_playwright is None:
        return "Playwright for Python is not installed (pip install playwright; no `playwright install`)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pattern_png() -> bytes:
    """32x32 RGB with edges and texture: the upscaled field differs visibly from bicubic."""
    from coordsr.images import encode_image_bytes

    yy, xx = np.mgrid[0:32, 0:32] / 32
    r = 0.5 + 0.5 * np.sin(14 * xx) * np.cos(9 * yy)
    g = (np.hypot(xx - 0.5, yy - 0.45) < 0.3).astype(np.float32) * 0.8 + 0.1
    b = 0.5 + 0.4 * np.sign(np.sin(20 * (xx + yy)))
    return encode_image_bytes(np.stack([r, g, b], -1).astype(np.float32))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app under uvicorn in a background thread; yields its base URL and the app."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    import torch
    import uvicorn

    from coordsr.server.app import Limits, create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fit shares the machine's cores with Chromium
    app = create_app(tmp_path_factory.mktemp("web-data"), 1, Limits())
    app.state.manager.preview_interval = 0.5
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(10)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser(server):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # one run's pictures, not a mix of runs
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, **context):
    """A fresh browser context (its own storage, viewport and colour scheme) and a page in it."""
    context = browser.new_context(**{"viewport": {"width": 1200, "height": 1000}, "accept_downloads": True,
                                     **context})
    page = context.new_page()
    page.on("console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: print(f"[browser exception] {e}"))
    return page


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


def pick_method(page, name: str) -> None:
    """Open "Advanced" (if it is closed) and name the method there, as a user does."""
    if not page.evaluate("document.getElementById('advanced').open"):
        page.click("#advanced > summary")
    page.select_option("#method", name)


def drop_file(page, data: bytes, name: str, mime: str = "image/png") -> None:
    """Drag-and-drop a file onto the drop zone, the way a desktop drag does."""
    page.evaluate(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const zone = document.getElementById("drop");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )


def test_upload_watch_compare_zoom_download(server, page, monkeypatch):
    base, app = server
    # A fit long enough to watch: the default stop (--until auto) ends this easy pattern near
    # step 200, before the page has shown two previews; here it runs the 400 steps asked for.
    monkeypatch.setattr(importlib.import_module("coordsr.fit").AutoStop, "threshold", -1.0)
    shots = []

    def shot(name: str, what: str, **kw) -> None:
        path = ARTIFACTS / name
        page.screenshot(path=str(path), **kw)
        shots.append({"file": str(path), "shows": what})

    tiles: list[tuple[str, int]] = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)

    # 1. The page: methods from the registry with their descriptions.
    page.goto(base)
    page.wait_for_function("document.querySelectorAll('#method option').length > 0")
    from coordsr.methods import methods_for

    options = page.eval_on_selector_all("#method option", "els => els.map(e => e.value)")
    assert options == ["", *methods_for("upscale")]  # "" = picked for the kind; no denoisers
    pick_method(page, "hashgrid")
    from coordsr.server.page_api import method_notes

    notes = page.inner_text("#method-description")
    assert method_notes()["hashgrid"]["plain"] in notes and method_notes()["hashgrid"]["measured"] in notes
    assert page.input_value("#steps") == str(method_notes()["hashgrid"]["page_steps"])

    # A bad upload is answered with the server's message, shown in the page.
    drop_file(page, b"this is not an image", "notes.txt", "text/plain")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.inner_text("#error-text")
    assert page.locator("#chosen .no-preview").count() == 1  # no broken-image icon for it
    shot("01-error.png", "a non-image upload refused: the server's 422 detail in the red banner")

    # 2. Upload by drag-and-drop and start; the live view fills with events pushed by the server.
    drop_file(page, pattern_png(), "pattern.png")
    page.wait_for_function("document.getElementById('chosen').innerText.includes('32×32 → 128×128')")
    assert "pattern.png" in page.inner_text("#chosen")
    assert page.is_hidden("#error")  # a new choice clears the old error: no stale banner
    page.fill("#scale", "4")
    page.fill("#steps", "400")
    shot("02-form.png", "the form: file dropped, hashgrid chosen with its description, scale 4, 400 steps")
    page.locator("#new").screenshot(path=str(ARTIFACTS / "02-form-card.png"))
    start = time.monotonic()
    page.click("#start")
    wait_live(page, app, "window.coordsr.previews >= 1")
    first_preview_s = time.monotonic() - start
    first_preview_ms_page = page.evaluate("window.coordsr.firstPreviewMs")
    wait_live(page, app, "window.coordsr.previews >= 2")  # a second preview, pushed
    assert page.evaluate("window.coordsr.progressEvents") >= 2
    assert re.search(r"step \d+ / 400", page.inner_text("#stats")) or not page.is_hidden("#result")
    shot("03-live.png", "fitting: live preview, loss/PSNR curve, step count and time left, cancel button")
    page.locator("#job").screenshot(path=str(ARTIFACTS / "03-live-card.png"))

    # 3. Done: before/after slider, downloads, and the viewer drawing tiles.
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    job_id = page.evaluate("location.hash").split("/")[-1]
    job = app.state.store.get(job_id)
    assert job.status == "done" and job.step == 400
    page.wait_for_function("document.getElementById('after').naturalWidth === 128 && "
                           "document.getElementById('before').naturalWidth === 128")
    page.fill("#slider", "30")
    page.dispatch_event("#slider", "input")
    assert "30%" in page.get_attribute("#after-layer", "style")
    page.wait_for_function("window.coordsr.tilesDrawn > 0 && "
                           "window.coordsr.viewer.world.getItemAt(0).getFullyLoaded()", timeout=30_000)
    page.locator("#result").scroll_into_view_if_needed()
    shot("04-result.png", "done: bicubic | hashgrid slider at 30%, downloads, the viewer zoomed out",
         full_page=True)

    # 4. Zoom far past the input, on the edge of the disc: new tiles are requested, rendered from
    # the field, answered and drawn.
    def zoom(per_input_pixel: float | None) -> list[tuple[str, int]]:
        """Zoom so that one input pixel spans `per_input_pixel` screen pixels (None: the deepest)."""
        seen, drawn = len(tiles), page.evaluate("window.coordsr.tilesDrawn")
        page.evaluate("""([k, inputWidth]) => {
            const viewer = window.coordsr.viewer, vp = viewer.viewport;
            const image = viewer.world.getItemAt(0);
            const zoom = k === null ? vp.getMaxZoom()
                : image.imageToViewportZoom(k * inputWidth / image.getContentSize().x);
            vp.zoomTo(zoom, null, true);
            vp.panTo(new OpenSeadragon.Point(0.72, 0.45), true);  // near the disc's right edge
        }""", [per_input_pixel, 32])
        page.wait_for_function(f"window.coordsr.tilesDrawn > {drawn}", timeout=30_000)
        page.wait_for_function("window.coordsr.viewer.world.getItemAt(0).getFullyLoaded()", timeout=30_000)
        page.wait_for_timeout(300)
        return tiles[seen:]

    def viewer_shot(name: str, what: str) -> None:
        page.locator("#viewer").scroll_into_view_if_needed()
        hint, viewer = page.locator("#zoom-hint").bounding_box(), page.locator("#viewer").bounding_box()
        clip = {"x": viewer["x"], "y": hint["y"], "width": viewer["width"],
                "height": viewer["y"] + viewer["height"] - hint["y"]}
        shot(name, what, clip=clip)

    new = zoom(40)
    viewer_shot("05-zoom-40x.png", "viewer, 1 input pixel = 40 screen pixels: the disc edge drawn by the field")
    new += zoom(1000)
    viewer_shot("06-zoom-1000x.png", "viewer, 1 input pixel = 1000 screen pixels: still drawn, still smooth")
    new += zoom(None)
    levels = [int(re.search(r"/tiles/(\d+)/", url).group(1)) for url, _ in new]
    assert new and all(status == 200 for _, status in new), new
    assert max(levels) == 20, levels  # the deepest level: 8192 virtual pixels per output pixel
    assert app.state.tiles.rendered >= len(set(url for url, _ in new))  # drawn on demand, not stored
    hint = page.inner_text("#zoom-hint")
    per_input = float(re.search(r"one input pixel is now ([\d.]+)", hint).group(1))
    assert per_input > 10_000, hint

    # 5. Downloads: the upscaled image and the field file.
    with page.expect_download() as info:
        page.click("#download-result")
    result_path = ARTIFACTS / info.value.suggested_filename
    info.value.save_as(result_path)
    assert info.value.suggested_filename == "pattern-hashgrid-128x128.png"
    from coordsr.images import read_image

    assert read_image(result_path).pixels.shape == (128, 128, 3)
    with page.expect_download() as info:
        page.click("#download-field")
    field_path = ARTIFACTS / info.value.suggested_filename
    info.value.save_as(field_path)
    from coordsr.field import Field

    assert Field.load(field_path).meta.width == 32
    page.select_option("#format", "jpeg")
    with page.expect_download() as info:
        page.click("#download-result")
    assert info.value.suggested_filename == "pattern-hashgrid-128x128.jpg"
    jpeg_path = ARTIFACTS / info.value.suggested_filename
    info.value.save_as(jpeg_path)
    assert read_image(jpeg_path).format == "JPEG"

    # 6. The gallery holds the job; the page reloaded re-opens it from the URL.
    page.reload()
    page.wait_for_selector(f".job-card[data-id='{job_id}']")
    page.wait_for_function("window.coordsr.tilesDrawn > 0", timeout=30_000)
    shot("07-reopened.png", "after a reload: the job re-opened from its URL (#job/<id>) and the gallery card",
         full_page=True)

    # 7. Delete it from the gallery.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f".job-card[data-id='{job_id}'] button.delete")
    page.wait_for_selector(f".job-card[data-id='{job_id}']", state="detached")
    assert page.is_hidden("#job") and app.state.store.get(job_id) is None

    timings = {"upload_to_first_preview_s_browser": round(first_preview_s, 3),
               "submit_to_first_preview_ms_page": round(first_preview_ms_page, 1),
               "upload_to_first_preview_s_server": round(job.first_preview_s, 3),
               "tile_requests_after_zoom": len(new), "screenshots": shots}
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2))
    print(json.dumps(timings, indent=2))


# --- the defects, one test each ------------------------------------------------------------


def small_png(w: int = 24, h: int = 16, seed: int = 0) -> bytes:
    from coordsr.images import encode_image_bytes

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(7 * xx + k) * np.cos(4 * yy) * 0.4 + 0.5 for k in range(3)], -1)
    return encode_image_bytes((img + 0.05 * rng.random((h, w, 3))).astype(np.float32))


def wait_ready(page, base: str) -> None:
    page.goto(base)
    page.wait_for_selector("body[data-ready='1']")


def shown_job_id(page) -> str:
    return page.evaluate("location.hash").split("/")[-1]


def wait_end(app, job_id: str, limit: float = 120) -> str:
    deadline = time.monotonic() + limit
    while True:
        rec = app.state.store.get(job_id)
        if rec.status in ("done", "failed", "cancelled"):
            return rec.status
        assert time.monotonic() < deadline, f"job {job_id} stuck in {rec.status}"
        time.sleep(0.05)


PAGE_STATE = """() => ({
    counters: window.coordsr, hash: location.hash, jobShown: !document.getElementById('job').hidden,
    status: document.getElementById('job-status').innerText,
    error: document.getElementById('error').hidden ? null : document.getElementById('error-text').innerText,
})"""


def wait_live(page, app, expression: str, timeout: float = 60_000) -> None:
    """Wait for a live-view counter (window.coordsr), polled on a timer: the default rAF polling
    stops re-checking whenever headless Chromium produces no frame, though the page goes on
    receiving its events. On a timeout, say what the page and the server had, so a failure that
    does not come back names its cause (does the page show the job, did it get events, did the
    job run and make previews?)."""
    try:
        page.wait_for_function(expression, timeout=timeout, polling=100)
        return
    except Exception as exc:  # playwright's TimeoutError
        if "Timeout" not in type(exc).__name__:
            raise
    jobs = [{"id": r.id, "label": r.label, "method": r.method, "content": r.content, "status": r.status,
             "step": r.step, "total": r.total, "first_preview_s": r.first_preview_s,
             "ran_s": r.finished - r.started if r.finished and r.started else None}
            for r in app.state.store.list(3)]
    try:  # a timed evaluation: a page whose main thread is stuck is reported, not waited for
        shown = page.wait_for_function(PAGE_STATE, timeout=5_000).json_value()
    except Exception as exc:
        shown = f"the page does not answer ({type(exc).__name__})"
    try:
        page.screenshot(path=str(ARTIFACTS / "live-timeout.png"), timeout=5_000)
    except Exception:
        pass
    raise AssertionError(f"{expression} still false after {timeout / 1000:g} s; page: {shown}; "
                         f"newest jobs: {jobs}")


def test_keyboard_only_upload_and_start(server, page):
    base, app = server
    chosen = []
    # registered before any key is pressed: Playwright's interception starts with the first handler
    page.on("filechooser", lambda fc: (chosen.append(fc), fc.set_files(
        files=[{"name": "keys.png", "mimeType": "image/png", "buffer": small_png()}])))
    wait_ready(page, base)
    for _ in range(6):  # the file button comes within the first few stops of Tab
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file":
            break
    assert page.evaluate("document.activeElement.id") == "file"
    page.keyboard.press("Enter")  # the dialog opens; the handler above plays the user choosing a file
    page.wait_for_function("document.getElementById('chosen').innerText.includes('24×16 → 96×64')")
    assert len(chosen) == 1
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "start":
            break
    assert page.evaluate("document.activeElement.id") == "start"
    page.keyboard.press("Enter")
    page.wait_for_selector("#job:not([hidden])")
    # the job is scrolled to and its title focused, so a keyboard user continues from there
    page.wait_for_function("document.activeElement.id === 'job-title'")
    assert "keys" in page.inner_text("#job-title")
    assert wait_end(app, shown_job_id(page)) == "done"
    page.wait_for_selector("#result:not([hidden])")
    page.screenshot(path=str(ARTIFACTS / "10-keyboard.png"))


def test_phone_layout_has_no_horizontal_overflow(server, browser):
    base, app = server
    page = new_page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                    has_touch=True)
    try:
        wait_ready(page, base)
        overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        assert page.evaluate(overflow) <= 0
        pick_method(page, "hashgrid")  # the longest notes and every setting shown
        drop_file(page, pattern_png(), "phone.png")
        page.fill("#steps", "30")
        assert page.evaluate(overflow) <= 0
        page.screenshot(path=str(ARTIFACTS / "11-phone-form.png"), full_page=True)
        page.click("#start")
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        page.wait_for_function("window.coordsr.tilesDrawn > 0", timeout=30_000)
        assert page.evaluate(overflow) <= 0
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map((e) => e.id || e.className || e.tagName)""")
        assert wide == []
        page.locator("#job").screenshot(path=str(ARTIFACTS / "12-phone-result.png"))
    finally:
        page.context.close()


def test_every_method_starts_with_its_own_defaults(server, page):
    from coordsr.methods import methods_for

    METHODS = methods_for("upscale")  # the page offers the upscalers; denoisers are the CLI's
    base, app = server
    wait_ready(page, base)
    drop_file(page, small_png(16, 12), "each.png")
    page.fill("#scale", "2")
    started = {}
    for name, cls in METHODS.items():
        pick_method(page, name)
        assert page.evaluate("document.getElementById('job-form').checkValidity()"), name
        before = page.evaluate("window.coordsr.opened")
        page.click("#start")
        page.wait_for_function(f"window.coordsr.opened > {before}")
        assert page.is_hidden("#error"), page.inner_text("#error-text")
        job_id = shown_job_id(page)
        rec = app.state.store.get(job_id)
        assert rec.method == name
        started[name] = job_id
        if cls.fits_field:  # startable is the point here: do not spend the machine on the fit
            app.state.manager.cancel(job_id)
    for name, job_id in started.items():
        assert wait_end(app, job_id) == ("cancelled" if METHODS[name].fits_field else "done"), name
    # the registry's own default for zeroshot (steps -1, its preset) was not overridden
    assert app.state.store.get(started["zeroshot"]).settings.get("steps") is None


def test_field_link_comparison_navigation_belong_to_the_job_shown(server, page):
    base, app = server
    wait_ready(page, base)
    drop_file(page, small_png(20, 20, seed=3), "nav.png")
    pick_method(page, "hashgrid")
    page.fill("#steps", "40")
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    field_job = shown_job_id(page)
    assert page.is_visible("#download-field")
    assert field_job in page.get_attribute("#download-field", "href")
    pick_method(page, "pretrained")
    page.click("#start")
    page.wait_for_function(f"location.hash !== '#job/{field_job}'")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    plain_job = shown_job_id(page)
    # no field: the link is hidden and points nowhere (it used to keep the hashgrid job's)
    assert page.is_hidden("#download-field") and page.get_attribute("#download-field", "href") is None
    # the comparison offers the other finished job of the same image
    page.wait_for_function("document.querySelectorAll('#before-choice option').length >= 2")
    page.select_option("#before-choice", index=1)
    assert field_job in page.get_attribute("#before", "src")
    assert page.inner_text("#before-tag") == "hashgrid"
    page.click("#cmp-in")
    page.click("#cmp-in")
    assert "scale(" in page.get_attribute("#after", "style")
    page.screenshot(path=str(ARTIFACTS / "13-compare-two-jobs.png"), clip={
        **{k: v for k, v in page.locator("#result").bounding_box().items() if k in ("x", "y", "width")},
        "height": 560})
    # side by side: a second deep-zoom viewer of the hashgrid result moves with the first
    page.select_option("#twin-choice", field_job)
    page.wait_for_function("window.coordsr.twin && window.coordsr.twin.world.getItemCount() === 1")
    page.evaluate("window.coordsr.viewer.viewport.zoomTo(window.coordsr.viewer.viewport.getZoom() * 8, null, true)")
    page.wait_for_function("""() => {
        const a = window.coordsr.viewer.viewport.getBounds(true), b = window.coordsr.twin.viewport.getBounds(true);
        return Math.abs(a.width - b.width) < 1e-6 * Math.max(1, a.width) && Math.abs(a.x - b.x) < 1e-6 + 1e-3 * a.width;
    }""")
    page.wait_for_function("window.coordsr.twin.world.getItemAt(0).getFullyLoaded() && "
                           "window.coordsr.viewer.world.getItemAt(0).getFullyLoaded()", timeout=30_000)
    page.locator(".viewers").screenshot(path=str(ARTIFACTS / "17-side-by-side.png"))
    # gallery Open of the field job: scrolled to, focused, its own field link
    page.click(f".job-card[data-id='{field_job}'] button.open")
    page.wait_for_function(f"location.hash === '#job/{field_job}'")
    page.wait_for_function("document.getElementById('job-title').innerText.includes('Hash grid')")
    page.wait_for_selector("#download-field:not([hidden])")
    page.wait_for_function("document.activeElement.id === 'job-title'")
    assert field_job in page.get_attribute("#download-field", "href")
    label = page.get_attribute(f".job-card[data-id='{field_job}'] button.open", "aria-label")
    assert "nav" in label and "hashgrid" in label
    # the form's settings survive a reload (this job's hashgrid and 40 steps were saved on start)
    pick_method(page, "hashgrid")
    page.fill("#steps", "40")
    page.fill("#scale", "3")
    page.dispatch_event("#scale", "change")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.input_value("#method") == "hashgrid" and page.input_value("#steps") == "40"
    assert page.input_value("#scale") == "3"
    page.wait_for_selector("#result:not([hidden])")  # and the URL's job is shown again
    assert field_job in page.get_attribute("#download-field", "href")
    # Back shows the pretrained job again (view, not only the hash); Forward the field job
    page.go_back()
    page.wait_for_function(f"location.hash === '#job/{plain_job}'")
    page.wait_for_function("document.getElementById('job-title').innerText.includes('Pretrained')")
    page.wait_for_selector("#result:not([hidden])")
    assert page.is_hidden("#download-field")
    page.go_forward()
    page.wait_for_function("document.getElementById('job-title').innerText.includes('Hash grid')")
    page.wait_for_selector("#download-field:not([hidden])")
    assert field_job in page.get_attribute("#download-field", "href")


def test_stop_and_keep_cancelling_and_queue_position(server, page):
    base, app = server
    wait_ready(page, base)
    drop_file(page, pattern_png(), "long.png")
    pick_method(page, "hashgrid")
    page.fill("#steps", "20000")
    page.click("#start")
    wait_live(page, app, "window.coordsr.previews >= 1")
    running = shown_job_id(page)
    page.click("#start")  # a second job waits for the only worker
    page.wait_for_function(f"location.hash !== '#job/{running}'")
    queued = shown_job_id(page)
    page.wait_for_function("document.getElementById('job-status').innerText.includes('1st in line')")
    assert page.is_disabled("#keep")  # a waiting job has nothing to keep yet
    assert page.get_attribute("#job-status", "aria-live") == "polite"
    page.click("#cancel")
    assert "Cancelling" in page.inner_text("#cancel")
    page.wait_for_function("document.getElementById('job-status').innerText.startsWith('cancelled')")
    assert app.state.store.get(queued).status == "cancelled"
    page.click(f".job-card[data-id='{running}'] button.open")
    page.wait_for_function(f"location.hash === '#job/{running}'")
    page.wait_for_selector("#keep:not([hidden]):not([disabled])")
    page.click("#keep")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    status = page.inner_text("#job-status")
    assert re.search(r"stopped at step \d+ of 20000", status), status
    assert "fit to the input" in status and "not the output's quality" in status
    rec = app.state.store.get(running)
    assert rec.status == "done" and rec.has_field and rec.step < 20000


def test_paste_examples_batch_zip_and_multi_delete(server, page):
    base, app = server
    wait_ready(page, base)
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "image.png", { type: "image/png" }));
        document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }));
    }""", base64.b64encode(small_png(30, 20)).decode())
    page.wait_for_function("document.getElementById('chosen').innerText.includes('30×20 → 120×80')")
    assert "pasted-1.png" in page.inner_text("#chosen")
    page.wait_for_selector("#examples button")
    page.click("#examples button:text('chelsea')")
    page.wait_for_function("document.getElementById('chosen').innerText.includes('chelsea.png')")
    from coordsr.server.page_api import sample_size

    w, h = sample_size("chelsea")  # the size line fills in once the picture is decoded
    page.wait_for_function(f"document.getElementById('chosen').innerText.includes('{w}×{h} → {4 * w}×{4 * h}')")
    # a batch: two files at once, bicubic, then one zip of both results
    page.set_input_files("#file", files=[
        {"name": "one.png", "mimeType": "image/png", "buffer": small_png(seed=1)},
        {"name": "two.png", "mimeType": "image/png", "buffer": small_png(seed=2)}])
    pick_method(page, "bicubic")
    assert page.inner_text("#start") == "Start 2 jobs"
    page.click("#start")
    page.wait_for_selector("#batch:not([hidden])")
    page.wait_for_selector("#batch-zip:text('2 finished results')", timeout=30_000)
    with page.expect_download() as info:
        page.click("#batch-zip")
    zip_path = ARTIFACTS / "batch.zip"
    info.value.save_as(zip_path)
    import zipfile

    assert sorted(zipfile.ZipFile(zip_path).namelist()) == ["one-bicubic-96x64.png", "two-bicubic-96x64.png"]
    # the gallery shows results with method, scale, time and duration; filter, select, delete
    card = page.locator(".job-card", has_text="one").first
    assert "bicubic · ×4 · 96×64" in card.inner_text() and "took" in card.inner_text()
    assert "result-thumb" in card.locator("img").get_attribute("src")
    page.fill("#gallery-filter", "bicubic")
    page.wait_for_function("[...document.querySelectorAll('.job-card')].every((c) => "
                           "c.querySelector('.meta').innerText.startsWith('bicubic'))")
    page.locator("#gallery-section").screenshot(path=str(ARTIFACTS / "14-gallery.png"))
    page.click("#select-all")
    n = page.locator(".job-card").count()
    assert page.inner_text("#selection-note").startswith(f"{n} selected")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-selected")
    page.wait_for_function("document.querySelectorAll('.job-card').length === 0")
    assert not [r for r in app.state.store.list(1000) if r.method == "bicubic"]


def test_labels_names_and_dark_mode(server, browser):
    base, app = server
    page = new_page(browser, color_scheme="dark")
    try:
        wait_ready(page, base)
        page.click("#examples button:text('chelsea')")  # a real photo, the default method, x4
        page.wait_for_function("document.getElementById('chosen').innerText.includes('chelsea.png')")
        page.locator("#new").screenshot(path=str(ARTIFACTS / "16-dark-form.png"))
        page.click("#start")
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        page.wait_for_function("document.getElementById('after').complete && document.getElementById('before').complete")
        unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, button, a[href], canvas, img')]
            .filter((e) => (e.offsetParent !== null || e.id === 'file') && !e.closest('#viewer'))  // the viewer is one labelled image
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.alt
                           && !(e.textContent || '').trim())
            .map((e) => e.outerHTML.slice(0, 80))""")
        assert unnamed == []
        generic = page.evaluate("[...document.querySelectorAll('img')].filter((i) => i.offsetParent && "
                                "['upscaled', 'bicubic', 'current reconstruction', ''].includes(i.alt)).length")
        assert generic == 0
        bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
        r, g, b = (int(v) for v in re.findall(r"\d+", bg)[:3])
        assert max(r, g, b) < 60, bg  # the system asked for dark, the page is dark
        page.click("#cmp-in")  # twice the fitted size: the difference shows in the fur
        page.locator("#job").screenshot(path=str(ARTIFACTS / "15-dark-job.png"))
    finally:
        page.context.close()


def test_kind_of_picture_by_keyboard_result_says_why_on_a_checkerboard(server, browser):
    base, app = server
    checked = "document.querySelector('input[name=content]:checked').value"
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    page = new_page(browser, viewport={"width": 1280, "height": 800})
    try:
        wait_ready(page, base)
        assert page.evaluate(checked) == "auto"  # the default: the server looks at the picture
        assert not page.evaluate("document.getElementById('advanced').open")  # the method list is collapsed
        assert page.input_value("#method") == ""
        page.focus("input[name=content][value=auto]")
        page.keyboard.press("ArrowDown")  # a radio group: the arrows move the choice
        assert page.evaluate(checked) == "photo"
        assert "Each photo is checked when it arrives" in page.inner_text("#content-hint")
        page.select_option("#degradation", "clean")  # how the photo arrived, said: the model named
        assert "Pretrained" in page.inner_text("#content-hint")
        page.select_option("#degradation", "auto")
        page.focus("input[name=content][value=photo]")
        page.keyboard.press("ArrowDown")
        assert page.evaluate(checked) == "drawing"
        assert not page.is_visible("#degradation")  # a drawing has its own model
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowUp")
        assert page.evaluate(checked) == "auto"
        drop_file(page, drawing_png(), "smiley.png")
        page.fill("#scale", "8")
        page.wait_for_function("document.getElementById('chosen').innerText.includes('32×32 → 256×256')")
        page.click("#start")
        page.wait_for_selector("#job-choice:not([hidden])")
        words = page.inner_text("#job-choice")
        assert words.startswith("Drawing model: detected a drawing (transparent background"), words
        job_id = shown_job_id(page)
        assert app.state.store.get(job_id).method == "drawing"
        assert wait_end(app, job_id) == "done"
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        page.wait_for_function("window.coordsr.tilesDrawn > 0", timeout=30_000)
        for where in ("#after-layer", "#before-layer", "#viewer"):  # transparency on a checkerboard
            assert "conic-gradient" in page.evaluate(f"getComputedStyle(document.querySelector('{where}')).backgroundImage")
        page.locator("#job").screenshot(path=str(ARTIFACTS / "17-drawing-job.png"))
        page.screenshot(path=str(ARTIFACTS / "17-drawing-1280.png"), full_page=True)
        # Advanced names the method, and it wins over the kind
        pick_method(page, "bicubic")
        assert "Bicubic runs" in page.inner_text("#content-hint")
        before = page.evaluate("window.coordsr.opened")
        page.click("#start")
        page.wait_for_function(f"window.coordsr.opened > {before}")
        assert app.state.store.get(shown_job_id(page)).method == "bicubic"
        assert page.inner_text("#job-choice") == "Bicubic: the method you chose"
    finally:
        page.context.close()
    page = new_page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                    has_touch=True, color_scheme="dark")
    try:
        wait_ready(page, base)
        page.click("#advanced > summary")
        assert page.evaluate(overflow) <= 0
        page.locator("#new").screenshot(path=str(ARTIFACTS / "18-phone-kinds-dark.png"))
        page.goto(f"{base}#job/{job_id}")
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        assert page.evaluate(overflow) <= 0
        page.locator("#job").screenshot(path=str(ARTIFACTS / "19-phone-drawing-dark.png"))
    finally:
        page.context.close()
