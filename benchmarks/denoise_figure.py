"""A figure of crops side by side for docs/DENOISE.md and BENCHMARKS.md (issue 14).

Every method runs on the same central crop of one Kodak24 image with the protocol's noise
(float, sigma given); each tile is labelled with its RGB PSNR on that crop.

    nice -n 10 python benchmarks/denoise_figure.py --out docs/img/denoise_crops.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from PIL import Image, ImageDraw

    from coordsr.bench import read_hr
    from coordsr.denoise.bench import center_crop
    from coordsr.denoise.protocol import add_noise, noise_seed, score
    from coordsr.methods import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="kodim05.png")
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--methods", default="nlmeans,wavelet,tv,zsn2n,zsnlm,field,trained")
    ap.add_argument("--set", action="append", default=[], help="method:NAME=VALUE")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    path = REPO.parent / "shared" / "data" / "Kodak24" / args.image
    clean = center_crop(read_hr(path), args.crop)
    noisy = add_noise(clean, args.sigma, noise_seed(path.name, args.sigma))
    tiles = [("noisy", noisy, score(noisy, clean)["psnr"])]
    for name in args.methods.split(","):
        kw = {k.split(":", 1)[1]: v for k, _, v in (s.partition("=") for s in args.set) if k.startswith(name + ":")}
        cls = get_method(name)
        import typing

        hints = typing.get_type_hints(cls)
        m = cls(device="cpu", **{k: hints[k](v) for k, v in kw.items()})
        out = m.denoise(noisy, args.sigma)
        tiles.append((name, out, score(out, clean)["psnr"]))
        print(f"{name}: {tiles[-1][2]:.2f} dB", file=sys.stderr, flush=True)
    tiles.append(("clean", clean, None))
    side, label = args.crop, 16
    sheet = Image.new("RGB", (side * len(tiles), side + label), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, img, psnr) in enumerate(tiles):
        pix = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        sheet.paste(Image.fromarray(pix), (k * side, label))
        draw.text((k * side + 3, 2), name + (f" {psnr:.2f} dB" if psnr is not None else ""), fill="black")
    sheet.save(args.out, optimize=True)
    import json  # the labels' numbers beside the figure, for the report's caption

    args.out.with_suffix(".json").write_text(json.dumps(
        {"image": args.image, "crop": side, "sigma": args.sigma,
         "psnr": {name: round(psnr, 2) for name, _, psnr in tiles if psnr is not None}}, indent=1))
    print(f"wrote {args.out} ({args.image}, central {side}x{side}, sigma {args.sigma:g})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
