"""How close an SVG traced from an upscaled drawing is to the raster it was traced from (issue 32,
item 4): ``coordsr upscale icon.png -o icon.svg`` against ``-o icon.png --size 1024x1024``.

For each of ``--count`` Emoji validation drawings (``LR32``, files where
``coordsr.liif.data.is_validation`` is true; never used to train the drawing model):

* the raster: the ``drawing`` method at 1024 x 1024, quantized to 8 bits as a file is;
* SVGs traced (coordsr.vector.trace) from the ``drawing`` method's upscale at x8 (256 px, the
  default of an .svg output) and at x32 (1024 px), with the chosen settings (TraceConfig), and
  at x8 with variants (vtracer's defaults, polygons, less speckle filtering, the alpha handed to
  vtracer as it is instead of cut at one half), each rendered at 1024 x 1024 with resvg;
* scores of each render against the raster (coordsr.metrics.drawing_scores: PSNR of the composite
  on white and on black, alpha PSNR), its size in KB and the time to trace;
* and, for scale, the raster and the default SVG both at 512 against the emoji's own 512 px
  drawing (``HR512``): how far each is from the truth.

Prints a table and writes JSON::

    nice -n 10 .venv/bin/python benchmarks/svg_fidelity.py --json benchmarks/results/svg_fidelity.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import loadavg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "Emoji"
SIZE = 1024


def validation_files(count: int) -> list[Path]:
    from coordsr.drawings.data import is_held_out

    files = [p for p in sorted((DATA / "LR32").glob("*.png")) if is_held_out(p.name)]
    step = max(1, len(files) // count)  # spread over the split, not the first few code points
    return files[::step][:count]


def render(svg: str, size: int) -> np.ndarray:
    """SVG text drawn at size x size by resvg: (size, size, 4) floats in [0, 1], straight alpha."""
    import resvg_py
    from PIL import Image

    png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float32) / 255


def as_file(pixels: np.ndarray) -> np.ndarray:
    from coordsr.images import quantize

    return quantize(pixels, 8).astype(np.float32) / 255


def scores(a: np.ndarray, b: np.ndarray) -> dict:
    from coordsr.metrics import drawing_scores

    s = drawing_scores(a, b)
    return {k: round(s[k], 2) for k in ("psnr_white", "psnr_black", "psnr", "alpha_psnr", "gmsd")}


def traced(pixels: np.ndarray, cfg) -> tuple[str, float]:
    from coordsr.vector import trace

    start = time.perf_counter()
    svg = trace(pixels, cfg)
    return svg, time.perf_counter() - start


def variants():
    from coordsr.vector import TraceConfig

    chosen = TraceConfig()
    return {
        "chosen": (8, chosen),
        "chosen_x32": (32, chosen),
        "vtracer_defaults": (8, TraceConfig(filter_speckle=4, color_precision=6, layer_difference=16,
                                            path_precision=8)),
        "polygon": (8, replace(chosen, mode="polygon")),
        "speckle_2": (8, replace(chosen, filter_speckle=2)),
        "alpha_as_is": (8, replace(chosen, alpha_cut=None)),  # vtracer keys out alpha 0 only
    }


def one(path: Path, upscaler) -> dict:
    from PIL import Image

    lr = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255
    h, w = lr.shape[:2]
    raster = as_file(upscaler.upscale(lr, (SIZE, SIZE)))
    ups = {}
    row = {"name": path.name, "variants": {}}
    for name, (scale, cfg) in variants().items():
        if scale not in ups:
            ups[scale] = as_file(upscaler.upscale(lr, (h * scale, w * scale)))
        svg, seconds = traced(ups[scale], cfg)
        row["variants"][name] = {"traced_at": h * scale, "kb": round(len(svg.encode()) / 1024, 1),
                                 "trace_s": round(seconds, 3), **scores(render(svg, SIZE), raster)}
        if name == "chosen":
            truth = np.asarray(Image.open(DATA / "HR512" / path.name).convert("RGBA"), dtype=np.float32) / 255
            row["vs_truth_512"] = {"raster": scores(as_file(upscaler.upscale(lr, (512, 512))), truth),
                                   "svg": scores(render(svg, 512), truth)}
    return row


def weights_record(path: str) -> dict:
    """Which weights ran: the drawing model's shipped file is replaced as training goes on."""
    import hashlib

    data = Path(path).read_bytes()
    return {"file": Path(path).name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def mean(rows: list[dict], get) -> float:
    values = [get(r) for r in rows]
    return round(float(np.mean([v for v in values if v is not None])), 2)


def main() -> int:
    from coordsr.methods import get_method
    from coordsr.vector import TraceConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    upscaler = get_method("drawing")(device="cpu")
    load_before = loadavg()
    rows = []
    for path in validation_files(args.count):
        rows.append(one(path, upscaler))
        v = rows[-1]["variants"]["chosen"]
        print(f"{path.name:<24} white {v['psnr_white']:6.2f}  black {v['psnr_black']:6.2f}  "
              f"alpha {v['alpha_psnr']:6.2f}  {v['kb']:7.1f} KB", flush=True)
    summary = {}
    print(f"\nagainst the raster at {SIZE}x{SIZE}, mean of {len(rows)} Emoji validation drawings")
    print(f"{'variant':<18} {'traced at':>9} {'white dB':>9} {'black dB':>9} {'mean dB':>8} {'alpha dB':>9} "
          f"{'GMSD':>6} {'KB':>7} {'trace s':>8}")
    for name in variants():
        s = {k: mean(rows, lambda r, k=k: r["variants"][name][k])
             for k in ("psnr_white", "psnr_black", "psnr", "alpha_psnr", "gmsd", "kb", "trace_s")}
        summary[name] = s
        traced_at = rows[0]["variants"][name]["traced_at"]
        print(f"{name:<18} {traced_at:>9} {s['psnr_white']:>9.2f} {s['psnr_black']:>9.2f} {s['psnr']:>8.2f} "
              f"{s['alpha_psnr']:>9.2f} {s['gmsd']:>6.3f} {s['kb']:>7.1f} {s['trace_s']:>8.2f}")
    truth = {kind: {k: mean(rows, lambda r, k=k, kind=kind: r["vs_truth_512"][kind][k])
                    for k in ("psnr_white", "psnr_black", "psnr", "alpha_psnr", "gmsd")} for kind in ("raster", "svg")}
    print("\nagainst the emoji's own 512 px drawing (HR512), at 512x512")
    for kind, s in truth.items():
        print(f"{kind:<18} white {s['psnr_white']:.2f}  black {s['psnr_black']:.2f}  mean {s['psnr']:.2f}  "
              f"alpha {s['alpha_psnr']:.2f}  GMSD {s['gmsd']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": "benchmarks/svg_fidelity.py " + " ".join(sys.argv[1:]), "size": SIZE,
                  "weights": weights_record(upscaler.weights_path()), "chosen": asdict(TraceConfig()),
                  "loadavg_before": load_before, "loadavg_after": loadavg(),
                  "summary": summary, "vs_truth_512": truth, "rows": rows}
        args.json.write_text(json.dumps(record, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
