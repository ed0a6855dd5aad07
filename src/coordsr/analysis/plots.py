"""The analysis figures: each function takes the numbers (no runner imported) and writes one PNG.

matplotlib's object API (``Figure`` + the Agg canvas), not pyplot: no global state, no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DPI = 72


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI)


def _grid(n: int, cols: int = 4) -> tuple[int, int]:
    cols = min(cols, n)
    return (n + cols - 1) // cols, cols


def maps(path: Path, title: str, images: dict[str, np.ndarray], unit: str, *, vmax: float | None = None,
         cmap: str = "magma") -> None:
    """One panel per name, a shared colour scale (the 99th percentile of all, unless given)."""
    rows, cols = _grid(len(images))
    fig = _figure(3.0 * cols, 2.8 * rows + 0.4)
    if vmax is None:
        vmax = float(np.percentile(np.concatenate([np.ravel(v) for v in images.values()]), 99)) or 1.0
    axes = fig.subplots(rows, cols, squeeze=False)
    im = None
    for ax, (name, img) in zip(axes.ravel(), images.items()):
        img = _shrink(np.asarray(img, dtype=np.float64))
        im = ax.imshow(img, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=unit)
    fig.suptitle(title)
    _save(fig, path)


def _shrink(img: np.ndarray, side: int = 128) -> np.ndarray:
    """Block-average a map to at most ``side`` pixels a side (keeps the PNGs small)."""
    k = max(1, -(-max(img.shape) // side))
    if k == 1:
        return img
    h, w = img.shape[0] // k * k, img.shape[1] // k * k
    return img[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def bars(path: Path, title: str, values: dict[str, float], unit: str) -> None:
    fig = _figure(1.0 + 0.8 * len(values), 3.2)
    ax = fig.subplots()
    names = list(values)
    ax.bar(names, [values[n] for n in names], color="tab:blue")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45, labelsize=9)
    _save(fig, path)


def histograms(path: Path, title: str, samples: dict[str, np.ndarray], unit: str) -> None:
    fig = _figure(6.5, 3.8)
    ax = fig.subplots()
    top = max(float(np.percentile(v, 99.5)) for v in samples.values()) or 1.0
    bins = np.linspace(0, top, 60)
    for name, v in samples.items():
        ax.hist(np.ravel(v), bins=bins, histtype="step", density=True, label=name, linewidth=1.3)
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def spectra(path: Path, title: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], nyquist: float = 0.5) -> None:
    """Radial power against cycles per input pixel, log-log; the input's Nyquist marked."""
    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    for name, (f, p) in curves.items():
        keep = (f > 0) & (p > 0)
        style = {"color": "black", "linewidth": 2} if name.startswith("HR") else {"linewidth": 1.1}
        if name == "input":
            style = {"color": "grey", "linewidth": 2, "linestyle": ":"}
        ax.loglog(f[keep], p[keep], label=name, **style)
    ax.axvline(nyquist, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("cycles per input pixel (input Nyquist dashed)")
    ax.set_ylabel("radially averaged power")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)


def training_spectra(path: Path, records: dict[str, dict], bands, targets: dict[str, list[float]]) -> None:
    """Energy of each frequency band of the drawing against the fit's step, one panel per
    method (log-log), with the input's (and the truth's) energy in each band dashed."""
    rows, cols = _grid(len(records), cols=3)
    fig = _figure(4.2 * cols, 3.4 * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for ax, (name, rec) in zip(axes, records.items()):
        steps, energy = np.asarray(rec["steps"]), np.asarray(rec["band_energy"])
        for k, (lo, hi) in enumerate(bands):
            if lo >= rec["scale"] / 2:  # beyond the drawing's Nyquist: nothing to show
                continue
            e = np.clip(energy[:, k], 1e-12, None)
            ax.loglog(steps, e, color=colours[k % len(colours)], label=f"{lo:g}-{hi:g} c/px")
            for style, (target_name, target) in zip((":", "--"), targets.items()):
                if target[k] > 0:
                    ax.axhline(target[k], color=colours[k % len(colours)], linewidth=0.8, linestyle=style)
        ax.set_title(f"{name}, drawn at x{rec['scale']:g}")
        ax.set_xlabel("fit step")
        ax.set_ylabel("band energy")
    for ax in axes[len(records):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, title=" / ".join(f"{n} {st}" for st, n in zip(("dotted", "dashed"), targets)),
                   title_fontsize=7)
    _save(fig, path)


def eigenvalues(path: Path, title: str, spectra_: dict[str, dict[str, np.ndarray]]) -> None:
    """NTK eigenvalues over the largest, one panel per stage ('init', 'fitted')."""
    stages = sorted({s for v in spectra_.values() for s in v}, key=lambda s: s != "init")
    fig = _figure(4.2 * len(stages), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(stages), sharey=True))
    for ax, stage in zip(axes, stages):
        for name, by_stage in spectra_.items():
            if stage in by_stage:
                eig = np.clip(by_stage[stage], 1e-300, None)
                ax.semilogy(np.arange(1, len(eig) + 1), eig / eig[0], label=name)
        ax.set_ylim(1e-8, 2)
        ax.set_xlabel("eigenvalue index")
        ax.set_title(f"{title}: {stage}")
    axes[0].set_ylabel("eigenvalue / largest")
    axes[-1].legend(fontsize=8)
    _save(fig, path)
