"""Pictures of a benchmark run: side-by-side crops per image, and PSNR against time per method.

The crops show the region of the ground truth with the most detail (largest sum of squared
luma gradients over a square window), drawn at the same place for every panel:
LR enlarged by nearest neighbour, bicubic, each method, ground truth, each labelled with its
full-image Y-PSNR. The methods' outputs are the 8-bit PNGs that :func:`coordsr.bench.run_bench`
keeps in ``outputs_dir`` (the exact pixels it scored); LR, nearest and bicubic are recomputed
here by the protocol. matplotlib is used through its object API with the Agg canvas: no global
backend is set and no window opens.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coordsr import metrics
from coordsr.bench import budget_labels, make_input, output_path, read_hr, run_label, run_name, summarize


def detail_box(hr: np.ndarray, size: int, align: int = 1) -> tuple[int, int, int]:
    """(top, left, side) of the ``size`` x ``size`` window with the most gradient energy.

    The corner is a multiple of ``align``; the side is cut to the image when it is smaller.

    >>> img = np.zeros((40, 40, 1)); img[30:34, 5:9] = 1.0
    >>> top, left, side = detail_box(img, 8)
    >>> side, top <= 30 and top + side >= 34, left <= 5 and left + side >= 9
    (8, True, True)
    """
    y = metrics.rgb_to_y(hr)
    side = max(1, min(size, y.shape[0], y.shape[1]))
    energy = np.zeros_like(y)
    energy[:, 1:] += np.diff(y, axis=1) ** 2
    energy[1:, :] += np.diff(y, axis=0) ** 2
    s = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # integral image
    sums = s[side:, side:] - s[:-side, side:] - s[side:, :-side] + s[:-side, :-side]
    tops = np.arange(0, sums.shape[0], align)
    lefts = np.arange(0, sums.shape[1], align)
    grid = sums[np.ix_(tops, lefts)]
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(tops[i]), int(lefts[j]), side


def _resize(method: str, lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from coordsr.methods.interpolation import bicubic, nearest

    cls = {"nearest": nearest, "bicubic": bicubic}[method]
    return metrics.quantize(cls(device="cpu").upscale(lr.astype(np.float32), size).astype(np.float64))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def crop_figure(panels: Sequence[tuple[str, np.ndarray]], box: tuple[int, int, int],
                path: Path, *, title: str = "", panel_inches: float = 2.0) -> Path:
    """Draw the ``box`` crop of each (label, image) side by side and save a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    top, left, side = box
    fig = Figure(figsize=(panel_inches * len(panels), panel_inches + 0.6))
    FigureCanvasAgg(fig)
    for k, (label, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        crop = np.clip(img[top:top + side, left:left + side], 0, 1)
        if crop.shape[2] == 1:
            ax.imshow(crop[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(crop[:, :, :3], interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def speed_plot(rows: Sequence[Mapping[str, Any]], path: Path, *, title: str = "") -> Path:
    """Mean Y-PSNR against mean seconds per image (log scale): one colour per method and budget,
    one marker per scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = [s for s in summarize(rows) if s["ok"] > 0]
    labels = budget_labels(summary)
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = "os^DvP*X"
    scales = sorted({s["scale"] for s in summary})
    series: dict[str, list[dict]] = {}
    for s in summary:
        budget = labels[(s["method"], json.dumps(s["settings"], sort_keys=True))]
        name = s["method"] if budget == "-" else f"{s['method']} ({budget})"
        series.setdefault(name, []).append(s)
    colours = [f"C{i % 10}" for i in range(len(series))]
    for colour, (name, pts) in zip(colours, series.items()):
        pts = sorted(pts, key=lambda s: s["scale"])
        for s in pts:
            ax.scatter(max(s["seconds"], 1e-4), s["psnr"], color=colour,
                       marker=markers[scales.index(s["scale"]) % len(markers)])
        ax.plot([max(s["seconds"], 1e-4) for s in pts], [s["psnr"] for s in pts], color=colour,
                lw=0.8, alpha=0.5, label=name)
    for k, sc in enumerate(scales):  # marker legend entries
        ax.scatter([], [], color="grey", marker=markers[k % len(markers)], label=f"x{sc:g}")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image")
    ax.set_ylabel("mean Y-PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def make_figures(rows: Sequence[Mapping[str, Any]], hr_paths: Sequence[str | os.PathLike],
                 figures_dir: str | os.PathLike, *, outputs_dir: str | os.PathLike | None = None,
                 crop: int = 96) -> list[Path]:
    """Write one crop picture per (dataset, image, scale) and one speed plot per dataset.

    ``rows`` from :func:`coordsr.bench.run_bench`; ``hr_paths`` the ground-truth files (matched to
    rows by file stem); ``outputs_dir`` the folder given to ``run_bench`` (without it, only LR,
    bicubic and ground truth are drawn). ``crop`` is the side of the crop in HR pixels.
    Returns the paths written: ``<dataset>_<image>_x<scale>.png`` and
    ``<dataset>_psnr_vs_seconds.png`` (``<dataset>.<spec>_...`` for rows of degraded inputs, whose
    LR is made again by :func:`coordsr.bench.make_input`).
    """
    from coordsr.images import read_image

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    by_stem = {Path(p).stem: Path(p) for p in hr_paths}
    labels = budget_labels(summarize(rows))
    written: list[Path] = []
    cells: dict[tuple[str, str | None, str, float], list[Mapping[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r.get("degradation") or None, r["image"], float(r["scale"])), []).append(r)
    hr_cache: dict[str, np.ndarray] = {}
    for (dataset, degradation, image, scale), cell_rows in cells.items():
        if image not in by_stem:
            continue
        if image not in hr_cache:
            try:
                hr_cache = {image: read_hr(by_stem[image])}  # one image kept at a time
            except Exception:
                continue
        hr = metrics.modcrop(hr_cache[image], scale)
        lr = make_input(hr, scale, degradation, image=image)
        shave = metrics.shave_for(scale)
        panels = []
        for name in ("nearest", "bicubic"):
            up = _resize(name, lr, hr.shape[:2])
            label = "LR (nearest)" if name == "nearest" else "bicubic"
            panels.append((f"{label}\n{metrics.psnr_y(up, hr, shave):.2f} dB", up))
        for r in cell_rows:
            if r["method"] in ("bicubic", "nearest") or r.get("error") or outputs_dir is None:
                # bicubic and nearest are drawn above; failed cells have no picture
                continue
            out = output_path(Path(outputs_dir), r)
            if not out.exists():
                continue
            budget = labels[(r["method"], json.dumps(r["settings"], sort_keys=True))]
            name = r["method"] if budget == "-" else f"{r['method']} ({budget})"
            panels.append((f"{name}\n{r['psnr']:.2f} dB", read_image(out).pixels))
        panels.append(("ground truth\n(HR)", hr))
        align = metrics.crop_multiple(scale)
        box = detail_box(hr, crop, align)
        path = figures_dir / f"{_safe(run_name(dataset, degradation))}_{_safe(image)}_x{scale:g}.png"
        written.append(crop_figure(panels, box, path, title=f"{run_label(dataset, degradation)} {image} x{scale:g}"))
    for run in dict.fromkeys((r["dataset"], r.get("degradation") or None) for r in rows):
        ds_rows = [r for r in rows if (r["dataset"], r.get("degradation") or None) == run]
        path = figures_dir / f"{_safe(run_name(*run))}_psnr_vs_seconds.png"
        written.append(speed_plot(ds_rows, path, title=f"{run_label(*run)}: Y-PSNR against time per image"))
    return written


__all__ = ["make_figures", "crop_figure", "speed_plot", "detail_box"]
