"""The blind photo model behind the upscaler interface: photos as they arrive, JPEG-compressed,
noisy or soft.

``pretrained``'s network and code, fine-tuned by ``python -m coordsr.liif.train --degradation
real`` on T91 + BSD200 crops through random chains of blur, resizing, noise and JPEG / WebP
(``coordsr.degradations``); any scale. ``--degradation auto`` sends a photo here when its file
or its pixels show compression or noise (``coordsr.quality``); clean photos keep ``pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from coordsr.methods.pretrained import pretrained

SHIPPED = "blind.safetensors"


@dataclass
class blind(pretrained):
    """Trained model for compressed, noisy or soft photos (JPEG blocks, sensor noise): any scale."""

    family: ClassVar[str] = "pretrained"
    shipped: ClassVar[str] = SHIPPED
