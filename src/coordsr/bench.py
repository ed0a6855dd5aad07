"""The benchmark runner and its report (DESIGN.md section 5).

One *cell* is (image, scale, method): the HR image is mod-cropped, the LR input made by the
protocol (:func:`coordsr.metrics.make_lr`), the method is given the LR image and the output size
and nothing else, its output is quantized to 8 bits and scored on Y against the HR image. Each
cell gives one row::

    {dataset, image, method, settings, scale, psnr, ssim, seconds, error, version, protocol}

With a ``degradation`` (``coordsr bench --degrade jpeg40``: photos as they arrive, DESIGN.md
section 5), the LR input is made by :func:`make_input` instead (the named degradations of
:mod:`coordsr.degradations` around the same bicubic downscale, then 8 bits), and each row also
holds ``degradation`` (the spec) and ``gmsd``; the degradation is part of the row's cache key, of
its cache file (``<dataset>.<spec>.jsonl``) and of its outputs' folder, so clean and degraded
rows never mix. Clean rows are as before, key and file included.

``settings`` holds every setting of the method (its dataclass fields, defaults included), so the
budget (``steps``) is always stated; ``error`` is None or one line, and a failing cell never
stops the run. ``version`` is a hash of the source of the method's module, of the metrics, and of
the coordsr modules they use (transitively), so editing that code invalidates the cached rows.

With a ``cache_dir``, rows are appended to ``cache_dir/<dataset>.jsonl`` as they finish, and a
later run with the same (image, method, settings, scale, version, protocol) reuses them: an
interrupted run resumes where it stopped. Failed cells are recorded but retried.

Rows of an older code version (or made before a setting existed) are not thrown away blindly:
a *canary* re-runs one of their cells (the quickest image at its scale) with the current code
and settings; when its Y-PSNR matches the cached one to 0.001 dB and its SSIM to 1e-4
(:func:`canary_agrees`), the edit did not change the results and the group's rows stand: they are copied into the cache under the current version,
with ``validated`` saying where they came from (their ``seconds`` were measured on the older
code). Every canary is recorded in ``cache_dir/canaries.jsonl`` and never run twice.

Seeds (torch, numpy, random) are reset to 0 before every cell, so a row is reproducible.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from coordsr import metrics
from coordsr.errors import Cancelled
from coordsr.methods import get_method
from coordsr.progress import Progress

PROTOCOL = 1
"""Version of the protocol in :mod:`coordsr.metrics` as the runner applies it; part of the cache key."""

PROTOCOL_DESCRIPTION = (
    "HR mod-cropped to a multiple of the scale; LR = MATLAB-style bicubic imresize(HR, 1/scale) "
    "quantized to 8 bits; output quantized to 8 bits; PSNR and SSIM (Gaussian 11x11, sigma 1.5, "
    "data range 255) on Y = 16 + 65.481 R + 128.553 G + 24.966 B (grey images: Y = 255 * grey), "
    "ceil(scale) border pixels shaved, float64, averaged per image; seeds reset to 0 per cell.")

BUDGET_KEYS = ("fit", "steps", "until", "batch", "quality", "epochs", "iterations")
"""Settings shown as the budget in tables, when a method has them."""


@dataclass
class BenchProgress:
    """One report from :func:`run_bench`: before a cell, while its method runs, after it."""

    done: int
    """Cells finished so far (cached ones included)."""
    total: int
    """Cells in the run: images x scales x methods."""
    dataset: str
    image: str
    method: str
    scale: float
    row: dict | None = None
    """The finished row (after the cell); None before and during it."""
    cached: bool = False
    """True when the row came from the cache."""
    method_progress: Progress | None = None
    """The method's own report while it runs (fitting steps), for a second progress bar."""


BenchCallback = Callable[[BenchProgress], None]


# ---------------------------------------------------------------- inputs


def find_images(directory: str | os.PathLike) -> list[Path]:
    """The image files directly in ``directory`` (PNG, JPEG, TIFF, WebP, BMP), sorted by name."""
    from coordsr.images import SUFFIXES

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory}: not a folder")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def read_hr(path: Path) -> np.ndarray:
    """Ground truth as (H, W, C) float64 in [0, 1], alpha dropped; 8-bit files give exact k/255."""
    from coordsr.images import read_image

    data = read_image(path)
    pixels = data.pixels.astype(np.float64)
    if data.bit_depth == 8:
        pixels = np.round(pixels * 255.0) / 255.0  # undo float32's rounding of k/255
    if pixels.shape[2] in (2, 4):
        pixels = pixels[:, :, :-1]
    return pixels


