"""Training data for the local implicit model: images decoded once, random (HR crop, LR) pairs.

Each sample is a random HR crop of ``round(patch * s)`` pixels for a random non-integer scale s,
flipped and rotated by a multiple of 90 degrees, and its LR version of ``patch`` pixels made
with the benchmark's own operator (MATLAB-style bicubic with antialiasing, ``coordsr.resize``),
or, for the blind model (``degrade``), through a random chain of blur, resizing, noise and
compression (``coordsr.degradations.random_chain``).
A batch is a pure function of (images, seed, step, rank), so resuming a run replays nothing
and needs no data-loader state.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from coordsr.coords import cell_size
from coordsr.resize import imresize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folders) -> list[Path]:
    """Image files in ``folders`` (not recursive), sorted by path."""
    files: list[Path] = []
    for d in folders:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"training folder not found: {d}")
        files += [p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files)


def is_validation(path: Path, fraction: float) -> bool:
    """Deterministic split by a hash of the file name: the same files, on any machine, any order."""
    h = int.from_bytes(hashlib.sha1(path.name.encode()).digest()[:8], "big")
    return (h % 10_000) < fraction * 10_000


def split(files: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, validation) file lists."""
    val = [p for p in files if is_validation(p, fraction)]
    train = [p for p in files if not is_validation(p, fraction)]
    return train, val


def load_rgb(path: Path) -> torch.Tensor:
    """An image file as a (3, H, W) uint8 tensor (grey replicated, alpha dropped)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"))
    return torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous()


@dataclass
class Batch:
    """A training batch of a local implicit model: the photo model's (C = 3) and the drawing
    model's (C = 4, premultiplied RGBA: coordsr.drawings.data)."""

    lr: torch.Tensor
    """(B, C, patch, patch) LR inputs in [0, 1]."""
    coords: torch.Tensor
    """(B, Q, 2) field coordinates of the sampled HR pixel centres."""
    cell: torch.Tensor
    """(B, 2) size of one HR pixel in field units."""
    target: torch.Tensor
    """(B, Q, C) HR values at ``coords``."""


def _augment(x: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 dihedral transforms of (C, H, W)."""
    if code & 1:
        x = x.flip(-1)
    if code & 2:
        x = x.flip(-2)
    if code & 4:
        x = x.transpose(-1, -2)
    return x


def sample_pair(img: torch.Tensor, patch: int, scale: float, gen: torch.Generator,
                queries: int, degrade: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training sample from a (3, H, W) uint8 image: (lr, coords, cell, target); ``degrade``:
    the LR through a random degradation chain instead of bicubic alone."""
    _, H, W = img.shape
    hr_size = min(max(round(patch * scale), patch), H, W)
    top = int(torch.randint(0, H - hr_size + 1, (1,), generator=gen))
    left = int(torch.randint(0, W - hr_size + 1, (1,), generator=gen))
    hr = img[:, top:top + hr_size, left:left + hr_size].float() / 255
    hr = _augment(hr, int(torch.randint(0, 8, (1,), generator=gen)))
    if degrade:
        from coordsr.degradations import apply, random_chain

        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=gen)))
        lr = apply(hr, random_chain(rng, (hr_size, hr_size), (patch, patch))).clamp(0, 1)
    else:
        lr = imresize(hr, (patch, patch), scale=patch / hr_size).clamp(0, 1)
    n = hr_size * hr_size
    pick = torch.randperm(n, generator=gen)[:queries]
    if len(pick) < queries:  # tiny crop (scale ~1): sample with replacement
        pick = torch.randint(0, n, (queries,), generator=gen)
    rows, cols = pick // hr_size, pick % hr_size
    coords = torch.stack(((2 * cols + 1) / hr_size - 1, (2 * rows + 1) / hr_size - 1), dim=-1).float()
    target = hr.reshape(3, -1)[:, pick].t()
    return lr, coords, cell_size(hr_size, hr_size), target


def make_batch(images: list[torch.Tensor], *, batch: int, patch: int, scale_min: float,
               scale_max: float, queries: int, seed: int, step: int, rank: int = 0,
               degrade: bool = False) -> Batch:
    """The batch for ``step`` of process ``rank``: deterministic given its arguments."""
    gen = torch.Generator().manual_seed(hash_seed(seed, rank, step))
    out = []
    for _ in range(batch):
        img = images[int(torch.randint(0, len(images), (1,), generator=gen))]
        s = scale_min + (scale_max - scale_min) * float(torch.rand((), generator=gen))
        out.append(sample_pair(img, patch, s, gen, queries, degrade))
    lr, coords, cell, target = (torch.stack(t) for t in zip(*out))
    return Batch(lr=lr, coords=coords, cell=cell, target=target)


def hash_seed(*parts: int) -> int:
    h = hashlib.sha1(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:7], "big")


VALIDATION_DEGRADATIONS = ("jpeg40", "noise10,jpeg70", "blur,jpeg70")
"""The blind model's validation: the degraded benchmark's own kinds (``coordsr.degradations.parse``)."""


def validation_pairs(images: list[torch.Tensor], scales=(2, 3, 4), crop: int = 160,
                     degradations: tuple[str, ...] = ()):
    """Fixed (lr, hr, scale, label) tuples: centre crops (mod-cropped to the scale) of the held-out
    images, the LR bicubic and stored as 8-bit; with ``degradations``, one pair per named
    degradation instead (label "x4 jpeg40"), the noise seeded by the image's index."""
    from coordsr.degradations import apply, parse

    pairs = []
    for i, img in enumerate(images):
        for s in scales:
            _, H, W = img.shape
            h = min(H, crop) // s * s
            w = min(W, crop) // s * s
            t, l = (H - h) // 2, (W - w) // 2
            hr = img[:, t:t + h, l:l + w].float() / 255
            for spec in degradations or (None,):
                before, after = parse(spec, scale=s, seed=i) if spec else ([], [])
                lr = imresize(apply(hr.double(), before), (h // s, w // s), scale=1 / s).float()
                lr = (apply(lr, after).clamp(0, 1) * 255).round() / 255  # as the benchmark: LR stored as 8-bit
                pairs.append((lr, hr, s, f"x{s} {spec}" if spec else s))
    return pairs


def y_psnr(sr: torch.Tensor, hr: torch.Tensor, shave: int) -> float:
    """PSNR on BT.601 Y (DESIGN.md section 5) of (3, H, W) images in [0, 1], ``shave`` border pixels."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64)[:, None, None]
    sr = (sr.double().clamp(0, 1) * 255).round() / 255
    ys = (sr * w).sum(0) + 16
    yh = (hr.double() * w).sum(0) + 16
    if shave:
        ys, yh = ys[shave:-shave, shave:-shave], yh[shave:-shave, shave:-shave]
    mse = ((ys - yh) ** 2).mean().item()
    return 10 * math.log10(255 ** 2 / max(mse, 1e-12))
