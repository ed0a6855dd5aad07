"""Issue 17: a streamed Deep Zoom pyramid opens in OpenSeadragon (the copy the web page ships),
served by a plain static file server, in a real headless Chromium: the viewer opens the .dzi,
loads tiles from every level it asks for, and none fails."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from coordsr.stream import Rows, write_rows

from test_web_e2e import CHROMIUM, CHROMIUM_ARGS, skip_reason, sync_playwright

pytestmark = pytest.mark.browser

OSD = Path(__file__).resolve().parents[1] / "src" / "coordsr" / "server" / "static" / "vendor" / "openseadragon"

PAGE = """<!doctype html><html><body style="margin:0">
<div id="v" style="width:600px;height:400px"></div>
<script src="openseadragon.min.js"></script>
<script>
  window.seen = {open: false, loaded: 0, failed: 0, levels: new Set(), full: false};
  const viewer = OpenSeadragon({id: "v", tileSources: "big.dzi", drawer: "canvas", showNavigationControl: false,
                                immediateRender: true, animationTime: 0});
  viewer.addHandler("open", () => { window.seen.open = true;
    viewer.world.getItemAt(0).addHandler("fully-loaded-change", (e) => { window.seen.full = e.fullyLoaded; }); });
  viewer.addHandler("open-failed", () => { window.seen.failed += 1000; });
  viewer.addHandler("tile-loaded", (e) => { window.seen.loaded += 1; window.seen.levels.add(e.tile.level); });
  viewer.addHandler("tile-load-failed", () => { window.seen.failed += 1; });
</script></body></html>"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on the test's output
        pass


def test_openseadragon_opens_a_streamed_dzi(tmp_path):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (700, 1300, 3), dtype=np.uint8)
    write_rows(tmp_path / "big.dzi", Rows(700, 1300, 3, np.dtype(np.uint8), iter([(0, a)])))
    shutil.copy(OSD / "openseadragon.min.js", tmp_path)
    (tmp_path / "index.html").write_text(PAGE)
    served: list[tuple[int, str]] = []

    class Logged(Quiet):
        def log_request(self, code="-", size="-"):
            served.append((int(code), self.path))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Logged, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
            page.wait_for_function("window.seen && window.seen.open && window.seen.full", timeout=60_000)
            seen = page.evaluate("({...window.seen, levels: [...window.seen.levels]})")
            browser.close()
    finally:
        httpd.shutdown()
        thread.join(5)
    assert seen["failed"] == 0 and seen["loaded"] > 0, seen
    asked = [(code, path) for code, path in served if path.endswith(".dzi") or "big_files/" in path]
    assert len(asked) > 1 and all(code == 200 for code, _ in asked), served  # the descriptor and tiles
    assert max(seen["levels"]) >= 9  # the viewer reached the detailed levels (full size is 11)
