"""Run a benchmark stage in a fresh process, so its peak memory and warm-up are its own."""

from __future__ import annotations

import multiprocessing as mp


def in_process(target, *args, results: int | None = None):
    """Call ``target(*args, queue)`` in a spawned process and return what it puts on the queue:
    one item, or a list of ``results`` items."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q), daemon=True)
    p.start()
    rows = [q.get() for _ in range(results or 1)]
    p.join()
    return rows if results is not None else rows[0]
