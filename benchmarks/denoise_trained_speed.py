"""Seconds per 500x500 RGB image of the trained denoiser (issue 14's target: < 1 s on 2 cores).

One warm-up call (loads the weights), then the median of ``--repeats`` calls of
``trained(precision=...).denoise(noisy, sigma)`` per precision, with sigma given and estimated
(blind: the estimate is part of the time), on one Kodak24 image; its PSNR beside each, so a
faster precision that costs decibels shows it. JSON out:

    nice -n 10 python benchmarks/denoise_trained_speed.py --json benchmarks/results/denoise_trained_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import torch

    from coordsr.bench import environment, read_hr
    from coordsr.denoise.protocol import add_noise, noise_seed, score
    from coordsr.methods.denoisers import trained

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=REPO.parent / "shared" / "data" / "Kodak24" / "kodim01.png")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    clean = read_hr(args.image).astype("float64")
    noisy = add_noise(clean, args.sigma, noise_seed(args.image.name, args.sigma))
    rows = []
    for precision in ("fp32", "bf16"):
        for blind in (False, True):
            den = trained(device="cpu", precision=precision)
            level = None if blind else args.sigma
            out = den.denoise(noisy, level)  # warm-up: loads the weights, builds the kernels
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                den.denoise(noisy, level)
                times.append(time.perf_counter() - start)
            rows.append({"precision": precision, "blind": blind, "seconds_median": statistics.median(times),
                         "seconds": times, **score(out, clean)})
            print(f"{precision} blind={blind}: {statistics.median(times):.3f} s, {rows[-1]['psnr']:.2f} dB",
                  file=sys.stderr)
    data = {"image": args.image.name, "size": list(clean.shape), "sigma": args.sigma, "threads": args.threads,
            "rows": rows, "environment": environment(), "loadavg_end": os.getloadavg(),
            "command": "python benchmarks/denoise_trained_speed.py " + " ".join(argv or sys.argv[1:])}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
