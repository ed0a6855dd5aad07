"""The drawing benchmark (DESIGN.md section 5, "Drawings"): icons, emoji, logos, sprites.

Two ways to get inputs and truths (``coordsr bench --lr SMALL --hr LARGE`` and
``coordsr bench LARGE --task drawing``):

- *pairs of folders* (:func:`find_pairs`): the small drawing as its designer made it is the
  input, as the file holds it (RGBA kept, never flattened); the large drawing of the same name
  is the truth. The scale is large / small: a whole number, the same on both axes.
- *large drawings alone* (:func:`find_drawings`): the truth is mod-cropped to a multiple of the
  scale and the input is its area (box) downscale, averaged on premultiplied RGBA (so no colour
  hidden under alpha 0 leaks into an edge) and stored as an 8-bit straight-alpha file would be
  (:func:`box_downscale`).

A contender (a registry method, or a peer of benchmarks/drawing_peers.py) gets the input and the
truth's size, nothing else; its output is quantized to 8 bits and scored by
:func:`coordsr.metrics.drawing_scores`: PSNR on RGB composited on white and on black and their
mean, SSIM and GMSD (means of the two composites), PSNR of alpha alone. One row per (image,
scale, contender)::

    {dataset, image, method, note, settings, scale, lr_from, psnr_white, psnr_black, psnr, ssim,
     gmsd, alpha_psnr, seconds, error}

``lr_from`` is 'file' (pairs) or 'box'; ``seconds`` times the upscale call alone, after one
untimed warm-up call of each contender on a small input; ``error`` is None or one line, and a
failing cell never stops the run. Seeds are reset to 0 before every cell.

The split: the drawing model trains on the Emoji layout (a folder ``HR512/`` beside ``LR32/``)
except for its validation files (:func:`coordsr.drawings.data.is_held_out`). ``split='auto'``
keeps only those files when the truth folder is that layout's ``HR512``, and every file
otherwise; 'val', 'train' and 'all' say it outright.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coordsr import metrics
from coordsr.bench import _one_line, _seed  # one error line and one seeding for every benchmark
from coordsr.errors import Cancelled
from coordsr.drawings.data import VALIDATION_FRACTION, is_held_out  # the drawing model's own split


SPLITS = ("auto", "val", "train", "all")

METRICS = ("psnr_white", "psnr_black", "psnr", "ssim", "gmsd", "alpha_psnr")
"""The scores of a row (coordsr.metrics.drawing_scores), in table order."""

PROTOCOL_DESCRIPTION = (
    "drawings (DESIGN.md 5): input = the small drawing's file as is (pairs) or the area (box) "
    "downscale of the premultiplied large drawing, mod-cropped, as 8-bit straight alpha; output "
    "quantized to 8 bits; PSNR on RGB over all pixels composited on white and on black (and their "
    "mean), SSIM (Gaussian 11x11, sigma 1.5) on the BT.601 luma and GMSD (Xue et al. 2014) as "
    "means over the two composites, PSNR of alpha alone; seconds = the upscale call after a "
    "warm-up; seeds reset to 0 per cell.")


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Drawing:
    """One image of the benchmark: the truth's file and, for a pair, the small drawing's file."""

    name: str
    """The truth's file name (what the split hashes)."""
    hr: Path
    lr: Path | None = None
    """None: the input is made from the truth by :func:`box_downscale`."""
    scale: int | None = None
    """A pair's scale, read from the files' headers by :func:`find_pairs`."""


@dataclass
class Case:
    """One (input, truth) of an image at one scale, loaded."""

    name: str
    scale: int
    lr: np.ndarray
    """(h, w, C) straight alpha, float64 in [0, 1] (8-bit files: exact k / 255)."""
    hr: np.ndarray
    """(h * scale, w * scale, C')."""
    lr_from: str
    """'file' (the small drawing) or 'box' (made from the truth)."""


