"""How soon the web page shows something, and how long a job takes with the page's budgets.

For each case, an image is uploaded to the app in-process (FastAPI's TestClient, one worker, a
fresh data folder) with the settings the page proposes (method_notes.json's ``page_steps`` for
per-image fits, scale 4), and three times are measured from the start of the upload:

- ``bicubic_s``: the bicubic picture the page shows at once (``GET /api/jobs/{id}/bicubic-now.png``);
- ``first_preview_s``: the first live picture of the method itself (the job's ``first_preview_s``;
  none for methods that do not report previews);
- ``done_s``: the job done, with its steps and its fit to the input (dB).

    python benchmarks/web_feedback.py --json benchmarks/results/web_feedback.json

The CPU is shared: the load average at the start and the end is written beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CASES = [  # (method, input width, input height)
    ("pretrained", 64, 64), ("pretrained", 256, 256), ("pretrained", 800, 600),
    ("zeroshot", 64, 64), ("zeroshot", 256, 256),
    ("hashgrid", 64, 64), ("hashgrid", 256, 256),
    ("cppn", 64, 64), ("fourier", 64, 64), ("siren", 64, 64), ("wire", 64, 64),
]


def photo(w: int, h: int) -> bytes:
    from coordsr.images import encode_image_bytes
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    small = imresize_np(img, (h, w), scale=(h / img.shape[0], w / img.shape[1]))
    return encode_image_bytes(np.clip(small, 0, 1).astype(np.float32))


def run_case(client, method: str, w: int, h: int, steps: int | None) -> dict:
    form = {"method": method, "scale": "4"}
    if steps:
        form["steps"] = str(steps)
    data = photo(w, h)
    start = time.perf_counter()
    r = client.post("/api/jobs", files={"file": ("photo.png", data, "image/png")}, data=form)
    r.raise_for_status()
    job_id = r.json()["id"]
    bicubic = client.get(f"/api/jobs/{job_id}/bicubic-now.png")
    bicubic.raise_for_status()
    bicubic_s = time.perf_counter() - start
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    done_s = time.perf_counter() - start
    if job["status"] != "done":
        raise SystemExit(f"{method} {w}x{h}: {job['status']}: {job['error']}")
    return {"method": method, "input": f"{w}x{h}", "output": f"{4 * w}x{4 * h}", "steps": job["progress"]["step"],
            "bicubic_s": round(bicubic_s, 3), "first_preview_s": job["first_preview_s"] and round(job["first_preview_s"], 3),
            "done_s": round(done_s, 3),
            "fit_to_input_db": job["progress"]["psnr"] and round(job["progress"]["psnr"], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--methods", default="", help="only these methods (comma-separated)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fastapi.testclient import TestClient

    from coordsr.server.app import Limits, create_app
    from coordsr.server.page_api import method_notes

    wanted = [m for m in args.methods.split(",") if m]
    cases = [c for c in CASES if not wanted or c[0] in wanted]
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(Path(tmp), 1, Limits())) as client:
        run_case(client, "bicubic", 32, 32, None)  # warm-up: the worker's first job pays torch's start
        for method, w, h in cases:
            row = run_case(client, method, w, h, method_notes()[method].get("page_steps"))
            rows.append(row)
            print(f"{row['method']:>10} {row['input']:>8} -> {row['output']:>9}  steps {row['steps']:>4}  "
                  f"bicubic {row['bicubic_s']:6.2f} s  first preview {row['first_preview_s'] or '-':>6} s  "
                  f"done {row['done_s']:7.2f} s  fit {row['fit_to_input_db'] or '-'} dB", flush=True)
    result = {"rows": rows, "threads": args.threads, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "torch": torch.__version__}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
