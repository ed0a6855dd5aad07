"""Run a benchmark stage in a fresh process, so its peak memory and warm-up are its own."""

from __future__ import annotations

import multiprocessing as mp


def in_process(target, *args):
    """Call ``target(*args, queue)`` in a spawned process and return what it puts on the queue."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q), daemon=True)
    p.start()
    row = q.get()
    p.join()
    return row