def _image_files(folder: Path) -> dict[str, Path]:
    """{stem: path} of the images directly in ``folder``; ValueError if it is missing or two
    files share a stem (which would be whose partner?)."""
    from coordsr.images import SUFFIXES

    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in SUFFIXES:
            if p.stem in files:
                raise ValueError(f"{folder}: {files[p.stem].name} and {p.name} have the same name")
            files[p.stem] = p
    if not files:
        raise ValueError(f"{folder}: no images (PNG, JPEG, TIFF, WebP, BMP) in it")
    return files


def resolve_split(split: str, hr_dir: str | os.PathLike) -> str:
    """'val', 'train' or 'all': ``split``, with 'auto' made 'val' for the Emoji layout's truth
    folder (``HR512`` beside ``LR32``, the drawing model's training data) and 'all' elsewhere.

    >>> resolve_split("auto", "/nowhere/icons"), resolve_split("train", "/nowhere/icons")
    ('all', 'train')
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    if split != "auto":
        return split
    hr_dir = Path(hr_dir)
    return "val" if hr_dir.name == "HR512" and (hr_dir.parent / "LR32").is_dir() else "all"


def _in_split(name: str, split: str) -> bool:
    if split == "all":
        return True
    return is_held_out(name) == (split == "val")


def _keep(drawings: list[Drawing], split: str, folder: Path) -> list[Drawing]:
    kept = [d for d in drawings if _in_split(d.name, split)]
    if not kept:
        raise ValueError(f"{folder}: none of its {len(drawings)} images is in the {split} split")
    return kept


def _size(path: Path) -> tuple[int, int]:
    """(height, width) from the file's header (no pixels decoded)."""
    from PIL import Image

    from coordsr.errors import ImageError

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({' '.join(str(exc).split())})") from None


def pair_scale(lr_size: tuple[int, int], hr_size: tuple[int, int]) -> int | None:
    """The whole scale between two (height, width) sizes, the same on both axes; None otherwise.

    >>> pair_scale((32, 32), (512, 512)), pair_scale((32, 30), (512, 512)), pair_scale((3, 3), (8, 8))
    (16, None, None)
    """
    (h, w), (H, W) = lr_size, hr_size
    if H % h or W % w or H // h != W // w or H // h < 2:
        return None
    return H // h


def find_pairs(lr_dir: str | os.PathLike, hr_dir: str | os.PathLike, split: str = "auto") -> list[Drawing]:
    """The pairs of ``lr_dir`` (small drawings) and ``hr_dir`` (large ones), matched by file
    name (extension aside), in the split (:func:`resolve_split`), sorted by name. ValueError,
    before any pixel is read, for a missing folder, a file without a partner, or a pair whose
    sizes are not a whole scale (>= 2) apart."""
    lr_dir, hr_dir = Path(lr_dir), Path(hr_dir)
    small, large = _image_files(lr_dir), _image_files(hr_dir)
    alone = sorted(set(small) ^ set(large))
    if alone:
        have, lack = (small[alone[0]], hr_dir) if alone[0] in small else (large[alone[0]], lr_dir)
        more = f" (and {len(alone) - 1} more files without one)" if len(alone) > 1 else ""
        raise ValueError(f"{have}: no file of the same name in {lack}{more}")
    drawings = _keep([Drawing(large[s].name, large[s], small[s]) for s in sorted(large)],
                     resolve_split(split, hr_dir), hr_dir)
    out = []
    for d in drawings:
        lr_size, hr_size = _size(d.lr), _size(d.hr)
        scale = pair_scale(lr_size, hr_size)
        if scale is None:
            raise ValueError(f"{d.name}: {lr_size[1]}x{lr_size[0]} and {hr_size[1]}x{hr_size[0]} "
                             f"are not a whole scale apart (the same on both axes, at least 2)")
        out.append(dataclasses.replace(d, scale=scale))
    return out


