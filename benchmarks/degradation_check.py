"""How often ``--degradation auto`` calls a photo compressed or noisy (issue 34, item 3).

Calibration set (training photos only): every third image of T91 + BSD200, made 2, 3 and 4x
smaller by the benchmark's bicubic, stored as 8-bit PNG pixels: clean, then saved as JPEG at
quality 90 / 70 / 40 and decoded (a JPEG later saved as PNG: only its blocks can tell), with
Gaussian noise of sigma 3 / 5 / 10, and noise 10 then JPEG 70. The thresholds of
``coordsr.quality`` were set on these rates. The check set, never used to set them: Set5, Set14
and Kodak24 the same way (the clean rows are the issue's target: a clean benchmark input must
keep the clean model). A JPEG file's own tables are read before any of this (tested exactly in
tests/test_quality.py), so these rates are for PNG inputs, the hard case.

    .venv/bin/python benchmarks/degradation_check.py --json benchmarks/results/degradation_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KINDS = ("clean", "jpeg90", "jpeg70", "jpeg40", "noise3", "noise5", "noise10", "noise10,jpeg70")


def lr_images(folders, every: int, scales=(2, 3, 4)):
    """(name, scale, (3, h, w) float HR-then-bicubic LR as a float tensor in [0, 1])."""
    from coordsr.liif.data import list_images, load_rgb
    from coordsr.resize import imresize

    for path in list_images(folders)[::every]:
        hr = load_rgb(path).double() / 255
        for s in scales:
            h, w = hr.shape[1] // s, hr.shape[2] // s
            yield path.name, s, imresize(hr, (h, w), scale=1 / s).float()


def rates(folders, every: int) -> dict:
    from coordsr.degradations import apply, parse
    from coordsr.quality import assess

    seen: dict[str, list] = {k: [] for k in KINDS}
    for i, (name, s, lr) in enumerate(lr_images(folders, every)):
        for kind in KINDS:
            _, after = parse(kind, scale=s, seed=i) if kind != "clean" else ([], [])
            x = (apply(lr, after).clamp(0, 1) * 255).round() / 255
            a = assess(x.permute(1, 2, 0).numpy())
            seen[kind].append({"image": name, "scale": s, "real": a.kind == "real", "blockiness": a.blockiness,
                               "chroma_noise": a.chroma_noise, "luma_noise": a.luma_noise})
    out = {}
    for kind, rows in seen.items():
        q = {f: np.percentile([r[f] for r in rows], [5, 50, 95]).round(3).tolist()
             for f in ("blockiness", "chroma_noise", "luma_noise")}
        out[kind] = {"n": len(rows), "called_real": float(np.mean([r["real"] for r in rows])), "p5_50_95": q,
                     "clean_called_real" if kind == "clean" else "missed":
                         [f"{r['image']} x{r['scale']}" for r in rows if r["real"] == (kind == "clean")][:50]}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=int, default=3, help="every k-th training image")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from coordsr import quality as Q

    sets = {"training (T91 + BSD200)": ([DATA / "T91", DATA / "BSD200"], a.every),
            "check (Set5 + Set14 + Kodak24)": ([DATA / "Set5", DATA / "Set14", DATA / "Kodak24"], 1)}
    doc = {"thresholds": {"jpeg_clean_from": Q.JPEG_CLEAN_FROM, "blocky": Q.BLOCKY, "chroma_noise": Q.CHROMA_NOISE,
                          "luma_noise": Q.LUMA_NOISE}, "sets": {}, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    for label, (folders, every) in sets.items():
        doc["sets"][label] = r = rates(folders, every)
        print(f"\n{label}: share called compressed or noisy (PNG pixels, x2-x4 bicubic LR)")
        print(f"| input | n | called real |\n|---|---|---|")
        for kind, v in r.items():
            print(f"| {kind} | {v['n']} | {v['called_real']:.1%} |")
    if a.json:
        from coordsr.bench import dump_json

        dump_json(doc, a.json)
        print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
