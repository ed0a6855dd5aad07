"""Regions instead of points (issue 15, item 4a): a fitted field drawn smaller than the image it
was fitted to, where a point render aliases, with each footprint against the 16-sample reference.

For each family and image: fit the field to a ``--size`` crop (the method's defaults and stop
rule), draw it at ``--size / k`` for each ``--shrink`` k with every footprint (coordsr.render:
point, area, supersample:2) and compare with ``supersample:4`` (16 samples a pixel, the
reference the issue names): Y-PSNR against the reference, as the protocol computes it (no
shave), and against the image itself at that size (each pixel the mean of its k x k block), where
a footprint is "within 0.3 dB of the reference" if its PSNR is at most 0.3 dB below the
reference's. The cost of each footprint is measured on a ``--cost-size`` square render of the same
field (best of ``--repeats``), as a multiple of the point render's time. Prints a table, writes JSON with the
machine's load and GFLOP/s of the same run::

    nice -n 10 .venv/bin/python benchmarks/footprint.py --json benchmarks/results/footprint.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FOOTPRINTS = ("point", "area", "supersample:2")
REFERENCE = "supersample:4"


def crop(path: Path, size: int) -> np.ndarray:
    from coordsr.images import read_image

    img = read_image(path).pixels
    h, w = img.shape[:2]
    r, c = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[r:r + size, c:c + size, :3])


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(family: str, image: np.ndarray, shrinks: list[int], repeats: int, settings: dict,
            cost_size: int = 512) -> dict:
    from coordsr.cli import build_method
    from coordsr.metrics import psnr_y
    from coordsr.render import render_field

    method = build_method(family, dict(settings), "cpu")
    start = time.perf_counter()
    field, result = method.fit_field(image, image.shape[:2])
    row = {"family": family, "fit_s": time.perf_counter() - start, "fit_steps": result.steps,
           "fit_psnr": result.psnr, "closed_form": field.has_footprint, "shrinks": {}}
    size = image.shape[0]
    row["truth"] = {}
    for k in shrinks:
        out = (size // k, size // k)
        ref = render_field(field, out, footprint=REFERENCE)
        drawn = {fp: render_field(field, out, footprint=fp) for fp in FOOTPRINTS}
        row["shrinks"][str(k)] = {fp: psnr_y(d, ref) for fp, d in drawn.items()}
        # The image itself at that size: each pixel the mean of its k x k block (what a camera
        # with k times larger pixels records; what the reference approximates for a perfect field).
        truth = image[:out[0] * k, :out[1] * k].reshape(out[0], k, out[1], k, -1).mean(axis=(1, 3))
        row["truth"][str(k)] = {fp: psnr_y(d, truth) for fp, d in {**drawn, REFERENCE: ref}.items()}
    side = (cost_size, cost_size)
    point = seconds(lambda: render_field(field, side), repeats)
    row["cost_vs_point"] = {fp: seconds(lambda fp=fp: render_field(field, side, footprint=fp), repeats) / point
                            for fp in (*FOOTPRINTS[1:], REFERENCE)}
    row["point_render_s"], row["cost_size"] = point, cost_size
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="Set14/baboon.png,Set14/barbara.png,Set14/zebra.png",
                   help="comma-separated paths under ../shared/data")
    p.add_argument("--families", default="hashgrid,fourier,siren")
    p.add_argument("--size", type=int, default=128, help="side of the centre crop the field is fitted to")
    p.add_argument("--shrink", default="2,4", help="draw at size / k for each k")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cost-size", type=int, default=512, help="side of the renders that are timed")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of every family")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    shrinks = [int(k) for k in a.shrink.split(",")]
    before = machine_record()
    print(machine_line(before), flush=True)
    rows = []
    for rel in a.images.split(","):
        image = crop(DATA / rel, a.size)
        for family in a.families.split(","):
            settings = dict(kv.split("=", 1) for kv in a.set)
            row = {"image": rel, **measure(family, image, shrinks, a.repeats, settings, a.cost_size)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    after = machine_record()

    print(f"\nY-PSNR (dB) against the {REFERENCE} render (16 samples a pixel), mean over "
          f"{len(a.images.split(','))} images; cost of a {a.cost_size}x{a.cost_size} render relative to point")
    print("| family | drawn at | point | area | supersample:2 | area cost | supersample:2 cost | reference cost |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for family in a.families.split(","):
        mine = [r for r in rows if r["family"] == family]
        for k in shrinks:
            mean = {fp: float(np.mean([r["shrinks"][str(k)][fp] for r in mine])) for fp in FOOTPRINTS}
            cost = {fp: float(np.mean([r["cost_vs_point"][fp] for r in mine])) for fp in (*FOOTPRINTS[1:], REFERENCE)}
            summary.append({"family": family, "shrink": k, "psnr_vs_reference": mean, "cost_vs_point": cost,
                            "closed_form": mine[0]["closed_form"]})
            area = f"{mean['area']:.2f}" if mine[0]["closed_form"] else "the reference (4x4 samples)"
            print(f"| {family} | 1/{k} | {mean['point']:.2f} | {area} | {mean['supersample:2']:.2f} | "
                  f"{cost['area']:.2f}x | {cost['supersample:2']:.2f}x | {cost[REFERENCE]:.2f}x |")
    print(f"\nY-PSNR (dB) against the image itself at that size (k x k block means), mean over the images; "
          f"in brackets the gap to the {REFERENCE} render's")
    print("| family | drawn at | point | area | supersample:2 | reference |")
    print("|---|---|---|---|---|---|")
    for family in a.families.split(","):
        mine = [r for r in rows if r["family"] == family]
        for k in shrinks:
            t = {fp: float(np.mean([r["truth"][str(k)][fp] for r in mine])) for fp in (*FOOTPRINTS, REFERENCE)}
            next(x for x in summary if x["family"] == family and x["shrink"] == k)["psnr_vs_truth"] = t
            print(f"| {family} | 1/{k} | " + " | ".join(f"{t[fp]:.2f} ({t[fp] - t[REFERENCE]:+.2f})" for fp in FOOTPRINTS)
                  + f" | {t[REFERENCE]:.2f} |")
    print(f"machine before: {machine_line(before)}; after: {machine_line(after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "size": a.size,
                                      "reference": REFERENCE, "rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
