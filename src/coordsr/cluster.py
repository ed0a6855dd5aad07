"""A batch on a Ray cluster: the same per-image work as coordsr.batch, scheduled by Ray Data.

    outcomes = run_on_ray(plan.todo, recipe, address="auto", workers=None, progress=None)

The images become a Ray Dataset of (src, dst) rows; ``map_batches`` sends them, one row a
batch, to a pool of actors (:class:`UpscaleActor`), each holding the recipe, so a model's
weights load once per actor; each actor runs :func:`coordsr.batch.upscale_file`, which writes
its output straight into OUTDIR (a folder every node sees at the same path) and returns one
row saying how the image ended. Nothing of the scheduling is ours: placement, retries and
restarts are Ray's. Ray Data restarts an actor that dies and retries its batches; a retried
image whose output the dead attempt had finished finds it and skips it, an unfinished one left
only a temporary (swept at the end), so a crash loses and duplicates nothing.

``address``: 'auto' joins the cluster this machine belongs to (started with ``ray start``) or,
when there is none, starts one on this machine, as ``ray.init()`` does; anything else is the
address of a head (``HOST:6379``, or ``ray://HOST:10001`` through Ray Client). A process that
has already called ``ray.init`` (the tests) keeps its cluster.

Ray is an optional dependency: ``pip install 'coordsr[cluster]'``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from coordsr.batch import Item, Outcome, Progress, Recipe, sweep_temporaries, upscale_file
from coordsr.errors import CoordsrError

EXTRA = "pip install 'coordsr[cluster]'"


def import_ray():
    """The ray module with Ray Data, or CoordsrError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (needs pyarrow and pandas: ray[data])
    except ImportError as e:
        raise CoordsrError(f"--ray needs Ray Data: {EXTRA} ({e.name or 'ray'} missing)") from None
    return ray


class UpscaleActor:
    """A Ray Data callable class: built once per actor with the recipe, then called per batch."""

    def __init__(self, recipe: Recipe, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.recipe = recipe

    def __call__(self, batch: dict) -> dict:
        rows = [asdict(upscale_file(self.recipe, Item(Path(s), Path(d))))
                for s, d in zip(batch["src"], batch["dst"])]
        return {k: [r[k] for r in rows] for k in rows[0]} if rows else {k: [] for k in Outcome.__annotations__}


def quiet_ray_logs() -> None:
    """Keep Ray Data's progress and INFO lines out of the terminal: the batch reports every
    image itself. Ray's core (C++) still logs as it does: on each run it says, once, that Ray
    Data's actor pool keeps its constructor arguments in the object store (harmless on a
    cluster whose head stays up; silencing it would silence its real errors too). Workers'
    logs stay in Ray's session folder (/tmp/ray/session_latest/logs)."""
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """CoordsrError unless a TCP connection to a HOST:PORT address opens within ``timeout``
    seconds (Ray itself retries an unreachable head for minutes). 'auto' and ray:// addresses
    are left to Ray."""
    import socket

    if address == "auto" or "://" in address or address.count(":") != 1:
        return
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except ValueError:
        raise CoordsrError(f"--ray {address}: expected auto or HOST:PORT (e.g. 10.0.0.1:6379)") from None
    except OSError as e:
        raise CoordsrError(f"--ray {address}: cannot reach the head: {e.strerror or e}") from None


def connect(address: str):
    """ray.init for ``address`` unless this process is already connected; returns ray."""
    ray = import_ray()
    quiet_ray_logs()
    if not ray.is_initialized():
        check_reachable(address)
        try:
            ray.init(address=None if address == "auto" else address, log_to_driver=False,
                     logging_level="ERROR", include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise CoordsrError(f"--ray {address}: cannot connect: {' '.join(str(e).split())}") from None
    return ray


def run_on_ray(items: list[Item], recipe: Recipe, *, address: str = "auto", workers: int | None = None,
               threads: int = 1, progress: Progress | None = None) -> list[Outcome]:
    """Upscale ``items`` on a Ray cluster with ``workers`` actors (None: one per CPU of the cluster;
    never more than the cluster's CPUs hold, nor than images), each using ``threads`` torch
    threads and reserving that many CPUs."""
    ray = connect(address)
    if workers is not None and workers < 1:
        raise CoordsrError(f"--workers must be at least 1, got {workers}")
    if not items:
        return []
    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpu = getattr(recipe.upscaler, "device", "cpu").startswith("cuda")
    # A fixed pool larger than the cluster would wait for actors that cannot start: capped.
    actors = min(len(items), workers or cpus, max(1, cpus // threads))
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one bar, ours
    ctx.print_on_execution_start = False
    # Workers may run in another folder or on another node: they get absolute paths; the
    # outcomes name the files as the caller did.
    shown = {os.path.abspath(it.src): it for it in items}
    ds = ray.data.from_items([{"src": a, "dst": os.path.abspath(it.dst)} for a, it in shown.items()],
                             override_num_blocks=len(items))
    done = ds.map_batches(
        UpscaleActor, fn_constructor_kwargs={"recipe": recipe, "threads": threads},
        batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=threads, num_gpus=1 if gpu else 0,
    )  # Ray Data's actor pools restart a dead actor and retry its batches (its default; tested)
    outcomes: list[Outcome] = []
    try:
        for row in done.iter_rows():
            it = shown[str(row["src"])]
            message = str(row["message"]).replace(str(row["src"]), str(it.src))
            outcomes.append(Outcome(str(it.src), str(it.dst), str(row["status"]), message,
                                    int(row["code"]), float(row["seconds"]), str(row.get("content", "")),
                                    str(row.get("method", ""))))
            if progress is not None:
                progress(len(outcomes), len(items), os.path.basename(outcomes[-1].src))
    finally:
        sweep_temporaries(items)
    return outcomes
