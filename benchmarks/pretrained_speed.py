"""Speed and memory of the shipped `pretrained` model on the CPU.

- a 256x256 RGB input upscaled x4 (1024x1024): seconds, after one warm-up run (best of 3);
- a large input upscaled x2 (default 4000x3000 -> 8000x6000): seconds and peak resident memory
  of a fresh process, beside the size of the float32 output array.

    python benchmarks/pretrained_speed.py --json benchmarks/results/pretrained_speed.json
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

from _spawn import in_process  # benchmarks/ is on sys.path when run as a script


def photo(h: int, w: int) -> np.ndarray:
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    return np.clip(imresize_np(img, (h, w), scale=(h / img.shape[0], w / img.shape[1])), 0, 1).astype(np.float32)


def small(threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.methods import METHODS

    m = METHODS["pretrained"](device="cpu")
    img = photo(256, 256)
    m.upscale(img, (1024, 1024))  # warm-up: weights loaded, kernels chosen
    times = []
    for _ in range(3):
        start = time.perf_counter()
        m.upscale(img, (1024, 1024))
        times.append(time.perf_counter() - start)
    queue.put({"case": "256x256 -> x4", "threads": threads, "seconds": min(times), "all_seconds": times})


def large(threads: int, h: int, w: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.methods import METHODS

    img = photo(h, w)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = METHODS["pretrained"](device="cpu").upscale(img, (2 * h, 2 * w))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"case": f"{w}x{h} -> x2", "threads": threads, "seconds": seconds,
               "input_mb": img.nbytes / 2**20, "output_mb": out.nbytes / 2**20,
               "rss_before_mb": before, "peak_rss_mb": peak})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--large", default="3000x4000", help="HxW of the large input ('' to skip)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/pretrained_speed.json"))
    args = ap.parse_args(argv)
    rows = [in_process(small, args.threads)]
    if args.large:
        h, w = (int(v) for v in args.large.split("x"))
        rows.append(in_process(large, args.threads, h, w))
    print("| case | threads | seconds | peak RSS MB | output array MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['threads']} | {r['seconds']:.2f} | {r.get('peak_rss_mb', float('nan')):.0f} "
              f"| {r.get('output_mb', float('nan')):.0f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                     "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
