"""Compute precision: float32, or bfloat16 matrix products under autocast where they pay.

Weights stay float32 everywhere (fitting keeps float32 master weights and optimizer state);
``bf16`` only runs the matrix products of forward passes in bfloat16 (``torch.autocast``),
which CPUs with bfloat16 matrix units (Intel AMX) run about 3x faster than float32. CPUs
without them may run bfloat16 no faster, or slower, than float32, so ``auto`` decides from a
measurement of this machine, not from its name: a quick probe (:func:`bf16_speedup`, a few
milliseconds, once per process and device) times the same matrix product in both types.

Subnormal floats are flushed to zero while fields are fitted and drawn (:func:`flushing_subnormals`):
x86 CPUs compute with them slowly, and the results do not depend on them.

>>> resolve_precision("fp32", "cpu")
torch.float32
"""

from __future__ import annotations

import functools
import os
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Iterator, TypeVar

import torch

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

AUTO_MIN_SPEEDUP = 1.3
"""``auto`` picks bfloat16 when the probe finds its matrix products at least this much faster:
a margin over the probe's noise on a loaded machine."""

PROBE_SIZE = 512
"""Side of the probe's square matrices: big enough to reach the matrix units' throughput."""

PRE_PROBE_SIZE = 128
"""Side of a first, small probe: where bfloat16 has no hardware path at all (emulated, 30-100x
slower than float32, as on AVX2-only CPUs), it says so in milliseconds, and the full probe,
which would take seconds there, is skipped."""


def check_precision(precision: str) -> str:
    """``precision`` if it is one of PRECISIONS; ValueError naming them otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def matmul_seconds(dtype: torch.dtype, device: torch.device | str = "cpu", n: int = PROBE_SIZE,
                   repeats: int = 5) -> float:
    """Best time of one (n, n) @ (n, n) product in ``dtype`` on ``device`` (after a warm-up)."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first product is the warm-up (oneDNN builds its kernel)
            best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def _speedup(device_type: str, index: int | None) -> float:
    device = torch.device(device_type, index) if index is not None else torch.device(device_type)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return 0.0
    try:
        small = (matmul_seconds(torch.float32, device, n=PRE_PROBE_SIZE, repeats=2)
                 / matmul_seconds(torch.bfloat16, device, n=PRE_PROBE_SIZE, repeats=2))
        if small < 0.25:  # far slower: no load burst explains that; 512 would take seconds
            return small
        # Interleaved and best-of, so that a burst of load from other processes hits both types.
        fp32 = bf16 = float("inf")
        for _ in range(3):
            fp32 = min(fp32, matmul_seconds(torch.float32, device, repeats=3))
            bf16 = min(bf16, matmul_seconds(torch.bfloat16, device, repeats=3))
        return fp32 / bf16
    except RuntimeError:  # no bfloat16 matrix product on this device
        return 0.0


def bf16_speedup(device: torch.device | str = "cpu") -> float:
    """How many times faster a bfloat16 matrix product runs than a float32 one here (measured
    once per process and device; 0 where bfloat16 is not supported)."""
    device = torch.device(device)
    return _speedup(device.type, device.index)


def resolve_precision(precision: str, device: torch.device | str = "cpu", *,
                      allow_auto_bf16: bool = True) -> torch.dtype:
    """The compute dtype of ``precision``: 'fp32' -> float32, 'bf16' -> bfloat16, 'auto' ->
    bfloat16 where :func:`bf16_speedup` reaches AUTO_MIN_SPEEDUP and the method allows it
    (``allow_auto_bf16``: its measured loss in bfloat16 is negligible), float32 otherwise."""
    check_precision(precision)
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if allow_auto_bf16 and bf16_speedup(device) >= AUTO_MIN_SPEEDUP:
        return torch.bfloat16
    return torch.float32


def autocast(dtype: torch.dtype, device: torch.device | str = "cpu") -> AbstractContextManager:
    """A context running matrix products in ``dtype`` (bfloat16) on ``device``; a no-op for float32."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def relu_(x: torch.Tensor) -> torch.Tensor:
    """In-place ReLU without autograd, fast for bfloat16 on the CPU; returns ``x``.

    A bfloat16 is negative exactly when its sign bit is set, that is when its 16 bits read as an
    int16 are negative, so clamping that int16 view at 0 is the ReLU (negatives become +0.0).
    Measured on this project's CPU with torch 2.13, one thread, 4M elements: 0.6 ms for
    ``relu_`` in bfloat16 against 0.04 ms for the int16 clamp, a sixth of a ``pretrained``
    query. The one difference: a NaN with its sign bit set becomes 0, not NaN.
    """
    if x.dtype is torch.bfloat16 and x.device.type == "cpu":
        x.view(torch.int16).clamp_min_(0)
        return x
    return x.relu_()


KEEP_SUBNORMALS_ENV = "COORDSR_KEEP_SUBNORMALS"
"""Environment variable: "1" keeps subnormal floats in fits and renders (see flushing_subnormals)."""

T = TypeVar("T")


def flushing_subnormals_now() -> bool:
    """Whether this thread's float arithmetic flushes subnormal numbers to zero: a subnormal
    float32 (1e-39) times one reads 0 where it does."""
    return float(torch.tensor(1e-39) * 1.0) == 0.0


@contextmanager
def flushing_subnormals() -> Iterator[None]:
    """Within this block, this thread's CPU arithmetic treats subnormal floats (below 1.2e-38 in
    float32) as zero (``torch.set_flush_denormal``); if it did not before, it does not after.

    Why: x86 CPUs take a slow microcode path for each operation on a subnormal, and fits make them
    (WIRE's Gabor activation exp(-(s0 x)^2) underflows through them for |x| near 1). On an Intel
    Xeon, 200 float32 steps of the ``wire`` preset on a 48x48 image took 61 s without this and
    4.7 s with it, to the same output (``benchmarks/subnormals.py``; 44 and 8 s before WIRE's
    Gabor function was written out). Values that small change no
    output pixel. A no-op where the CPU cannot flush them, or where the environment sets
    ``COORDSR_KEEP_SUBNORMALS=1`` (to compare). Generators: :func:`flushing_each_step`."""
    keep = os.environ.get(KEEP_SUBNORMALS_ENV) == "1"
    changed = not keep and not flushing_subnormals_now() and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def flushing_each_step(items: Iterator[T]) -> Iterator[T]:
    """``items`` computed with subnormals flushed: the mode holds while it computes an item, not
    while it waits for its consumer (whose code it would otherwise change)."""
    try:
        while True:
            with flushing_subnormals():
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


__all__ = ["PRECISIONS", "AUTO_MIN_SPEEDUP", "check_precision", "matmul_seconds", "bf16_speedup",
           "resolve_precision", "autocast", "relu_", "flushing_subnormals", "flushing_subnormals_now",
           "flushing_each_step", "KEEP_SUBNORMALS_ENV"]
