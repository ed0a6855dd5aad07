"""What flushing subnormal floats to zero buys each method, and what it changes.

For each method: the same run (a 48x48 photo; the per-image presets fit it for --steps Adam steps,
all of them, float32; the other upscalers draw it at x2; denoisers clean it at sigma 25; one
thread) with subnormals flushed (coordsr's default, ``coordsr.precision.flushing_subnormals``)
and kept (``COORDSR_KEEP_SUBNORMALS=1``), alternating, best of --repeats; seconds, the speed-up,
and the largest change of any output value between the two (flushing only touches values below
1.2e-38, so the outputs should agree to float32 rounding). Subnormals cost a slow microcode path
per operation on Intel CPUs; the machine record beside the table says which CPU this was.

    python benchmarks/subnormals.py --json benchmarks/results/subnormals.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402

from coordsr.precision import KEEP_SUBNORMALS_ENV  # noqa: E402


def photo(size: int) -> np.ndarray:
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    return np.clip(imresize_np(img, (size, size), scale=size / img.shape[0]), 0, 1).astype(np.float32)


def timed_run(method: str, image: np.ndarray, steps: int, keep: bool) -> tuple[float, np.ndarray]:
    """Seconds of ``method`` on ``image`` through its public call (a fit + x2 render for the
    presets, an x2 upscale for the others, a denoise at sigma 25 for denoisers), and its output."""
    from coordsr.methods import METHODS

    if keep:
        os.environ[KEEP_SUBNORMALS_ENV] = "1"
    else:
        os.environ.pop(KEEP_SUBNORMALS_ENV, None)
    cls = METHODS[method]
    wanted = {"steps": steps, "until": "steps", "precision": "fp32"}
    m = cls(**{k: v for k, v in wanted.items() if k in {f.name for f in dataclasses.fields(cls)}})
    start = time.perf_counter()
    if cls.task == "denoise":
        noisy = np.clip(image + np.random.default_rng(0).normal(0, 25 / 255, image.shape), 0, 1)
        start = time.perf_counter()
        out = m.denoise(noisy.astype(np.float32), 25)
    else:
        out = m.upscale(image, (2 * image.shape[0], 2 * image.shape[1]))
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="wire,siren,fourier,cppn,hashgrid,zeroshot,pretrained,zsn2n")
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
                s, outs[mode] = timed_run(method, image, a.steps, keep=mode == "kept")
                seconds[mode].append(s)
        best = {mode: min(v) for mode, v in seconds.items()}
        rows.append({"method": method, "steps": a.steps, "size": a.size, "seconds": seconds,
                     "best_flushed_s": best["flushed"], "best_kept_s": best["kept"],
                     "speedup": best["kept"] / best["flushed"],
                     "max_output_change": float(np.abs(outs["flushed"] - outs["kept"]).max())})
    os.environ.pop(KEEP_SUBNORMALS_ENV, None)
    after = machine_record()
    print(f"| method ({a.size}x{a.size}; presets fit {a.steps} steps) | subnormals kept (s) | flushed (s) | speed-up | "
          "largest output change |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['best_kept_s']:.2f} | {r['best_flushed_s']:.2f} | {r['speedup']:.2f}x | "
              f"{r['max_output_change']:.1e} |")
    print(f"CPU: {_cpu_name()}; machine before: {machine_line(before)}; "
          f"after: {machine_line(after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": _cpu_name(),
                                      "machine_before": before, "machine_after": after, "rows": rows},
                                     indent=1) + "\n")
    return 0


def _cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