def find_drawings(hr_dir: str | os.PathLike, scales: Sequence[int], split: str = "auto") -> list[Drawing]:
    """The large drawings of ``hr_dir`` in the split, sorted by name; ValueError, before any
    pixel is read, for a scale that is not a whole number >= 2 or an image too small for one
    (its input must be at least 2x2)."""
    hr_dir = Path(hr_dir)
    for s in scales:
        if int(s) != s or s < 2:
            raise ValueError(f"scale {s:g}: drawings are benchmarked at whole scales of 2 or more")
    drawings = _keep([Drawing(p.name, p) for _, p in sorted(_image_files(hr_dir).items())],
                     resolve_split(split, hr_dir), hr_dir)
    for d in drawings:
        h, w = _size(d.hr)
        for s in scales:
            if min(h, w) < 2 * s:
                raise ValueError(f"{d.name}: {w}x{h} is too small for x{s:g} (the input would be "
                                 f"less than 2x2 pixels)")
    return drawings


def dataset_name(hr_dir: str | os.PathLike, lr_dir: str | os.PathLike | None = None) -> str:
    """The rows' dataset: the truth folder's name, or for pairs in one parent folder the parent's
    (Emoji/LR32 + Emoji/HR512 -> 'Emoji').

    >>> dataset_name("data/Emoji/HR512", "data/Emoji/LR32"), dataset_name("icons/large")
    ('Emoji', 'large')
    """
    hr_dir = Path(hr_dir)
    if lr_dir is not None and Path(lr_dir).resolve().parent == hr_dir.resolve().parent:
        return hr_dir.resolve().parent.name
    return hr_dir.name


