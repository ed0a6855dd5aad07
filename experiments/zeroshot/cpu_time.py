"""CPU seconds of one Set5-sized x4 upscale (128x128 -> 512x512, RGB) per quality: process time,
which on a free 2-core machine bounds the wall time from above (2 threads)."""
import time

import numpy as np
import torch

from coordsr.methods.zeroshot import zeroshot
from coordsr.samples import load_sample

torch.set_num_threads(2)
img = load_sample("astronaut")[::4, ::4].copy()  # 128 x 128
for q in ("fast", "best"):
    c, w = time.process_time(), time.perf_counter()
    zeroshot(quality=q, device="cpu").upscale(img, (512, 512))
    print(f"{q}: {time.process_time() - c:.1f} s cpu, {time.perf_counter() - w:.1f} s wall", flush=True)
