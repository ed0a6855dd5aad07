"""The Art tab's API in-process (FastAPI's TestClient), and the art page in a real browser."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from coordsr.server.app import Limits, create_app  # noqa: E402

SMALL = {"depth": 3, "width": 8}


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
    ("/api/art/image.png", {"w": 4096, "h": 4096}, "over the page's limit"),
    ("/api/art/image.png", {"depth": 40}, "up to 16 layers"),
    ("/api/art/image.png", {"depth": 0}, "depth"),
    ("/api/art/image.png", {"symmetry": "radial", "fold": 1}, "order"),
    ("/api/art/animation.gif", {"frames": 1000}, "at most 90 frames"),
    ("/api/art/animation.gif", {"kind": "morph"}, "unknown animation 'morph'"),
    ("/api/art/animation.gif", {"frames": 0}, "frames"),
])
def test_bad_settings_are_one_line_422s(client, path, params, message):
    r = client.get(path, params=params)
    assert r.status_code == 422 and message in r.json()["detail"]
    assert "\n" not in r.json()["detail"]


# --- the page in a real browser ------------------------------------------------------------------


from test_web_e2e import server  # noqa: E402,F401  the page's live-server fixture: uvicorn on a free port


@pytest.mark.browser
def test_art_page_previews_renders_a_poster_and_shows_errors(server):
    live_server, _ = server
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
            page.click("#render-poster")
            page.wait_for_selector("#art-gallery .art-item img", timeout=120_000)
            size = page.evaluate("""() => { const i = document.querySelector('#art-gallery img');
                                   return [i.naturalWidth, i.naturalHeight]; }""")
            assert size == [64, 48]
            assert "seed 7, 64x48" in page.inner_text("#art-gallery")
            # Over the page's limit: one line in the error banner, nothing added.
            page.fill("#poster-w", "9000")
            page.fill("#poster-h", "9000")
            page.click("#render-poster")
            page.wait_for_selector("#error:not([hidden])", timeout=60_000)
            assert "over the page's limit" in page.inner_text("#error-text")
            assert page.locator("#art-gallery .art-item").count() == 1
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "art-page.png"), full_page=True)
        finally:
            browser.close()