def read_drawing(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, C) float64 in [0, 1], alpha kept; 8-bit files give exact k/255."""
    from coordsr.images import read_image

    data = read_image(path)
    pixels = data.pixels.astype(np.float64)
    if data.bit_depth == 8:
        pixels = np.round(pixels * 255.0) / 255.0  # undo float32's rounding of k/255
    return pixels


def box_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) straight alpha, sides multiples of ``scale`` -> (H/s, W/s, C): the mean of each
    s x s block of premultiplied colour, divided by the block's alpha again and rounded to 8-bit
    levels, as a straight-alpha file holds it. Without alpha, the plain block means.

    >>> hr = np.zeros((2, 2, 4)); hr[0, 0] = [1.0, 0.0, 0.0, 1.0]  # one opaque red pixel of four
    >>> box_downscale(hr, 2)[0, 0].tolist()  # red, a quarter covered: no hidden black in the colour
    [1.0, 0.0, 0.0, 0.25098039215686274]
    """
    H, W, c = hr.shape
    if H % scale or W % scale:
        raise ValueError(f"a {W}x{H} image is not a multiple of {scale} on both sides")
    has_alpha = c in (2, 4)
    x = np.asarray(hr, np.float64)
    if has_alpha:
        x = np.concatenate([x[:, :, :-1] * x[:, :, -1:], x[:, :, -1:]], axis=2)
    x = x.reshape(H // scale, scale, W // scale, scale, c).mean(axis=(1, 3))
    if has_alpha:
        a = x[:, :, -1:]
        colour = np.divide(x[:, :, :-1], a, out=np.zeros_like(x[:, :, :-1]), where=a > 0)
        x = np.concatenate([colour, a], axis=2)
    return metrics.quantize(x)


def cases(drawing: Drawing, scales: Sequence[int] = ()) -> Iterator[Case]:
    """The (input, truth) of one image: the pair as the files hold them, or the truth at each of
    ``scales`` (mod-cropped) with its box downscale. The files are read once."""
    hr = read_drawing(drawing.hr)
    if drawing.lr is not None:
        lr = read_drawing(drawing.lr)
        scale = pair_scale(lr.shape[:2], hr.shape[:2])
        if scale is None:  # the headers agreed; the pixels (an EXIF rotation) do not
            raise ValueError(f"{drawing.name}: input and truth are not a whole scale apart")
        yield Case(drawing.name, scale, lr, hr, "file")
        return
    for s in scales:
        truth = metrics.modcrop(hr, s)
        yield Case(drawing.name, int(s), box_downscale(truth, int(s)), truth, "box")


# ---------------------------------------------------------------- contenders


@dataclass
class Contender:
    """One method of the table: its name, what it does to an input, and how it was run."""

    name: str
    upscale: Callable[[np.ndarray, tuple[int, int]], np.ndarray]
    """(h, w, C) straight-alpha float32 in [0, 1] and an output (H, W) -> (H, W, C') in [0, 1]."""
    settings: dict = field(default_factory=dict)
    """Every setting it ran with (stated in the rows)."""
    note: str = ""
    """How it was run, e.g. how a peer without alpha was given the transparency."""


def registry_contender(name: str, settings: Mapping[str, Any] | None = None) -> Contender:
    """The registered upscaler ``name`` with ``settings``, given the RGBA input as it comes;
    ValueError for an unknown name, a denoiser or a setting it does not have."""
    from coordsr.bench import effective_settings
    from coordsr.methods import check_method

    settings = dict(settings or {})
    upscaler = check_method(name, "upscale", settings)(**settings)
    return Contender(name, lambda image, size: upscaler.upscale(image, size),
                     effective_settings(upscaler), note="coordsr method, RGBA input as is")


# ---------------------------------------------------------------- the run


def _failed(error: str, seconds: float | None) -> dict:
    return {**{k: None for k in METRICS}, "seconds": seconds, "error": error}


def run_cell(contender: Contender, case: Case) -> tuple[dict, np.ndarray | None]:
    """Run one contender on one case and score it: ({scores, seconds, error}, 8-bit output)."""
    _seed(0)
    start = time.perf_counter()
    try:
        out = contender.upscale(case.lr.astype(np.float32), case.hr.shape[:2])
    except Cancelled:
        raise
    except Exception as exc:  # a failing method is a row, not the end of the run
        return _failed(_one_line(exc), time.perf_counter() - start), None
    seconds = time.perf_counter() - start
    out = np.asarray(out)
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim != 3 or out.shape[:2] != case.hr.shape[:2] or not 1 <= out.shape[2] <= 4:
        return _failed(f"output has shape {out.shape}, expected {case.hr.shape[:2]} with 1-4 channels", seconds), None
    if not np.all(np.isfinite(out)):
        return _failed("output has NaN or infinite values", seconds), None
    sr = metrics.quantize(out.astype(np.float64))
    try:
        scores = metrics.drawing_scores(sr, case.hr)
    except ValueError as exc:  # an image too small to score
        return _failed(f"cannot score: {exc}", seconds), None
    return {**scores, "seconds": seconds, "error": None}, sr


def _warm_up(contender: Contender, case: Case) -> None:
    """One untimed call on an 8x8 corner of the input at twice its size: weights loaded, the
    first call's set-up paid, before anything is timed. Its failure is the real call's to report."""
    small = case.lr[:8, :8].astype(np.float32)
    try:
        contender.upscale(small, (2 * small.shape[0], 2 * small.shape[1]))
    except Cancelled:
        raise
    except Exception:
        pass


@dataclass
class DrawingProgress:
    """One report from :func:`run_drawing_bench`, after each cell."""

    done: int
    total: int
    row: dict


def run_drawing_bench(drawings: Sequence[Drawing], contenders: Sequence[Contender], *,
                      scales: Sequence[int] = (), dataset: str,
                      progress: Callable[[DrawingProgress], None] | None = None,
                      on_output: Callable[[dict, Case, np.ndarray], None] | None = None,
                      warm_up: bool = True) -> list[dict]:
    """Every contender on every image (pairs: at their own scale; large drawings alone: at each
    of ``scales``); one row per cell. ``on_output(row, case, sr)`` sees each scored 8-bit output
    (for figures); only one image is held in memory at a time."""
    per_image = {True: 1, False: len(scales)}
    total = sum(per_image[d.lr is not None] for d in drawings) * len(contenders)
    if total == 0:
        raise ValueError("nothing to run: no images, no scales or no methods")
    rows: list[dict] = []
    warm: set[int] = set()
    for drawing in drawings:
        for case in cases(drawing, scales):
            for i, contender in enumerate(contenders):
                if warm_up and i not in warm:
                    _warm_up(contender, case)
                    warm.add(i)
                scores, sr = run_cell(contender, case)
                row = {"dataset": dataset, "image": case.name, "method": contender.name, "note": contender.note,
                       "settings": contender.settings, "scale": case.scale, "lr_from": case.lr_from, **scores}
                rows.append(row)
                if on_output is not None and sr is not None:
                    on_output(row, case, sr)
                if progress is not None:
                    progress(DrawingProgress(len(rows), total, row))
    return rows


# ---------------------------------------------------------------- reports


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean scores and seconds per image of each (dataset, method, settings, note, scale,
    lr_from), over its rows without error (``ok`` of ``n``); sorted by scale, then by first
    appearance."""
    groups: dict[tuple, list] = {}
    for r in rows:
        key = (r["dataset"], r["method"], json.dumps(r["settings"], sort_keys=True, default=str),
               r.get("note", ""), r["scale"], r["lr_from"])
        groups.setdefault(key, []).append(r)
    out = []
    for (dataset, method, settings, note, scale, lr_from), rs in groups.items():
        ok = [r for r in rs if r.get("error") is None]
        out.append({"dataset": dataset, "method": method, "settings": json.loads(settings), "note": note,
                    "scale": scale, "lr_from": lr_from, **{k: _mean([r[k] for r in ok]) for k in METRICS},
                    "seconds": _mean([r["seconds"] for r in ok]), "ok": len(ok), "n": len(rs),
                    "errors": sorted({r["error"] for r in rs if r.get("error")})})
    return sorted(out, key=lambda s: s["scale"])  # stable: first appearance within a scale


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_seconds(sec: float | None) -> str:
    if sec is None:
        return "-"
    return f"{sec:.3f}" if sec < 1 else f"{sec:.2f}" if sec < 100 else f"{sec:.0f}"


TABLE_HEADER = ("| method | scale | input | PSNR white | PSNR black | PSNR | SSIM | GMSD | alpha PSNR "
                "| s / image | n | note |")


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table, one line per (method, scale, input), with a caption and the errors."""
    summary = summarize(rows)
    if not summary:
        return "(no rows)"
    lines = [TABLE_HEADER, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in summary:
        n = f"{s['n']}" if s["ok"] == s["n"] else f"{s['ok']}/{s['n']} ok"
        lines.append(f"| {s['method']} | x{s['scale']:g} | {s['lr_from']} | {_fmt(s['psnr_white'], 2)} "
                     f"| {_fmt(s['psnr_black'], 2)} | {_fmt(s['psnr'], 2)} | {_fmt(s['ssim'], 4)} "
                     f"| {_fmt(s['gmsd'], 4)} | {_fmt(s['alpha_psnr'], 2)} | {_fmt_seconds(s['seconds'])} "
                     f"| {n} | {s['note']} |")
    lines += ["", "PSNR (dB) on RGB over all pixels of the output composited on white / on black, and their "
              "mean; SSIM and GMSD (lower is better) are means over the two composites; alpha PSNR on alpha "
              "alone. Input 'file': the small drawing as its file holds it; 'box': the area downscale of "
              "the premultiplied truth. Seconds per image: the upscale call alone, after a warm-up."]
    errors = [(s, e) for s in summary for e in s["errors"]]
    lines += [f"error: {s['method']} x{s['scale']:g}: {e}" for s, e in errors[:20]]
    if len(errors) > 20:
        lines.append(f"... and {len(errors) - 20} more errors")
    return "\n".join(lines)


def write_json(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
               meta: Mapping[str, Any] | None = None) -> None:
    """Write ``{"protocol", "environment", **meta, "summary", "rows"}`` to ``path`` atomically."""
    from coordsr.bench import dump_json, environment

    dump_json({"protocol": PROTOCOL_DESCRIPTION, "environment": environment(), **(meta or {}),
               "summary": summarize(rows), "rows": list(rows)}, path)


__all__ = ["Case", "Contender", "Drawing", "DrawingProgress", "METRICS", "PROTOCOL_DESCRIPTION", "SPLITS",
           "VALIDATION_FRACTION", "box_downscale", "cases", "dataset_name", "find_drawings", "find_pairs",
           "format_table", "pair_scale", "read_drawing", "registry_contender", "resolve_split", "run_cell",
           "run_drawing_bench", "summarize", "write_json"]
