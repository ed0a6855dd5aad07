"""Internal learning (ZSSR-like): a small CNN trained on the image's own downscaled copies.

The network refines an *interpolated* image, so it works at any scale and aspect: for a target
size (H, W) from an (h, w) input, every training pair is

    father  = the input, or a slightly smaller copy of it (more pairs from a small image),
    son     = D(father) at the target's ratios (h/H, w/W), D the degradation operator,
    input   = back_project(bicubic(son) at the father's size, son)   (consistent with the son),
    target  = father,

augmented with the 8 flips/rotations, and the network learns the residual target - input on
random crops. At test time it refines back_project(bicubic(input) at (H, W), input), in the
8 orientations (self-ensemble), and the result is back-projected once more onto the images
consistent with the input.

Shapes: images are (C, H, W) float32 tensors; the network takes (B, C, H, W).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from coordsr.progress import Progress, ProgressCallback
from coordsr.zeroshot.ops import back_project, dihedral, downscale, undihedral, upscale_bicubic


class ResidualCNN(nn.Module):
    """``depth`` 3x3 convolutions (ReLU between) whose output is added to the input: (B, C, H, W)."""

    def __init__(self, channels: int, width: int = 32, depth: int = 6):
        super().__init__()
        dims = [channels] + [width] * (depth - 1) + [channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, padding_mode="reflect")
                                   for a, b in zip(dims[:-1], dims[1:]))
        nn.init.zeros_(self.convs[-1].weight)  # starts as the identity: the interpolated image
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return x + h


def consistent_upscale(y: torch.Tensor, size: tuple[int, int], kernel: str = "cubic") -> torch.Tensor:
    """Bicubic interpolation of ``y`` (C, h, w) to ``size``, back-projected so that D(x) = y."""
    return back_project(upscale_bicubic(y, size), y, kernel)


@dataclass
class InternalConfig:
    """Training of the internal network."""

    steps: int = 400
    """Adam steps."""
    lr: float = 1e-3
    """Peak learning rate (cosine decay to 5%)."""
    width: int = 32
    """Channels of the hidden convolutions."""
    depth: int = 6
    """Convolutions."""
    crop: int = 40
    """Side of the training crops (smaller if the image is)."""
    batch: int = 8
    """Crops per step."""
    fathers: int = 4
    """Fathers: the input and this many - 1 copies shrunk by 0.9, 0.8, ..."""
    kernel: str = "cubic"
    """Degradation kernel that made the input."""
    ensemble: bool = True
    """Average the network's output over the 8 flips/rotations at test time."""
    seed: int = 0


def make_pairs(y: torch.Tensor, size: tuple[int, int], cfg: InternalConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) pairs at the father's size, from ``y`` (C, h, w) for target ``size``."""
    c, h, w = y.shape
    ry, rx = h / size[0], w / size[1]  # LR / HR ratio per axis (< 1 when upscaling)
    pairs = []
    for i in range(cfg.fathers):
        f = 1.0 - 0.1 * i
        fh, fw = max(2, round(h * f)), max(2, round(w * f))
        father = y if i == 0 else downscale(y, (fh, fw), cfg.kernel)
        sh, sw = max(2, round(fh * ry)), max(2, round(fw * rx))
        if (sh, sw) == (fh, fw) or min(fh, fw) < 8 and i > 0:
            continue
        son = downscale(father, (sh, sw), cfg.kernel)
        pairs.append((consistent_upscale(son, (fh, fw), cfg.kernel), father))
    return pairs


def train(y: torch.Tensor, size: tuple[int, int], cfg: InternalConfig,
          progress: ProgressCallback | None = None, start: float | None = None) -> ResidualCNN:
    """Train the internal network for upscaling ``y`` (C, h, w) to ``size``."""
    start = time.perf_counter() if start is None else start
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pairs = make_pairs(y, size, cfg)
    net = ResidualCNN(y.shape[0], cfg.width, cfg.depth).to(y.device)
    if not pairs:
        return net
    crop = min(cfg.crop, *(min(t.shape[-2:]) for _, t in pairs))
    # Larger fathers are drawn more often (ZSSR's rule: probability proportional to size).
    weights = torch.tensor([float(t.shape[-1] * t.shape[-2]) for _, t in pairs])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(cfg.steps, 1), 1.0))))
    log_every = max(1, cfg.steps // 50)
    for step in range(1, cfg.steps + 1):
        xs, ts = [], []
        idx = torch.multinomial(weights, cfg.batch, replacement=True, generator=gen)
        for j in idx.tolist():
            inp, tgt = pairs[j]
            H, W = tgt.shape[-2:]
            r = int(torch.randint(H - crop + 1, (1,), generator=gen))
            q = int(torch.randint(W - crop + 1, (1,), generator=gen))
            k = int(torch.randint(8, (1,), generator=gen))
            xs.append(dihedral(inp[:, r:r + crop, q:q + crop], k))
            ts.append(dihedral(tgt[:, r:r + crop, q:q + crop], k))
        x, t = torch.stack(xs), torch.stack(ts)
        err = net(x) - t
        loss = err.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and (step % log_every == 0 or step == cfg.steps):
            # PSNR of the network on its training pairs: downscaled copies -> the input's pixels.
            mse = float((err.detach() ** 2).mean())
            progress(Progress(step=step, total=cfg.steps, stage="train", loss=loss.item(),
                              psnr=10 * math.log10(1 / max(mse, 1e-12)), elapsed=time.perf_counter() - start))
    return net


@torch.no_grad()
def apply(net: ResidualCNN, y: torch.Tensor, size: tuple[int, int], cfg: InternalConfig,
          on_step=None) -> torch.Tensor:
    """Refine the consistent interpolation of ``y`` (C, h, w) at ``size``; back-projected output.

    ``on_step(k)`` is called after each of the (1 or 8) orientations.
    """
    net.eval()
    x0 = consistent_upscale(y, size, cfg.kernel)
    ks = range(8) if cfg.ensemble else range(1)
    out = torch.zeros_like(x0)
    for k in ks:
        out += undihedral(net(dihedral(x0, k)[None])[0], k)
        if on_step is not None:
            on_step(k + 1)
    out /= len(ks)
    return back_project(out, y, cfg.kernel)
