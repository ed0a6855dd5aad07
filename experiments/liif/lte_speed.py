"""LTE against LIIF at equal encoder: draw time of 96 x 96 -> x4 on one thread, float32, best of 3 interleaved.

    python experiments/liif/lte_speed.py
"""
import time, torch
from coordsr.liif.model import LIIF, LIIFConfig, upscale
torch.set_num_threads(1)
ms = {d: LIIF(LIIFConfig(channels=64, blocks=16, decoder=d)).eval() for d in ("liif", "lte")}
x = torch.rand(1, 3, 96, 96)
best = {d: 1e9 for d in ms}
for _ in range(3):
    for d, m in ms.items():
        t = time.perf_counter(); upscale(m, x, (384, 384)); best[d] = min(best[d], time.perf_counter() - t)
print({d: round(v, 3) for d, v in best.items()}, "ratio", round(best["lte"] / best["liif"], 2))
