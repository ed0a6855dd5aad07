"""Dev-set harness: the benchmark protocol (make_lr, quantize, psnr_y) on my own tuning images.

Dev set (tuning only): central 192x192 crops of 6 BSD200 files + 2 T91 files.
Held-out check: 6 other BSD200 files, full size, never used for tuning.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from coordsr import metrics
from coordsr.bench import read_hr
from coordsr.methods.interpolation import bicubic

DATA = Path("/work/shared/data")
DEV = [("BSD200", n) for n in ("100075", "100080", "100098", "103041", "104022", "105019")] + \
      [("T91", n) for n in ("t1", "tt3")]
HELDOUT = ["12003", "16077", "23084", "35010", "41004", "65010"]


def dev_images(side: int = 192):
    out = []
    for folder, name in DEV:
        hr = read_hr(DATA / folder / f"{name}.png")
        h, w = hr.shape[:2]
        s = min(side, h // 12 * 12, w // 12 * 12)
        r0, c0 = (h - s) // 2, (w - s) // 2
        out.append((name, hr[r0:r0 + s, c0:c0 + s]))
    return out


def heldout_images():
    return [(n, read_hr(DATA / "BSD200" / f"{n}.png")) for n in HELDOUT]


def evaluate(fn, images, scales=(2, 3, 4), label="", verbose=True):
    """fn(lr float32 HWC, (H, W)) -> HWC. Prints and returns {scale: (mean gain, worst gain, mean s)}."""
    torch.set_num_threads(2)
    res = {}
    for s in scales:
        gains, secs, cpus = [], [], []
        for name, hr_full in images:
            hr = metrics.modcrop(hr_full, s)
            lr = metrics.make_lr(hr, s).astype(np.float32)
            shave = metrics.shave_for(s)
            base = metrics.psnr_y(metrics.quantize(bicubic().upscale(lr, hr.shape[:2]).astype(np.float64)), hr, shave)
            torch.manual_seed(0)
            t, c = time.perf_counter(), time.process_time()
            out = fn(lr, hr.shape[:2])
            secs.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            p = metrics.psnr_y(metrics.quantize(np.clip(out, 0, 1).astype(np.float64)), hr, shave)
            gains.append(p - base)
            if verbose:
                print(f"  x{s} {name}: bicubic {base:.2f} -> {p:.2f} ({p - base:+.2f}) {secs[-1]:.1f}s wall {cpus[-1]:.1f}s cpu", flush=True)
        res[s] = (float(np.mean(gains)), float(np.min(gains)), float(np.mean(secs)), float(np.mean(cpus)))
    line = "  ".join(f"x{s}: {m:+.2f} (worst {w:+.2f}, {t:.0f}s wall/{c:.0f}s cpu)" for s, (m, w, t, c) in res.items())
    print(f"{label:40s} {line}", flush=True)
    return res