def settings_for(name: str, **overrides: Any) -> dict:
    """The overrides that method ``name`` accepts (None values dropped): ``--steps`` for all.

    >>> settings_for("bicubic", steps=100)
    {}
    """
    accepted = {f.name for f in dataclasses.fields(get_method(name))}
    return {k: v for k, v in overrides.items() if v is not None and k in accepted}


def _instantiate(name: str, settings: Mapping[str, Any]):
    cls = get_method(name)
    accepted = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"method {name!r} has no setting {', '.join(map(repr, unknown))}; "
                         f"its settings: {', '.join(accepted)}")
    return cls(**settings)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def effective_settings(upscaler) -> dict:
    """Every setting of an upscaler instance (defaults included), as JSON values."""
    return {f.name: _jsonable(getattr(upscaler, f.name)) for f in dataclasses.fields(upscaler)}


WEIGHTS_DIR = Path(__file__).parent / "weights"
"""Where the shipped weights lie (part of a method's version: :func:`code_version`)."""


def code_version(*objs: type | ModuleType) -> str:
    """Hash of the source of the modules of ``objs`` and of the coordsr modules they import.

    Imports are read from the source (``ast``), transitively, including those made inside
    functions; third-party libraries are not part of the hash.
    """
    files: dict[str, Path] = {}
    todo = []
    for o in objs:
        mod = o if isinstance(o, ModuleType) else sys.modules[o.__module__]
        files[mod.__name__] = Path(mod.__file__)
        todo.append((mod.__name__, hasattr(mod, "__path__")))
    while todo:
        name, is_package = todo.pop()
        for dep in _coordsr_imports(files[name], name, is_package):
            if dep in files:
                continue
            try:
                spec = importlib.util.find_spec(dep)
            except (ImportError, AttributeError, ValueError):
                spec = None
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue  # a name imported from a module, not a module
            files[dep] = Path(spec.origin)
            todo.append((dep, spec.submodule_search_locations is not None))
    h = hashlib.sha1()
    weights = WEIGHTS_DIR
    for name in sorted(files):
        source = _source_of(files[name])
        h.update(name.encode())
        h.update(source)
        # Shipped weights a module names (e.g. SHIPPED = "pretrained.safetensors") are part of
        # what it computes: new weights are a new version of the method.
        for shipped in sorted(set(re.findall(rb'"([\w.-]+\.safetensors)"', source))):
            if (weights / shipped.decode()).is_file():
                h.update((weights / shipped.decode()).read_bytes())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def _source_of(file: Path) -> bytes:
    """A module's source as this process first read it: the code it runs (modules are imported
    once), so that a long benchmark whose files are edited while it runs keeps labelling its rows
    with the version it computes them with."""
    return file.read_bytes()


def _coordsr_imports(file: Path, name: str, is_package: bool) -> set[str]:
    """Dotted names of the coordsr modules (or names in them) that ``file`` imports."""
    package = name if is_package else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(_source_of(file).decode(), str(file))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in out if n == "coordsr" or n.startswith("coordsr.")}


# ---------------------------------------------------------------- degraded inputs


DEGRADED_DESCRIPTION = (
    "Degraded inputs (DESIGN.md section 5, photos as they arrive): HR mod-cropped; the degradations "
    "named before the downscale (blur: Gaussian, sigma given in LR pixels, applied in HR pixels); "
    "MATLAB-style bicubic imresize(HR, 1/scale); the degradations after it in the order named (noiseS: "
    "Gaussian noise of sigma S 8-bit levels, seeded by the image's name; jpegQ / webpQ: Pillow's codec "
    "at quality Q, JPEG 4:2:0); stored as 8 bits (clipped, rounded): the LR input "
    "(coordsr.degradations.parse, coordsr.bench.make_input). Grey images are degraded as three equal "
    "channels and given back as one. Scored as the clean protocol, plus GMSD on the same shaved RGB.")


def check_degradation(spec: str) -> str:
    """The canonical form of a degradation spec, spaces and empty parts dropped; ValueError (one
    line) for a spec :func:`coordsr.degradations.parse` refuses.

    >>> check_degradation(" noise10, jpeg70 ")
    'noise10,jpeg70'
    """
    from coordsr.degradations import parse

    canonical = ",".join(p.strip() for p in str(spec).split(",") if p.strip())
    if not canonical:
        raise ValueError("empty degradation: name one, e.g. jpeg40 or noise10,jpeg70")
    parse(canonical, scale=2)  # raises ValueError naming the part at fault
    return canonical


