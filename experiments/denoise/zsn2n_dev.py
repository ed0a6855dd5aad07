"""ZS-N2N settings compared on training images (BSD200), never on Kodak24.

    python experiments/denoise/zsn2n_dev.py --images 4 --sigmas 25,50 "steps=300" "steps=300,ensemble=8"

Each argument is one setting of the registry's ``zsn2n`` (NAME=VALUE,...), or of another
denoiser as METHOD:NAME=VALUE,... (``zsnlm:weight=sure``); with ``+nlmeans``
appended, the output is also averaged with non-local means (weights 0 - 0.7 of zsn2n printed beside). Prints
mean RGB PSNR and wall seconds per image, one line per setting and sigma.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from coordsr.bench import read_hr
from coordsr.denoise.bench import center_crop
from coordsr.denoise.protocol import add_noise, noise_seed, score
from coordsr.methods import get_method

WEIGHTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "BSD200"


def parse(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        k, v = item.split("=")
        for kind in (int, float, str):
            try:
                out[k] = kind(v)
                break
            except ValueError:
                continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--crop", type=int, default=0)
    args = ap.parse_args()
    images = sorted(DATA.glob("*.png"))[::50][:args.images]  # tune_classical.py's images
    for text in args.settings:
        mix = text.endswith("+nlmeans")
        name, _, settings = text.removesuffix("+nlmeans").rpartition(":")
        m = get_method(name or "zsn2n")(**parse(settings))
        nlm = get_method("nlmeans")() if mix else None
        for sigma in map(float, args.sigmas.split(",")):
            ps, mixed, weights, secs = [], [], [], 0.0
            for p in images:
                clean = read_hr(p)
                clean = center_crop(clean, args.crop) if args.crop else clean
                noisy = add_noise(clean, sigma, noise_seed(p.name, sigma))
                t = time.perf_counter()
                out = m.denoise(noisy, sigma)
                if nlm is not None:
                    other = nlm.denoise(noisy, sigma)
                    mixed.append([score(w * out + (1 - w) * other, clean)["psnr"] for w in WEIGHTS])
                secs += time.perf_counter() - t
                ps.append(score(out, clean)["psnr"])
                if hasattr(m, "last_weight"):
                    weights.append(m.last_weight)
            extra = f"  weights {' '.join(f'{w:.2f}' for w in weights)}" if weights else ""
            extra += ("  nlmeans, weight of zsn2n " + " ".join(f"{w}: {v:.2f}" for w, v in zip(WEIGHTS, np.mean(mixed, 0)))
                      if mixed else "")
            print(f"{text:40s} sigma {sigma:4.0f}: {np.mean(ps):.2f} dB{extra}  {secs / len(images):.1f} s/img",
                  flush=True)


if __name__ == "__main__":
    main()
