"""`coordsr analyze`: every diagnostic on one image (each method) or one saved field, written as
figures and one JSON of the numbers into a new folder, all or nothing.

Bounded by construction: the fits are short (``steps``, on random batches of pixels), the NTK
takes ``ntk_points`` pixels, the region map ``region_side``^2 points and the dense drawings
are at most x8 of the input; on a 64 x 64 input one family takes well under a minute on 2 CPU
cores. Inputs larger than ``crop`` are centre-cropped first (and the HR with them).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from coordsr.analysis import jacobian as jac
from coordsr.analysis import linearity, ntk, plots, spectra
from coordsr.atomic import publish, temp_name
from coordsr.coords import pixel_centers
from coordsr.errors import CoordsrError
from coordsr.field import Field, ImageMeta

BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0))
"""Frequency bands (cycles per input pixel) of the spectra's summary: below the input's Nyquist,
then each octave above it that an x8 drawing reaches."""


@dataclass
class AnalysisConfig:
    """What `coordsr analyze` measures, and how much of it."""

    scale: int = 4
    """Scale of the linearity and Jacobian maps (replaced by the HR's scale when one is given)."""
    spectra_scales: tuple[int, ...] = (4, 8)
    """Scales at which each method is drawn for the spectra."""
    ntk_points: int = 128
    """Input pixels (random, fixed seed) on which the empirical NTK is computed."""
    line_points: int = 4096
    """Samples along the line on which a ReLU network's activation-pattern changes are counted."""
    region_side: int = 256
    """Side of the grid of the linear-region map."""
    crop: int = 64
    """Centre-crop inputs to at most this side (0: no crop): the analysis is meant for small inputs."""
    seed: int = 0
    """Seed of the subsamples."""


@dataclass
class Subject:
    """One thing analysed: a method's drawing at any scale, and its field when it has one."""

    name: str
    draw: Callable[[tuple[int, int]], np.ndarray]
    field: Field | None = None
    init: Field | None = None
    """The same field at its initialisation (for the NTK), when known."""
    notes: dict = dataclass_field(default_factory=dict)


def centre_crop(image: np.ndarray, side: int, hr: np.ndarray | None = None):
    """Centre-crop ``image`` to at most side x side, and ``hr`` (an integer multiple of it) to match."""
    h, w = image.shape[:2]
    if side <= 0 or (h <= side and w <= side):
        return image, hr
    r0, c0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    r1, c1 = r0 + min(h, side), c0 + min(w, side)
    if hr is not None:
        s = hr.shape[0] // h
        hr = hr[r0 * s:r1 * s, c0 * s:c1 * s]
    return image[r0:r1, c0:c1], hr


def hr_scale(image: np.ndarray, hr: np.ndarray, name: str = "HR") -> int:
    """The integer scale of ``hr`` over ``image``; CoordsrError naming ``name`` otherwise."""
    (h, w), (H, W) = image.shape[:2], hr.shape[:2]
    if H % h or W % w or H // h != W // w or H // h < 2:
        raise CoordsrError(f"{name}: {W}x{H} is not an integer multiple (2 or more) of the input's {w}x{h}")
    if hr.shape[2:] != image.shape[2:]:
        raise CoordsrError(f"{name}: has {hr.shape[2]} channels, the input {image.shape[2]}")
    return H // h


class TrainingSpectra:
    """A fit's progress callback that records the energy of each of BANDS in the drawing (the
    fit's own preview of its output, at most 256 pixels a side) at steps spaced by ``growth``
    (1, 2, 3, 5, ... and the last): which frequencies a network learns first (spectral bias,
    Rahaman et al. 2019). The fit's reports come every 25 steps after the first (coordsr.fit)."""

    def __init__(self, input_width: int, growth: float = 1.5):
        self.input_width, self.growth = input_width, growth
        self.next, self.steps, self.bands, self.scale = 1.0, [], [], None

    def __call__(self, p) -> None:
        if p.stage != "fit" or p.preview is None or (p.step < self.next and p.step != p.total):
            return
        drawn = p.preview()
        self.scale = drawn.shape[1] / self.input_width  # cycles per input pixel, whatever the preview's size
        spec = spectra.radial_spectrum(drawn, self.scale)
        self.steps.append(p.step)
        self.bands.append([spectra.band_energy(spec, *b) for b in BANDS])
        while self.next <= p.step:
            self.next = max(self.next + 1, self.next * self.growth)

    def numbers(self) -> dict:
        return {"steps": self.steps, "band_energy": self.bands, "scale": self.scale}


def image_subjects(image: np.ndarray, upscalers: dict, *, scale: int = 4,
                   log: Callable[[str], None] | None = None) -> list[Subject]:
    """Fit or prepare each upscaler on ``image``: one Subject each (fields fitted once, for ``scale``)."""
    from coordsr.methods.fields import MODES
    from coordsr.render import render_field

    h, w, c = image.shape
    out = []
    for name, up in upscalers.items():
        start = time.perf_counter()
        if getattr(up, "fits_field", False):
            size = (h * scale, w * scale)
            record = TrainingSpectra(w)
            fitted, result = up.fit_field(image, size, progress=record)
            meta = ImageMeta(height=h, width=w, channels=c, mode=MODES[c])
            torch.manual_seed(up.seed)  # fit_field's initialisation, drawn again
            init = Field(up.field_config(meta, size), meta).eval()
            notes = {"fit_seconds": round(time.perf_counter() - start, 2), "fit_steps": result.steps,
                     "fit_psnr_input": round(result.psnr, 3), "activation": fitted.cfg.activation,
                     "training_spectra": record.numbers()}
            out.append(Subject(name, lambda s, f=fitted: render_field(f, s), fitted, init, notes))
        else:
            out.append(Subject(name, lambda s, u=up: u.upscale(image, s), notes={"family": up.family}))
        if log:
            log(f"{name}: ready ({time.perf_counter() - start:.1f} s)")
    return out


def field_subject(fitted: Field) -> Subject:
    """A saved field as a Subject; its initialisation rebuilt from its config and seed."""
    from coordsr.render import render_field

    seed = int((getattr(fitted, "file_header", {}).get("settings") or {}).get("seed", 0))
    torch.manual_seed(seed)
    init = Field(fitted.cfg, fitted.meta).eval()
    name = getattr(fitted, "file_header", {}).get("method") or "field"
    return Subject(name, lambda s: render_field(fitted, s), fitted.eval(), init,
                   {"activation": fitted.cfg.activation})


def _stats(v: np.ndarray) -> dict:
    v = np.ravel(v)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max())}


