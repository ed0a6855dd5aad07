"""Compare two methods on one image: shrink it, upscale it back with each, plot them with PSNR.

    python examples/compare_methods.py photo.png compare.png --methods bicubic,pretrained --scale 4

The image is shrunk with the MATLAB-style bicubic of the benchmarks, so the PSNR (RGB, on the
whole image) is against a ground truth the methods never saw.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import coordsr  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(1 / mse) if mse > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image", type=Path)
    p.add_argument("figure", type=Path, help="the figure to write (.png, .pdf, .svg)")
    p.add_argument("--methods", default="bicubic,pretrained", help="two (or more) registered upscalers")
    p.add_argument("--scale", type=int, default=4)
    a = p.parse_args(argv)

    names = [m.strip() for m in a.methods.split(",") if m.strip()]
    truth = coordsr.upscale(a.image, scale=1, method="nearest")  # the file as (H, W, C) float32
    h, w = (truth.shape[0] // a.scale) * a.scale, (truth.shape[1] // a.scale) * a.scale
    truth = truth[:h, :w]
    small = coordsr.upscale(truth, size=(h // a.scale, w // a.scale), method="bicubic")
    panels = [("input (nearest)", coordsr.upscale(small, size=(h, w), method="nearest"))]
    for name in names:
        out = coordsr.upscale(small, size=(h, w), method=name)
        panels.append((f"{name}: {psnr(out, truth):.2f} dB", out))
    panels.append(("ground truth", truth))

    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(np.clip(img[:, :, :3] if img.shape[2] >= 3 else img[:, :, 0], 0, 1),
                  cmap=None if img.shape[2] >= 3 else "gray", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(a.figure, dpi=120)
    for title, _ in panels[1:-1]:
        print(title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
