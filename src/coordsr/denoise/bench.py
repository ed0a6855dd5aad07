"""The denoising benchmark: the protocol (protocol.py) over a folder of clean images.

One row per (method, settings, image, sigma): PSNR (RGB, all pixels) and SSIM (Y) of the output
quantized to 8 bits, seconds, the noise level the method was given or estimated. The `field`
denoiser also gets its **oracle** row: the best of its iterates (drawn every ``oracle_every``
steps) chosen with the clean image, so the cost of the automatic stop is visible. The oracle is
measured only here, never used by the method. Rows are appended to a JSON-lines cache when one
is given, so a rerun resumes.

Each row carries the ``version`` of its method (``coordsr.bench.code_version``: the source of the
method's modules and the shipped weights they name), so rows of older code or weights are never
taken for current ones. As in the upscaling benchmark, a *canary* decides whether they still
stand: the quickest of their cells is run again with the current code, and when it agrees
(``coordsr.bench.canary_agrees``), the other rows are adopted under the current version
(marked ``validated``); otherwise every cell is run again. Verdicts are kept beside the cache
(``denoise-canaries.jsonl``), so a canary never runs twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from coordsr.bench import canary_agrees, code_version, read_hr, read_rows
from coordsr.denoise.protocol import estimate_sigma, make_noisy, noise_seed, psnr_rgb, score
from coordsr.methods import get_method

PROTOCOL = ("denoise-1: clean 8-bit RGB in [0, 1]; AWGN sigma/255 in float64, fixed seed per "
            "(image, sigma), not clipped or quantized ('float'), or clipped and quantized ('8bit'); "
            "output quantized to 8 bits; PSNR on RGB over all pixels, no shave; SSIM on BT.601 Y")

PUBLISHED = {  # Kodak24 RGB PSNR at sigma 15 / 25 / 50, docs/DENOISE.md gives the sources
    "CBM3D": (34.28, 31.68, 28.46),
    "DnCNN (colour, blind)": (34.60, 32.14, 28.95),
    "FFDNet": (34.63, 32.13, 28.98),
    "DRUNet": (35.31, 32.89, 29.86),
    "ZS-N2N": (None, 29.07, 24.81),
    "Self2Self": (None, 28.39, 26.22),
}
PUBLISHED_SIGMAS = (15, 25, 50)


@dataclass
class DenoiseProgress:
    """Where the benchmark is: cell ``done`` of ``total``."""

    done: int
    total: int
    method: str
    image: str
    sigma: float


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def row_key(row: Mapping[str, Any]) -> str:
    # The dataset name carries the crop ("Kodak24-crop128"): a crop's row never stands for the
    # whole image's (both share the folder's cache file).
    return json.dumps([row["dataset"], row["method"], row["settings"], row["image"], row["sigma"], row["variant"],
                       row["blind"], row["seed"], row.get("version")], sort_keys=True)


def _group_key(row: Mapping[str, Any]) -> str:
    """What must match for an older row to stand for a current cell, the version aside."""
    return json.dumps([row["dataset"], row["method"], row["settings"], row["variant"], row["blind"],
                       row["seed"]], sort_keys=True)


def read_cache(path: Path | None) -> dict[str, dict]:
    return {row_key(r): r for r in read_rows(path)} if path is not None else {}


def run_denoise_bench(paths: Sequence[str | os.PathLike], sigmas: Sequence[float],
                      methods: Mapping[str, Mapping[str, Any]], *, dataset: str = "",
                      variant: str = "float", blind: bool = False, seed: int = 0,
                      oracle_every: int = 10, crop: int = 0, cache: Path | None = None,
                      progress: Callable[[DenoiseProgress], None] | None = None) -> list[dict]:
    """Rows of every (image, sigma, method); ``blind`` hides sigma from the methods (estimated).

    ``crop`` > 0 scores the central ``crop`` x ``crop`` pixels of each image only (a cheaper
    subset for slow methods; the rows say so, and the dataset name gets a ``-cropN`` suffix)."""
    instances = {name: get_method(name)(**dict(settings)) for name, settings in methods.items()}
    for name, m in instances.items():
        if getattr(m, "task", "upscale") != "denoise":
            raise ValueError(f"method {name!r} is not a denoiser (its task is {m.task!r})")
    paths = [Path(p) for p in paths]
    cell = _Cells(dataset + (f"-crop{crop}" if crop else ""), variant, blind, seed, crop, oracle_every)
    heads = {name: cell.head(name, m) for name, m in instances.items()}
    done = read_cache(cache)
    if cache is not None:
        for name, m in instances.items():
            for row in _validate_older_rows(cache, cell, m, heads[name], paths, sigmas, done):
                done[row_key(row)] = row
    rows, total, k = [], len(paths) * len(sigmas) * len(instances), 0
    for path in paths:
        clean = center_crop(read_hr(path), crop)
        for sigma in sigmas:
            noisy = cell.noisy(clean, path, sigma)
            noisy_psnr = psnr_rgb(noisy, clean)
            for name, m in instances.items():
                k += 1
                if progress is not None:
                    progress(DenoiseProgress(k, total, name, path.name, sigma))
                row = cell.row(heads[name], path, sigma, noisy_psnr)
                if row_key(row) in done:
                    rows.append(done[row_key(row)])
                    continue
                row.update(_run_cell(m, noisy, clean, sigma, blind, oracle_every))
                rows.append(row)
                if cache is not None:
                    _append(cache, row)
    return rows


@dataclass(frozen=True)
class _Cells:
    """How one benchmark run builds its cells: the noisy input and the row's identifying fields."""

    dataset: str
    variant: str
    blind: bool
    seed: int
    crop: int
    oracle_every: int

    @staticmethod
    def head(name: str, m) -> dict:
        """The fields of a method's rows that do not depend on the cell."""
        settings = {f.name: _jsonable(getattr(m, f.name)) for f in dataclasses.fields(m)}
        return {"method": name, "settings": settings, "version": code_version(type(m))}

    def noisy(self, clean: np.ndarray, path: Path, sigma: float) -> np.ndarray:
        return make_noisy(clean, sigma, noise_seed(path.name, sigma, self.seed), self.variant)

    def row(self, head: Mapping[str, Any], path: Path, sigma: float, noisy_psnr: float) -> dict:
        return {"dataset": self.dataset, "method": head["method"], "settings": head["settings"],
                "image": path.name, "sigma": float(sigma), "variant": self.variant, "blind": self.blind,
                "seed": self.seed, "version": head["version"], "noisy_psnr": noisy_psnr}


