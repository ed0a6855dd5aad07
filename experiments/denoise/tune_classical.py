"""Settings of the classical denoisers chosen on training images (BSD200), never on Kodak24.

    nice -n 10 .venv/bin/python experiments/denoise/tune_classical.py
"""

import sys
import time
from pathlib import Path

import numpy as np

from coordsr.bench import read_hr
from coordsr.denoise.protocol import add_noise, noise_seed, score
from coordsr.methods.denoisers import nlmeans, tv, wavelet

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "BSD200"
images = sorted(DATA.glob("*.png"))[:: 50][:4]
grid = {"tv": [tv(weight=w) for w in (0.5, 0.75, 1.0, 1.5, 2.0)],
        "nlmeans": [nlmeans(h=h) for h in (0.6, 0.8, 1.0)],
        "wavelet": [wavelet(wavelet=w) for w in ("db1", "db2", "sym4")]}
which = sys.argv[1:] or list(grid)
for name in which:
    for m in grid[name]:
        for sigma in (15, 25, 50):
            ps, secs = [], 0.0
            for p in images:
                clean = read_hr(p)
                noisy = add_noise(clean, sigma, noise_seed(p.name, sigma))
                t = time.perf_counter()
                out = m.denoise(noisy, sigma)
                secs += time.perf_counter() - t
                ps.append(score(out, clean)["psnr"])
            print(f"{m!r:60s} sigma {sigma:2d}: {np.mean(ps):.2f} dB  {secs / len(images):.2f} s/img", flush=True)
