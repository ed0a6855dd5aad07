"""Speed and memory of the shipped `pretrained` model on the CPU.

- a 256x256 RGB input upscaled x4 (1024x1024): seconds, after one warm-up run (best of 3);
- a large input upscaled x2 (default 4000x3000 -> 8000x6000): seconds and peak resident memory
  of a fresh process, beside the size of the float32 output array.

    python benchmarks/pretrained_speed.py --json benchmarks/results/pretrained_speed.json

``--weights A.safetensors,B.safetensors`` times other weight files (e.g. a candidate against the
shipped ones) in the same interleaved loop as the precisions, so that load hits all alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _machine import machine_line, machine_record  # benchmarks/ is on sys.path when run as a script
from _spawn import in_process


def photo(h: int, w: int) -> np.ndarray:
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    return np.clip(imresize_np(img, (h, w), scale=(h / img.shape[0], w / img.shape[1])), 0, 1).astype(np.float32)


def small(threads: int, weights: list[str | None], queue) -> None:
    """256x256 -> x4 in float32 and in bfloat16 with each weights file (None: the shipped ones),
    interleaved so that load hits all alike."""
    torch.set_num_threads(threads)
    from coordsr.methods import METHODS

    img = photo(256, 256)
    machine = machine_record()
    models = {(w, p): METHODS["pretrained"](device="cpu", precision=p, weights=w)
              for w in weights for p in ("fp32", "bf16")}
    outs = {k: m.upscale(img, (1024, 1024)) for k, m in models.items()}  # warm-up: weights, kernels
    times: dict[tuple, list[float]] = {k: [] for k in models}
    for _ in range(3):
        for k, m in models.items():
            start = time.perf_counter()
            m.upscale(img, (1024, 1024))
            times[k].append(time.perf_counter() - start)
    for (w, p) in models:
        diff = float(np.mean((outs[(w, "bf16")] - outs[(w, "fp32")]) ** 2))
        label = p if w is None else f"{p}, {Path(w).name}"
        queue.put({"case": f"256x256 -> x4 ({label})", "threads": threads, "precision": p, "weights": w,
                   "seconds": min(times[(w, p)]), "all_seconds": times[(w, p)], "machine_before": machine,
                   "machine_after": machine_record(),
                   "psnr_vs_fp32": None if p == "fp32" else 10 * np.log10(1 / max(diff, 1e-20))})


def large(threads: int, h: int, w: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.methods import METHODS

    machine = machine_record()
    img = photo(h, w)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = METHODS["pretrained"](device="cpu").upscale(img, (2 * h, 2 * w))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"case": f"{w}x{h} -> x2", "threads": threads, "seconds": seconds,
               "input_mb": img.nbytes / 2**20, "output_mb": out.nbytes / 2**20,
               "rss_before_mb": before, "peak_rss_mb": peak, "machine_before": machine})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--large", default="3000x4000", help="HxW of the large input ('' to skip)")
    ap.add_argument("--weights", default="", help="comma-separated weights files to time (default: the shipped ones)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/pretrained_speed.json"))
    args = ap.parse_args(argv)
    weights = [w for w in args.weights.split(",") if w] or [None]
    rows = list(in_process(small, args.threads, weights, results=2 * len(weights)))
    if args.large:
        h, w = (int(v) for v in args.large.split("x"))
        rows.append(in_process(large, args.threads, h, w))
    print("| case | threads | seconds | peak RSS MB | output array MB | machine (same process) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['threads']} | {r['seconds']:.2f} | {r.get('peak_rss_mb', float('nan')):.0f} "
              f"| {r.get('output_mb', float('nan')):.0f} | {machine_line(r['machine_before'])} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                     "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