def _append(path: Path, record: Mapping[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def canary_file(cache: Path) -> Path:
    """The JSON-lines file of the denoising canaries' verdicts, beside the cache."""
    return cache.with_name("denoise-canaries.jsonl")


def _validate_older_rows(cache: Path, cell: _Cells, m, head: Mapping[str, Any], paths: Sequence[Path],
                         sigmas: Sequence[float], done: Mapping[str, dict]) -> list[dict]:
    """Cached rows of this method and settings made by other versions of its code (or before rows
    had versions) that a canary finds unchanged, copied into the cache under the current version;
    only where they fill cells this run needs and has no current row for."""
    by_name = {p.name: p for p in paths}

    def current_key(image: str, sigma: float) -> str:
        return row_key({**head, "dataset": cell.dataset, "image": image, "sigma": float(sigma),
                        "variant": cell.variant, "blind": cell.blind, "seed": cell.seed})

    missing = {(image, float(s)) for image in by_name for s in sigmas if current_key(image, s) not in done}
    group = _group_key({**head, "dataset": cell.dataset, "variant": cell.variant, "blind": cell.blind,
                        "seed": cell.seed})
    groups: dict[str | None, list[dict]] = {}
    for r in done.values():
        if (_group_key(r) == group and r.get("version") != head["version"]
                and r.get("psnr") is not None and (r["image"], float(r["sigma"])) in missing):
            groups.setdefault(r.get("version"), []).append(r)
    if not groups:
        return []
    verdicts = {c["old_version"]: c for c in read_rows(canary_file(cache))
                if c.get("group") == group and c.get("version") == head["version"]}
    adopted: list[dict] = []
    for old_version, old_rows in groups.items():
        verdict = verdicts.get(old_version)
        if verdict is None:
            probe = min(old_rows, key=lambda r: (r.get("seconds") or 0.0, r["image"], r["sigma"]))
            path, sigma = by_name[probe["image"]], float(probe["sigma"])
            clean = center_crop(read_hr(path), cell.crop)
            noisy = cell.noisy(clean, path, sigma)
            fresh = {**cell.row(head, path, sigma, psnr_rgb(noisy, clean)),
                     **_run_cell(m, noisy, clean, sigma, cell.blind, cell.oracle_every)}
            verdict = {"group": group, "version": head["version"], "old_version": old_version,
                       "image": probe["image"], "sigma": sigma, "old_psnr": probe["psnr"],
                       "psnr": fresh["psnr"], "ok": canary_agrees(fresh, probe),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S")}
            _append(canary_file(cache), verdict)
            _append(cache, fresh)  # the canary's own row is a current row
            adopted.append(fresh)
            missing.discard((probe["image"], sigma))
        if not verdict["ok"]:
            continue
        for r in old_rows:
            if (r["image"], float(r["sigma"])) in missing:
                row = {**r, "version": head["version"],
                       "validated": {"version": old_version, "canary": f"{verdict['image']} sigma {verdict['sigma']:g}"}}
                _append(cache, row)
                adopted.append(row)
                missing.discard((r["image"], float(r["sigma"])))
    return adopted


def center_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` pixels (the whole image when ``side`` is 0 or larger).

    >>> center_crop(np.zeros((10, 8, 3)), 4).shape
    (4, 4, 3)
    """
    if side <= 0:
        return image
    h, w = image.shape[:2]
    r, c = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[r:r + side, c:c + side]


def _run_cell(m, noisy: np.ndarray, clean: np.ndarray, sigma: float, blind: bool,
              oracle_every: int) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    given = estimate_sigma(noisy) if blind else float(sigma)
    if hasattr(m, "trace") and oracle_every > 0:
        # One fit gives both: the iterate at the discrepancy stop (what `denoise` returns) and
        # the best iterate by the clean image (the oracle, measured here only).
        scores: dict[int, dict] = {}
        stop_time: dict[str, float] = {}

        def on_iterate(step: int, image: np.ndarray) -> None:
            scores[step] = score(image, clean)
            scores[step]["elapsed"] = time.perf_counter() - start

        info = m.trace(noisy, given, oracle_every, on_iterate)
        auto = scores[info["stop_step"]]
        best_step = max(scores, key=lambda s: scores[s]["psnr"])
        stop_time["seconds"] = auto["elapsed"]
        return {"psnr": auto["psnr"], "ssim": auto["ssim"], "seconds": stop_time["seconds"],
                "sigma_used": given, "stop_step": info["stop_step"], "psnr_oracle": scores[best_step]["psnr"],
                "ssim_oracle": scores[best_step]["ssim"], "oracle_step": best_step,
                "seconds_total": time.perf_counter() - start, "cpu_seconds_total": time.process_time() - cpu_start}
    out = m.denoise(noisy, given)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU seconds of the process (all threads): steadier than wall-clock on a shared machine
    return {**score(out, clean), "seconds": seconds, "cpu_seconds": cpu, "sigma_used": given}


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Means per (dataset, method, settings, variant, blind, sigma), in order of first appearance."""
    groups: dict[tuple, list] = {}
    for r in rows:
        key = (r["dataset"], r["method"], json.dumps(r["settings"], sort_keys=True), r["variant"],
               r["blind"], r["sigma"])
        groups.setdefault(key, []).append(r)
    out = []
    for (dataset, method, settings, variant, blind, sigma), rs in groups.items():
        def mean(key):
            values = [r[key] for r in rs if r.get(key) is not None]
            return float(np.mean(values)) if values else None

        out.append({"dataset": dataset, "method": method, "settings": json.loads(settings),
                    "variant": variant, "blind": blind, "sigma": sigma, "n": len(rs),
                    "psnr": mean("psnr"), "ssim": mean("ssim"), "seconds": mean("seconds"),
                    "cpu_seconds": mean("cpu_seconds"),
                    "noisy_psnr": mean("noisy_psnr"), "psnr_oracle": mean("psnr_oracle"),
                    "ssim_oracle": mean("ssim_oracle"), "sigma_used": mean("sigma_used")})
    return out


def _label(s: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in s["settings"].items()
             if k in ("network", "steps", "h", "weight", "wavelet") or (k in ("ensemble", "tau") and v not in (0, 1))
             or (k == "settings" and v)}
    extra = ", ".join(f"{k}={v}" for k, v in shown.items())
    mode = "blind" if s["blind"] else "sigma given"
    return f"{s['method']}" + (f" ({extra})" if extra else "") + f", {mode}"


def format_table(rows: Sequence[Mapping[str, Any]], *, published: bool = True) -> str:
    """Markdown: one line per method (and one per oracle), one column per sigma.

    Cells: mean RGB PSNR (dB) / SSIM / seconds per image; the published rows beside ours when the
    sigmas are the published ones.
    """
    summary = summarize(rows)
    if not summary:
        return "(no rows)"
    sigmas = sorted({s["sigma"] for s in summary})
    head = "| dataset | method | n | " + " | ".join(f"sigma {s:g}" for s in sigmas) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(sigmas)]
    table: dict[tuple, dict] = {}
    noisy: dict[tuple, dict] = {}
    for s in summary:
        key = (s["dataset"], _label(s), s["variant"])
        table.setdefault(key, {})[s["sigma"]] = s
        noisy.setdefault((s["dataset"], s["variant"]), {})[s["sigma"]] = s
    for (dataset, variant), cells in noisy.items():
        text = [f"{cells[sg]['noisy_psnr']:.2f}" if sg in cells else "" for sg in sigmas]
        lines.append(f"| {dataset} | noisy input ({variant}) | | " + " | ".join(text) + " |")
    for (dataset, label, variant), cells in table.items():
        text = [_cell(cells.get(sg)) for sg in sigmas]
        n = max(c["n"] for c in cells.values())
        lines.append(f"| {dataset} | {label} | {n} | " + " | ".join(text) + " |")
        if any(c.get("psnr_oracle") is not None for c in cells.values()):
            text = [_cell(cells.get(sg), oracle=True) for sg in sigmas]
            lines.append(f"| {dataset} | {label}: **oracle** stop (sees the clean image) | {n} | "
                         + " | ".join(text) + " |")
    whole_kodak = all(s["dataset"] == "Kodak24" for s in summary)  # not crops, not other sets
    if published and whole_kodak and all(s in PUBLISHED_SIGMAS for s in sigmas):
        for name, values in PUBLISHED.items():
            text = [f"{values[PUBLISHED_SIGMAS.index(s)]:.2f}" if values[PUBLISHED_SIGMAS.index(s)] else "-"
                    for s in sigmas]
            lines.append(f"| Kodak24 (published) | {name} | 24 | " + " | ".join(text) + " |")
    lines += ["", "Cells: mean RGB PSNR (dB) / SSIM (Y) / wall seconds per image (CPU seconds of the "
              "process, all threads, when measured); noise "
              + ", ".join(sorted({s['variant'] for s in summary})) + "."]
    return "\n".join(lines)


def _cell(s: Mapping[str, Any] | None, oracle: bool = False) -> str:
    if s is None or s["psnr"] is None:
        return ""
    if oracle:
        return f"{s['psnr_oracle']:.2f} / {s['ssim_oracle']:.4f}" if s["psnr_oracle"] is not None else ""
    text = f"{s['psnr']:.2f} / {s['ssim']:.4f} / {_secs(s['seconds'])}"
    return text + (f" ({_secs(s['cpu_seconds'])} CPU)" if s.get("cpu_seconds") is not None else "")


def _secs(sec: float) -> str:
    return f"{sec:.2f} s" if sec < 100 else f"{sec:.0f} s"


def write_json(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
               meta: Mapping[str, Any] | None = None) -> None:
    """Write ``{"protocol", "environment", "summary", "rows", **meta}`` atomically."""
    from coordsr.bench import dump_json, environment

    dump_json({"protocol": PROTOCOL, "environment": environment(), **(meta or {}),
               "summary": summarize(rows), "rows": list(rows)}, path)


__all__ = ["PROTOCOL", "PUBLISHED", "DenoiseProgress", "run_denoise_bench", "summarize", "format_table",
           "write_json", "read_cache", "row_key"]