def _round(x):
    if isinstance(x, float):  # six significant digits: band energies run down to 1e-9
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    return x


def measure(image: np.ndarray, subjects: list[Subject], folder: Path, *, hr: np.ndarray | None = None,
            cfg: AnalysisConfig = AnalysisConfig(), log: Callable[[str], None] | None = None) -> dict:
    """Run every analysis, write the figures into ``folder`` (which must exist), return the numbers."""
    from coordsr.methods.interpolation import bicubic
    from coordsr.metrics import psnr_y

    h, w = image.shape[:2]
    s_lin = hr_scale(image, hr) if hr is not None else cfg.scale
    reference = Subject("bicubic", lambda s: bicubic(device="cpu").upscale(image, s))
    everyone = [x for x in subjects if x.name != "bicubic"] + [reference]
    numbers: dict = {"input": {"height": h, "width": w, "channels": int(image.shape[2])},
                     "config": asdict(cfg), "linearity_scale": s_lin, "methods": {}}
    drawn: dict[tuple[str, int], np.ndarray] = {}

    def draw(x: Subject, s: int) -> np.ndarray:
        if (x.name, s) not in drawn:
            drawn[x.name, s] = x.draw((h * s, w * s))
        return drawn[x.name, s]

    # (a) departure from linearity, and (b) the Jacobian norm, at the linearity scale
    lin_maps, jac_maps, jac_samples, lin_rms = {}, {}, {}, {}
    coords = None
    for x in everyone:
        start = time.perf_counter()
        img = draw(x, s_lin)
        dep = linearity.departure(img, s_lin)
        entry = numbers["methods"].setdefault(x.name, dict(x.notes))
        entry["linearity"] = {k: dep[k] for k in ("rms", "mean_abs", "p95", "max", "relative")}
        lin_maps[x.name], lin_rms[x.name] = dep["map"], dep["rms"]
        if hr is not None:
            entry["psnr_y_vs_hr"] = psnr_y(img, hr, shave=s_lin)
        if x.field is not None:
            coords = pixel_centers(h * s_lin, w * s_lin, convention=x.field.cfg.convention)
            norm = jac.jacobian_norm(x.field, coords, (h, w))
            entry["jacobian"] = {"how": "autograd", **_stats(norm)}
        else:
            norm = jac.finite_difference_norm(img, s_lin)
            entry["jacobian"] = {"how": "finite differences of the x%d drawing" % s_lin, **_stats(norm)}
        jac_maps[x.name], jac_samples[x.name] = norm, norm
        entry["seconds_linearity_jacobian"] = round(time.perf_counter() - start, 2)
    if hr is not None:
        dep = linearity.departure(hr, s_lin)
        numbers["hr"] = {"scale": s_lin, "linearity": {k: dep[k] for k in ("rms", "mean_abs", "p95", "max", "relative")}}
        lin_maps["HR"], lin_rms["HR"] = dep["map"], dep["rms"]
        norm = jac.finite_difference_norm(hr, s_lin)
        numbers["hr"]["jacobian"] = {"how": "finite differences", **_stats(norm)}
        jac_maps["HR"], jac_samples["HR"] = norm, norm
    plots.bars(folder / "linearity.png", f"RMS departure from linearity between input pixel centres (x{s_lin})",
               lin_rms, "8-bit levels (luma)")
    plots.maps(folder / "linearity_maps.png", "departure from linearity (mean of the 4 segments around each square)",
               lin_maps, "8-bit levels")
    plots.maps(folder / "jacobian_maps.png", "|d luma / d(x, y)|", jac_maps, "8-bit levels per input pixel",
               cmap="viridis")
    plots.histograms(folder / "jacobian_hist.png", "|d luma / d(x, y)|", jac_samples, "8-bit levels per input pixel")
    if log:
        log("linearity and Jacobian done")

    # (b) linear regions of the ReLU networks
    edges = {}
    for x in subjects:
        if x.field is None or not jac.relu_modules(x.field):
            continue
        start = time.perf_counter()
        conv = x.field.cfg.convention
        centres = pixel_centers(h, w, convention=conv)
        row = centres[h // 2]
        line = jac.regions_along_line(x.field, row[0].tolist(), row[-1].tolist(), cfg.line_points)
        line2 = jac.regions_along_line(x.field, row[0].tolist(), row[-1].tolist(), 2 * cfg.line_points)
        grid = pixel_centers(cfg.region_side, cfg.region_side, convention=conv)
        edge, distinct = jac.region_map(x.field, grid)
        edges[x.name] = edge.astype(float)
        numbers["methods"][x.name]["regions"] = {
            "line": f"row {h // 2} from the first to the last input pixel centre ({w - 1} input pixels)",
            "changes": line["changes"], "flips": line["flips"], "units": line["units"],
            "changes_at_twice_the_samples": line2["changes"], "points": line["points"],
            "changes_per_input_pixel": line["changes"] / (w - 1),
            "distinct_patterns_on_grid": distinct, "grid": cfg.region_side,
            "boundary_fraction": float(edge.mean()), "seconds": round(time.perf_counter() - start, 2)}
    if edges:
        plots.maps(folder / "regions.png", "ReLU activation-pattern boundaries", edges, "boundary", vmax=1.0,
                   cmap="gray_r")
    if log:
        log("regions done")

    # (c) spectra at each scale, against the input, bicubic and the truth
    base = spectra.radial_spectrum(image, 1)
    numbers["spectra"] = {"bands": [list(b) for b in BANDS], "input": [spectra.band_energy(base, *b) for b in BANDS]}
    hr_spec = spectra.radial_spectrum(hr, s_lin) if hr is not None else None
    if hr_spec is not None:
        numbers["spectra"][f"HR x{s_lin}"] = [spectra.band_energy(hr_spec, *b) for b in BANDS]
    for s in cfg.spectra_scales:
        curves = {"input": (base["freq"], base["power"])}
        if hr_spec is not None:
            curves[f"HR x{s_lin}"] = (hr_spec["freq"], hr_spec["power"])
        for x in everyone:
            spec = spectra.radial_spectrum(draw(x, s), s)
            curves[x.name] = (spec["freq"], spec["power"])
            numbers["methods"][x.name][f"band_energy_x{s}"] = [spectra.band_energy(spec, *b) for b in BANDS]
        plots.spectra(folder / f"spectra_x{s}.png", f"radially averaged power, drawn at x{s}", curves)
    if log:
        log("spectra done")

    # (c') the same bands through each fit (recorded by TrainingSpectra while fitting)
    through = {x.name: x.notes["training_spectra"] for x in subjects
               if x.notes.get("training_spectra", {}).get("steps")}
    if through:
        targets = {"input": numbers["spectra"]["input"]}
        if hr_spec is not None:
            targets[f"HR x{s_lin}"] = numbers["spectra"][f"HR x{s_lin}"]
        plots.training_spectra(folder / "spectra_training.png", through, BANDS, targets)

    # (d) the empirical NTK at initialisation and after fitting
    gen = torch.Generator().manual_seed(cfg.seed)
    eigs = {}
    for x in subjects:
        if x.field is None:
            continue
        start = time.perf_counter()
        pts = pixel_centers(h, w, convention=x.field.cfg.convention).reshape(-1, 2)
        pts = pts[torch.randperm(len(pts), generator=gen)[:cfg.ntk_points]]
        eigs[x.name] = {}
        for stage, f in (("init", x.init), ("fitted", x.field)):
            if f is None:
                continue
            K = ntk.empirical_ntk(lambda c, f=f: jac.luma_of(f(c)), f, pts)
            eigs[x.name][stage] = ntk.spectrum(K)
            numbers["methods"][x.name].setdefault("ntk", {"points": len(pts)})[stage] = ntk.summarize(eigs[x.name][stage])
        numbers["methods"][x.name]["ntk"]["seconds"] = round(time.perf_counter() - start, 2)
    if eigs:
        plots.eigenvalues(folder / "ntk.png", "empirical NTK", eigs)
    if log:
        log("NTK done")
    return _round(numbers)


def analyze(image: np.ndarray, subjects: list[Subject], out: str | Path, *, hr: np.ndarray | None = None,
            cfg: AnalysisConfig = AnalysisConfig(), log: Callable[[str], None] | None = None) -> dict:
    """``measure`` into a temporary folder beside ``out``, then rename it to ``out``: a failure
    leaves nothing behind. ``out`` must not exist (or be an empty folder)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CoordsrError(f"{out}: already exists; choose a new folder")
    if not out.parent.is_dir():
        raise CoordsrError(f"{out}: folder {out.parent} does not exist")
    tmp = temp_name(out)
    tmp.mkdir()
    try:
        numbers = measure(image, subjects, tmp, hr=hr, cfg=cfg, log=log)
        (tmp / "analysis.json").write_text(json.dumps(numbers, indent=1) + "\n")
        if out.is_dir():
            out.rmdir()
        publish(tmp, out, folder=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return numbers