def degradation_seed(image: str) -> int:
    """The noise seed of an image: a hash of its name (the same in every run, every script and
    whatever other images the folder holds).

    >>> degradation_seed("baby") == degradation_seed("baby") != degradation_seed("bird")
    True
    """
    return int.from_bytes(hashlib.sha1(image.encode()).digest()[:4], "big")


def make_input(hr: np.ndarray, scale: float, degradation: str | None = None, *, image: str = "") -> np.ndarray:
    """The LR image a cell's method is given: :func:`coordsr.metrics.make_lr` when ``degradation``
    is None, else :data:`DEGRADED_DESCRIPTION`'s recipe, the noise seeded by
    :func:`degradation_seed` of ``image`` (the file's stem). ``hr`` (H, W, C) in [0, 1] must be
    mod-cropped; returns float64 (h, w, C) of exact 8-bit levels.

    >>> hr = np.linspace(0, 1, 16 * 16 * 3).reshape(16, 16, 3)
    >>> bool(np.array_equal(make_input(hr, 4), metrics.make_lr(hr, 4)))
    True
    >>> make_input(hr, 4, "noise10,jpeg70", image="x").shape
    (4, 4, 3)
    """
    if not degradation:
        return metrics.make_lr(hr, scale)
    import torch

    from coordsr.degradations import apply, parse
    from coordsr.resize import imresize

    hr = np.asarray(hr, dtype=np.float64)
    if hr.ndim == 2:
        hr = hr[:, :, None]
    if hr.shape[0] % metrics.crop_multiple(scale) or hr.shape[1] % metrics.crop_multiple(scale):
        raise ValueError(f"HR of {hr.shape[1]}x{hr.shape[0]} is not mod-cropped for scale {scale:g}")
    before, after = parse(degradation, scale=scale, seed=degradation_seed(image))
    x = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))  # (C, H, W) float64
    grey = x.shape[0] == 1
    if grey:  # the codecs take RGB: three equal channels, the first one given back
        x = x.repeat(3, 1, 1)
    x = imresize(apply(x, before), metrics.lr_size(hr.shape, scale), scale=1.0 / scale)
    lr = apply(x, after).double().numpy().transpose(1, 2, 0)
    return metrics.quantize(lr[:, :, :1] if grey else lr)


def describe_degradation(spec: str) -> str:
    """What a spec does, in words (at x4; blur sigmas scale with the scale).

    >>> describe_degradation("noise10,jpeg70")
    'bicubic 1/scale, then noise sigma=10.0, jpeg q70, 8-bit'
    """
    from coordsr.degradations import describe, parse

    before, after = parse(spec, scale=4)
    steps = [describe(before) + " (sigma in HR pixels at x4)"] if before else []
    return ", ".join([*steps, "bicubic 1/scale"]) + (", then " + describe(after) if after else "") + ", 8-bit"


def run_name(dataset: str, degradation: str | None = None) -> str:
    """``dataset``, or ``dataset.spec`` for a degraded run: the stem of its cache file and of its
    outputs' folder (made safe for file names there).

    >>> run_name("Set5"), run_name("Set5", "noise10,jpeg70")
    ('Set5', 'Set5.noise10,jpeg70')
    """
    return f"{dataset}.{degradation}" if degradation else dataset


def run_label(dataset: str, degradation: str | None = None) -> str:
    """How tables name a run: ``Set5``, or ``Set5 + jpeg40`` for a degraded one."""
    return f"{dataset} + {degradation}" if degradation else dataset


# ---------------------------------------------------------------- cache


def row_key(row: Mapping[str, Any]) -> str:
    """The cache key of a row: (image, method, settings, scale, version, protocol), and the
    degradation where the row has one (a clean row's key is as it always was)."""
    key = [row["image"], row["method"], row["settings"], float(row["scale"]), row["version"], row["protocol"]]
    if row.get("degradation"):
        key.append({"degradation": row["degradation"]})
    return json.dumps(key, sort_keys=True, default=str)


def cache_file(cache_dir: Path, dataset: str, degradation: str | None = None) -> Path:
    """The JSON-lines file that holds ``dataset``'s rows (degraded by ``degradation``: its own file)."""
    return Path(cache_dir) / (_safe_name(run_name(dataset, degradation)) + ".jsonl")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines cache file; a line cut short by an interruption is skipped."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "image" in row:
            rows.append(row)
    return rows


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut short by an interruption: end it, keep ours whole
                f.write(b"\n")
        f.write(json.dumps(row).encode() + b"\n")
        f.flush()


