"""OpenMP threads that spin briefly before they sleep: the CLI's setting, made before torch loads.

PyTorch's CPU wheels for Linux run their parallel regions on libgomp's threads, and a thread
that waits for work spins (up to 300000 polls by default) before it sleeps. On an idle machine
that saves a wake-up. When another process holds one of the cores, the spinning thread burns
the time slice that the thread it waits for needs, and every parallel region waits for the
scheduler: beside one busy process, the seed's job from the CLI ran 11x slower (``pretrained``)
and 34x slower (``--method hashgrid``) than idle. A 1000-poll spin keeps that to 1.3x and costs
0-5% idle; ``OMP_WAIT_POLICY=PASSIVE`` (no spin) 1.0-1.1x loaded but 8-27% idle
(``benchmarks/omp_wait.py``, ``benchmarks/results/omp_wait.json``, the AMD EPYC). On the Intel
Xeon (``benchmarks/results/omp_wait_xeon.json``, 2026-11-30) 1000 polls cost 5% (``pretrained``)
and 10% (hashgrid) idle and kept one busy core to 1.3x; 3000 polls 2-3% idle, 1.4-1.5x busy;
10000 polls 0-5% idle, 1.6-2.2x busy; PASSIVE 12-23% idle; libgomp's default 8.5x and 21x busy.

Only the CLI applies it: a library should not set its host process's environment. A user's own
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` wins. It has to happen before torch is imported, since
libgomp reads its environment once, when it loads; child processes (batch workers) inherit it,
and the web server runs in the process that set it. Other OpenMP runtimes (LLVM's libomp on macOS, Intel's) have their
own knob, ``KMP_BLOCKTIME``, left alone: not measured here.
"""

from __future__ import annotations

from collections.abc import MutableMapping

SPIN_COUNT = "1000"
"""libgomp's polls before a waiting thread sleeps (its default: 300000)."""

USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
"""Variables by which a user has already chosen how threads wait."""


def short_spin(environ: MutableMapping[str, str]) -> bool:
    """Set ``GOMP_SPINCOUNT`` in ``environ`` unless the user chose a wait policy; True if set."""
    if any(name in environ for name in USER_SETTINGS):
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True
