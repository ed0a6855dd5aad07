"""Train a small local implicit model on a folder of images, then upscale with it.

    python examples/train_briefly.py my_photos/ model.safetensors --steps 2000

The shipped ``pretrained`` weights took 10,000+ steps on T91 + BSD200 (MODEL.md); a short run on
your own pictures shows the loop and gives weights that ``coordsr.upscale(...,
method="pretrained", weights=path)`` and ``coordsr upscale --set weights=PATH`` take.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import coordsr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="folder of HR images")
    p.add_argument("out", type=Path, help="weights file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--small", action="store_true", help="a tiny model and batches (a smoke run)")
    a = p.parse_args(argv)

    tiny = dict(channels=8, blocks=1, hidden=16, mlp_layers=1, patch=12, batch=2, queries=64,
                val_every=a.steps, val_scales=(2,), val_fraction=0.3, warmup=1, threads=1) if a.small else {}
    losses = []

    def report(p: coordsr.Progress) -> None:
        losses.append(p.loss)
        print(f"step {p.step}/{p.total} loss {p.loss:.4f}")

    weights = coordsr.train(a.data, a.out, steps=a.steps, progress=report, log_every=max(1, a.steps // 10),
                            **tiny)
    sample = next(f for f in sorted(a.data.iterdir()) if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    big = coordsr.upscale(sample, scale=2, method="pretrained", weights=str(weights))
    print(f"wrote {weights}; {sample.name} upscaled x2 with it: {big.shape[1]}x{big.shape[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
