"""Many images, one command: a folder, a glob or a list file in, a folder of outputs out.

    plan = plan_batch(find_inputs("photos/"), Path("big/"), fmt="keep", force=False)
    plan.make_folder()
    outcomes = run_batch(plan.todo, recipe, workers=2, progress=print)

The input is a folder (its image files, not its subfolders), a glob pattern (quoted, so that
coordsr and not the shell expands it; ``**`` reaches into subfolders) or a list file named with
a leading ``@`` (``@list.txt``: one path a line, as it would be typed here, like ``tar -T``:
relative paths are from the current folder; blank lines and ``#`` comments skipped). Each
output is ``OUTDIR/<input stem><suffix>``, the suffix of the input (``--format keep``) or of
the chosen format.

What makes it safe to stop and rerun:
- every output is written through ``coordsr.atomic`` (a temporary beside it, then a rename), so
  a file present in OUTDIR is complete; a rerun skips it (``--force`` redoes it);
- a worker checks again just before it writes, so a retried task (a Ray actor restarted after a
  crash) finds the output of the attempt that finished and does not write it twice;
- temporaries left by a killed worker (``.<name>.<hex>.tmp``) are swept at the end of a run;
- OUTDIR may not hold any input (outputs would be read as inputs on the next run), two inputs
  may not share an output name, and nothing is written outside OUTDIR.

A bad file does not stop the batch: each image ends as an :class:`Outcome` (done, skipped or
failed with a one-line message naming the file), and the caller reports the failures at the end.

Workers: ``run_batch(workers=1)`` runs in this process; ``workers=N`` starts N spawned processes
that each receive the recipe once (so a method's weights load once per process, on its first
image) and split the CPU's threads between them. A cluster runs the same :func:`upscale_file`
through Ray (``coordsr.cluster``).
"""

from __future__ import annotations

import glob
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from coordsr.errors import CoordsrError

FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "tif": ".tif", "tiff": ".tif", "webp": ".webp",
           "bmp": ".bmp"}
"""``--format`` words -> the suffix of the outputs (``keep``: the input's own suffix)."""

GLOB_CHARS = frozenset("*?[")


def is_batch_input(spec: str | os.PathLike) -> bool:
    """True when ``spec`` names many images: an existing folder, ``@LIST``, or a glob pattern
    (a name with ``*``, ``?`` or ``[`` that is not itself an existing file)."""
    text = str(spec)
    if text.startswith("@") or Path(text).is_dir():
        return True
    return bool(GLOB_CHARS & set(text)) and not Path(text).exists()


def image_suffixes() -> dict[str, str]:
    from coordsr.images import SUFFIXES

    return SUFFIXES


