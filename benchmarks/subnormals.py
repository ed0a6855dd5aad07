"""What flushing subnormal floats to zero buys each per-image preset's fit, and what it changes.

For each preset: the same fit and x2 drawing (a 48x48 photo, --steps Adam steps, all of them,
float32, one thread) with subnormals flushed (coordsr's default in ``fit`` and ``render``,
``coordsr.precision.flushing_subnormals``) and kept (``COORDSR_KEEP_SUBNORMALS=1``), alternating,
best of --repeats; seconds, the speed-up, and the largest change of any output value between the
two (flushing only touches values below 1.2e-38, so the outputs should agree to float32 rounding).
Subnormals cost a slow microcode path per operation on Intel CPUs; the table names the CPU.

    python benchmarks/subnormals.py --json benchmarks/results/subnormals.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402
from fields_speed import photo  # noqa: E402

from coordsr.bench import environment  # noqa: E402
from coordsr.precision import KEEP_SUBNORMALS_ENV  # noqa: E402


def timed_fit(method: str, image: np.ndarray, steps: int, keep: bool) -> tuple[float, np.ndarray]:
    """Seconds of one fit + x2 drawing of the preset ``method`` on ``image``, and its output."""
    from coordsr.methods import get_method

    if keep:
        os.environ[KEEP_SUBNORMALS_ENV] = "1"
    else:
        os.environ.pop(KEEP_SUBNORMALS_ENV, None)
    m = get_method(method)(steps=steps, until="steps", precision="fp32")
    start = time.perf_counter()
    out = m.upscale(image, (2 * image.shape[0], 2 * image.shape[1]))
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="wire,siren,fourier,cppn,hashgrid")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--size", type=int, default=48, help="side of the photo fitted")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    image = photo(a.size)
    before = machine_record()
    rows = []
    for method in a.methods.split(","):
        seconds: dict[str, list[float]] = {"flushed": [], "kept": []}
        outs = {}
        for _ in range(a.repeats):
            for mode in seconds:
                s, outs[mode] = timed_fit(method, image, a.steps, keep=mode == "kept")
                seconds[mode].append(s)
        best = {mode: min(v) for mode, v in seconds.items()}
        rows.append({"method": method, "steps": a.steps, "size": a.size, "seconds": seconds,
                     "best_flushed_s": best["flushed"], "best_kept_s": best["kept"],
                     "speedup": best["kept"] / best["flushed"],
                     "max_output_change": float(np.abs(outs["flushed"] - outs["kept"]).max())})
    os.environ.pop(KEEP_SUBNORMALS_ENV, None)
    after = machine_record()
    cpu = environment()["cpu"]
    print(f"| preset ({a.steps} steps on {a.size}x{a.size}) | subnormals kept (s) | flushed (s) | speed-up | "
          "largest output change |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['best_kept_s']:.2f} | {r['best_flushed_s']:.2f} | {r['speedup']:.2f}x | "
              f"{r['max_output_change']:.1e} |")
    print(f"CPU: {cpu}; machine before: {machine_line(before)}; "
          f"after: {machine_line(after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu,
                                      "machine_before": before, "machine_after": after, "rows": rows},
                                     indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
