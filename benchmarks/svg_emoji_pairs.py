"""Pairs of small and large drawings from another designer's emoji SVGs, for a check outside
Noto's style: each SVG rasterized by resvg at the small and the large size (what a designer's
export gives), written as LR<small>/ and HR<large>/ PNGs with the same names, the layout of
../shared/data/Emoji, so `coordsr bench` and benchmarks/drawing_peers.py read them as they are.

The SVGs come from the npm registry (nothing is bundled: the sets have their own licences,
Twemoji CC-BY 4.0, OpenMoji CC BY-SA 4.0):

    npm pack @twemoji/svg@15.0.0 && tar xzf twemoji-svg-15.0.0.tgz          # package/*.svg
    python benchmarks/svg_emoji_pairs.py package --out /tmp/twemoji_pairs --count 40

Picks ``--count`` single-codepoint emoji of U+1F300..U+1FAFF (the range of the Noto set, as its
README says), every k-th by sorted code point so the pick is fixed and spread across the range.
Used for final checks only: never for training or for choosing settings.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path


def pick(svg_dir: Path, count: int) -> list[Path]:
    files = []
    for p in sorted(svg_dir.rglob("*.svg")):
        m = re.fullmatch(r"([0-9a-fA-F]{4,6})", p.stem)
        if m and 0x1F300 <= int(m.group(1), 16) <= 0x1FAFF:
            files.append(p)
    files.sort(key=lambda p: int(p.stem, 16))
    step = max(1, len(files) // count)
    return files[::step][:count]


def render(svg: Path, size: int):
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_path=str(svg), width=size, height=size)
    return Image.open(io.BytesIO(bytes(png))).convert("RGBA")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("svg_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--small", type=int, default=32)
    p.add_argument("--large", type=int, default=512)
    a = p.parse_args(argv)
    chosen = pick(a.svg_dir, a.count)
    if not chosen:
        print(f"{a.svg_dir}: no emoji SVGs named by a code point in U+1F300..U+1FAFF", file=sys.stderr)
        return 2
    for size in (a.small, a.large):
        (a.out / f"{'LR' if size == a.small else 'HR'}{size}").mkdir(parents=True, exist_ok=True)
    for svg in chosen:
        name = f"emoji_u{svg.stem.lower()}.png"
        render(svg, a.small).save(a.out / f"LR{a.small}" / name)
        render(svg, a.large).save(a.out / f"HR{a.large}" / name)
    print(f"wrote {len(chosen)} pairs to {a.out} (LR{a.small}/, HR{a.large}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