def find_inputs(spec: str | os.PathLike) -> list[Path]:
    """The image files ``spec`` names (a folder, a glob or ``@LIST``), in order, without repeats.

    A folder or a glob gives its files with an image suffix, sorted by name; a list gives its
    lines as written (a missing or bad file there fails later, on its own line, like any bad
    image). CoordsrError when nothing is named or the list cannot be read."""
    text = str(spec)
    if text.startswith("@"):
        paths = _read_list(Path(text[1:]))
        what = f"list {text[1:]}"
    elif Path(text).is_dir():
        folder = Path(text)
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in image_suffixes())
        what = f"folder {folder}"
    else:
        paths = sorted(Path(p) for p in glob.glob(text, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in image_suffixes())
        what = f"pattern {text!r}"
    seen: set[Path] = set()
    unique = []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise CoordsrError(f"{what}: no images (PNG, JPEG, TIFF, WebP, BMP) in it")
    return unique


def _read_list(path: Path) -> list[Path]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CoordsrError(f"@{path}: no such list file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CoordsrError(f"@{path}: cannot read the list: {getattr(e, 'strerror', None) or e}") from None
    lines = (line.strip() for line in text.splitlines())
    return [Path(s) for s in lines if s and not s.startswith("#")]


def output_suffix(src: Path, fmt: str) -> str:
    """The suffix of ``src``'s output: its own for 'keep', else the format's."""
    if fmt == "keep":
        return src.suffix
    try:
        return FORMATS[fmt.lower()]
    except KeyError:
        raise CoordsrError(f"--format {fmt!r}: expected keep or one of {', '.join(FORMATS)}") from None


@dataclass(frozen=True)
class Item:
    """One image of a batch: where it is read from and where its output goes (as the user named
    them: relative paths are from this process's folder; a cluster makes them absolute)."""

    src: Path
    dst: Path


@dataclass
class Plan:
    """A checked batch: ``todo`` to run, ``skipped`` already finished in OUTDIR."""

    outdir: Path
    todo: list[Item]
    skipped: list[Item]

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.skipped)

    def make_folder(self) -> None:
        """Create OUTDIR (its parent exists: plan_batch checked) when there is work for it."""
        if self.todo:
            try:
                self.outdir.mkdir(exist_ok=True)
            except OSError as e:
                raise CoordsrError(f"{self.outdir}: cannot create the folder: {e.strerror or e}") from None


def plan_batch(inputs: Iterable[Path], outdir: Path, *, fmt: str = "keep", force: bool = False) -> Plan:
    """Map inputs to outputs in ``outdir`` and check everything before any work.

    CoordsrError when ``outdir`` is a file or cannot be made or written, when it holds inputs of
    the batch, or when two inputs would write the same output. Outputs already there are
    ``skipped`` unless ``force``. Nothing is created: ``Plan.make_folder`` makes OUTDIR (its
    parent must exist) when the run starts."""
    inputs = list(inputs)
    fmt = fmt.lower()
    output_suffix(Path("x.png"), fmt)  # an unknown --format fails before anything else
    if outdir.exists() and not outdir.is_dir():
        raise CoordsrError(f"{outdir}: is a file; -o takes a folder when the input is a folder, glob or list")
    if not outdir.exists() and not outdir.parent.is_dir():
        raise CoordsrError(f"{outdir}: folder {outdir.parent} does not exist")
    root = outdir.resolve()
    items, by_dst = [], {}
    for src in inputs:
        if Path(os.path.abspath(src)).parent.resolve() == root or src.resolve().parent == root:
            raise CoordsrError(f"{outdir}: holds inputs of this batch ({src}); outputs would mix with "
                               "them and be read as inputs on the next run: choose another folder")
        suffix = output_suffix(src, fmt)
        if suffix.lower() not in image_suffixes():
            suffix = ".png"  # a list may name a file of a type coordsr cannot write: it fails on its own line
        dst = outdir / (src.stem + suffix)  # a name has no folder in it: never outside OUTDIR
        key = os.path.normcase(dst.name)
        if key in by_dst:
            raise CoordsrError(f"{src} and {by_dst[key]} would both be written to {dst}; rename one "
                               "or upscale them into different folders")
        by_dst[key] = src
        items.append(Item(src, dst))
    if outdir.exists() and not os.access(outdir, os.W_OK):
        raise CoordsrError(f"{outdir}: cannot write to this folder (permission denied)")
    todo, skipped = [], []
    for it in items:
        (todo if force or not os.path.lexists(it.dst) else skipped).append(it)
    return Plan(outdir, todo, skipped)


@dataclass
class Recipe:
    """Everything a worker needs to upscale one file; picklable, sent to each worker once."""

    upscaler: object
    """A built, checked method (coordsr.methods): its weights load once per process."""
    size_of: Callable[[int, int], tuple[int, int]]
    """(h, w) of an input -> (H, W) of its output; raises CoordsrError for a size it refuses."""
    bit_depth: int | None = None
    """8 or 16; None: the input's."""
    max_pixels: int | None = None
    """Inputs with more pixels are refused from their header."""
    denoiser: object | None = None
    """A denoise method applied before upscaling (``upscale --denoise``), or None."""
    sigma: float | None = None
    """The denoiser's noise level; None: estimated per image."""
    force: bool = False
    """Overwrite outputs that exist (else a worker that finds its output finished skips it)."""
    by_content: dict[str, object] | None = None
    """When each image decides (no ``--method``; ``--content auto``, or photo with ``--degradation
    auto``): the upscaler of each method it may pick, by name (coordsr.content.candidate_methods);
    None: ``upscaler`` for every image."""
    content: str = "auto"
    degradation: str = "auto"
    """``--content`` and ``--degradation``, as for one image."""

    def choose(self, pixels, jpeg_quality: int | None = None) -> tuple[object, str, str]:
        """(upscaler, kind, method name) for one image (``jpeg_quality``: what its file was saved
        at, if a JPEG); kind and name '' when the method is fixed. A compressed or noisy photo's
        kind reads 'photo (compressed or noisy)'."""
        if self.by_content is None:
            return self.upscaler, "", ""
        from coordsr.content import content_of

        found = content_of(pixels, self.content, self.degradation, jpeg_quality)
        kind = "photo (compressed or noisy)" if found.degraded else found.kind
        return self.by_content[found.method], kind, found.method


@dataclass
class Outcome:
    """How one image ended: 'done', 'skipped' (its output was already there) or 'failed'."""

    src: str
    dst: str
    status: str
    message: str = ""
    """For a failure: one line that names the file."""
    code: int = 0
    """For a failure: 2 for bad input (CoordsrError), 1 for a run that failed on the way."""
    seconds: float = 0.0
    content: str = ""
    """What ``--content auto`` saw ('photo', 'photo (compressed or noisy)', 'drawing', 'pixel-art');
    '' when the method was fixed."""
    method: str = ""
    """The method that content chose ('' when the method was fixed)."""


def upscale_file(recipe: Recipe, item: Item) -> Outcome:
    """Read, (denoise,) upscale and atomically write one image; never raises for a bad image."""
    from coordsr.images import read_image, write_image

    start = time.perf_counter()
    src, dst = Path(item.src), Path(item.dst)
    if not recipe.force and os.path.lexists(dst):  # finished by an earlier run or attempt
        return Outcome(str(src), str(dst), "skipped")
    try:
        img = read_image(src, max_pixels=recipe.max_pixels)
        size = recipe.size_of(img.height, img.width)
        pixels = img.pixels
        upscaler, kind, method = recipe.choose(pixels, img.jpeg_quality)  # the input as it came, as for one image
        if recipe.denoiser is not None:
            pixels = recipe.denoiser.denoise(pixels, recipe.sigma)
        result = upscaler.upscale(pixels, size)
        write_image(dst, result, bit_depth=recipe.bit_depth or img.bit_depth)
    except CoordsrError as e:
        return _failed(src, dst, str(e), e.exit_code, start)
    except (ValueError, MemoryError, FloatingPointError, OSError, RuntimeError) as e:
        return _failed(src, dst, f"{type(e).__name__}: {e}", 1, start)
    return Outcome(str(src), str(dst), "done", seconds=time.perf_counter() - start, content=kind, method=method)


def _failed(src: Path, dst: Path, message: str, code: int, start: float) -> Outcome:
    message = " ".join(message.split())  # one line
    if str(src) not in message and src.name not in message:
        message = f"{src}: {message}"
    return Outcome(str(src), str(dst), "failed", message, code, time.perf_counter() - start)


Progress = Callable[[int, int, str], None]
"""``progress(done, total, name)`` after each image of a batch."""


def run_batch(items: list[Item], recipe: Recipe, *, workers: int = 1,
              progress: Progress | None = None) -> list[Outcome]:
    """Upscale ``items``, in this process (``workers=1``) or in ``workers`` spawned processes;
    returns one Outcome per item, in the order they finished. Interrupting it (Ctrl-C, SIGTERM)
    stops the workers, whose atomic writes remove their temporaries."""
    if workers < 1:
        raise CoordsrError(f"--workers must be at least 1, got {workers}")
    outcomes: list[Outcome] = []
    try:
        if workers == 1 or len(items) <= 1:
            for item in items:
                outcomes.append(upscale_file(recipe, item))
                _report(progress, outcomes, len(items))
        else:
            _run_pool(items, recipe, min(workers, len(items)), progress, outcomes)
    finally:
        sweep_temporaries(items)
    return outcomes


def _report(progress: Progress | None, outcomes: list[Outcome], total: int) -> None:
    if progress is not None:
        progress(len(outcomes), total, Path(outcomes[-1].src).name)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _run_pool(items, recipe, workers, progress, outcomes) -> None:
    import multiprocessing as mp

    threads = max(1, usable_cpus() // workers)
    # spawn, not fork: a forked child of a process whose torch/OpenMP threads have run can hang.
    pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(recipe, threads))
    try:
        for outcome in pool.imap_unordered(_work, items, chunksize=1):
            outcomes.append(outcome)
            _report(progress, outcomes, len(items))
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM: each worker unwinds (see _init_worker), temporaries removed
        raise
    finally:
        pool.join()


_RECIPE: Recipe | None = None


def _init_worker(recipe: Recipe, threads: int) -> None:
    """A worker process: the recipe kept for all its images, its share of the threads, and
    signals that unwind it (the parent handles Ctrl-C and stops the pool with SIGTERM)."""
    import torch

    global _RECIPE
    _RECIPE = recipe
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)


