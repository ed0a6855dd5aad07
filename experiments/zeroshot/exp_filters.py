"""Idea 4: internal learned filters (RAISR-like buckets, closed form) on the consistent interpolation, + BP.

stages > 1: a cascade; stage s is trained on the stage s-1 outputs of the training pairs.
gradual > 0: reach the target in n steps of ratio s^(1/n) <= gradual, filters trained once at that ratio.
"""
import json
import math
import os
import sys
import torch
from common import dev_images, evaluate

from coordsr.zeroshot.filters import apply_filters, fit_filters
from coordsr.zeroshot.internal import InternalConfig, consistent_upscale, make_pairs
from coordsr.zeroshot.ops import back_project, downscale
from coordsr.zeroshot.prior import tv_refine


def train_banks(y, size, k, ridge, fathers, stages, max_samples):
    pairs = make_pairs(y, size, InternalConfig(fathers=fathers))
    sons = [downscale(t, _son_size(t, y, size)) for _, t in pairs]
    banks = []
    for _ in range(stages):
        bank = fit_filters(pairs, k=k, ridge=ridge, max_samples=max_samples)
        banks.append(bank)
        pairs = [(back_project(apply_filters(bank, i), s), t) for (i, t), s in zip(pairs, sons)]
    return banks


def filt(k=7, ridge=1e-2, fathers=4, stages=1, max_samples=400_000, gradual=0.0, tv=0.0, tv_steps=100):
    def fn(lr, size):
        y = torch.from_numpy(lr).permute(2, 0, 1).float()
        h, w = y.shape[-2:]
        s = max(size[0] / h, size[1] / w)
        n = max(1, math.ceil(math.log(s) / math.log(gradual) - 1e-9)) if gradual else 1
        sizes = [(round(h * (size[0] / h) ** (i / n)), round(w * (size[1] / w) ** (i / n))) for i in range(1, n + 1)]
        sizes[-1] = size
        banks = train_banks(y, sizes[0], k, ridge, fathers, stages, max_samples)
        x = y
        for sz in sizes:
            prev = x
            x = consistent_upscale(prev, sz)
            for bank in banks:
                x = back_project(apply_filters(bank, x), prev)
            x = back_project(x, y)
        x = tv_refine(x, y, tv, tv_steps)
        return x.permute(1, 2, 0).numpy()
    return fn


def _son_size(t, y, size):
    h, w = y.shape[-2:]
    return max(2, round(t.shape[-2] * h / size[0])), max(2, round(t.shape[-1] * w / size[1]))


imgs = dev_images()[:int(os.environ.get("NDEV", 8))]
for arg in sys.argv[1:]:
    kw = json.loads(arg)
    sc = kw.pop("scales", (2, 3, 4))
    evaluate(filt(**kw), imgs, scales=sc, label=f"filters {arg}")
