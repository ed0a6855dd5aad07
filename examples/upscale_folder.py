"""Upscale every image of a folder into another folder with the Python API.

    python examples/upscale_folder.py photos/ big/ --scale 4 --method pretrained

Each image keeps its name; an output that exists already is skipped, so a stopped run resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import coordsr

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="folder of images")
    p.add_argument("dst", type=Path, help="folder for the results (created)")
    p.add_argument("--scale", type=float, default=4.0)
    p.add_argument("--method", default=None, help="a registered upscaler (default: coordsr's)")
    a = p.parse_args(argv)

    a.dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(a.src.iterdir()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        target = a.dst / f"{path.stem}.png"
        if target.exists():
            continue
        try:
            big = coordsr.upscale(path, scale=a.scale, method=a.method, output="pil")
        except coordsr.ImageError as e:  # one bad file does not stop the batch
            print(f"skipped: {e}")
            continue
        big.save(target)
        print(f"{path.name} -> {target} ({big.width}x{big.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
