"""Benchmark the registered methods on Set5 and Set14 (x2, x3, x4) and write BENCHMARKS.md.

Resumable: every finished cell is appended to the cache (``benchmarks/cache/<dataset>.jsonl`` by
default), so an interrupted run picks up where it stopped, and BENCHMARKS.md is rewritten
after each method, from every cached row that the current code produced (rows of older code
versions are left out; several budgets of one method each get a line). Runnable in the
background; it prints one plain line per cell::

    nohup nice -n 10 .venv/bin/python benchmarks/make_benchmarks_md.py --steps 500 \\
        > benchmarks/cache/log.txt 2>&1 &

Examples::

    python benchmarks/make_benchmarks_md.py --family interpolation   # the fast baselines
    python benchmarks/make_benchmarks_md.py --methods siren,hashgrid --steps 500
    python benchmarks/make_benchmarks_md.py --report-only            # rewrite from the cache
    python benchmarks/make_benchmarks_md.py --methods bicubic,pretrained --ood-methods pretrained --refresh
    python benchmarks/make_benchmarks_md.py --sections-only          # only the sections from results/*.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from _machine import machine_line  # benchmarks/ is on sys.path when run as a script
from coordsr import metrics
from coordsr.bench import (PROTOCOL, PROTOCOL_DESCRIPTION, row_key, budget_labels, cache_file, code_version,
                           effective_settings, environment, find_images, format_cell, read_rows, run_bench,
                           settings_for, summarize, write_json)
from coordsr.methods import METHODS, get_method
from denoise_report import denoise_sections  # benchmarks/ is on sys.path when run as a script
from drawing_report import drawing_sections
from degraded_report import degraded_sections

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

# DESIGN.md section 5: published Y-PSNR, x2 / x3 / x4 (None: not published).
PUBLISHED = {
    "bicubic": {"Set5": (33.66, 30.39, 28.42), "Set14": (30.24, 27.55, 26.00)},
    "SRCNN (external data)": {"Set5": (36.66, 32.75, 30.48), "Set14": (32.42, 29.28, 27.49)},
    # Trained on the 291 images that `pretrained` trains on (T91 + BSD200), Y channel only: VDSR
    # (Kim et al. 2016, Table 3) and DRRN (Tai et al. 2017, Table 2), the best of that data's era.
    "VDSR (T91 + BSD200)": {"Set5": (37.53, 33.66, 31.35), "Set14": (33.03, 29.77, 28.01)},
    "DRRN (T91 + BSD200)": {"Set5": (37.74, 34.03, 31.68), "Set14": (33.23, 29.96, 28.21)},
    "ZSSR (no external data)": {"Set5": (37.37, 33.42, 31.13), "Set14": (None, None, 28.01)},
    "EDSR-baseline (DIV2K, fixed scale)": {"Set5": (37.98, 34.37, 32.09), "Set14": (33.57, 30.28, 28.58)},
    "RDN + LIIF (DIV2K)": {"Set5": (38.17, 34.68, 32.50), "Set14": (33.97, 30.53, 28.80)},
}
PUBLISHED_SCALES = (2.0, 3.0, 4.0)
# DESIGN.md section 5: LIIF at out-of-distribution scales (RDN + LIIF), x6 / x8.
PUBLISHED_OOD = {"RDN + LIIF (DIV2K)": {"Set5": {6.0: 29.15, 8.0: 27.14}, "Set14": {6.0: 26.64, 8.0: 25.15}}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="all", help="comma-separated registry names, or 'all'")
    p.add_argument("--family", default=None,
                   help="only methods of this family: interpolation, per-image, zero-shot, pretrained")
    p.add_argument("--steps", type=int, default=None, help="step budget for methods that have one "
                   "(default: each method's own default, stated in the table)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting for every method that has it, e.g. --set batch=4096 (repeatable)")
    p.add_argument("--fits", default="point,consistent",
                   help="observation models to run each fitting method with (its 'fit' setting)")
    p.add_argument("--ood-scales", default="6,8,12",
                   help="scales beyond the x1-x4 training range, tabled separately; run for the methods "
                        "given with --ood-methods")
    p.add_argument("--ood-methods", default="",
                   help="comma-separated methods to run at --ood-scales (bicubic is always added)")
    p.add_argument("--datasets", default="Set5,Set14")
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--data", type=Path, default=DATA, help="folder holding the dataset folders")
    p.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "cache",
                   help="finished rows (committed, so a later session resumes the table)")
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--json", type=Path, default=None, help="also write the reported rows as JSON")
    p.add_argument("--report-only", action="store_true", help="run nothing; rewrite from the cache")
    p.add_argument("--refresh", action="store_true",
                   help="after running --methods, replace only their measured lines (tables and gains over "
                        "bicubic) in the existing file and note it in the header; the other rows stay as "
                        "written (a full run reruns every method whose code changed: hours)")
    p.add_argument("--sections-only", action="store_true",
                   help="run nothing; rewrite only the sections made from benchmarks/results (speed, settings, "
                        "denoising), keeping the tables above them as they are (no canary needed)")
    p.add_argument("--anchor", action="store_true",
                   help="also run the speed anchor (benchmarks/siren_speed.py: our SIREN against "
                        "siren-pytorch, side by side) into --results")
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results",
                   help="folder of the speed scripts' JSON (siren_speed.json, fields_speed.json), "
                        "reported in their own sections")
    return p.parse_args(argv)


def selected_methods(spec: str, family: str | None) -> list[str]:
    names = [n for n, c in METHODS.items() if c.task == "upscale"] if spec == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    return [n for n in names if family is None or METHODS[n].family == family]


def current_rows(cache_dir: Path, dataset: str, images: list[str], scales: list[float]) -> list[dict]:
    """Cached rows of ``dataset`` made by the current code of a registered method (latest per key)."""
    versions = {name: code_version(cls, metrics) for name, cls in METHODS.items()}
    latest: dict[str, dict] = {}
    for r in read_rows(cache_file(cache_dir, dataset)):
        if (r.get("method") in versions and r.get("version") == versions[r["method"]]
                and r.get("protocol") == PROTOCOL and r["image"] in images and float(r["scale"]) in scales):
            latest[row_key(r)] = r
    order = {name: k for k, name in enumerate(METHODS)}
    return sorted(latest.values(), key=lambda r: (order[r["method"]], json.dumps(r["settings"], sort_keys=True),
                                                  images.index(r["image"]), float(r["scale"])))


def dataset_table(dataset: str, rows: list[dict], n_images: int, scales: list[float]) -> list[str]:
    head = "| method | budget | source | " + " | ".join(f"x{s:g}" for s in scales) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(scales)]
    summary = summarize(rows)
    labels = budget_labels(summary)
    groups: dict[tuple[str, str], dict[float, dict]] = {}
    for s in summary:
        key = (s["method"], labels[(s["method"], json.dumps(s["settings"], sort_keys=True))])
        groups.setdefault(key, {})[s["scale"]] = s
    for (method, budget), cells in groups.items():
        text = []
        for sc in scales:
            s = cells.get(sc)
            if s is None:
                text.append("")
            else:
                cell = format_cell(s)
                text.append(cell if s["n"] >= n_images else f"{cell} [{s['n']}/{n_images} images]")
        lines.append(f"| {method} | {budget} | measured | " + " | ".join(text) + " |")
    for method, by_dataset in PUBLISHED.items():
        values = dict(zip(PUBLISHED_SCALES, by_dataset.get(dataset, ())))
        values.update(PUBLISHED_OOD.get(method, {}).get(dataset, {}))
        if all(values.get(sc) is None for sc in scales):
            continue  # nothing published at these scales
        text = [f"{values[sc]:.2f}" if values.get(sc) is not None else "-" for sc in scales]
        lines.append(f"| {method} | - | published | " + " | ".join(text) + " |")
    return lines


def versus_bicubic(dataset: str, rows: list[dict], n_images: int, scales: list[float]) -> list[str]:
    """The seed's question on one dataset: each learned method's gain over the measured bicubic row.

    For every (method, observation model), the budget with the highest mean PSNR over ``scales``
    among those measured on every image at every scale; empty when bicubic is not measured.
    """
    summary = summarize(rows)
    bicubic = {s["scale"]: s["psnr"] for s in summary if s["method"] == "bicubic" and s["ok"] == n_images}
    if any(bicubic.get(sc) is None for sc in scales):
        return []
    labels = budget_labels(summary)
    budgets: dict[tuple[str, str], dict[str, dict[float, dict]]] = {}
    for s in summary:
        if METHODS[s["method"]].family == "interpolation" or s["ok"] < n_images:
            continue
        key = (s["method"], s["settings"].get("fit") or "-")
        label = labels[(s["method"], json.dumps(s["settings"], sort_keys=True))]
        budgets.setdefault(key, {}).setdefault(label, {})[s["scale"]] = s
    lines = [f"### {dataset}", "", "| method | best budget | " + " | ".join(f"x{s:g}" for s in scales) + " |",
             "|---|---|" + "---|" * len(scales)]
    for (method, _fit), by_label in budgets.items():
        complete = {lab: cells for lab, cells in by_label.items() if all(sc in cells for sc in scales)}
        if not complete:
            continue
        label, cells = max(complete.items(), key=lambda kv: sum(kv[1][sc]["psnr"] for sc in scales))
        deltas = [f"{cells[sc]['psnr'] - bicubic[sc]:+.2f}" for sc in scales]
        lines.append(f"| {method} | {label} | " + " | ".join(deltas) + " |")
    return lines if len(lines) > 4 else []


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _num(v, spec: str, unit: str = "") -> str:
    return "not reached" if v is None else f"{format(v, spec)}{unit}"


def stop_rule_section(results: Path) -> list[str]:
    """The default stop against the full budget (``stop_rule*.json`` of experiments/stop_rule/report.py)."""
    lines = []
    for path in sorted(results.glob("stop_rule*.json")):
        doc = _load(path)
        if not doc:
            continue
        rule = doc["rule"]
        lines += [
            "## Stopping: the default stop (`--until auto`) against the full budget",
            "",
            (f"The rule: every {rule['every']} steps the field is drawn at {rule['points']} fixed random pixel "
             f"centres of the output grid; that drawing's RMS change since the last check, in 8-bit levels, is "
             f"divided by the learning rate spent since then and multiplied by the learning rate left in the "
             f"schedule (the change still to come at the present pace); the fit stops when that projection "
             f"stays below {rule['threshold']} levels for {rule['patience']} checks in a row (`--steps` stays the "
             "cap). The threshold was chosen on SIREN trajectories of BSD200 training images "
             "(`experiments/stop_rule/projected.py`) and checked on these rows. "
             if rule.get("projected") else
             f"The rule: every {rule['every']} steps the field is drawn at {rule['points']} fixed random pixel "
             f"centres of the output grid; the fit stops when that drawing's RMS change since the last check "
             f"stays below {rule['threshold']} of an 8-bit level for {rule['patience']} checks in a row "
             "(`--steps` stays the cap). Threshold and patience were chosen on Set5 x4 and checked on the other "
             "rows. ") +
            "Each image is fitted once with its full budget (`until=steps`), recording every check "
            "(`experiments/stop_rule/trajectories.py`); stopping at step k returns exactly the field the full "
            "run holds at step k (the learning-rate schedule depends on the cap, not on the stop), so the "
            "auto column is the auto stop's output, scored on the protocol, and its seconds are the full "
            f"run's clock at that step. Table by `python experiments/stop_rule/report.py ... --json {path.name}`.",
            "",
            "| method | dataset | scale | images | Y-PSNR, full budget | Y-PSNR, auto stop | change (worst image) "
            "| steps (auto / cap) | fit seconds, full | auto | time saved |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in doc["rows"]:
            lines.append(f"| {r['method']} | {r['dataset']} | x{r['scale']:g} | {r['images']} | {r['psnr_full']:.2f} "
                         f"| {r['psnr_auto']:.2f} | {r['change']:+.3f} ({r['worst_image_change']:+.3f}) "
                         f"| {r['steps_auto']:.0f} / {r['steps_full']:.0f} | {r['seconds_full']:.1f} "
                         f"| {r['seconds_auto']:.1f} | {r['time_saved']:.0%} |")
        lines.append("")
        notes = path.with_suffix(".notes.md")  # what was checked by hand beside the table
        if notes.is_file():
            lines += [notes.read_text().strip(), ""]
    return lines


def precision_section(results: Path) -> list[str]:
    """bfloat16 against float32 per method (``precision_*.json`` of benchmarks/settings_ab.py)."""
    docs = [d for d in (_load(p) for p in sorted(results.glob("precision_*.json"))) if d]
    if not docs:
        return []
    lines = ["## Precision: bfloat16 against float32", "",
             "`python benchmarks/settings_ab.py --method M --vary precision=fp32,bf16 ...`: the same cells "
             "with float32 and with bfloat16 compute (autocast; weights, encodings, the first layer on "
             "coordinates and the colour layer stay float32). Change = bf16 - fp32, mean Y-PSNR.", "",
             "| method | dataset | scale | images | Y-PSNR fp32 | Y-PSNR bf16 | change |", "|---|---|---|---|---|---|---|"]
    for doc in docs:
        for r in doc["rows"]:
            lines.append(f"| {r['method']} | {r['dataset']} | x{r['scale']:g} | {r['images']} | {r['psnr_fp32']:.2f} "
                         f"| {r['psnr_bf16']:.2f} | {r['psnr_change']:+.3f} |")
    lines.append("")
    return lines


AB_SECTIONS = (
    ("ensemble_*.json", "Self-ensemble",
     "`python benchmarks/settings_ab.py --method pretrained --vary ensemble=1,8 ...`: the input's 8 flips and "
     "turns, each upscaled and turned back, averaged (EDSR's geometric self-ensemble), against one pass."),
    ("lr_*.json", "Learning rate",
     "`python benchmarks/settings_ab.py --method M --vary lr=A,B ...`: the same cells fitted with two peak "
     "learning rates (each with the default stop rule)."),
    ("until_*.json", "Stopping, other families",
     "`python benchmarks/settings_ab.py --method M --vary until=steps,auto ...`: the full budget against "
     "the default stop, run as a user runs them (not replayed from a trajectory as above)."),
    ("fit_*.json", "Observation models",
     "`python benchmarks/settings_ab.py --method M --vary fit=A,B ...`: the same cells fitted to the pixel "
     "centres (point), to each pixel's mean over its cell (area, drawn the same way), to the cell means of "
     "the input and of its 2x2, 4x4, 8x8 block means (mip, drawn by area; made for drawing smaller, not "
     "for upscaling; the mip rows were fitted with the fixed stop rule of their day) or through the "
     "degradation (consistent)."),
)


def ab_sections(results: Path) -> list[str]:
    """One section per AB_SECTIONS pattern: benchmarks/settings_ab.py's rows, value A against B."""
    lines: list[str] = []
    for pattern, title, text in AB_SECTIONS:
        docs = [d for d in (_load(p) for p in sorted(results.glob(pattern))) if d and d.get("rows")]
        if not docs:
            continue
        machines: list[str] = []
        lines += [f"## {title}", "", text + " Change = B - A, mean Y-PSNR; seconds per image.", "",
                  "| method | setting | dataset | scale | images | Y-PSNR A | Y-PSNR B | change | s A | s B |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for doc in docs:
            for r in doc["rows"]:
                name = r["vary"]
                a, b = [k[len("psnr_"):] for k in r if k.startswith("psnr_") and k != "psnr_change"]
                precision = r.get("settings", {}).get("precision", "auto")
                name += f" ({precision})" if name != "precision" and precision != "auto" else ""
                lines.append(f"| {r['method']} | {name} = {a} / {b} | {r['dataset']} | x{r['scale']:g} | "
                             f"{r['images']} | {r['psnr_' + a]:.2f} | {r['psnr_' + b]:.2f} | {r['psnr_change']:+.3f} "
                             f"| {r['seconds_' + a]:.1f} | {r['seconds_' + b]:.1f} |")
            if doc.get("machine_before"):
                after = machine_line(doc["machine_after"]) if doc.get("machine_after") else "(stopped early)"
                vary = doc["rows"][0]["vary"]
                values = "/".join(k[len("psnr_"):] for k in doc["rows"][0] if k.startswith("psnr_") and k != "psnr_change")
                machines.append(f"- {doc['rows'][0]['method']}, {vary} = {values}: "
                                f"{machine_line(doc['machine_before'])} / {after}.")
        if machines:  # after the table, which one line of text would end
            lines += ["", "Machine (before / after):", "", *machines]
        lines.append("")
    return lines


NORMALISATIONS = (("cell", "cell, [-1, 1] (house)"), ("seed", "seed, [0, 1]"), ("centred", "centred, [-1, 1]"),
                  ("standard", "standardised"))


def misalignment_of(dataset: str, scale: int) -> dict[str, tuple[float, float]]:
    """Per convention, mean and largest |displacement| (output pixels) of the drawn output against
    where its pixels lie, over both axes of every image of ``dataset`` at ``scale`` (the protocol
    crops the truth to a multiple of the scale)."""
    import torch
    from PIL import Image

    from coordsr.coords import misalignment

    sizes = []
    for path in find_images(DATA / dataset):
        with Image.open(path) as im:
            sizes += [im.width // scale, im.height // scale]
    out = {}
    for convention, _ in NORMALISATIONS:
        shifts = torch.cat([misalignment(n, n * scale, convention).abs() for n in sizes])
        out[convention] = (float(shifts.mean()), float(shifts.max()))
    return out


def normalisation_section(results: Path) -> list[str]:
    """The seed's three coordinate normalisations and the house's cells (normalisation_*.json)."""
    docs = [d for d in (_load(p) for p in sorted(results.glob("normalisation_*.json"))) if d and d.get("rows")]
    if not docs:
        return []
    lines = ["## Coordinate normalisations", "",
             "The seed asks whether normalising the coordinates differently changes the result: [0, 1] from "
             "the corner (the seed's own, `convention=seed`), [-1, 1] centred (`centred`), standardised to "
             "zero mean and unit variance (`standard`), against the house's cells (`cell`: the image covers "
             "[-1, 1], pixel centres half a pixel inside its edges). The three normalisations put the first "
             "and last pixel centres on fixed coordinates whatever the size, so the input and the output grid "
             "do not line up; cells do. Each preset at its default budget (its stop rule; rows without a note below "
             "used the fixed rule of their day, before the projected one of \"Stopping\"), `python "
             "benchmarks/settings_ab.py --method M --vary convention=cell,seed,centred,standard --datasets "
             "Set5,Set14 --scales 4 --threads 1 --json benchmarks/results/normalisation_M.json`; mean Y-PSNR on "
             "the protocol (change against cells in brackets); seconds per image.", "",
             "| method | dataset | scale | images | " + " | ".join(label for _, label in NORMALISATIONS) + " | seconds (cell / seed / centred / standard) |",
             "|---|---|---|---|" + "---|" * len(NORMALISATIONS) + "---|"]
    cells = set()
    for doc in docs:
        for r in doc["rows"]:
            ref = r["psnr_cell"]
            psnrs = [f"{r['psnr_' + c]:.2f}" + ("" if c == "cell" else f" ({r['psnr_' + c] - ref:+.2f})")
                     for c, _ in NORMALISATIONS]
            secs = " / ".join(f"{r['seconds_' + c]:.1f}" for c, _ in NORMALISATIONS)
            lines.append(f"| {r['method']} | {r['dataset']} | x{r['scale']:g} | {r['images']} | "
                         + " | ".join(psnrs) + f" | {secs} |")
            cells.add((r["dataset"], int(r["scale"])))
    lines += ["", "Where each normalisation draws the output's pixels, against where they lie on the image "
              "(`coordsr.coords.misalignment`, both axes of every image; output pixels, mean / largest):", "",
              "| dataset | scale | " + " | ".join(label for _, label in NORMALISATIONS) + " |",
              "|---|---|" + "---|" * len(NORMALISATIONS)]
    for dataset, scale in sorted(cells):
        m = misalignment_of(dataset, scale)
        lines.append(f"| {dataset} | x{scale} | " + " | ".join(f"{m[c][0]:.2f} / {m[c][1]:.2f}" for c, _ in NORMALISATIONS)
                     + " |")
    notes = [f"- {d['rows'][0]['method']}: {d['note']}" for d in docs if d.get("note")]
    if notes:
        lines += ["", *notes]
    machine = docs[-1].get("machine_before")
    if machine:
        lines += ["", f"Machine (last run, before): {machine_line(machine)}."]
    lines.append("")
    return lines


def speed_sections(results: Path) -> list[str]:
    """The speed scripts' last measurements (their JSON in ``results``), as markdown sections."""
    lines = (stop_rule_section(results) + precision_section(results) + ab_sections(results)
             + normalisation_section(results))
    for path in sorted(results.glob("siren_speed*.json")):  # one section per measured size
        anchor = _load(path)
        if not anchor:
            continue
        a, img, env = anchor["args"], anchor["image"], anchor["environment"]
        lines += [
            f"## Speed anchor: our SIREN against siren-pytorch, {anchor['image']['width']}x{anchor['image']['height']} pixels",
            "",
            f"Both fitted side by side in one run (`python benchmarks/siren_speed.py`, or this script's "
            f"`--anchor`): {img['width']}x{img['height']} RGB crop of the bundled astronaut, width "
            f"{a['width']}, {a['depth']} sine layers, w0 {a['w0']:g}, Adam lr {a['lr']:g}, full batch, "
            f"{a['steps']} steps, same seed, interleaved blocks of {a['eval_every']} steps; render of a "
            f"{a['render_size']}x{a['render_size']} grid, best of {a['repeats']}. Device {anchor['device']}, "
            f"torch {env['torch']} with {env['torch_threads']} threads, {env['date']}.",
            "",
            "| network | parameters | s / step | final PSNR | time to the common PSNR | render MP/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in anchor["rows"]:
            to = ("not reached" if r["seconds_to_target"] is None else
                  f"{r['seconds_to_target']:.1f} s ({r['steps_to_target']} steps, {r['target_psnr']:.2f} dB)")
            lines.append(f"| {r['network']} | {r['params']} | {r['seconds_per_step']:.3f} | "
                         f"{r['final_psnr']:.2f} | {to} | {r['render_mpixels_per_s']:.2f} |")
        if anchor.get("machine_before"):
            lines += ["", f"Machine in the same run (before / after): {machine_line(anchor['machine_before'])} / "
                          f"{machine_line(anchor['machine_after'])}."]
        sp = anchor.get("speedup") or {}
        if sp:
            lines += ["", "coordsr against the reference: " + ", ".join(
                f"{k.replace('_', ' ')} {'n/a' if v is None else format(v, '.2f') + 'x'}" for k, v in sp.items())
                + " (above 1: coordsr faster)."]
        lines.append("")
    fields = _load(results / "fields_speed.json")
    if fields:
        lines += [
            "## Per-image presets: time to fit, render speed, memory",
            "",
            f"`python benchmarks/fields_speed.py` ({fields['date']}, torch {fields['torch']}, "
            f"{fields['cpus']} threads; up to {fields['max_steps']} steps; render: best of several). "
            "Fit on the image's own pixels (point model) until the full-image PSNR reaches the target.",
            "",
            "| preset | fit 64x64 to 30 dB | fit 256x256 to 30 dB | seed's job: 64x64 to 35 dB, drawn at 1024x1024 "
            "| render MP/s (of the head's FLOP limit) | peak RSS MB | machine (same process) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in fields["rows"]:
            share = f" ({r['render_fraction_of_head_limit']:.0%})" if "render_fraction_of_head_limit" in r else ""
            machine = machine_line(r["machine_before"]) if "machine_before" in r else "not recorded"
            lines.append(f"| {r['method']} | {_num(r['fit64_30db_s'], '.2f', ' s')} ({r['fit64_steps']} steps) | "
                         f"{_num(r['fit256_30db_s'], '.2f', ' s')} ({r['fit256_steps']} steps) | "
                         f"{_num(r['seed_job_s'], '.2f', ' s')} | {r['render_mpx_s']:.2f}{share} | "
                         f"{r['peak_rss_mb']:.0f} | {machine} |")
        big = fields.get("big_render")
        if big:
            lines += ["", f"Drawing {big['size']}x{big['size']} RGB 8-bit in tiles (hashgrid): {big['seconds']:.1f} s, "
                          f"{big['mpx_s']:.1f} MP/s, output array {big['output_mb']:.0f} MB, peak RSS "
                          f"{big['peak_rss_mb']:.0f} MB: {big['beyond_output_mb']:.0f} MB beyond the output "
                          "array and the process before the render."]
        lines.append("")
    return lines


def git_state() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_markdown(path: Path, tables: dict[str, list[str]], env: dict, command: str,
                   errors: list[str], results: Path, verdicts: list[str] = ()) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Y-PSNR (dB) / SSIM / seconds per image, measured by `coordsr.bench` on the field's protocol "
        "(DESIGN.md section 5), beside the published Y-PSNR of reference methods (PSNR only).",
        "",
        f"- Protocol: {PROTOCOL_DESCRIPTION}",
        "- Grey images (Set14 `bridge`): scored on their own luma, Y = 255 * grey, as the published "
        "numbers were (SRCNN's MATLAB code converts to YCbCr only 3-channel images). Expanding grey to "
        "three equal channels and applying BT.601 gives Y = 16 + 219 * grey, which reads 1.32 dB higher "
        "on `bridge` and 0.09 dB higher on the Set14 mean (bicubic: 30.33 / 27.63 / 26.09).",
        "- The method sees only the LR image (grey stays one channel; alpha is dropped) and the output "
        "size. Seeds are reset to 0 before every cell.",
        "- Budget: the settings that bound a method's work (`fit`, `steps`); a method's other settings "
        "are its defaults (see `coordsr methods`). The cache rows hold every setting.",
        f"- Machine: {env['cpu']}, {env['cpu_count']} cores, torch {env['torch']} with "
        f"{env['torch_threads']} threads{', GPU ' + env['gpu'] if 'gpu' in env else ''}; "
        f"Python {env['python']}; {env['platform']}. Seconds are wall-clock per image and the CPU is "
        "shared with other jobs: read them as orders of magnitude.",
        f"- Date: {env['date']}; code: `{git_state()}`.",
        f"- Written by: `{command}`; every row comes from the cache, made by this script with the budget shown in its row (e.g. `--family per-image --steps 300 --set batch=4096`).",
        "",
    ]
    for dataset, table in tables.items():
        lines += [f"## {dataset}", "", *table, ""]
    if verdicts:
        lines += ["## Against bicubic: which methods beat it, and with which fitting", "",
                  "Y-PSNR gain (dB) over the measured bicubic row; for each method and observation model, "
                  "its best budget measured on every image at every scale (highest mean over the scales).",
                  "", *verdicts]
    lines += speed_sections(results)
    lines += denoise_sections(results)  # benchmarks/denoise_report.py: issue 14's JSON results
    lines += drawing_sections(results)  # benchmarks/drawing_report.py: issue 32's JSON results
    lines += degraded_sections(results)  # benchmarks/degraded_report.py: issue 34's JSON results
    if errors:
        lines += ["## Errors", "", *[f"- {e}" for e in errors], ""]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)


def _tables(args, datasets: dict[str, list[Path]], scales: list[float], keep=None):
    """Per dataset and column set (the training scales, then --ood-scales): (dataset, title, rows,
    table lines, gain-over-bicubic lines) from the cache's current rows that ``keep`` accepts."""
    ood = [float(s) for s in args.ood_scales.split(",") if s.strip()]
    for dataset, paths in datasets.items():
        images = [p.stem for p in paths]
        for title, cols in ((dataset, scales), (f"{dataset}, scales beyond training (x1-x4)", ood)):
            rows = [r for r in current_rows(args.cache, dataset, images, cols) if keep is None or keep(r)]
            if rows:
                verdict = versus_bicubic(dataset, rows, len(images), cols) if cols is scales else []
                yield dataset, title, rows, dataset_table(dataset, rows, len(images), cols), verdict


def report(args, datasets: dict[str, list[Path]], scales: list[float], command: str) -> list[dict]:
    tables, errors, everything, verdicts = {}, [], [], []
    for dataset, title, rows, table, verdict in _tables(args, datasets, scales):
        everything += rows
        tables[title] = table
        if verdict:
            verdicts += [*verdict, ""]
        for s in summarize(rows):
            errors += [f"{dataset} {s['method']} x{s['scale']:g}: {e}" for e in s["errors"]]
    write_markdown(args.out, tables, environment(), command, errors, args.results, verdicts)
    if args.json:
        write_json(everything, args.json, meta={"command": command})
    return everything


def _replace_lines(text: str, heading: str, match: Callable[[str], bool], new: list[str]) -> str:
    """In the section under ``heading`` (up to the next heading), put ``new`` where the lines that
    ``match`` stood, or after the section's last table line when none did."""
    lines = text.split("\n")
    if heading not in lines:
        return text
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    old = [i for i in range(start, end) if match(lines[i])]
    table = [i for i in range(start, end) if lines[i].startswith("|")]
    if not old and not table:
        return text
    at = old[0] if old else table[-1] + 1  # no old line stands before old[0]
    kept = [ln for i, ln in enumerate(lines[start:end], start) if i not in old]
    return "\n".join(lines[:start] + kept[:at - start] + new + kept[at - start:] + lines[end:])


def _measured_by(name: str) -> Callable[[str], bool]:
    return lambda ln: ln.startswith(f"| {name} | ") and "| measured |" in ln


def _published(ln: str) -> bool:
    return "| published |" in ln


def refresh(args, datasets: dict[str, list[Path]], scales: list[float], ran: dict[str, list[dict]],
            command: str) -> None:
    """Replace the measured lines of the methods in ``ran`` in the existing tables (and their gains
    over bicubic) with their current rows of the settings this run used (other settings' rows, e.g.
    of settings_ab.py, stay out); the header says when and by what."""
    used = {(name, json.dumps(effective_settings(get_method(name)(**st)), sort_keys=True))
            for name, sts in ran.items() for st in sts}  # rows hold every setting, defaults included

    def keep(r: dict) -> bool:
        return r["method"] not in ran or (r["method"], json.dumps(r["settings"], sort_keys=True)) in used

    text = args.out.read_text()
    for dataset, title, _, table, verdict in _tables(args, datasets, scales, keep):
        for name in ran:
            if new := [ln for ln in table if _measured_by(name)(ln)]:
                text = _replace_lines(text, f"## {title}", _measured_by(name), new)
            if new := [ln for ln in verdict if ln.startswith(f"| {name} | ")]:
                text = _replace_lines(text, f"### {dataset}", lambda ln, n=name: ln.startswith(f"| {n} | "), new)
        # The published rows come from PUBLISHED, not the cache: always as this script now lists them.
        text = _replace_lines(text, f"## {title}", _published, [ln for ln in table if _published(ln)])
    env = environment()
    head = f"- Refreshed: the published lines, and the measured lines of {', '.join(f'`{m}`' for m in ran)}"
    note = (f"{head} on {env['date']} ({env['cpu']}, torch with {env['torch_threads']} threads; code "
            f"`{git_state()}`) by `{command}`; the other rows as written above.")
    lines = [ln for ln in text.split("\n") if not ln.startswith(head + " on ")]
    at = next(i for i, ln in enumerate(lines) if ln.startswith("- Written by: ")) + 1
    lines.insert(at, note)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(args.out)


def extra_settings(name: str, pairs: list[str]) -> dict:
    """--set NAME=VALUE pairs that method ``name`` has, typed like its fields (as the CLI does)."""
    from coordsr.cli import collect_settings, typed_settings

    return typed_settings(name, collect_settings(None, None, None, pairs))


TABLES_END = "## Stopping"
"""The first heading after the cached tables and the verdict: where the results' sections begin."""


def rewrite_sections(path: Path, results: Path) -> None:
    """Replace the results' sections of an existing BENCHMARKS.md (from its first section after
    the tables on), keeping the tables, the verdict and an Errors section as they are."""
    text = path.read_text()
    head, sep, rest = text.partition("\n" + TABLES_END)
    if not sep:
        raise SystemExit(f"{path}: no '{TABLES_END}' section to start from; run --report-only instead")
    errors = rest[rest.index("\n## Errors"):] if "\n## Errors" in rest else ""
    lines = (speed_sections(results) + denoise_sections(results) + drawing_sections(results)
             + degraded_sections(results))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(head.rstrip("\n") + "\n\n" + "\n".join(lines).rstrip("\n") + "\n" + errors)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sections_only:
        rewrite_sections(args.out, args.results)
        print(f"rewrote the results' sections of {args.out}", flush=True)
        return 0
    scales = [float(s) for s in args.scales.split(",")]
    names = selected_methods(args.methods, args.family)
    datasets = {}
    for name in args.datasets.split(","):
        folder = args.data / name
        if not folder.is_dir():
            raise SystemExit(f"dataset folder not found: {folder}")
        datasets[name] = find_images(folder)
    command = shlex.join(["python", "benchmarks/make_benchmarks_md.py", *(sys.argv[1:] if argv is None else argv)])
    if args.anchor and not args.report_only:
        import siren_speed  # benchmarks/ is on sys.path when run as a script

        siren_speed.main(["--json", str(args.results / "siren_speed.json")])
    if not args.report_only:
        start = time.perf_counter()

        def log(p) -> None:
            if p.row is None:
                return
            r = p.row
            result = f"{r['psnr']:.2f} dB {r['ssim']:.4f}" if r["error"] is None else f"ERROR {r['error']}"
            how = "cached" if p.cached else f"{r['seconds']:.1f} s"
            print(f"[{p.done}/{p.total}] {p.dataset} {p.image} x{p.scale:g} {p.method}: {result} ({how}; "
                  f"{time.perf_counter() - start:.0f} s elapsed)", flush=True)

        ran: dict[str, list[dict]] = {}
        for name in names:  # method by method, so BENCHMARKS.md fills in as each finishes
            # Every fitting method in each observation model: the seed's question is which fitting wins.
            fits = args.fits.split(",") if settings_for(name, fit="point") else [None]
            for fit in fits:
                settings = settings_for(name, steps=args.steps, fit=fit, **extra_settings(name, args.set))
                ran.setdefault(name, []).append(settings)
                for dataset, paths in datasets.items():
                    run_bench(paths, scales, {name: settings}, dataset=dataset, cache_dir=args.cache,
                              progress=log)
                if not args.refresh:
                    report(args, datasets, scales, command)
        ood = [float(x) for x in args.ood_scales.split(",") if x.strip()]
        for name in ["bicubic", *[m for m in args.ood_methods.split(",") if m]] if args.ood_methods else []:
            settings = settings_for(name, steps=args.steps)
            ran.setdefault(name, []).append(settings)
            for dataset, paths in datasets.items():
                run_bench(paths, ood, {name: settings}, dataset=dataset, cache_dir=args.cache, progress=log)
            if not args.refresh:
                report(args, datasets, scales, command)
    if args.refresh and not args.report_only:
        refresh(args, datasets, scales, ran, command)
        print(f"refreshed the lines of {', '.join(names)} in {args.out}", flush=True)
        return 0
    rows = report(args, datasets, scales, command)
    print(f"wrote {args.out} ({len(rows)} rows)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
