"""Fit a field to an image, save it, and zoom into it far beyond the input's resolution.

    python examples/fit_and_zoom.py photo.png zoom/ --steps 500 --frames 4

Writes photo.field and zoom_0.png ... zoom_N.png: each frame halves the region drawn around the
centre, at the same output size, so the last one shows what the field holds between pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import coordsr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image", type=Path)
    p.add_argument("out", type=Path, help="folder for the field and the frames (created)")
    p.add_argument("--method", default="hashgrid", help="a method that fits a field")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--side", type=int, default=512, help="side of each frame in pixels")
    a = p.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    field = coordsr.fit(a.image, method=a.method, steps=a.steps, progress=True)
    print(field)
    field.save(a.out / f"{a.image.stem}.field")
    field = coordsr.load_field(a.out / f"{a.image.stem}.field")  # the file alone is enough
    cx, cy = 0.0, 0.0  # the centre of the picture; the image spans [-1, 1] in x and y
    for k in range(a.frames):
        half = 1.0 / 2**k
        frame = field.render((a.side, a.side), box=(cx - half, cy - half, cx + half, cy + half), output="pil")
        frame.save(a.out / f"zoom_{k}.png")
        print(f"zoom_{k}.png: x{2**k} ({frame.width}x{frame.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
