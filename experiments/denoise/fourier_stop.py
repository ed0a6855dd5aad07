"""The field denoiser's discrepancy stop for Fourier features, chosen on BSD200 crops (training
data), never on Kodak24.

    python experiments/denoise/fourier_stop.py --images 3 --sigma 25 --steps 500 "sigma=5" "sigma=3" "sigma=2"

Each argument is the `settings` of `field(network="fourier")` ('' = the field denoiser's default
for it, FIELD_DEFAULTS). The log's "(preset)" lines were run as '' before FIELD_DEFAULTS had a
fourier entry, so with the upscaling preset's sigma=5; "sigma=5" gives them now. One fit per
image and setting, drawn every ``--every`` steps; for each tau the iterate where the residual on
the noisy image first falls below tau * sigma^2 (what the stop with that tau returns, to within
``--every`` steps) is scored against the clean crop, beside the best iterate (the oracle).
Prints one line per setting and tau: mean PSNR, mean gap to the oracle, worst gap, mean step.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from coordsr.bench import read_hr
from coordsr.denoise.bench import center_crop
from coordsr.denoise.protocol import add_noise, noise_seed, score
from coordsr.methods.denoisers import field

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "BSD200"
TAUS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)


def trace(settings: str, noisy: np.ndarray, clean: np.ndarray, sigma: float, steps: int, every: int):
    """(step, residual MSE on the noisy image, PSNR against the clean one) of each drawn iterate."""
    m = field(network="fourier", settings=settings, steps=steps, device="cpu")
    out = []
    m.trace(noisy, sigma, every, lambda s, im: out.append(
        (s, float(np.mean((im - noisy) ** 2)), score(im, clean)["psnr"])))
    return sorted(set(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--crop", type=int, default=128)
    args = ap.parse_args()
    paths = sorted(DATA.glob("*.png"))[: args.images]
    var = (args.sigma / 255) ** 2
    for settings in args.settings:
        per_tau = {tau: [] for tau in TAUS}
        t = time.perf_counter()
        for p in paths:
            clean = center_crop(read_hr(p), args.crop)
            noisy = add_noise(clean, args.sigma, noise_seed(p.name, args.sigma))
            rows = trace(settings, noisy, clean, args.sigma, args.steps, args.every)
            best = max(r[2] for r in rows)
            best_step = max(rows, key=lambda r: r[2])[0]
            print(f"  {p.name} {settings or '(field default)'}: oracle step {best_step} {best:.2f} dB, "
                  f"last step {rows[-1][0]} {rows[-1][2]:.2f} dB", flush=True)
            for tau in TAUS:
                hit = next((r for r in rows if r[1] < tau * var), rows[-1])
                per_tau[tau].append((hit[2], best - hit[2], hit[0]))
        print(f"{settings or '(field default)'}: {(time.perf_counter() - t) / len(paths):.0f} s an image", flush=True)
        for tau, v in per_tau.items():
            a = np.array(v)
            print(f"  tau {tau:.2f}: {a[:, 0].mean():.2f} dB, gap to oracle {a[:, 1].mean():.2f} "
                  f"(worst {a[:, 1].max():.2f}), step {a[:, 2].mean():.0f}", flush=True)


if __name__ == "__main__":
    main()
