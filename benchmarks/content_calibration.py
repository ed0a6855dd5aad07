"""Calibrate and check coordsr.content.classify on training data only (issue 32, item 3).

Sets (none of them an evaluation set, none the Emoji validation split):

* drawing: the Emoji training split's ``LR32`` as it is (RGBA), flattened on white (also in
  grey) and on a random plain colour (opaque icons), and its ``HR512`` reduced (area) to 64 and
  128 px;
* photo: T91 and BSD200 at full size and reduced (Lanczos) so the longest side is 32, 64 and
  128 px (thumbnails are small too), in colour and in grey;
* pixel-art: random palette sprites (8 to 64 px, 2 to 32 colours, mirrored blobs, on
  transparency or a plain colour), nearest-enlarged x1 to x4, and Emoji training ``LR32``
  quantized to 8 colours with alpha cut at one half (no antialiasing left).

Also measured, outside the calibration (the known weak spot): the same drawings flattened on
white and saved as JPEG at quality 85, 32 and 128 px, where the codec's noise breaks the flat
regions into many colours.

Prints the confusion counts and each feature's quantiles per set; writes them, the thresholds
and every misclassified image with its features to JSON::

    nice -n 10 .venv/bin/python benchmarks/content_calibration.py --json benchmarks/results/content_calibration.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KINDS = ("photo", "drawing", "pixel-art")


def as_float(im: Image.Image) -> np.ndarray:
    a = np.asarray(im, dtype=np.float32) / 255
    return a if a.ndim == 3 else a[:, :, None]


def emoji_train(folder: str) -> list[Path]:
    from coordsr.drawings.data import is_held_out

    files = sorted((DATA / "Emoji" / folder).glob("*.png"))
    return [p for p in files if not is_held_out(p.name)]


def drawings(rng: np.random.Generator, limit: int | None):
    for p in emoji_train("LR32")[:limit]:
        rgba = Image.open(p).convert("RGBA")
        yield f"emoji32/{p.name}", as_float(rgba)
        for name, bg in (("white", (255, 255, 255)), ("plain", tuple(int(v) for v in rng.integers(0, 256, 3)))):
            flat = Image.new("RGBA", rgba.size, bg + (255,))
            flat.alpha_composite(rgba)
            yield f"emoji32-{name}/{p.name}", as_float(flat.convert("RGB"))
            if name == "white":
                yield f"emoji32-grey/{p.name}", as_float(flat.convert("L"))
    for p in emoji_train("HR512")[:limit]:
        big = Image.open(p).convert("RGBA")
        for side in (64, 128):
            yield f"emoji{side}/{p.name}", as_float(big.resize((side, side), Image.BOX))


def photos(limit: int | None):
    files = sorted((DATA / "T91").glob("*.png")) + sorted((DATA / "BSD200").glob("*.png"))
    for p in files[:limit]:
        for mode, tag in (("RGB", "photo"), ("L", "grey")):
            im = Image.open(p).convert(mode)
            yield f"{tag}/{p.parent.name}/{p.name}", as_float(im)
            for side in (32, 64, 128):
                k = side / max(im.size)
                small = im.resize((max(2, round(im.width * k)), max(2, round(im.height * k))), Image.LANCZOS)
                yield f"{tag}{side}/{p.parent.name}/{p.name}", as_float(small)


def sprite(rng: np.random.Generator) -> np.ndarray:
    """A random palette sprite: mirrored random blobs of 2 to 16 colours, hard edges."""
    n = int(rng.choice([8, 12, 16, 24, 32, 48, 64]))
    k = int(rng.integers(2, 33))
    palette = rng.integers(0, 256, (k, 3))
    half = (n + 1) // 2
    idx = np.zeros((n, half), int)
    for _ in range(int(rng.integers(3, 10))):  # rectangles and discs of palette colours
        cy, cx, r = rng.integers(0, n), rng.integers(0, half), rng.integers(1, max(2, n // 3))
        yy, xx = np.mgrid[:n, :half]
        mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r) if rng.random() < 0.5 \
            else (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        idx[mask] = rng.integers(1, k + 1)
    idx = np.concatenate([idx, idx[:, : n - half][:, ::-1]], axis=1)  # left-right mirror
    rgba = np.zeros((n, n, 4), np.uint8)
    if rng.random() < 0.5:
        rgba[..., 3] = 255
        rgba[..., :3] = rng.integers(0, 256, 3)  # an opaque plain background
    on = idx > 0
    rgba[on, :3] = palette[idx[on] - 1]
    rgba[on, 3] = 255
    f = int(rng.integers(1, 5))
    im = Image.fromarray(rgba).resize((n * f, n * f), Image.NEAREST)
    return as_float(im if rgba[..., 3].min() < 255 else im.convert("RGB"))


def quantized_emoji(p: Path, f: int) -> np.ndarray:
    rgba = Image.open(p).convert("RGBA")
    a = np.asarray(rgba)[..., 3] >= 128
    rgb = rgba.convert("RGB").quantize(colors=8, dither=Image.Dither.NONE).convert("RGB")
    out = np.concatenate([np.asarray(rgb), (a * 255).astype(np.uint8)[..., None]], axis=2)
    out[~a] = 0
    return as_float(Image.fromarray(out).resize((32 * f, 32 * f), Image.NEAREST))


def pixel_art(rng: np.random.Generator, limit: int | None):
    for i in range(limit or 1000):
        yield f"sprite/{i}", sprite(rng)
    for i, p in enumerate(emoji_train("LR32")[:limit]):
        yield f"emoji8c/{p.name}", quantized_emoji(p, 1 + i % 4)


def jpeg_drawings(limit: int | None):
    import io

    for p in emoji_train("HR512")[:limit]:
        big = Image.open(p).convert("RGBA")
        for side in (32, 128):
            flat = Image.new("RGBA", (side, side), (255, 255, 255, 255))
            flat.alpha_composite(big.resize((side, side), Image.BOX))
            buf = io.BytesIO()
            flat.convert("RGB").save(buf, "JPEG", quality=85)
            yield f"emoji{side}-jpeg85/{p.name}", as_float(Image.open(buf).convert("RGB"))


def confusion_of(rows: list[dict]) -> dict:
    return {t: {k: sum(r["truth"] == t and r["kind"] == k for r in rows) for k in KINDS} for t in KINDS}


def print_confusion(confusion: dict) -> None:
    print(f"{'truth':<10} " + " ".join(f"{k:>9}" for k in KINDS))
    for t in KINDS:
        print(f"{t:<10} " + " ".join(f"{confusion[t][k]:>9}" for k in KINDS))


def main() -> int:
    import coordsr.content as content
    from coordsr.content import decide, measure

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="At most this many source files per set (a quick run).")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows, stress = [], []
    for truth, images, into in (("drawing", drawings(rng, args.limit), rows), ("photo", photos(args.limit), rows),
                                ("pixel-art", pixel_art(rng, args.limit), rows),
                                ("drawing", jpeg_drawings(args.limit), stress)):
        for name, img in images:
            f = measure(img)
            into.append({"name": name, "truth": truth, "kind": decide(f), **asdict(f)})
    confusion = confusion_of(rows)
    print_confusion(confusion)
    print("\noutside the calibration: drawings saved as JPEG (quality 85)")
    print_confusion(confusion_of(stress))
    groups = sorted({r["name"].split("/")[0] for r in rows + stress})
    sets = {}
    keys = ("colours", "common", "rare", "blends")
    print(f"\n{'set':<14} {'n':>5} {'wrong':>5}  " + "  ".join(f"{k + '(q10/50/90)':>20}" for k in keys)
          + "  transparent(q50)")
    for g in groups:
        sel = [r for r in rows + stress if r["name"].split("/")[0] == g]

        def q(key):
            return "/".join(f"{v:.2f}" if isinstance(v, float) and key != "colours" else f"{v:.0f}"
                            for v in np.quantile([r[key] for r in sel], [0.1, 0.5, 0.9]))

        wrong = sum(r["truth"] != r["kind"] for r in sel)
        sets[g] = {"n": len(sel), "wrong": wrong, "kinds": {k: sum(r["kind"] == k for r in sel) for k in KINDS},
                   **{k: [round(float(v), 4) for v in np.quantile([r[k] for r in sel], [0.01, 0.1, 0.5, 0.9, 0.99])]
                      for k in keys}}
        print(f"{g:<14} {len(sel):>5} {wrong:>5}  " + "  ".join(f"{q(k):>20}" for k in keys)
              + f"  {np.median([r['transparent'] for r in sel]):.2f}")
    wrong = [r for r in rows if r["truth"] != r["kind"]]
    for r in wrong[:40]:
        print(f"  wrong: {r['name']} {r['truth']} -> {r['kind']}  colours {r['colours']} common {r['common']:.2f} "
              f"rare {r['rare']:.2f} blends {r['blends']:.2f} transparent {r['transparent']:.2f} "
              f"hard_alpha {r['hard_alpha']} {r['width']}x{r['height']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        thresholds = {k: v for k, v in vars(content).items() if k.isupper() and isinstance(v, (int, float))}
        record = {"confusion": confusion, "jpeg_drawings": confusion_of(stress), "thresholds": thresholds,
                  "quantiles": [0.01, 0.1, 0.5, 0.9, 0.99], "sets": sets, "wrong": wrong}
        args.json.write_text(json.dumps(record, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
