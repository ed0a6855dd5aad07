"""The web page end to end: a real server (uvicorn, 127.0.0.1, a free port) and a real headless
Chromium (Debian's, driven by Playwright): upload, live progress, result, infinite zoom, download.

Screenshots of each stage go to test-artifacts/web/ (git-ignored), with timings.json.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

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
def page(server):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # one run's pictures, not a mix of runs
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.on("console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None)
        yield page
        context.close()
        browser.close()


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


def test_upload_watch_compare_zoom_download(server, page):
    base, app = server
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
    assert options == list(methods_for("upscale"))  # the page upscales: no denoisers
    page.select_option("#method", "hashgrid")
    assert "hash grid" in page.inner_text("#method-description").lower()

    # A bad upload is answered with the server's message, shown in the page.
    drop_file(page, b"this is not an image", "notes.txt", "text/plain")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.inner_text("#error-text")
    shot("01-error.png", "a non-image upload refused: the server's 422 detail in the red banner")

    # 2. Upload by drag-and-drop and start; the live view fills with events pushed by the server.
    drop_file(page, pattern_png(), "pattern.png")
    assert "pattern.png" in page.inner_text("#drop-text")
    page.fill("#scale", "4")
    page.fill("#steps", "400")
    shot("02-form.png", "the form: file dropped, hashgrid chosen with its description, scale 4, 400 steps")
    start = time.monotonic()
    page.click("#start")
    page.wait_for_function("window.coordsr.previews >= 1", timeout=60_000)
    first_preview_s = time.monotonic() - start
    first_preview_ms_page = page.evaluate("window.coordsr.firstPreviewMs")
    page.wait_for_function("window.coordsr.previews >= 2", timeout=60_000)  # a second preview, pushed
    assert page.evaluate("window.coordsr.progressEvents") >= 2
    assert re.search(r"step \d+ / 400", page.inner_text("#stats")) or not page.is_hidden("#result")
    shot("03-live.png", "fitting: live preview, loss/PSNR curve, step count and time left, cancel button")

    # 3. Done: before/after slider, downloads, and the viewer drawing tiles.
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    job_id = page.evaluate("location.hash").split("/")[-1]
    job = app.state.store.get(job_id)
    assert job.status == "done" and job.step == 400
    page.wait_for_function("document.getElementById('after').naturalWidth === 128 && "
                           "document.getElementById('before').naturalWidth === 128")
    page.fill("#slider", "30")
    page.dispatch_event("#slider", "input")
    assert "30%" in page.get_attribute("#after", "style")
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
