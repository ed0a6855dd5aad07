"""Calibrate the 'auto' stop rule: record a fit's trajectory and score every stop it could make.

For each image and scale, the default hashgrid preset (point model, full budget) is fitted with
``until=steps``; every ``every`` steps the field is drawn at the output size and scored on the
protocol (Y-PSNR against HR), and the AutoStop probe's change since the previous check is
recorded. Stopping at step k of this run is exactly what a run with an early stop at k returns
(the learning-rate schedule depends on the cap, not on the stop), so every rule can be scored
from one trajectory. Writes JSON lines; prints a table of rules.

    nice -n 10 .venv/bin/python experiments/stop_rule/trajectories.py --dataset Set5 --out traj.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from coordsr import metrics
from coordsr.bench import find_images, read_hr
from coordsr.field import Field, ImageMeta
from coordsr.fit import AutoStop, fit
from coordsr.methods import get_method
from coordsr.methods.fields import MODES
from coordsr.render import render_field

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def trajectory(method: str, hr: np.ndarray, scale: float, every: int, settings: dict) -> list[dict]:
    lr = metrics.make_lr(hr, scale).astype(np.float32)
    up = get_method(method)(**{**settings, "until": "steps"})
    h, w, c = lr.shape
    size = hr.shape[:2]
    meta = ImageMeta(height=h, width=w, channels=c, mode=MODES[c], bit_depth=8)
    torch.manual_seed(up.seed)
    cfg = up.field_config(meta, size)
    field = Field(cfg, meta)
    fcfg = up.fit_config()
    fcfg.log_every = every
    probe = AutoStop(size, cfg.convention, torch.device("cpu"), fcfg.seed, cap=fcfg.steps, lr_end=fcfg.lr_end)
    probe.every = every
    shave = metrics.shave_for(scale)
    out: list[dict] = []
    overhead = 0.0

    def report(p):
        nonlocal overhead
        t = time.perf_counter()
        if p.step % every == 0:
            probe(field, p.step)
            sr = metrics.quantize(render_field(field, size).astype(np.float64))
            out.append({"step": p.step, "seconds": p.elapsed - overhead, "train_psnr": p.psnr,
                        "change": probe.change, "psnr_y": metrics.psnr_y(sr, hr, shave)})
        overhead += time.perf_counter() - t

    fit(field, lr, fcfg, out_size=size, convention=cfg.convention, progress=report)
    return out


def stop_at(traj: list[dict], threshold: float, patience: int) -> dict:
    calm = 0
    for rec in traj[1:]:
        calm = calm + 1 if rec["change"] < threshold else 0
        if calm >= patience:
            return rec
    return traj[-1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="Set5")
    p.add_argument("--scales", default="4,3,2")
    p.add_argument("--method", default="hashgrid")
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--set", action="append", default=[], help="NAME=VALUE (typed by the CLI's rules)")
    p.add_argument("--images", default=":", help="a slice of the dataset's sorted images, e.g. 0:7")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a crowded machine)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    from coordsr.cli import typed_settings

    torch.set_num_threads(a.threads)
    settings = typed_settings(a.method, dict(kv.split("=", 1) for kv in a.set))
    done = {(r["image"], r["scale"]) for r in map(json.loads, a.out.read_text().splitlines())} if a.out.exists() else set()
    for scale in map(float, a.scales.split(",")):  # the cheap scales first
        lo, _, hi = a.images.partition(":")
        for path in find_images(DATA / a.dataset)[int(lo) if lo else None:int(hi) if hi else None]:
            if (path.stem, scale) in done:
                continue
            hr = metrics.modcrop(read_hr(path), scale)
            traj = trajectory(a.method, hr, scale, a.every, settings)
            with a.out.open("a") as f:
                f.write(json.dumps({"dataset": a.dataset, "image": path.stem, "scale": scale,
                                    "method": a.method, "settings": settings, "trajectory": traj}) + "\n")
            print(path.stem, scale, f"{traj[-1]['psnr_y']:.2f} dB at {traj[-1]['step']}", flush=True)
    runs = [json.loads(l) for l in a.out.read_text().splitlines()]
    print("threshold patience | mean loss (dB) | worst loss | mean steps | time saved")
    for thr in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        for pat in (1, 2, 3):
            stops = [(stop_at(r["trajectory"], thr, pat), r["trajectory"][-1]) for r in runs]
            loss = [full["psnr_y"] - s["psnr_y"] for s, full in stops]
            saved = 1 - sum(s["seconds"] for s, _ in stops) / sum(f["seconds"] for _, f in stops)
            print(f"{thr:9.2f} {pat:8d} | {np.mean(loss):+.3f} | {max(loss):+.3f} | "
                  f"{np.mean([s['step'] for s, _ in stops]):.0f} | {saved:.0%}")


if __name__ == "__main__":
    main()
