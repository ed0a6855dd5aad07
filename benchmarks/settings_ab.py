"""One setting, two values, side by side on the protocol: Y-PSNR change and time saved.

Runs a method with ``--vary NAME=A,B`` (e.g. ``until=steps,auto``: the full budget against the
default stop; ``precision=fp32,bf16``) through the benchmark runner and its cache, and prints
one line per (dataset, scale): mean Y-PSNR with A and with B, the change, mean seconds of each
and the time saved. Writes the numbers as JSON, with the load average and the machine's
matrix-product GFLOP/s measured in the same run (timings on a shared machine swing).

    nice -n 10 .venv/bin/python benchmarks/settings_ab.py --method hashgrid --vary until=steps,auto \\
        --datasets Set5,Set14 --scales 2,3,4 --json benchmarks/results/stop_rule.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_record  # noqa: E402

from coordsr.bench import find_images, run_bench  # noqa: E402
from coordsr.cli import typed_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="hashgrid")
    p.add_argument("--datasets", default="Set5,Set14")
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--vary", default="until=steps,auto", help="NAME=A,B: the setting and its values; A is the reference")
    p.add_argument("--images", default=":", metavar="START:STOP",
                   help="a slice of each dataset's images in name order, e.g. 0:6 (training sets are large)")
    p.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "cache")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--adopt", action="store_true",
                   help="reuse cached rows of older code that a canary finds unchanged (they keep the seconds "
                        "of the code that made them), e.g. to finish a long comparison across a code change")
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    base = typed_settings(a.method, dict(kv.split("=", 1) for kv in a.set))
    name, _, values = a.vary.partition("=")
    rules = values.split(",")
    typed = {v: typed_settings(a.method, {name: v})[name] for v in rules}
    before = machine_record()
    lines, records = [], []
    for dataset in a.datasets.split(","):
        start, _, stop = a.images.partition(":")
        paths = find_images(DATA / dataset)[slice(int(start) if start else None, int(stop) if stop else None)]
        for scale in map(float, a.scales.split(",")):
            got = {}
            for rule in rules:
                rows = run_bench(paths, [scale], {a.method: {**base, name: typed[rule]}}, dataset=dataset,
                                 cache_dir=a.cache, canaries=a.adopt)  # by default fresh rows: seconds of this code
                ok = [r for r in rows if r["error"] is None]
                got[rule] = (float(np.mean([r["psnr"] for r in ok])), float(np.mean([r["seconds"] for r in ok])),
                             len(ok))
            (ref_psnr, ref_s, n), (psnr, s, _) = got[rules[0]], got[rules[-1]]
            rec = {"dataset": dataset, "scale": scale, "images": n, "method": a.method, "settings": base,
                   "vary": name,
                   **{f"psnr_{r}": got[r][0] for r in rules}, **{f"seconds_{r}": got[r][1] for r in rules},
                   "psnr_change": psnr - ref_psnr, "time_saved": 1 - s / ref_s}
            records.append(rec)
            line = (f"| {dataset} | x{scale:g} | {ref_psnr:.2f} | {psnr:.2f} | {psnr - ref_psnr:+.3f} | "
                    f"{ref_s:.1f} s | {s:.1f} s | {1 - s / ref_s:.0%} |")
            lines.append(line)
            print(line, flush=True)
            if a.json:  # after every row, so that a run stopped early keeps what it measured
                a.json.write_text(json.dumps({"machine_before": before, "machine_after": None, "rows": records},
                                             indent=1) + "\n")
    after = machine_record()
    print(f"| dataset | scale | Y-PSNR {name}={rules[0]} | {name}={rules[-1]} | change | "
          f"seconds {rules[0]} | {rules[-1]} | time saved |")
    print("\n".join(lines))
    print(f"machine before: {before}\nmachine after: {after}")
    if a.json:
        a.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "rows": records},
                                     indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
