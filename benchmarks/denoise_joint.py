"""Joint denoise + upscale (issue 14): a noisy low-resolution image in, a clean large one out.

The SR protocol's LR (MATLAB bicubic of the mod-cropped HR, 8-bit) gets the denoising protocol's
noise (sigma 15 by default, float64, fixed seed per image, not clipped); each pipeline's output
is scored against the HR on the SR protocol (8-bit output, Y-PSNR and SSIM, ``scale`` pixels
shaved). Pipelines: bicubic of the noisy image; each denoiser then bicubic; each denoiser then
`pretrained` (what ``coordsr upscale --denoise`` runs); `pretrained` on the noisy image.

    nice -n 10 python benchmarks/denoise_joint.py --json benchmarks/results/denoise_joint.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from coordsr.bench import environment, find_images, read_hr
    from coordsr.denoise.protocol import add_noise, noise_seed
    from coordsr.methods import get_method
    from coordsr.metrics import make_lr, modcrop, psnr_y, quantize, shave_for, ssim_y

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="Set5,Set14")
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--sigma", type=float, default=15.0)
    ap.add_argument("--denoisers", default="wavelet,nlmeans,tv")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    bicubic = get_method("bicubic")()
    pretrained = get_method("pretrained")(device="cpu")
    denoisers = {n: get_method(n)(device="cpu") for n in args.denoisers.split(",")}
    rows = []
    for dataset in args.sets.split(","):
        for path in find_images(REPO.parent / "shared" / "data" / dataset):
            for scale in (float(s) for s in args.scales.split(",")):
                hr = modcrop(read_hr(path), scale)
                lr = make_lr(hr, scale)
                noisy = add_noise(lr, args.sigma, noise_seed(path.name, args.sigma))
                size = hr.shape[:2]
                pipelines = {"bicubic of noisy": lambda: bicubic.upscale(noisy, size),
                             "pretrained of noisy": lambda: pretrained.upscale(noisy, size)}
                for name, d in denoisers.items():
                    # each pipeline's seconds include its own denoising (run once per pipeline)
                    pipelines[f"{name}, then bicubic"] = lambda d=d: bicubic.upscale(d.denoise(noisy, args.sigma), size)
                    pipelines[f"{name}, then pretrained"] = lambda d=d: pretrained.upscale(
                        d.denoise(noisy, args.sigma), size)
                for label, run in pipelines.items():
                    start = time.perf_counter()
                    out = quantize(run())
                    seconds = time.perf_counter() - start
                    shave = shave_for(scale)
                    rows.append({"dataset": dataset, "image": path.name, "scale": scale, "sigma": args.sigma,
                                 "pipeline": label, "psnr": psnr_y(out, hr, shave), "ssim": ssim_y(out, hr, shave),
                                 "seconds": seconds})
                print(f"{dataset} {path.name} x{scale:g}", file=sys.stderr, flush=True)
    summary = {}
    for r in rows:
        summary.setdefault((r["dataset"], r["pipeline"], r["scale"]), []).append(r)
    table = [{"dataset": d, "pipeline": p, "scale": s, "psnr": float(np.mean([r["psnr"] for r in rs])),
              "ssim": float(np.mean([r["ssim"] for r in rs])), "seconds": float(np.mean([r["seconds"] for r in rs])),
              "n": len(rs)} for (d, p, s), rs in summary.items()]
    scales = sorted({t["scale"] for t in table})
    print("| dataset | pipeline (noisy LR, sigma %g) | " % args.sigma + " | ".join(f"x{s:g}" for s in scales) + " |")
    print("|---|---|" + "---|" * len(scales))
    for d in args.sets.split(","):
        for p in dict.fromkeys(t["pipeline"] for t in table):
            cells = {t["scale"]: t for t in table if t["dataset"] == d and t["pipeline"] == p}
            print(f"| {d} | {p} | " + " | ".join(f"{cells[s]['psnr']:.2f} / {cells[s]['ssim']:.4f}" for s in scales) + " |")
    doc = {"command": "python benchmarks/denoise_joint.py " + " ".join(argv or sys.argv[1:]),
           "environment": environment(), "loadavg_end": os.getloadavg(), "summary": table, "rows": rows}
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
