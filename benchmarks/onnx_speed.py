"""The CLI on onnxruntime against the CLI on torch (issue 37), as a user runs it.

Runs, alternating so that the machine's load hits each alike, ``--repeats`` times each, and
reports the best wall time of each:
- ``python -c "import torch"`` (the floor every torch command pays);
- the seed's job, ``coordsr upscale x64.png -o y.png --size 1024x1024`` with the default method
  (a 64 x 64 photo, the bundled astronaut as benchmarks/cli_speed.py makes it: ``pretrained``;
  and the bundled 512 px frog reduced to 64 px, a drawing with alpha: the ``drawing`` model),
  with ``--backend torch`` and ``--backend onnx``;
- a 256 x 256 photo x4 with each backend;
- with ``--folder DIR`` (e.g. ../shared/data/BSD200), the first ``--images`` of its images x2
  into a folder with each backend (the batch mode, one process).

The JSON holds every run, the load average before and after, and the machine record
(benchmarks/_machine.py). Timings on a shared machine are what it could give at the time: the
load average says how busy it was.

    .venv/bin/python benchmarks/onnx_speed.py --json benchmarks/results/onnx_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import loadavg, machine_line, machine_record  # noqa: E402


def make_inputs(work: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    from coordsr.images import write_image
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    out = {}
    for side in (64, 256):
        small = imresize_np(img, (side, side), scale=side / img.shape[0]).clip(0, 1).astype("float32")
        out[f"photo{side}"] = work / f"photo{side}.png"
        write_image(out[f"photo{side}"], small, bit_depth=8)
    frog = Path(__file__).resolve().parents[1] / "src" / "coordsr" / "data" / "frog_512.png"
    with Image.open(frog) as im:
        a = np.asarray(im.convert("RGBA"), np.float64) / 255
    small = imresize_np(a, (64, 64), scale=64 / 512).clip(0, 1).astype("float32")
    out["frog64"] = work / "frog64.png"
    write_image(out["frog64"], small, bit_depth=8)
    return out


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder", type=Path, default=None, help="a folder of images for the batch row")
    ap.add_argument("--images", type=int, default=20, help="how many of the folder's images")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    load_before = loadavg()
    machine = machine_record()
    py = sys.executable
    coordsr = [py, "-m", "coordsr"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = make_inputs(work)
        jobs: dict[str, list[str]] = {"python -c 'import torch'": [py, "-c", "import torch"]}
        for backend in ("torch", "onnx"):
            jobs[f"seed job, photo 64 -> 1024, {backend}"] = [
                *coordsr, "upscale", str(inputs["photo64"]), "-o", "y.png", "--size", "1024x1024", "--force",
                "-q", "--backend", backend]
            jobs[f"seed job, drawing 64 -> 1024, {backend}"] = [
                *coordsr, "upscale", str(inputs["frog64"]), "-o", "y.png", "--size", "1024x1024", "--force",
                "-q", "--backend", backend]
            jobs[f"photo 256 x4, {backend}"] = [
                *coordsr, "upscale", str(inputs["photo256"]), "-o", "y.png", "--scale", "4", "--force", "-q",
                "--backend", backend]
        if args.folder is not None:
            src = work / "folder"
            src.mkdir()
            for p in sorted(args.folder.glob("*.png"))[:args.images]:
                shutil.copy(p, src / p.name)
            for backend in ("torch", "onnx"):
                jobs[f"folder of {args.images} x2, {backend}"] = [
                    *coordsr, "upscale", str(src), "-o", str(work / f"out_{backend}"), "--scale", "2", "--force",
                    "-q", "--backend", backend]
        runs: dict[str, list[float]] = {k: [] for k in jobs}
        for _ in range(args.repeats):  # alternating: a burst of load hits every job alike
            for name, cmd in jobs.items():
                runs[name].append(wall(cmd, work))
    best = {k: min(v) for k, v in runs.items()}
    floor = best["python -c 'import torch'"]
    rows = [{"job": k, "best_s": round(best[k], 3), "runs_s": [round(t, 3) for t in runs[k]],
             "of_import_torch": round(best[k] / floor, 2)} for k in jobs]
    record = {"command": "python benchmarks/onnx_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine, "loadavg_before": load_before,
              "loadavg_after": loadavg(), "cpus": os.cpu_count(), "rows": rows,
              "note": "best of --repeats wall times, jobs alternated; the machine was shared (load averages)"}
    print(f"{machine_line(machine)}; load after {' / '.join(map(str, record['loadavg_after']))}")
    print(f"| job | best wall s | x import torch |\n|---|---|---|")
    for r in rows:
        print(f"| {r['job']} | {r['best_s']:.2f} | {r['of_import_torch']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
