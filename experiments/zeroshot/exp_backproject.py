"""Idea 1: bicubic + exact back-projection onto the set of images consistent with the input."""
import numpy as np
import torch
from common import dev_images, evaluate

from coordsr.zeroshot.ops import back_project, upscale_bicubic


def bp(damping):
    def fn(lr, size):
        y = torch.from_numpy(lr).permute(2, 0, 1).double()
        x = upscale_bicubic(y, size)
        return back_project(x, y, damping=damping).permute(1, 2, 0).numpy()
    return fn


imgs = dev_images()
evaluate(lambda lr, size: upscale_bicubic(torch.from_numpy(lr).permute(2, 0, 1).double(), size).permute(1, 2, 0).numpy(), imgs, label="bicubic (sanity, expect 0)")
for d in (0.0, 1e-3, 1e-2, 3e-2, 1e-1):
    evaluate(bp(d), imgs, label=f"bicubic + back-projection damping {d:g}")