_BUSY = False
"""True while this worker is upscaling an image (it then has temporaries to remove)."""


def _raise_interrupt(signum, frame):
    if not _BUSY:  # between images: nothing to clean up; leave without multiprocessing's traceback
        os._exit(128 + signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _work(item: Item) -> Outcome:
    global _BUSY
    _BUSY = True
    try:
        return upscale_file(_RECIPE, item)
    except KeyboardInterrupt:
        # Unwound: the image's temporary was removed on the way out. Exit quietly: raised further,
        # the pool's worker loop would print a traceback for it.
        os._exit(128 + signal.SIGTERM)
    finally:
        _BUSY = False


def sweep_temporaries(items: Iterable[Item]) -> int:
    """Remove the temporaries of these outputs (``.<name>.<16 hex>.tmp``, coordsr.atomic) that a
    killed worker left; returns how many. Call it when no worker of the batch is writing."""
    import re

    removed = 0
    by_folder: dict[Path, set[str]] = {}
    for it in items:
        by_folder.setdefault(Path(it.dst).parent, set()).add(Path(it.dst).name)
    pattern = re.compile(r"^\.(.+)\.[0-9a-f]{16}\.tmp$")
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = pattern.match(entry.name)
            if m and m.group(1) in names:
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def summary(plan: Plan, outcomes: list[Outcome], seconds: float) -> str:
    """One line: how many were upscaled, skipped and failed, and the pace."""
    done = sum(o.status == "done" for o in outcomes)
    skipped = len(plan.skipped) + sum(o.status == "skipped" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    pace = f", {done / seconds:.2f} images/s" if done and seconds > 0 else ""
    parts = [f"upscaled {done} of {plan.total} image{'s' if plan.total != 1 else ''} into {plan.outdir}"]
    if skipped:
        parts.append(f"{skipped} skipped (already there; --force redoes them)")
    if failed:
        parts.append(f"{failed} failed")
    chosen = by_content(outcomes)
    if chosen:
        parts.append(chosen)
    return ", ".join(parts) + f" in {seconds:.1f} s{pace}"


def by_content(outcomes: list[Outcome]) -> str:
    """'by content: 3 drawings with drawing, 2 photos with pretrained' when --content auto chose
    a method other than the photo one for some image; '' otherwise (the photos' line is unchanged)."""
    from collections import Counter

    counts = Counter((o.content, o.method) for o in outcomes if o.status == "done" and o.content)
    if not any(kind != "photo" for kind, _ in counts):
        return ""

    def name(kind: str, n: int) -> str:
        if kind == "pixel-art":
            return "pixel art"
        noun, _, detail = kind.partition(" ")  # 'photo (compressed or noisy)'
        return noun + ("s" if n != 1 else "") + (" " + detail if detail else "")

    return "by content: " + ", ".join(f"{n} {name(kind, n)} with {method}"
                                      for (kind, method), n in sorted(counts.items()))


def exit_status(outcomes: list[Outcome]) -> int:
    """0 when nothing failed; else the worst failure's status (2: bad input, 1: failed on the way)."""
    return max((o.code for o in outcomes if o.status == "failed"), default=0)
