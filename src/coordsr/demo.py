"""The demo: a bundled photo is shrunk, upscaled back by a method and by bicubic, and compared."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from coordsr.methods.base import Upscaler
from coordsr.methods.interpolation import bicubic, nearest
from coordsr.progress import ProgressCallback


def side_by_side(panels: list[tuple[str, np.ndarray]], height: int = 384) -> np.ndarray:
    """Panels (title, H x W x C image) scaled to one height with nearest, titled, in a row: uint8 RGB."""
    from PIL import Image, ImageDraw

    pad, title_h = 8, 22
    tiles = []
    for title, img in panels:
        img = np.clip(img, 0, 1)
        if img.shape[2] in (1, 2):
            img = np.repeat(img[:, :, :1], 3, axis=2)
        pil = Image.fromarray((img[:, :, :3] * 255 + 0.5).astype(np.uint8))
        w = max(1, round(pil.width * height / pil.height))
        tile = Image.new("RGB", (w, height + title_h), "white")
        tile.paste(pil.resize((w, height), Image.NEAREST), (0, title_h))
        ImageDraw.Draw(tile).text((4, 4), title, fill="black")
        tiles.append(tile)
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + pad * (len(tiles) + 1), height + title_h + 2 * pad),
                       "white")
    x = pad
    for t in tiles:
        canvas.paste(t, (x, pad))
        x += t.width + pad
    return np.asarray(canvas).astype(np.float32) / 255


def checkerboard(h: int, w: int, square: int = 16) -> np.ndarray:
    """(h, w, 3) light and mid grey squares: where transparency is shown, as image editors do."""
    yy, xx = np.indices((h, w)) // square
    return np.where(((yy + xx) % 2)[:, :, None] == 0, 0.92, 0.75).repeat(3, axis=2).astype(np.float32)


def over_checkerboard(image: np.ndarray) -> np.ndarray:
    """An RGBA (or grey + alpha) image composited over a checkerboard; opaque images unchanged."""
    if image.shape[2] not in (2, 4):
        return image
    rgb = image[:, :, :3] if image.shape[2] == 4 else np.repeat(image[:, :, :1], 3, axis=2)
    a = image[:, :, -1:]
    return rgb * a + checkerboard(*image.shape[:2]) * (1 - a)


def run_icon_demo(upscaler: Upscaler, name: str, out: Path, *, size: int = 1024,
                  progress: ProgressCallback | None = None) -> str:
    """The seed's own job: a bundled 32 px icon drawn at ``size`` x ``size`` by ``upscaler`` and by
    bicubic, transparency kept; scored at 512 against the designers' 512 px drawing (the drawing
    protocol: PSNR mean of white and black composites). Writes icon_*.png and icon_comparison.png."""
    from coordsr.images import write_image
    from coordsr.metrics import drawing_scores, quantize
    from coordsr.samples import demo_icon

    out.mkdir(parents=True, exist_ok=True)
    lr, truth = demo_icon()
    start = time.perf_counter()
    sr = quantize(upscaler.upscale(lr, (size, size), progress=progress))
    seconds = time.perf_counter() - start
    bic = quantize(bicubic().upscale(lr, (size, size)))
    n = truth.shape[0]
    scores = {m: drawing_scores(quantize(u.upscale(lr, (n, n))), truth)["psnr"]  # at the truth's size
              for m, u in (("bicubic", bicubic()), (name, upscaler))}
    write_image(out / "icon_input.png", lr)
    write_image(out / "icon_bicubic.png", bic)
    write_image(out / f"icon_{name}.png", sr)
    panels = [(f"input {lr.shape[1]}x{lr.shape[0]} (nearest)", over_checkerboard(nearest().upscale(lr, (size, size)))),
              (f"bicubic {scores['bicubic']:.2f} dB", over_checkerboard(bic)),
              (f"{name} {scores[name]:.2f} dB", over_checkerboard(sr)),
              (f"the designers' {n} px drawing", over_checkerboard(truth))]
    write_image(out / "icon_comparison.png", side_by_side(panels, height=512))
    return (f"icon 32 -> {size}: bicubic {scores['bicubic']:.2f} dB, {name} {scores[name]:.2f} dB (PSNR at 512, "
            f"mean of white and black) in {seconds:.1f} s; icon_comparison.png")


def run_demo(upscaler: Upscaler, name: str, out: Path, *, scale: int = 4,
             progress: ProgressCallback | None = None) -> str:
    """Write lr.png, bicubic.png, <name>.png, truth.png and comparison.png into ``out``."""
    from coordsr.images import write_image
    from coordsr.metrics import make_lr, modcrop, psnr_y, quantize
    from coordsr.samples import demo_image

    out.mkdir(parents=True, exist_ok=True)
    hr = modcrop(demo_image(), scale)  # the benchmark's protocol, on a photo it never saw
    h, w = hr.shape[:2]
    lr = make_lr(hr, scale).astype(np.float32)
    start = time.perf_counter()
    sr = quantize(upscaler.upscale(lr, (h, w), progress=progress))
    seconds = time.perf_counter() - start
    bic = quantize(bicubic().upscale(lr, (h, w)))
    scores = {n: psnr_y(img, hr, shave=scale) for n, img in (("bicubic", bic), (name, sr))}
    write_image(out / "lr.png", lr)
    write_image(out / "bicubic.png", bic)
    write_image(out / f"{name}.png", sr)
    write_image(out / "truth.png", hr)
    panels = [(f"input {lr.shape[1]}x{lr.shape[0]} (nearest)", nearest().upscale(lr, (h, w))),
              (f"bicubic {scores['bicubic']:.2f} dB", bic),
              (f"{name} {scores[name]:.2f} dB", sr), ("ground truth", hr)]
    write_image(out / "comparison.png", side_by_side(panels))
    return (f"demo x{scale}: bicubic {scores['bicubic']:.2f} dB, {name} {scores[name]:.2f} dB "
            f"(Y-PSNR) in {seconds:.1f} s; pictures in {out}/ (comparison.png)")
