"""Zero-Shot Noise2Noise (Mansour and Heckel, CVPR 2023): a denoiser learned from the noisy
image alone, in seconds.

Two fixed 2x2 diagonal averages split the noisy image y into two half-size images D1(y), D2(y)
whose noises are independent and whose clean contents are nearly equal, so each is a
Noise2Noise target for the other. A tiny residual network f (3x3 conv, 3x3 conv, 1x1 conv,
LeakyReLU) predicts the noise; the loss is the symmetric pair loss plus the paper's consistency
loss (denoising then splitting should equal splitting then denoising):

    L = 1/2 (|D1 y - g(D2 y)|^2 + |D2 y - g(D1 y)|^2)
      + 1/2 (|g(D1 y) - D1 g(y)|^2 + |g(D2 y) - D2 g(y)|^2),      g(x) = x - f(x)

What we change, for speed on a CPU: each step works on a random crop of the image (the network
sees 5x5 pixels, so a crop's loss is the full loss restricted to it, up to
the crop's border), and the learning rate follows a cosine to zero instead of one step decay.
The whole image is denoised at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coordsr.zeroshot.ops import self_ensemble


@dataclass
class ZSN2NConfig:
    """The training of one ZS-N2N network on one noisy image."""

    steps: int = 300
    """Adam steps."""
    lr: float = 2e-3
    """Peak learning rate (cosine to zero)."""
    channels: int = 48
    """Feature maps of the two hidden convolutions (the paper's 48)."""
    crop: int = 192
    """Side of the random square crop each step trains on (0 = the whole image, the paper's)."""
    seed: int = 0
    """Seed of the initialisation and of the crops."""
    ensemble: int = 1
    """Denoise the image in 1, 2, 4 or 8 of its flips and transposes and average (test-time
    self-ensemble: the network is not equivariant to them, so its errors partly cancel)."""


class ZSN2NNet(nn.Module):
    """f: the noise in x, (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels_in: int, width: int = 48):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, channels_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.conv3(x)


def pair_downsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two diagonal 2x2 averages of (B, C, H, W), each (B, C, H//2, W//2).

    >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
    >>> [t.flatten().tolist() for t in pair_downsample(x)]
    [[2.5, 4.5, 10.5, 12.5], [2.5, 4.5, 10.5, 12.5]]
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (b + c) / 2, (a + d) / 2


def zsn2n_loss(net: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """The paper's residual + consistency loss on the noisy batch ``y`` (B, C, H, W)."""
    y1, y2 = pair_downsample(y)
    g1, g2 = y1 - net(y1), y2 - net(y2)
    residual = 0.5 * (F.mse_loss(y1, g2) + F.mse_loss(y2, g1))
    d1, d2 = pair_downsample(y - net(y))
    consistency = 0.5 * (F.mse_loss(g1, d1) + F.mse_loss(g2, d2))
    return residual + consistency


def train(noisy: np.ndarray, cfg: ZSN2NConfig, device: torch.device, on_step=None) -> ZSN2NNet:
    """A ZS-N2N network trained on ``noisy`` (H, W, C); ``on_step(step, total, loss)`` after each step."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    y = to_batch(noisy, device)
    _, c, h, w = y.shape
    net = ZSN2NNet(c, cfg.channels).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / max(cfg.steps, 1), 1.0))))
    side = cfg.crop if cfg.crop > 0 else max(h, w)
    ph, pw = min(side, h) // 2 * 2, min(side, w) // 2 * 2
    for step in range(1, cfg.steps + 1):
        r0 = int(torch.randint(h - ph + 1, (1,), generator=gen))
        c0 = int(torch.randint(w - pw + 1, (1,), generator=gen))
        loss = zsn2n_loss(net, y[..., r0:r0 + ph, c0:c0 + pw])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(step, cfg.steps, loss.item())
    return net


def to_batch(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, C) array -> (1, C, H, W) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


@torch.no_grad()
def apply(net: ZSN2NNet, noisy: np.ndarray, ensemble: int = 1) -> np.ndarray:
    """The trained network's denoised (H, W, C) float32 of ``noisy``, self-ensembled (``ensemble``)."""
    device = next(net.parameters()).device
    out = self_ensemble(lambda x: x - net(x), to_batch(noisy, device), ensemble)
    return out[0].permute(1, 2, 0).cpu().numpy()


def train_and_denoise(noisy: np.ndarray, cfg: ZSN2NConfig, device: torch.device,
                      on_step=None) -> np.ndarray:
    """Train a ZS-N2N network on ``noisy`` (H, W, C) and return its denoised (H, W, C) float32."""
    return apply(train(noisy, cfg, device, on_step), noisy, cfg.ensemble)


__all__ = ["ZSN2NConfig", "ZSN2NNet", "apply", "pair_downsample", "train", "train_and_denoise", "zsn2n_loss"]
