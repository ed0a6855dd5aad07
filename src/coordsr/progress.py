"""What a long-running method reports while it works (CLI progress bars, the web page's live view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Progress:
    """One report from a running method. ``total`` may change as a method moves between stages."""

    step: int
    """Steps done so far in the current stage."""
    total: int
    """Steps planned for the current stage (early stopping may end it sooner)."""
    stage: str = "fit"
    """What is running: 'fit', 'train', 'render', ..."""
    loss: float | None = None
    """Current training loss."""
    psnr: float | None = None
    """PSNR in dB of the current fit on the observed (input) pixels; never on ground truth."""
    elapsed: float = 0.0
    """Seconds since the method started."""
    preview: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    """Renders the current reconstruction (H x W x C floats) on demand; costly, call sparingly."""

    @property
    def eta(self) -> float | None:
        """Seconds left in this stage at the current pace."""
        if self.step <= 0 or self.total <= 0:
            return None
        return self.elapsed / self.step * max(self.total - self.step, 0)


ProgressCallback = Callable[[Progress], None]
"""Called with each report; raise ``coordsr.errors.Cancelled`` inside it to stop the method."""
