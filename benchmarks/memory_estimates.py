"""Each method's memory estimate (``Upscaler.peak_bytes``, what the CLI checks before any work)
against the peak memory it really takes.

Each (method, input, output) runs in a fresh process: a tiny warm-up run first (libraries
loaded, kernels chosen), then the measured run; "measured" is the rise of the peak resident
memory (ru_maxrss) over the resident memory before the measured run. Fitting methods run a few
steps: a step's working set is the same at every step. The ratio estimate / measured should be
at least 1 (the check never lets through what cannot fit) and not far above it (it does not
refuse what fits).

    python benchmarks/memory_estimates.py --json benchmarks/results/memory_estimates.json

The JSON is written after every row, and a rerun keeps the rows it holds (``--fresh`` starts
over), so a slow, shared machine can finish the table in several runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import numpy as np

from _spawn import in_process  # benchmarks/ is on sys.path when run as a script

CASES = [  # (method, settings, input (h, w), output (H, W))
    ("nearest", {}, (128, 128), (2048, 2048)),
    ("bicubic", {}, (128, 128), (2048, 2048)),
    ("lanczos", {}, (256, 256), (1024, 1024)),
    ("zeroshot", {}, (128, 128), (1024, 1024)),
    ("zeroshot", {"quality": "best", "steps": 3}, (96, 96), (768, 768)),
    ("pretrained", {}, (256, 256), (2048, 2048)),
    ("hashgrid", {"steps": 3}, (256, 256), (1024, 1024)),
    ("hashgrid", {"steps": 3, "fit": "consistent"}, (64, 64), (512, 512)),
    ("siren", {"steps": 3}, (128, 128), (512, 512)),
    ("siren", {"steps": 3, "fit": "consistent"}, (48, 48), (192, 192)),
    ("wire", {"steps": 3}, (128, 128), (512, 512)),
    ("fourier", {"steps": 3}, (128, 128), (512, 512)),
    ("cppn", {"steps": 3}, (128, 128), (1024, 1024)),
]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(name: str, settings: dict, in_hw: tuple[int, int], out_hw: tuple[int, int], queue) -> None:
    import torch

    torch.set_num_threads(2)
    from coordsr.methods import METHODS

    method = METHODS[name](device="cpu", **settings)
    rng = np.random.default_rng(0)
    method.upscale(rng.random((16, 16, 3), dtype=np.float32), (32, 32))  # warm-up
    image = rng.random((*in_hw, 3), dtype=np.float32)
    before = _rss_bytes()
    method.upscale(image, out_hw)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    estimate = method.peak_bytes(image.shape, out_hw)
    queue.put({"method": name, "settings": settings, "input": list(in_hw), "output": list(out_hw),
               "measured_mib": (peak - before) / 2**20, "estimate_mib": estimate / 2**20})


def _key(row: dict) -> str:
    return json.dumps([row["method"], row["settings"], row["input"], row["output"]])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the rows here (kept rows are not measured again)")
    p.add_argument("--fresh", action="store_true", help="measure every row again")
    p.add_argument("--methods", help="comma-separated subset of the methods")
    a = p.parse_args(argv)
    chosen = set(a.methods.split(",")) if a.methods else None
    kept = {}
    if a.json and a.json.exists() and not a.fresh:
        kept = {_key(r): r for r in json.loads(a.json.read_text())["rows"]}
    rows = []
    print(f"{'method':<10} {'settings':<32} {'input':>9} {'output':>11} {'measured MiB':>13} "
          f"{'estimate MiB':>13} {'ratio':>6}  loadavg")
    for name, settings, in_hw, out_hw in CASES:
        if chosen and name not in chosen:
            continue
        case = {"method": name, "settings": settings, "input": list(in_hw), "output": list(out_hw)}
        row = kept.get(_key(case))
        if row is None:
            row = in_process(measure, name, settings, in_hw, out_hw)
            row["ratio"] = row["estimate_mib"] / max(row["measured_mib"], 1e-9)
            with open("/proc/loadavg") as f:
                row["loadavg"] = f.read().split()[0]
        rows.append(row)
        print(f"{name:<10} {json.dumps(settings):<32} {'%dx%d' % in_hw[::-1]:>9} {'%dx%d' % out_hw[::-1]:>11} "
              f"{row['measured_mib']:>13.0f} {row['estimate_mib']:>13.0f} {row['ratio']:>6.2f}  {row['loadavg']}",
              flush=True)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            done = {_key(r) for r in rows}
            a.json.write_text(json.dumps({"command": " ".join(["python", *sys.argv]),
                                          "rows": rows + [r for k, r in kept.items() if k not in done]},
                                         indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
