"""Score the default 'auto' stop (AutoStop's threshold and patience) on recorded trajectories.

Reads the JSON lines of ``trajectories.py`` and prints, per (method, dataset, scale), the mean
Y-PSNR of the full budget and of the auto stop, the change, the mean stopping step and the
fit seconds of each (the trajectory's clock, the recording's own cost taken out). Stopping at
step k returns exactly the field the full run holds at step k, so these are the auto stop's
results. Writes them as JSON.

    .venv/bin/python experiments/stop_rule/report.py runs/*.jsonl --json benchmarks/results/stop_rule.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from coordsr.fit import AutoStop, projected_change


def auto_stop(trajectory: list[dict]) -> dict:
    """The record at which AutoStop's rule ends the fit (the last one if it never does)."""
    return projected_stop(trajectory, AutoStop.threshold, AutoStop.patience)


def projected_stop(trajectory: list[dict], threshold: float, patience: int, cap: int = 0) -> dict:
    """AutoStop's rule at any threshold and patience: the recorded change of each check projected
    over the rest of the schedule, whose cap is the trajectory's last step (the full budget)
    unless ``cap`` is given."""
    cap, calm = cap or trajectory[-1]["step"], 0
    for prev, rec in zip(trajectory, trajectory[1:]):
        projected = projected_change(rec["change"], prev["step"], rec["step"], cap)
        calm = calm + 1 if projected < threshold else 0
        if calm >= patience:
            return rec
    return trajectory[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    groups: dict[tuple, list[dict]] = {}
    for f in a.files:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            runs = groups.setdefault((r["method"], r["dataset"], r["scale"]), [])
            if all(other["image"] != r["image"] for other in runs):  # files may overlap
                runs.append(r)
    rows = []
    print(f"rule: change of the drawn output, projected over the rest of the schedule, < {AutoStop.threshold} "
          f"levels RMS for {AutoStop.patience} checks in a row, every {AutoStop.every} steps")
    print("| method | dataset | scale | images | Y-PSNR full budget | auto stop | change | steps (auto / cap) "
          "| fit s full | fit s auto | time saved |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (method, dataset, scale), runs in groups.items():
        full = [r["trajectory"][-1] for r in runs]
        auto = [auto_stop(r["trajectory"]) for r in runs]
        row = {"method": method, "dataset": dataset, "scale": scale, "images": len(runs),
               "psnr_full": float(np.mean([x["psnr_y"] for x in full])),
               "psnr_auto": float(np.mean([x["psnr_y"] for x in auto])),
               "worst_image_change": float(min(s["psnr_y"] - f["psnr_y"] for s, f in zip(auto, full))),
               "steps_full": float(np.mean([x["step"] for x in full])),
               "steps_auto": float(np.mean([x["step"] for x in auto])),
               "seconds_full": float(np.mean([x["seconds"] for x in full])),
               "seconds_auto": float(np.mean([x["seconds"] for x in auto]))}
        row["change"] = row["psnr_auto"] - row["psnr_full"]
        row["time_saved"] = 1 - row["seconds_auto"] / row["seconds_full"]
        rows.append(row)
        print(f"| {method} | {dataset} | x{scale:g} | {len(runs)} | {row['psnr_full']:.2f} | {row['psnr_auto']:.2f} "
              f"| {row['change']:+.3f} (worst image {row['worst_image_change']:+.3f}) "
              f"| {row['steps_auto']:.0f} / {row['steps_full']:.0f} | {row['seconds_full']:.1f} "
              f"| {row['seconds_auto']:.1f} | {row['time_saved']:.0%} |")
    if a.json:
        a.json.write_text(json.dumps({"rule": {"projected": True, "threshold": AutoStop.threshold,
                                               "patience": AutoStop.patience,
                                               "every": AutoStop.every, "points": AutoStop.points},
                                      "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