def output_path(outputs_dir: Path, row: Mapping[str, Any]) -> Path:
    """Where a cell's 8-bit output is kept: ``outputs_dir/dataset/x4/method-<settings hash>/image.png``
    (``dataset.spec/`` for a degraded run: :func:`run_name`)."""
    digest = hashlib.sha1(json.dumps(row["settings"], sort_keys=True).encode()).hexdigest()[:8]
    return (Path(outputs_dir) / _safe_name(run_name(row["dataset"], row.get("degradation")))
            / f"x{row['scale']:g}" / f"{row['method']}-{digest}" / f"{row['image']}.png")


CANARY_TOLERANCE_DB = 0.001
"""A canary passes when its Y-PSNR is within this of the cached row's (and its SSIM within
``CANARY_TOLERANCE_SSIM``). 0.01 dB let a model change through: the shipped weights of step
24000 read 31.148 dB on Set14 ``face`` x6 where step 12000's read 31.143. Unchanged code gives
the same bytes; a difference this small is float rounding across machines at most."""

CANARY_TOLERANCE_SSIM = 1e-4


def canary_agrees(fresh: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether a canary's scores match the cached row's: PSNR, and SSIM where both have it."""
    if fresh.get("error") is not None or fresh.get("psnr") is None:
        return False
    if abs(fresh["psnr"] - old["psnr"]) > CANARY_TOLERANCE_DB:
        return False
    return fresh.get("ssim") is None or old.get("ssim") is None or \
        abs(fresh["ssim"] - old["ssim"]) <= CANARY_TOLERANCE_SSIM


def canary_file(cache_dir: Path) -> Path:
    """The JSON-lines file of canary results, one line per (older group, current code) check."""
    return Path(cache_dir) / "canaries.jsonl"


def _settings_json(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def _compatible(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Old settings that the new ones extend: every old setting still exists with the same value
    (settings added since are left for the canary to judge)."""
    return all(k in new and new[k] == v for k, v in old.items())


def _older_groups(cached: Sequence[dict], method: str, settings: dict, version: str,
                  degradation: str | None = None) -> list[list[dict]]:
    """Cached rows of ``method`` (on inputs of the same ``degradation``) from other code versions
    or older settings that ``settings`` extend, grouped by (version, settings); newest group first."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in cached:
        if (r.get("method") != method or r.get("protocol") != PROTOCOL or r.get("error") is not None
                or r.get("psnr") is None or not _compatible(r.get("settings", {}), settings)
                or (r.get("degradation") or None) != degradation):
            continue
        if r.get("version") == version and r["settings"] == settings:
            continue  # already current
        groups.setdefault((r.get("version"), _settings_json(r["settings"])), []).append(r)
    return list(reversed(groups.values()))


# ---------------------------------------------------------------- the run


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


def _seed(seed: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_cell(upscaler, lr: np.ndarray, hr: np.ndarray, scale: float,
             progress: Callable[[Progress], None] | None = None, *,
             gmsd: bool = False) -> tuple[dict, np.ndarray | None]:
    """Run one method on one LR image and score it: ({psnr, ssim, seconds, error}, 8-bit output).

    The method gets a float32 copy of ``lr`` and the size of ``hr``; nothing else. ``gmsd``: the
    scores also hold ``gmsd`` (:func:`coordsr.metrics.gmsd` on the RGB, shaved as the PSNR).
    """
    none = {"psnr": None, "ssim": None, **({"gmsd": None} if gmsd else {})}
    _seed(0)
    start = time.perf_counter()
    try:
        out = upscaler.upscale(lr.astype(np.float32), hr.shape[:2], progress=progress)
    except Cancelled:
        raise
    except Exception as exc:  # a failing method is a row, not the end of the run
        return {**none, "seconds": time.perf_counter() - start, "error": _one_line(exc)}, None
    seconds = time.perf_counter() - start
    out = np.asarray(out)
    if out.ndim == 2:
        out = out[:, :, None]
    error = None
    if out.shape != hr.shape:
        error = f"output has shape {out.shape}, expected {hr.shape}"
    elif not np.all(np.isfinite(out)):
        error = "output has NaN or infinite values"
    if error:
        return {**none, "seconds": seconds, "error": error}, None
    sr = metrics.quantize(out.astype(np.float64))
    shave = metrics.shave_for(scale)
    try:
        scores = {"psnr": metrics.psnr_y(sr, hr, shave), "ssim": metrics.ssim_y(sr, hr, shave)}
        if gmsd:
            inner = (slice(shave, -shave or None),) * 2
            scores["gmsd"] = metrics.gmsd(sr[inner], hr[inner])
    except ValueError as exc:  # an image too small to score
        return {**none, "seconds": seconds, "error": f"cannot score: {exc}"}, None
    return {**scores, "seconds": seconds, "error": None}, sr


def run_bench(hr_paths: Sequence[str | os.PathLike], scales: Sequence[float],
              methods: Mapping[str, Mapping[str, Any]], *, dataset: str,
              cache_dir: str | os.PathLike | None = None,
              outputs_dir: str | os.PathLike | None = None,
              progress: BenchCallback | None = None, cached_only: bool = False,
              canaries: bool = True, degradation: str | None = None) -> list[dict]:
    """Benchmark ``methods`` (name -> settings) on the HR images at each scale; one row per cell.

    ``degradation``: a spec of :func:`check_degradation` (``jpeg40``, ``noise10,jpeg70``): the LR
    inputs are :func:`make_input`'s, and the rows say so (module docstring).

    ``cache_dir``: rows are read from and appended to ``cache_dir/<dataset>.jsonl`` (resume).
    ``outputs_dir``: each output is kept as an 8-bit PNG at :func:`output_path` (the exact pixels
    scored), for :func:`coordsr.figures.make_figures`; a cached row whose output is missing is run
    again. ``cached_only``: run nothing, return the rows found in the cache. ``canaries``: reuse
    rows of older code or settings that a canary finds unchanged (off to compare two values of a
    setting finer than the canary's 0.01 dB, or their seconds: a validated row keeps its old ones).
    Rows come in the order image, scale, method. Unknown methods or settings raise ValueError
    before anything runs; an image that cannot be read gives error rows.
    """
    paths = [Path(p) for p in hr_paths]
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        twins = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"two images share a name: {', '.join(twins)}")
    scales = [float(s) for s in scales]
    for s in scales:
        metrics.crop_multiple(s)  # raises for scale <= 1
    degradation = check_degradation(degradation) if degradation else None
    upscalers = {name: _instantiate(name, settings) for name, settings in methods.items()}
    # a degraded row is also computed by coordsr.degradations: its edits are a new version too
    modules = (metrics, _degradations_module()) if degradation else (metrics,)
    info = {name: (effective_settings(u), code_version(type(u), *modules)) for name, u in upscalers.items()}

    cache = cache_file(Path(cache_dir), dataset, degradation) if cache_dir is not None else None
    finished = {row_key(r): r for r in read_rows(cache) if r.get("error") is None} if cache else {}
    outputs_dir = Path(outputs_dir) if outputs_dir is not None else None
    if cache is not None and canaries:
        for name, upscaler in upscalers.items():
            for row in _validate_older_rows(cache, dataset, name, upscaler, *info[name], paths, scales,
                                            finished, outputs_dir, run_canaries=not cached_only,
                                            degradation=degradation):
                finished[row_key(row)] = row

    rows: list[dict] = []
    total = len(paths) * len(scales) * len(upscalers)
    report = progress or (lambda p: None)
    for path in paths:
        image = path.stem
        hr_full = image_error = None  # read on the first cell that is not cached
        for scale in scales:
            hr = lr = prep_error = None  # made on the first cell that needs them
            for name, upscaler in upscalers.items():
                settings, version = info[name]
                row = {"dataset": dataset, "image": image, "method": name, "settings": settings,
                       "scale": scale, "psnr": None, "ssim": None, "seconds": None, "error": None,
                       "version": version, "protocol": PROTOCOL}
                if degradation:
                    row.update(degradation=degradation, gmsd=None)
                where = dict(total=total, dataset=dataset, image=image, method=name, scale=scale)
                hit = finished.get(row_key(row))
                if hit is not None and (outputs_dir is None or output_path(outputs_dir, hit).exists()):
                    rows.append(hit)
                    report(BenchProgress(done=len(rows), **where, row=hit, cached=True))
                    continue
                if cached_only:
                    continue
                report(BenchProgress(done=len(rows), **where))
                if hr_full is None and image_error is None:
                    try:
                        hr_full = read_hr(path)
                    except Exception as exc:  # an unreadable image gives error rows, the run goes on
                        image_error = _one_line(exc)
                if hr is None and prep_error is None:
                    try:
                        if image_error:
                            raise ValueError(image_error)
                        hr = metrics.modcrop(hr_full, scale)
                        lr = make_input(hr, scale, degradation, image=image)
                    except Exception as exc:
                        prep_error = image_error or _one_line(exc)
                sr = None
                if prep_error is not None:
                    row["error"] = prep_error
                else:
                    def inner(p: Progress, _where=where, _done=len(rows)) -> None:
                        report(BenchProgress(done=_done, **_where, method_progress=p))

                    scores, sr = run_cell(upscaler, lr, hr, scale, inner, gmsd=bool(degradation))
                    row.update(scores)
                if sr is not None and outputs_dir is not None:
                    from coordsr.images import write_image

                    out = output_path(outputs_dir, row)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    write_image(out, np.ascontiguousarray(sr), bit_depth=8)  # images.py needs C order
                if cache is not None:
                    _append(cache, row)
                rows.append(row)
                report(BenchProgress(done=len(rows), **where, row=row))
    return rows


def _degradations_module() -> ModuleType:
    import coordsr.degradations

    return coordsr.degradations


def _validate_older_rows(cache: Path, dataset: str, name: str, upscaler, settings: dict, version: str,
                         paths: Sequence[Path], scales: Sequence[float], finished: Mapping[str, dict],
                         outputs_dir: Path | None, *, run_canaries: bool,
                         degradation: str | None = None) -> list[dict]:
    """Rows of older groups (:func:`_older_groups`) that a canary finds unchanged, copied into the
    cache under the current ``version`` and ``settings``; only groups that fill missing cells."""
    by_stem = {p.stem: p for p in paths}

    def key(image: str, scale: float) -> str:
        return row_key({"image": image, "method": name, "settings": settings, "scale": scale,
                        "version": version, "protocol": PROTOCOL, "degradation": degradation})

    missing = {(image, float(s)) for image in by_stem for s in scales if key(image, float(s)) not in finished}
    if not missing:
        return []
    canaries = canary_file(cache.parent)
    verdicts = {(c["old_version"], _settings_json(c["old_settings"])): c for c in read_rows(canaries)
                if c.get("dataset") == dataset and c.get("method") == name and c.get("version") == version
                and c.get("settings") == settings and c.get("protocol") == PROTOCOL
                and (c.get("degradation") or None) == degradation}
    adopted: list[dict] = []
    for group in _older_groups(read_rows(cache), name, settings, version, degradation):
        useful = [r for r in group if (r["image"], float(r["scale"])) in missing]
        if not useful:
            continue
        old_version, old_settings = group[0]["version"], group[0]["settings"]
        verdict = verdicts.get((old_version, _settings_json(old_settings)))
        if verdict is None:
            runnable = [r for r in group if r["image"] in by_stem]
            if not run_canaries or not runnable:
                continue
            probe = min(runnable, key=lambda r: (r.get("seconds") or 0.0, r["image"], float(r["scale"])))
            verdict = _run_canary(upscaler, by_stem[probe["image"]], probe, dataset, name, settings, version,
                                  degradation)
            _append(canaries, verdict)
            if verdict["row"] is not None:  # the canary's own row is a current row
                _append(cache, verdict["row"])
                adopted.append(verdict["row"])
                missing.discard((probe["image"], float(probe["scale"])))
        if not verdict["ok"]:
            continue
        for r in useful:
            if (r["image"], float(r["scale"])) not in missing:
                continue
            row = {**r, "settings": settings, "version": version,
                   "validated": {"version": old_version, "settings": old_settings,
                                 "canary": f"{verdict['image']} x{verdict['scale']:g}"}}
            if outputs_dir is not None:
                old_out, new_out = output_path(outputs_dir, r), output_path(outputs_dir, row)
                if old_out.exists() and not new_out.exists():
                    new_out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(old_out, new_out)
            _append(cache, row)
            adopted.append(row)
            missing.discard((r["image"], float(r["scale"])))
    return adopted


def _run_canary(upscaler, path: Path, old_row: Mapping[str, Any], dataset: str, name: str,
                settings: dict, version: str, degradation: str | None = None) -> dict:
    """Run one cached cell again with the current code: the verdict, with the fresh row."""
    scale = float(old_row["scale"])
    hr = metrics.modcrop(read_hr(path), scale)
    lr = make_input(hr, scale, degradation, image=old_row["image"])
    scores, _ = run_cell(upscaler, lr, hr, scale, gmsd=bool(degradation))
    ok = canary_agrees(scores, old_row)
    extra = {"degradation": degradation} if degradation else {}
    row = None
    if scores["error"] is None:
        row = {"dataset": dataset, "image": old_row["image"], "method": name, "settings": settings,
               "scale": scale, **scores, "version": version, "protocol": PROTOCOL, **extra}
    return {"dataset": dataset, **extra, "method": name, "settings": settings, "version": version,
            "protocol": PROTOCOL, "old_version": old_row["version"], "old_settings": old_row["settings"],
            "image": old_row["image"], "scale": scale, "old_psnr": old_row["psnr"],
            "psnr": scores["psnr"], "ok": ok, "row": row, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


@contextmanager
def progress_bar(console=None) -> Iterator[BenchCallback]:
    """A rich progress display for :func:`run_bench`: cells done, and the running method's steps.

    >>> with progress_bar() as cb:  # doctest: +SKIP
    ...     rows = run_bench(paths, [4], {"bicubic": {}}, dataset="Set5", progress=cb)
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             console=console, transient=False) as bar:
        cells = bar.add_task("bench", total=None)
        steps = bar.add_task("", total=None, visible=False)

        def callback(p: BenchProgress) -> None:
            label = f"{p.dataset} {p.image} x{p.scale:g} {p.method}"
            bar.update(cells, total=p.total, completed=p.done, description=label)
            if p.method_progress is not None:
                m = p.method_progress
                bar.update(steps, total=m.total, completed=m.step, visible=True,
                           description=f"  {m.stage}" + (f" {m.psnr:.2f} dB" if m.psnr is not None else ""))
            elif p.row is not None:
                bar.update(steps, visible=False)

        yield callback


# ---------------------------------------------------------------- reports


def _fmt_settings(settings: Mapping[str, Any], keys: Sequence[str]) -> str:
    def value(k: str) -> Any:  # batch 0 means every pixel in each step: say so
        return "all" if k == "batch" and settings[k] == 0 else settings[k]

    return ", ".join(f"{k}={value(k)}" for k in keys if k in settings) or "-"


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean PSNR, SSIM and seconds per image of each (dataset, degradation, method, settings, scale).

    Means are over the rows without error; ``ok`` and ``n`` count them. Order of first appearance.
    Degraded rows' entries also hold ``degradation`` and the mean ``gmsd`` (clean ones are as before).
    """
    groups: dict[tuple, list] = {}
    for r in rows:
        k = (r["dataset"], r.get("degradation") or None, r["method"], json.dumps(r["settings"], sort_keys=True),
             float(r["scale"]))
        groups.setdefault(k, []).append(r)
    out = []
    for (dataset, degradation, method, settings, scale), rs in groups.items():
        ok = [r for r in rs if r.get("error") is None and r.get("psnr") is not None]
        mean = (lambda key: float(np.mean([r[key] for r in ok])) if ok else None)
        entry = {"dataset": dataset, "method": method, "settings": json.loads(settings),
                 "scale": scale, "psnr": mean("psnr"), "ssim": mean("ssim"),
                 "seconds": mean("seconds"), "ok": len(ok), "n": len(rs),
                 "errors": sorted({r["error"] for r in rs if r.get("error")})}
        if degradation:
            scored = [r["gmsd"] for r in ok if r.get("gmsd") is not None]
            entry = {"dataset": dataset, "degradation": degradation, **entry,
                     "gmsd": float(np.mean(scored)) if ok and len(scored) == len(ok) else None}
        out.append(entry)
    return out


def budget_labels(summary: Sequence[Mapping[str, Any]]) -> dict[tuple, str]:
    """The budget of each (method, settings): BUDGET_KEYS, plus the settings that differ between
    two runs of the same method in these rows."""
    by_method: dict[str, list[dict]] = {}
    for s in summary:
        if s["settings"] not in by_method.setdefault(s["method"], []):
            by_method[s["method"]].append(s["settings"])
    labels = {}
    for method, variants in by_method.items():
        varying = [k for k in variants[0] if k not in BUDGET_KEYS
                   and len({json.dumps(v.get(k)) for v in variants}) > 1]
        for v in variants:
            labels[(method, json.dumps(v, sort_keys=True))] = _fmt_settings(v, [*BUDGET_KEYS, *varying])
    return labels


def format_cell(s: Mapping[str, Any]) -> str:
    """'PSNR / SSIM / seconds' of one summary entry ('PSNR / SSIM / GMSD / seconds' where it has a
    GMSD), with the count when some images failed."""
    if s["ok"] == 0:
        return f"failed ({s['n']})"
    gmsd = f"{s['gmsd']:.4f} / " if s.get("gmsd") is not None else ""
    text = f"{s['psnr']:.2f} / {s['ssim']:.4f} / {gmsd}{_fmt_seconds(s['seconds'])}"
    return text if s["ok"] == s["n"] else f"{text} ({s['ok']}/{s['n']} ok)"


def _fmt_seconds(sec: float) -> str:
    return f"{sec:.3f} s" if sec < 1 else f"{sec:.1f} s" if sec < 100 else f"{sec:.0f} s"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table: one line per (dataset, method, budget), one column per scale.

    Each cell is mean Y-PSNR (dB) / SSIM / seconds per image (with GMSD before the seconds for
    degraded inputs, whose dataset reads ``Set5 + jpeg40``); errors are listed under the table.
    """
    summary = summarize(rows)
    if not summary:
        return "(no rows)"
    scales = sorted({s["scale"] for s in summary})
    labels = budget_labels(summary)
    lines = ["| dataset | method | budget | " + " | ".join(f"x{s:g}" for s in scales) + " |",
             "|---|---|---|" + "---|" * len(scales)]
    table: dict[tuple, dict[float, dict]] = {}
    for s in summary:
        key = (run_label(s["dataset"], s.get("degradation")), s["method"],
               labels[(s["method"], json.dumps(s["settings"], sort_keys=True))])
        table.setdefault(key, {})[s["scale"]] = s
    for (dataset, method, budget), cells in table.items():
        text = [format_cell(cells[sc]) if sc in cells else "" for sc in scales]
        lines.append(f"| {dataset} | {method} | {budget} | " + " | ".join(text) + " |")
    lines.append("")
    specs = list(dict.fromkeys(s["degradation"] for s in summary if s.get("degradation")))
    if not specs:
        lines.append("Cells: mean Y-PSNR (dB) / SSIM / seconds per image.")
    elif all(s.get("degradation") for s in summary):
        lines.append("Cells: mean Y-PSNR (dB) / SSIM / GMSD (lower is better) / seconds per image; "
                     "the LR inputs degraded as the dataset column names:")
    else:
        lines.append("Cells: mean Y-PSNR (dB) / SSIM / seconds per image; with GMSD (lower is better) before "
                     "the seconds where the LR inputs are degraded (dataset + spec):")
    lines += [f"- {spec}: {describe_degradation(spec)}" for spec in specs]
    errors = [(s, e) for s in summary for e in s["errors"]]
    for s, e in errors[:20]:
        lines.append(f"error: {s['dataset']} {s['method']} x{s['scale']:g}: {e}")
    if len(errors) > 20:
        lines.append(f"... and {len(errors) - 20} more errors")
    return "\n".join(lines)


def environment() -> dict:
    """The machine a run's seconds were measured on."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "python": platform.python_version(), "torch": torch.__version__,
           "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def write_json(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
               meta: Mapping[str, Any] | None = None) -> None:
    """Write ``{"protocol", "environment", "summary", "rows", **meta}`` to ``path`` atomically;
    with degraded rows, ``protocol`` also holds ``degraded`` (:data:`DEGRADED_DESCRIPTION`) and
    ``degradations`` (each spec and what it does)."""
    protocol = {"version": PROTOCOL, "description": PROTOCOL_DESCRIPTION}
    specs = list(dict.fromkeys(r["degradation"] for r in rows if r.get("degradation")))
    if specs:
        protocol.update(degraded=DEGRADED_DESCRIPTION, degradations={s: describe_degradation(s) for s in specs})
    dump_json({"protocol": protocol, "environment": environment(), **(meta or {}), "summary": summarize(rows),
               "rows": list(rows)}, path)


def dump_json(doc: Mapping[str, Any], path: str | os.PathLike) -> None:
    """``doc`` as indented JSON at ``path``, atomically (a temporary beside it, then renamed),
    numpy scalars as numbers: how every benchmark (SR, denoising, drawings) writes its rows."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return repr(value)


def make_figures(*args, **kwargs):
    """See :func:`coordsr.figures.make_figures` (imported lazily: it needs matplotlib)."""
    from coordsr.figures import make_figures as impl

    return impl(*args, **kwargs)


__all__ = ["BenchProgress", "run_bench", "run_cell", "find_images", "read_hr", "settings_for", "make_input",
           "check_degradation", "degradation_seed", "describe_degradation", "DEGRADED_DESCRIPTION",
           "format_table", "format_cell", "summarize", "budget_labels", "write_json", "make_figures",
           "progress_bar", "output_path", "cache_file", "read_rows", "row_key", "code_version",
           "environment", "PROTOCOL", "PROTOCOL_DESCRIPTION"]
