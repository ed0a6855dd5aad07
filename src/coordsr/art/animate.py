"""Stills and animations of any source, drawn frame by frame with render.py's tiles.

A still is one ``Scene`` rendered over ``frame_box``; an animation is a sequence of scenes, each
rendered and handed to a streaming writer (writers.py) before the next is drawn, so memory is
one tile's activations plus one frame, whatever the length:

- latent: a closed circle in z through the still's own z (frame 0 is the still; it loops);
- zoom: exponential zoom into the view's centre, from the view's zoom to ``zoom_to`` times it;
- pan: the centre moves in a straight line by ``pan_by``;
- rotate: ``turns`` full turns (loops when whole);
- morph: from one field to another, by blending outputs or interpolating weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from coordsr.art.generator import CPPN
from coordsr.art.scene import Blend, Scene, View, check_morphable, frame_box, lerp_weights
from coordsr.art.writers import open_writer
from coordsr.render import render

ANIMATIONS = ("latent", "zoom", "pan", "rotate", "morph")
MORPHS = ("outputs", "weights")
MAX_FRAMES = 100_000


@dataclass
class Animation:
    """How the frames of an animation differ from the still."""

    kind: str = "latent"
    """latent, zoom, pan, rotate or morph."""
    frames: int = 120
    """Number of frames."""
    fps: float = 30.0
    """Frames per second of the GIF or MP4."""
    radius: float = 0.5
    """latent: radius of the circle in z, relative to the length of z."""
    zoom_to: float = 8.0
    """zoom: magnification of the last frame relative to the first."""
    pan_by: tuple[float, float] = (1.0, 0.0)
    """pan: how far the centre moves over the animation, in source units."""
    turns: float = 1.0
    """rotate: full turns over the animation."""
    morph: str = "outputs"
    """morph: 'outputs' (blend the two fields' colours) or 'weights' (same networks only)."""

    def check(self) -> "Animation":
        if self.kind not in ANIMATIONS:
            raise ValueError(f"unknown animation {self.kind!r}; valid: {', '.join(ANIMATIONS)}")
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be from 1 to {MAX_FRAMES}, got {self.frames}")
        if not (math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ValueError(f"fps must be above 0 and at most 240, got {self.fps}")
        if not (math.isfinite(self.zoom_to) and 1e-6 <= self.zoom_to <= 1e9):
            raise ValueError(f"zoom-to must be from 1e-6 to 1e9, got {self.zoom_to}")
        if not (math.isfinite(self.radius) and 0 <= self.radius <= 100):
            raise ValueError(f"radius must be from 0 to 100, got {self.radius}")
        if self.morph not in MORPHS:
            raise ValueError(f"unknown morph {self.morph!r}; valid: {', '.join(MORPHS)}")
        return self


def draw(scene: Scene, size: tuple[int, int], *, progress: Callable[[int, int], None] | None = None,
         dtype=np.uint8) -> np.ndarray:
    """Render a scene at (H, W): the frame's shorter side spans [-1, 1] of the view."""
    h, w = size
    return render(scene, size, scene.channels, box=frame_box(h, w), dtype=dtype, progress=progress)


def latent_circle(net: CPPN, radius: float, steps: int) -> Iterator[torch.Tensor]:
    """z on a closed circle through net.z: two seeded orthonormal directions of length
    radius x |z|; step i is at angle 2 pi i / steps, so the walk loops."""
    d = net.cfg.latent
    if d < 2:
        raise ValueError("a latent walk needs a latent vector of length 2 or more (--latent)")
    gen = torch.Generator().manual_seed(net.cfg.seed + 1)
    basis, _ = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=torch.float64))  # (d, 2)
    length = radius * math.sqrt(d)  # |z| of a N(0, I) vector is about sqrt(d)
    z0 = net.z.double().cpu()
    for i in range(steps):
        a = 2 * math.pi * i / steps
        z = z0 + length * ((math.cos(a) - 1) * basis[:, 0] + math.sin(a) * basis[:, 1])
        yield z.float().to(net.z.device)


def scenes(source: nn.Module, view: View, anim: Animation, to: nn.Module | None = None,
           names: tuple[str, str] = ("--from", "--to")) -> Iterator[Scene]:
    """The scene of each frame."""
    anim.check()
    n = anim.frames
    ends = max(n - 1, 1)  # zoom, pan and morph go from the first to the last frame exactly
    if anim.kind == "latent":
        if not isinstance(source, CPPN):
            raise ValueError("a latent walk needs a CPPN (no --from, or --from an art field or PNG); "
                             "a fitted field has no latent vector: animate it with zoom, pan, rotate or morph")
        for z in latent_circle(source, anim.radius, n):
            yield Scene(source, view, z=z)
    elif anim.kind == "zoom":
        for i in range(n):
            yield Scene(source, replace(view, zoom=view.zoom * anim.zoom_to ** (i / ends)))
    elif anim.kind == "pan":
        cx, cy = view.center
        for i in range(n):
            t = i / ends
            yield Scene(source, replace(view, center=(cx + t * anim.pan_by[0], cy + t * anim.pan_by[1])))
    elif anim.kind == "rotate":
        for i in range(n):
            yield Scene(source, replace(view, angle=view.angle + 360.0 * anim.turns * i / n))
    else:  # morph
        if to is None:
            raise ValueError("a morph needs a second field: --to")
        weights = anim.morph == "weights"
        check_morphable(source, to, weights, names)
        mixed = copy.deepcopy(source) if weights else None
        for i in range(n):
            t = 0.5 - 0.5 * math.cos(math.pi * i / ends)  # ease in and out
            yield Scene(lerp_weights(source, to, t, mixed) if weights else Blend(source, to, t), view)


def write_animation(path: Path, source: nn.Module, size: tuple[int, int], view: View, anim: Animation, *,
                    to: nn.Module | None = None, names: tuple[str, str] = ("--from", "--to"),
                    progress: Callable[[int, int], None] | None = None) -> int:
    """Render every frame and stream it to ``path`` (.gif, .mp4 or a folder); the frame count.

    ``progress(frames_done, frames)`` after each frame. Nothing is left at ``path`` on failure."""
    anim.check()
    frames = scenes(source, view, anim, to, names)
    first = next(frames)  # raise bad settings before a file is opened
    with open_writer(Path(path), size, anim.fps) as writer:
        for i, scene in enumerate(_chain(first, frames)):
            writer.write(draw(scene, size))
            if progress is not None:
                progress(i + 1, anim.frames)
    return writer.count


def _chain(first, rest):
    yield first
    yield from rest
