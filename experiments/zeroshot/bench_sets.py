"""Benchmark protocol runs (coordsr.bench.run_bench): held-out BSD200 files, then Set5 / Set14.

Usage: bench_sets.py DATASET [quality ...]   (DATASET: heldout, Set5, Set14)
Rows go to experiments/zeroshot/bench/<dataset>.jsonl (resumable) and a table to stdout.
"""
import sys
from pathlib import Path

import torch

from coordsr.bench import find_images, format_table, run_bench

torch.set_num_threads(2)
HERE = Path(__file__).parent
DATA = Path("/work/shared/data")
HELDOUT = ["12003", "16077", "23084", "35010", "41004", "65010"]

name = sys.argv[1]
qualities = sys.argv[2:] or ["fast"]
paths = [DATA / "BSD200" / f"{n}.png" for n in HELDOUT] if name == "heldout" else find_images(DATA / name)
methods = {"bicubic": {}}
for q in qualities:
    methods["zeroshot"] = {"quality": q, "device": "cpu"}
    rows = run_bench(paths, [2, 3, 4], methods, dataset=name, cache_dir=HERE / "bench")
print(format_table(rows))
