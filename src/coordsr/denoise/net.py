"""The trained blind denoiser: a small residual CNN with a noise-level map (issue 14, item 4).

FFDNet's layout (Zhang, Zuo, Zhang, IEEE TIP 2018) on the trained upscaler's encoder:

    noisy (B, 3, H, W)  --pixel-unshuffle 2-->  (B, 12, H/2, W/2)  + sigma map (B, 1, H/2, W/2)
      -> Encoder (coordsr.liif.model: head conv, residual blocks, tail conv, long skip)
      -> 3x3 conv to 12 channels  --pixel-shuffle 2-->  noise estimate (B, 3, H, W)
    clean = noisy - noise estimate                                  (DnCNN's residual learning)

Working at half resolution makes each convolution four times cheaper and doubles the receptive
field, which is what lets one pass over a 500 x 500 image take well under a second on 2 cores.
The sigma map (the level in 8-bit levels / 50, the same at every pixel) lets one network serve
every level from 0 to 50; a blind caller fills it with scikit-image's estimate.
Weights files are safetensors with the config in the metadata (``write_weights`` /
``read_weights``, shared with the upscaler); no pickle.

>>> net = DenoiseNet(DenoiseNetConfig(channels=8, blocks=1))
>>> net(torch.zeros(2, 3, 10, 7), torch.full((2,), 25.0)).shape  # odd sizes are padded, then cropped
torch.Size([2, 3, 10, 7])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coordsr.errors import FieldFileError
from coordsr.liif.model import Encoder, LIIFConfig, read_weights, write_weights

FORMAT = "coordsr.denoiser"
FORMAT_VERSION = 1
SIGMA_SCALE = 50.0
"""The sigma map holds sigma (8-bit levels) / SIGMA_SCALE: about [0, 1] over the training range."""


@dataclass
class DenoiseNetConfig:
    """Architecture of the trained denoiser (everything ``load_denoiser`` needs to rebuild it)."""

    channels: int = 64
    """Width of the encoder (at half resolution)."""
    blocks: int = 6
    """Residual blocks in the encoder (each two 3x3 convolutions)."""
    colours: int = 3
    """Colour channels in and out (RGB)."""
    res_scale: float = 1.0
    """Scale of each residual branch."""


class DenoiseNet(nn.Module):
    """(noisy (B, C, H, W), sigma (B,) in 8-bit levels) -> denoised (B, C, H, W); any H, W."""

    def __init__(self, cfg: DenoiseNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DenoiseNetConfig()
        c4 = 4 * cfg.colours
        # the upscaler's EDSR-like encoder, fed the 4 sub-images and the sigma map
        self.encoder = Encoder(LIIFConfig(channels=cfg.channels, blocks=cfg.blocks, in_channels=c4 + 1,
                                          res_scale=cfg.res_scale))
        self.out = nn.Conv2d(cfg.channels, c4, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start as the identity: the noisy image itself
        nn.init.zeros_(self.out.bias)

    def noise(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The estimated noise of ``noisy`` (B, C, H, W), H and W even; ``sigma`` (B,) 8-bit levels."""
        x = F.pixel_unshuffle(noisy - 0.5, 2)  # (B, 4C, H/2, W/2)
        level = (sigma.to(x.dtype) / SIGMA_SCALE)[:, None, None, None].expand(-1, 1, *x.shape[-2:])
        feat = self.encoder(torch.cat([x, level], dim=1))
        # The output layer stays float32 under bfloat16 autocast: the noise estimate is what is
        # subtracted, and bfloat16 would round it to about 1/256 of its size.
        with torch.autocast(feat.device.type, enabled=False):
            return F.pixel_shuffle(self.out(feat.float()), 2)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h, w = noisy.shape[-2:]
        ph, pw = h % 2, w % 2
        x = F.pad(noisy, (0, pw, 0, ph), mode="replicate") if ph or pw else noisy
        out = x.float() - self.noise(x, sigma)
        return out[..., :h, :w]


@torch.no_grad()
def denoise_tensor(model: DenoiseNet, noisy: torch.Tensor, sigma: float, *, tile: int = 0,
                   compute_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One pass of ``model`` over ``noisy`` (B, C, H, W) at level ``sigma`` (8-bit levels).
    ``tile`` > 0 bounds memory: overlapping tiles with a margin that covers the receptive field,
    so the result equals the one-shot pass. ``compute_dtype`` torch.bfloat16: autocast."""
    from coordsr.precision import autocast

    b, _, h, w = noisy.shape
    level = torch.full((b,), float(sigma), device=noisy.device)
    model.eval()
    if tile <= 0 or (h <= tile and w <= tile):
        with autocast(compute_dtype, noisy.device):
            return model(noisy, level)
    m = 2 * (2 * model.cfg.blocks + 3) + 2  # receptive-field radius in pixels (half-res convs), even
    tile = tile // 2 * 2  # tile edges on even pixels: the same pixel-unshuffle grid as one shot
    out = torch.empty_like(noisy, dtype=torch.float32)
    for r in range(0, h, tile):
        for c in range(0, w, tile):
            r1, c1 = min(r + tile, h), min(c + tile, w)
            a0, b0 = max(r - m, 0), max(c - m, 0)
            a1, b1 = min(r1 + m, h), min(c1 + m, w)
            with autocast(compute_dtype, noisy.device):
                part = model(noisy[..., a0:a1, b0:b1], level)
            out[..., r:r1, c:c1] = part[..., r - a0:r1 - a0, c - b0:c1 - b0]
    return out


def save_denoiser(model: DenoiseNet, path: str | Path, *, extra: dict[str, str] | None = None) -> None:
    """Write ``model`` as a self-describing safetensors file (float32: it is under 1 MB)."""
    write_weights(model.state_dict(), asdict(model.cfg), path, format=FORMAT, version=FORMAT_VERSION,
                  dtype=torch.float32, extra=extra)


def load_denoiser(path: str | Path, device=None) -> DenoiseNet:
    """Rebuild the model from a file written by ``save_denoiser``; FieldFileError when it is not one."""
    raw, tensors, _ = read_weights(path, format=FORMAT, version=FORMAT_VERSION)
    try:
        names = {f.name for f in fields(DenoiseNetConfig)}
        model = DenoiseNet(DenoiseNetConfig(**{k: v for k, v in raw.items() if k in names}))
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except Exception as e:
        raise FieldFileError(f"{path}: weights do not match their config ({e}); expected a {FORMAT} "
                             f"weights file, format version {FORMAT_VERSION}") from None
    return model.to(device).eval() if device is not None else model.eval()


__all__ = ["FORMAT", "FORMAT_VERSION", "SIGMA_SCALE", "DenoiseNetConfig", "DenoiseNet", "denoise_tensor",
           "save_denoiser", "load_denoiser"]
