"""Seconds per Kodak24 image of one denoiser, one call per image on ``--threads`` threads.

Issue 14 asks for a zero-shot method under 60 s per image on 2 cores; the Kodak24 table's
seconds come from runs on one thread beside other work. This times the method as a user runs
it, on the first ``--images`` images at ``--sigma``, with the machine's load and matmul speed
measured before and after, and writes JSON:

    python benchmarks/denoise_speed.py --method zsnlm --json benchmarks/results/denoise_speed_zsnlm.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from coordsr.openmp_wait import short_spin

short_spin(os.environ)  # before torch loads: as the CLI (another busy process must not stall the threads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import torch

    from coordsr.bench import environment, find_images, read_hr
    from coordsr.denoise.protocol import add_noise, noise_seed, score
    from coordsr.methods import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="zsnlm")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "Kodak24")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    before = machine_record()
    method = get_method(args.method)(device="cpu")
    rows = []
    for path in find_images(args.data)[:args.images]:
        clean = read_hr(path).astype("float64")
        noisy = add_noise(clean, args.sigma, noise_seed(path.name, args.sigma))
        start, cpu = time.perf_counter(), time.process_time()
        out = method.denoise(noisy, args.sigma)
        rows.append({"image": path.name, "seconds": time.perf_counter() - start,
                     "cpu_seconds": time.process_time() - cpu, **score(out, clean)})
        print(f"| {path.name} | {rows[-1]['psnr']:.2f} | {rows[-1]['seconds']:.1f} | {rows[-1]['cpu_seconds']:.1f} |")
    after = machine_record()
    median = statistics.median(r["seconds"] for r in rows)
    print(f"median {median:.1f} s per image on {args.threads} threads; "
          f"{machine_line(before)} (before), {machine_line(after)} (after)")
    data = {"method": args.method, "sigma": args.sigma, "threads": args.threads, "rows": rows,
            "seconds_median": median, "machine_before": before, "machine_after": after,
            "environment": environment(),
            "command": "python benchmarks/denoise_speed.py " + " ".join(argv or sys.argv[1:])}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
