"""The procedural benchmark of drawings: scenes that training never drew (seeds from 1,000,000 on;
training draws seeds 0 to --scenes - 1) rasterized by Skia at the small and the large size,
written as LR<small>/ and HR<large>/ PNGs (straight alpha), the layout of ../shared/data/Emoji:

    python benchmarks/scene_pairs.py --out /tmp/scene_pairs --count 100
    coordsr bench --lr /tmp/scene_pairs/LR32 --hr /tmp/scene_pairs/HR512 --methods bicubic,drawing

Needs skia-python (the ``drawings-train`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

FIRST_SEED = 1_000_000


def straight(premultiplied: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 premultiplied -> straight alpha (what a PNG holds)."""
    a = premultiplied[..., 3:].astype(np.float64)
    rgb = np.where(a > 0, premultiplied[..., :3] * 255.0 / np.maximum(a, 1), 0)
    return np.concatenate([np.clip(np.round(rgb), 0, 255), a], axis=-1).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from coordsr.drawings.scenes import draw

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--small", type=int, default=32)
    p.add_argument("--large", type=int, default=512)
    a = p.parse_args(argv)
    for size, kind in ((a.small, "LR"), (a.large, "HR")):
        folder = a.out / f"{kind}{size}"
        folder.mkdir(parents=True, exist_ok=True)
        for seed in range(FIRST_SEED, FIRST_SEED + a.count):
            Image.fromarray(straight(draw(seed, size))).save(folder / f"scene_{seed}.png")
    print(f"wrote {a.count} pairs to {a.out} (LR{a.small}/, HR{a.large}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
