"""Score stop rules on recorded trajectories (trajectories.py): the default rule (a fixed
threshold on the drawn output's change per check) against a projected one.

The projected rule asks how far the output could still move: the change of the last check,
divided by the learning rate spent in it and multiplied by the learning rate left in the
schedule (cosine from lr to lr * lr_end over the cap), is the change still to come if the fit
kept moving at its present pace per unit of learning rate. It stops when that is below the
threshold for ``patience`` checks. A slow learner (siren at lr 1e-4) moves little per check
early on, with most of its schedule left: the fixed threshold stops it too soon; the projection
waits. Prints, per trajectory file and rule, the mean and worst Y-PSNR lost against the full
budget, the mean stopping step and the fit time saved.

    .venv/bin/python experiments/stop_rule/projected.py experiments/stop_rule/siren_bsd200_x4.jsonl \\
        benchmarks/results/stop_rule_trajectories/hashgrid_Set5_x4.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from report import projected_stop  # experiments/stop_rule/ is on sys.path when run as a script


def stop_fixed(traj: list[dict], threshold: float, patience: int, cap: int) -> dict:
    """The fixed rule (trajectories.stop_at); ``cap`` does not enter it."""
    from trajectories import stop_at  # experiments/stop_rule/ is on sys.path when run as a script

    return stop_at(traj, threshold, patience)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--cap", type=int, default=0, help="the fit's step cap (default: the trajectories' last step)")
    p.add_argument("--thresholds", default="1,2,4,8,16", help="of the projected rule (8-bit levels)")
    a = p.parse_args()
    rules = [("fixed", stop_fixed, t, 2) for t in (0.25, 0.1, 0.05)]
    rules += [("projected", projected_stop, float(t), pat) for t in a.thresholds.split(",") for pat in (1, 2)]
    print("| file | rule | threshold | patience | mean loss (dB) | worst | mean step / cap | time saved |")
    print("|---|---|---|---|---|---|---|---|")
    for path in a.files:
        runs = [json.loads(line) for line in path.read_text().splitlines()]
        for name, rule, thr, pat in rules:
            losses, steps, saved, full_s = [], [], 0.0, 0.0
            for r in runs:
                traj = r["trajectory"]
                cap = a.cap or traj[-1]["step"]
                stop = rule(traj, thr, pat, cap)
                losses.append(traj[-1]["psnr_y"] - stop["psnr_y"])
                steps.append(stop["step"])
                saved += traj[-1]["seconds"] - stop["seconds"]
                full_s += traj[-1]["seconds"]
            print(f"| {path.stem} | {name} | {thr:g} | {pat} | {np.mean(losses):+.3f} | {max(losses):+.3f} "
                  f"| {np.mean(steps):.0f} / {cap} | {saved / full_s:.0%} |")


if __name__ == "__main__":
    main()
