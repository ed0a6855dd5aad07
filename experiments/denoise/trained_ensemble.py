"""The trained denoiser's self-ensemble (1 / 4 / 8 passes) on eight BSD200 images: its gain and cost.

BSD200 is part of the denoiser's training data: the absolute numbers flatter it, the gain between rows is
what this measures. One thread.

    OMP_NUM_THREADS=1 python experiments/denoise/trained_ensemble.py
"""
import time
from pathlib import Path

import numpy as np
import torch

from coordsr.bench import read_hr
from coordsr.denoise.protocol import add_noise, noise_seed, score
from coordsr.methods import get_method

torch.set_num_threads(1)
IMAGES = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "BSD200").glob("*.png"))[1::25][:8]

for sigma in (15, 25, 50):
    for e in (1, 4, 8):
        m = get_method("trained")(ensemble=e, device="cpu")
        ps, start = [], time.perf_counter()
        for p in IMAGES:
            clean = read_hr(p)
            noisy = add_noise(clean, sigma, noise_seed(p.name, sigma))
            ps.append(score(m.denoise(noisy, sigma), clean)["psnr"])
        print(f"sigma {sigma} ensemble {e}: {np.mean(ps):.3f} dB  "
              f"{(time.perf_counter() - start) / len(IMAGES):.2f} s/img (1 thread)", flush=True)
