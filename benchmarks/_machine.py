"""What the machine could do while a speed figure was taken: load average and matrix-product
GFLOP/s in float32 and bfloat16, measured in the same run (issue 13, item 3).

A figure divided by the same run's GFLOP/s is a fraction of this machine's peak, comparable
across runs on a busy machine and across machines. Every speed script prints and stores
:func:`machine_record` beside its figures.
"""

from __future__ import annotations

import os

import torch

from coordsr.precision import matmul_seconds

PROBE_N = 1024
"""Side of the square matrices timed: large enough for the CPU's matrix peak, about 10 ms."""


def matmul_gflops(dtype: torch.dtype, n: int = PROBE_N, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an (n, n) @ (n, n) product in ``dtype`` on the CPU."""
    return 2 * n**3 / matmul_seconds(dtype, "cpu", n=n, repeats=repeats) / 1e9


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages ([] where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine_record() -> dict:
    """{loadavg, threads, cpu_count, gflops_fp32, gflops_bf16}: print it and store it in the JSON."""
    return {"loadavg": loadavg(), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "gflops_fp32": round(matmul_gflops(torch.float32), 1),
            "gflops_bf16": round(matmul_gflops(torch.bfloat16), 1)}


def machine_line(rec: dict) -> str:
    """One line for a speed table's caption."""
    return (f"load average {' / '.join(f'{v:.2f}' for v in rec['loadavg'])}, {rec['threads']} threads, "
            f"matmul {rec['gflops_fp32']:.0f} GFLOP/s fp32, {rec['gflops_bf16']:.0f} GFLOP/s bf16")


def package_versions(names) -> dict:
    """Installed version of each distribution in ``names`` (None where it is not installed)."""
    import importlib.metadata

    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
