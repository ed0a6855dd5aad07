"""Summarise bench/<dataset>.jsonl: per scale and quality, mean and worst gain over bicubic, seconds."""
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
for name in sys.argv[1:]:
    rows = [json.loads(l) for l in open(HERE / "bench" / f"{name}.jsonl")]
    rows = [r for r in rows if r["error"] is None]
    bic = {(r["image"], r["scale"]): r["psnr"] for r in rows if r["method"] == "bicubic"}
    groups = defaultdict(list)
    for r in rows:
        if r["method"] == "zeroshot":
            groups[(r["settings"]["quality"], r["scale"])].append((r["image"], r["psnr"] - bic[(r["image"], r["scale"])], r["psnr"], r["seconds"]))
    for (q, s), g in sorted(groups.items()):
        gains = [x[1] for x in g]
        worst = min(g, key=lambda x: x[1])
        print(f"{name:8s} {q:4s} x{s:g}: n={len(g):2d} bicubic {sum(bic[(i, s)] for i, *_ in g) / len(g):.2f} -> "
              f"{sum(x[2] for x in g) / len(g):.2f}  mean {sum(gains) / len(g):+.2f} dB, worst {worst[1]:+.2f} ({worst[0]}), "
              f"{sum(x[3] for x in g) / len(g):.0f} s/image (wall, loaded machine)")
