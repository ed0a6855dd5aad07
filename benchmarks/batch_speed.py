"""A folder through one command against a shell loop of single-image commands (issue 17, part 3).

The first ``--count`` images of BSD200 (481x321, BSD100's size), sorted by name, upscaled x2 with
``pretrained`` (the default method), timed as a user would see it (wall time of the whole
command, process start and model load included), in one run, back to back:

- ``coordsr upscale @list.txt -o out/ --scale 2`` (one process, the model loaded once);
- the same with ``--workers N`` for each N of ``--workers`` (processes, threads split);
- with ``--ray``: the same with ``--ray auto`` (a private Ray cluster started by the command on
  this machine, one actor per CPU, start-up included);
- ``for f in ...; do coordsr upscale "$f" -o out/$(basename "$f") --scale 2 -q; done`` in bash.

Each stage records the load average before and after it (the machine is shared); the outputs of
each batch are compared with the loop's (largest difference in 8-bit levels).

    nice -n 10 .venv/bin/python benchmarks/batch_speed.py --json benchmarks/results/batch_speed.json
    nice -n 10 .venv/bin/python benchmarks/batch_speed.py --count 10      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import loadavg, machine_line, machine_record  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "BSD200"


def coordsr_command() -> list[str]:
    """`coordsr` as installed beside this Python (what a user types), else `python -m coordsr`."""
    script = Path(sys.executable).parent / "coordsr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coordsr"]


def timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, list[float], list[float]]:
    before = loadavg()
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, capture_output=True, executable="/bin/bash" if shell else None)
    return time.perf_counter() - start, before, loadavg()


def largest_difference(a: Path, b: Path) -> int:
    from PIL import Image

    worst = 0
    for p in sorted(a.iterdir()):
        x = np.asarray(Image.open(p)).astype(int)
        y = np.asarray(Image.open(b / p.name)).astype(int)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="Folder of images (default: shared BSD200).")
    p.add_argument("--count", type=int, default=100, help="Images to upscale (the first, by name).")
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--method", default="pretrained")
    p.add_argument("--workers", default="2", help="Comma-separated --workers values to time besides 1.")
    p.add_argument("--ray", action="store_true", help="Also time --ray auto (needs coordsr[cluster]).")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    images = sorted(q for q in a.data.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg"))[:a.count]
    if len(images) < a.count:
        raise SystemExit(f"{a.data}: {len(images)} images, fewer than --count {a.count}")
    coordsr = coordsr_command()
    common = ["--scale", f"{a.scale:g}", "--method", a.method, "-q"]
    machine_before = machine_record()
    print(f"machine before: {machine_line(machine_before)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listing = tmp / "list.txt"
        listing.write_text("".join(f"{q}\n" for q in images))
        stages = [(f"batch --workers {w}" if w > 1 else "batch (one process)", w)
                  for w in [1, *(int(v) for v in a.workers.split(",") if v.strip())]]
        stages.insert(1, ("shell loop of single commands", 0))  # between the batches: both meet the same load
        if a.ray:
            stages.append(("batch --ray auto (local Ray cluster)", -1))
        for name, workers in stages:
            out = tmp / f"out-{workers}"
            if workers:
                cmd = [*coordsr, "upscale", f"@{listing}", "-o", str(out), *common]
                cmd += ["--workers", str(workers)] if workers > 1 else []
                cmd += ["--ray", "auto"] if workers == -1 else []
                seconds, before, after = timed(cmd)
            else:
                out.mkdir()
                q = shlex.quote
                run_one = f'{" ".join(map(q, coordsr))} upscale "$f" -o {q(str(out))}/"$(basename "$f")" '
                loop = f'while IFS= read -r f; do {run_one} {" ".join(map(q, common))} || exit 1; done < {q(str(listing))}'
                seconds, before, after = timed(loop, shell=True)
            rows.append({"stage": name, "workers": workers, "ray": workers == -1, "images": len(images),
                         "seconds": round(seconds, 2), "images_per_s": round(len(images) / seconds, 3),
                         "loadavg_before": before, "loadavg_after": after, "out": str(out)})
            print(f"{name}: {len(images)} images in {seconds:.1f} s ({len(images) / seconds:.2f} images/s), "
                  f"load {before[0]:.2f} -> {after[0]:.2f}", flush=True)
        loop_out = Path(next(r["out"] for r in rows if r["workers"] == 0))
        for r in rows:
            r["max_diff_vs_loop_levels"] = largest_difference(loop_out, Path(r.pop("out"))) if r["workers"] else 0
    machine_after = machine_record()
    loop_rate = next(r["images_per_s"] for r in rows if r["workers"] == 0)
    print(f"\n{len(images)} images of {a.data.name}, {a.method} x{a.scale:g}, "
          f"{os.cpu_count()} CPUs (nice {os.nice(0)})")
    print("| command | seconds | images/s | vs loop | load avg before -> after | max diff vs loop (levels) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | {r['images_per_s'] / loop_rate:.2f}x "
              f"| {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f} | {r['max_diff_vs_loop_levels']} |")
    print(f"machine before: {machine_line(machine_before)}; after: {machine_line(machine_after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python " + " ".join([Path(__file__).name, *(argv or sys.argv[1:])]),
            "data": str(a.data.name), "count": len(images), "method": a.method, "scale": a.scale,
            "machine_before": machine_before, "machine_after": machine_after, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
