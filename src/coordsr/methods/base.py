"""The one interface every upscaler has (DESIGN.md section 3).

An upscaler is a dataclass: its fields are its settings (with defaults that reproduce the
method's published or measured best), its docstring's first line is the one-line
description shown by ``coordsr methods``, and ``upscale`` does the work:

    image (H, W, C) float32 in [0, 1], C in 1..4  +  output size (H', W')  ->  (H', W', C) image

Methods that fit a field also offer ``fit(image, size) -> Field``, so the field can be saved and
rendered later; for them ``upscale`` is ``fit`` then ``render``.

Settings are checked when the upscaler is made (``validate``: a ValueError naming the setting),
and the memory a call needs is checked before any work (``peak_bytes``: an estimate of every
large buffer the method allocates, not only the output), so a bad request fails at once.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import textwrap
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Iterator

import numpy as np

from coordsr.progress import ProgressCallback

if TYPE_CHECKING:
    from coordsr.stream import Rows


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate the common input contract and return the image as float32 (H, W, C)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"expected an (H, W, C) image with C in 1..4, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image, dtype=np.float32)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"output size must be at least 1x1, got {w}x{h}")
    return h, w


@dataclass
class Method:
    """What every registered method shares, whatever its task: settings as dataclass fields,
    checked when it is made (finite numbers, a device this machine has, ``validate``)."""

    task: ClassVar[str] = "upscale"
    """What the method does: 'upscale' or 'denoise' (the one registry holds both, methods/denoisers.py)."""
    family: ClassVar[str] = "interpolation"
    """One of 'interpolation', 'per-image', 'zero-shot', 'pretrained' (upscalers), 'classical' (denoisers)."""
    fits_field: ClassVar[bool] = False
    """True when the method has ``fit(image, size) -> Field``."""

    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."""

    def __post_init__(self):
        for f in fields(self):  # no setting is usefully NaN or infinite
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        resolve_device(self.device)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range (subclasses extend it)."""

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]

    @classmethod
    def setting_docs(cls) -> dict[str, str]:
        """Each setting's docstring (the string under its field), from the nearest class in the
        MRO that documents it; '' where none does or the source is not available."""
        docs: dict[str, str] = {}
        for klass in cls.__mro__:
            for name, doc in _field_docstrings(klass).items():
                docs.setdefault(name, doc)
        return {f.name: docs.get(f.name, "") for f in fields(cls)}


@dataclass
class Upscaler(Method):
    """Base class of upscalers: subclasses set ``family`` and implement ``_upscale``."""

    streams: ClassVar[bool] = False
    """True when ``upscale_rows`` computes the output a band at a time (memory bounded by a tile)."""

    def peak_bytes(self, in_shape: tuple[int, int, int], size: tuple[int, int]) -> int:
        """Estimated peak memory of ``upscale`` for an (h, w, c) input and an (H', W') output:
        the float32 output and its clipped copy; subclasses add their working set."""
        return 2 * 4 * size[0] * size[1] * in_shape[2]

    def stream_peak_bytes(self, in_shape: tuple[int, int, int], size: tuple[int, int]) -> int:
        """Estimated peak memory of ``upscale_rows``: ``peak_bytes`` unless the method ``streams``
        (then one row of tiles and the method's working set, not the output)."""
        return self.peak_bytes(in_shape, size)

    def check_memory(self, in_shape: tuple[int, int, int], size: tuple[int, int], *, streamed: bool = False) -> None:
        """CoordsrError when ``peak_bytes`` (``stream_peak_bytes`` if ``streamed``) is more than
        the memory available now."""
        from coordsr.render import STREAM_HINT, check_bytes_available

        what = f"{type(self).__name__} from {in_shape[1]}x{in_shape[0]} to {size[1]}x{size[0]}"
        if streamed:
            check_bytes_available(self.stream_peak_bytes(tuple(in_shape), tuple(size)), what)
        else:  # a method that streams could have done it with a streamed output
            check_bytes_available(self.peak_bytes(tuple(in_shape), tuple(size)), what,
                                  **({"hint": STREAM_HINT} if self.streams else {}))

    def upscale(self, image: np.ndarray, size: tuple[int, int], *,
                progress: ProgressCallback | None = None) -> np.ndarray:
        """Return ``image`` drawn at ``size`` (H', W'), float32 in [0, 1]."""
        image = check_image(image)
        size = check_size(size)
        self.check_memory(image.shape, size)  # refuse before any work is done
        out = self._upscale(image, size, progress)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    def _upscale(self, image: np.ndarray, size: tuple[int, int],
                 progress: ProgressCallback | None) -> np.ndarray:
        raise NotImplementedError

    def upscale_rows(self, image: np.ndarray, size: tuple[int, int], *, bit_depth: int = 8,
                     progress: ProgressCallback | None = None) -> Rows:
        """``upscale`` handed over a band of rows at a time, quantized to ``bit_depth``
        (:class:`coordsr.stream.Rows`, what the streamed writers take). A method that
        ``streams`` computes each band when it is asked for, so memory is bounded by a row of
        tiles; the others compute the whole output first. The pixels are those ``upscale``
        gives, quantized as ``coordsr.images`` quantizes them. Checked before any work."""
        from coordsr.stream import Rows

        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
        image = check_image(image)
        size = check_size(size)
        self.check_memory(image.shape, size, streamed=True)
        return Rows(size[0], size[1], image.shape[2], np.dtype(np.uint16 if bit_depth == 16 else np.uint8),
                    self._upscale_rows(image, size, bit_depth, progress))

    def _upscale_rows(self, image: np.ndarray, size: tuple[int, int], bit_depth: int,
                      progress: ProgressCallback | None) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, band) of the output, top to bottom; this default computes it whole."""
        from coordsr.images import quantize

        yield 0, quantize(np.clip(self._upscale(image, size, progress), 0.0, 1.0), bit_depth)


@functools.cache
def _field_docstrings(klass: type) -> dict[str, str]:
    """{field: docstring} of the annotated assignments in ``klass``'s own body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def need(ok: bool, name: str, value, what: str) -> None:
    """ValueError '<name> must be <what>, got <value>' unless ``ok``: one line per setting check."""
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")


MAX_SEED = 2**63 - 1
"""Largest seed torch's generators take."""


def shipped_weights_file(name: str) -> str:
    """Path of a weights file shipped inside the package (``coordsr/weights/NAME``);
    FieldFileError when an install lost it."""
    import importlib.resources

    from coordsr.errors import FieldFileError

    ref = importlib.resources.files("coordsr") / "weights" / name
    if not ref.is_file():
        raise FieldFileError(f"{ref}: shipped weights missing (reinstall coordsr)")
    return str(ref)


def resolve_device(device: str):
    """'auto', 'cpu', 'cuda', 'cuda:N' -> torch.device; ValueError for a name torch does not know
    or a device this machine does not have."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: only cpu and cuda are supported")
    return dev
