"""Speed of the shipped `drawing` model on the CPU: the seed's job, a 32x32 RGBA icon drawn at
1024x1024 (and 512x512), in float32 and in bfloat16, best of 5 after a warm-up, in process.

    python benchmarks/drawing_speed.py --json benchmarks/results/drawing_speed.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from _machine import machine_line, machine_record  # benchmarks/ is on sys.path when run as a script


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from coordsr.methods import METHODS
    from coordsr.samples import demo_icon

    icon, _ = demo_icon()
    before = machine_record()
    rows = []
    for size in (512, 1024):
        for precision in ("fp32", "bf16"):
            m = METHODS["drawing"](device="cpu", precision=precision)
            m.upscale(icon, (size, size))  # warm-up: weights, kernels
            times = []
            for _ in range(a.repeats):
                start = time.perf_counter()
                m.upscale(icon, (size, size))
                times.append(time.perf_counter() - start)
            rows.append({"case": f"32x32 RGBA -> {size}x{size}", "precision": precision, "threads": a.threads,
                         "seconds": min(times), "all_seconds": times})
            print(f"{rows[-1]['case']:<26} {precision}  {min(times):.3f} s (best of {a.repeats})", flush=True)
    print(machine_line(before))
    if a.json:
        a.json.write_text(json.dumps({"command": "python benchmarks/drawing_speed.py " + " ".join(argv or sys.argv[1:]),
                                      "machine_before": before, "machine_after": machine_record(), "rows": rows},
                                     indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
