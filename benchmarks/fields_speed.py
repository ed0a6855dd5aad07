"""Speed and memory of the per-image presets: fit time to a target PSNR, render speed, peak memory.

For each preset (point fitting, on its own pixels):
- seconds to fit a 64x64 and a 256x256 photo to 30 dB (stopped as soon as the full-image
  training PSNR reaches it; 'not reached' within --max-steps);
- the seed's job: a 64x64 photo fitted to 35 dB, then drawn at 1024x1024 (fit + render seconds);
- render speed in megapixels per second (1024x1024, after a warm-up, best of 3 draws);
- peak resident memory of the process that did all of the above.
Also the tiled renderer's memory at 8192x8192 (peak RSS beyond the 8-bit output array).

Each preset runs in its own process so its peak memory is its own. Beside each preset's figures
the same process measures the machine (load average, matmul GFLOP/s in float32 and bfloat16:
``_machine.py``), and the render speed is also given as a fraction of the MLP head's FLOP-bound
limit at that measured peak (head FLOPs per pixel / GFLOP/s), comparable across loads and machines.

    python benchmarks/fields_speed.py --json benchmarks/results/fields_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _machine import machine_line, machine_record  # benchmarks/ is on sys.path when run as a script
from _spawn import in_process


def photo(size: int) -> np.ndarray:
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    return np.clip(imresize_np(img, (size, size), scale=size / img.shape[0]), 0, 1).astype(np.float32)


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'hashgrid:layers=1' -> ('hashgrid', {'layers': '1'}): a preset with changed settings."""
    name, _, rest = spec.partition(":")
    return name, dict(kv.split("=", 1) for kv in rest.split(":") if kv)


PRECISION = "fp32"
"""Compute precision of every fit and render (--precision)."""


def fit_to(spec: str, img: np.ndarray, target: float, max_steps: int):
    """Fit with the preset's own settings (or those ``spec`` changes) but a long budget,
    stopping at ``target`` dB on the full-image training loss.
    Returns (field, seconds or None if not reached, steps)."""
    from coordsr.cli import build_method

    name, settings = split_spec(spec)
    method = build_method(name, {"steps": str(max_steps), "until": f"psnr:{target}", "precision": PRECISION,
                                 **settings}, "cpu")
    start = time.perf_counter()
    field, result = method.fit_field(img, img.shape[:2])
    seconds = time.perf_counter() - start
    return field, (seconds if result.psnr >= target else None), result.steps


def render_speed(field, size: int = 1024, repeats: int = 3) -> float:
    """Megapixels per second of the best of ``repeats`` renders: this virtual machine's speed
    varies by up to 2x from second to second, and the best run is the one least disturbed."""
    from coordsr.render import render_field

    dtype = torch.bfloat16 if PRECISION == "bf16" else torch.float32
    render_field(field, (256, 256), dtype=np.uint8, compute_dtype=dtype)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        render_field(field, (size, size), dtype=np.uint8, compute_dtype=dtype)
        best = min(best, time.perf_counter() - start)
    return size * size / 1e6 / best


def seed_job(name: str, img: np.ndarray, max_steps: int) -> dict:
    """The seed's job: fit 64x64 to 35 dB, then draw at 1024x1024."""
    from coordsr.render import render_field

    field, fit_s, steps = fit_to(name, img, 35, max_steps)
    if fit_s is None:
        return {"seed_job_s": None, "seed_job_steps": steps}
    start = time.perf_counter()
    render_field(field, (1024, 1024), dtype=np.uint8)
    return {"seed_job_s": fit_s + time.perf_counter() - start, "seed_job_steps": steps}


def head_flops_per_pixel(field) -> int:
    """FLOPs of the field's MLP for one pixel (2 per multiply-add of each Linear layer)."""
    return sum(2 * m.in_features * m.out_features for m in field.net.modules() if isinstance(m, torch.nn.Linear))


def run_preset(name: str, max_steps: int, precision: str, threads: int, queue) -> None:
    global PRECISION
    PRECISION = precision
    torch.set_num_threads(threads)
    small, large = photo(64), photo(256)
    row = {"method": name, "precision": precision, "machine_before": machine_record()}
    field, row["fit64_30db_s"], row["fit64_steps"] = fit_to(name, small, 30, max_steps)
    row["render_mpx_s"] = render_speed(field)
    peak = row["machine_before"]["gflops_bf16" if precision == "bf16" else "gflops_fp32"]
    row["head_flops_per_px"] = head_flops_per_pixel(field)
    row["head_limit_mpx_s"] = peak * 1e3 / row["head_flops_per_px"]
    row["render_fraction_of_head_limit"] = row["render_mpx_s"] / row["head_limit_mpx_s"]
    _, row["fit256_30db_s"], row["fit256_steps"] = fit_to(name, large, 30, max_steps)
    row.update(seed_job(name, small, max_steps))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["machine_after"] = machine_record()
    queue.put(row)


def run_big_render(size: int, queue) -> None:
    """Peak memory of drawing size x size RGB with the tiled renderer, beyond the output array."""
    torch.set_num_threads(2)
    from coordsr.render import render_field

    field, _, _ = fit_to("hashgrid", photo(64), 30, 200)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = render_field(field, (size, size), dtype=np.uint8)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"size": size, "seconds": seconds, "mpx_s": size * size / 1e6 / seconds,
               "output_mb": out.nbytes / 2**20, "rss_before_mb": before, "peak_rss_mb": peak,
               "beyond_output_mb": peak - before - out.nbytes / 2**20})


def fmt(v, spec=".2f"):
    return "not reached" if v is None else format(v, spec)


def main(argv=None) -> int:
    from coordsr.methods import METHODS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(n for n, c in METHODS.items() if c.family == "per-image" and c.task == "upscale"),
                    help="comma-separated presets; 'name:key=value' changes a setting, "
                         "e.g. hashgrid:layers=1")
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--big", type=int, default=8192, help="side of the big render (0 = skip)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each preset's process")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/fields_speed.json"))
    args = ap.parse_args(argv)

    rows = []
    for name in args.methods.split(","):
        row = in_process(run_preset, name, args.max_steps, args.precision, args.threads)
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr, flush=True)
    big = in_process(run_big_render, args.big) if args.big else None

    print("| method | fit 64x64 to 30 dB | fit 256x256 to 30 dB | seed job (64->35 dB->1024^2) | render MP/s "
          "(of head limit) | peak RSS MB | machine (same process) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {fmt(r['fit64_30db_s'])} s ({r['fit64_steps']} steps) "
              f"| {fmt(r['fit256_30db_s'])} s ({r['fit256_steps']} steps) | {fmt(r['seed_job_s'])} s "
              f"| {r['render_mpx_s']:.1f} ({r['render_fraction_of_head_limit']:.0%}) | {r['peak_rss_mb']:.0f} "
              f"| {machine_line(r['machine_before'])} |")
    if big:
        print(f"\nrender {big['size']}x{big['size']} RGB 8-bit (hashgrid): {big['seconds']:.1f} s, "
              f"{big['mpx_s']:.1f} MP/s, output {big['output_mb']:.0f} MB, peak RSS {big['peak_rss_mb']:.0f} MB, "
              f"{big['beyond_output_mb']:.0f} MB beyond the output array and the process before it")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.machine(), "cpus": args.threads,
                                     "precision": args.precision,
                                     "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                     "max_steps": args.max_steps, "rows": rows, "big_render": big}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
