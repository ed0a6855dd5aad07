"""Idea 2: consistent reconstruction on the HR pixel grid with a TV prior, then exact back-projection."""
import sys
import torch
from common import dev_images, evaluate

from coordsr.zeroshot.ops import back_project, downscale, upscale_bicubic


def tv_fit(weight, steps=200, lr_rate=2e-3, eps=1e-3):
    def fn(lr, size):
        y = torch.from_numpy(lr).permute(2, 0, 1).float()
        x = back_project(upscale_bicubic(y, size), y).clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr_rate)
        for _ in range(steps):
            opt.zero_grad()
            dx, dy = x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]
            tv = torch.sqrt(dx ** 2 + eps ** 2).mean() + torch.sqrt(dy ** 2 + eps ** 2).mean()
            loss = ((downscale(x, y.shape[-2:]) - y) ** 2).mean() + weight * tv
            loss.backward()
            opt.step()
        return back_project(x.detach(), y).permute(1, 2, 0).numpy()
    return fn


imgs = dev_images()
for w in map(float, sys.argv[1:]):
    evaluate(tv_fit(w), imgs, label=f"BP + TV fit w={w:g} 200 steps")
