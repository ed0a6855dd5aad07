"""BENCHMARKS.md's drawing sections (issue 32), from the JSON that `coordsr bench --lr/--hr` and
benchmarks/drawing_peers.py wrote into benchmarks/results/drawings/ and drawing_peers.json."""

from __future__ import annotations

import json
from pathlib import Path

SETS = ("emoji_x16", "emoji_x32", "twemoji_x16", "openmoji_x16", "scene_x16")
ORDER = ("bicubic", "lanczos", "pretrained", "drawing")


def _fmt(v, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _row(s: dict) -> str:
    return (f"| `{s['method']}` | {_fmt(s['psnr_white'])} | {_fmt(s['psnr_black'])} | **{_fmt(s['psnr'])}** | "
            f"{_fmt(s['ssim'], 4)} | {_fmt(s['gmsd'], 3)} | {_fmt(s['alpha_psnr'])} | {_fmt(s['seconds'], 3)} | {s['n']} |")


HEAD = ["| method | PSNR white | PSNR black | PSNR (mean) | SSIM | GMSD | alpha PSNR | s / image | images |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]


def drawing_sections(results: Path) -> list[str]:
    folder = results / "drawings"
    if not folder.is_dir():
        return []
    lines = ["## Drawings: icons and emoji (issue 32)", "",
             "The drawing protocol (DESIGN.md section 5): the output composited on white and on black, PSNR on RGB "
             "over all pixels and their mean, SSIM and GMSD (lower is better) the means over the two composites, "
             "alpha PSNR on alpha alone; the input the small drawing as its file holds it (RGBA), or for x32 the "
             "area downscale of the large one. Held-out Noto pairs: the 101 files of ../shared/data/Emoji that "
             "`coordsr.liif.data.is_validation(name, 0.1)` sets aside, never trained on. Twemoji and OpenMoji "
             "pairs from `benchmarks/svg_emoji_pairs.py`, scenes from `benchmarks/scene_pairs.py`: other "
             "designers' and generated drawings, used for checks only. Seconds on 2 cores with other work running.", ""]
    for key in SETS:
        path = folder / f"{key}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        summary = sorted(data["summary"], key=lambda s: ORDER.index(s["method"]) if s["method"] in ORDER else 99)
        commands = data["command"] if isinstance(data["command"], list) else [data["command"]]
        lines += [f"### {data.get('title', key)}", "", *HEAD, *map(_row, summary), "",
                  "Made by: " + "; ".join(f"`{c}`" for c in commands) + ".", ""]
    peers = results / "drawing_peers.json"
    if peers.exists():
        data = json.loads(peers.read_text())
        lines += ["### Against the tools people would pick instead (20 held-out Noto pairs, x16)", "",
                  "| method | PSNR white | PSNR black | PSNR (mean) | SSIM | GMSD | alpha PSNR | s / image | how it was run |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for s in data["summary"]:
            lines.append(f"| {s['method']} | {_fmt(s['psnr_white'])} | {_fmt(s['psnr_black'])} | "
                         f"**{_fmt(s['psnr'])}** | {_fmt(s['ssim'], 4)} | {_fmt(s['gmsd'], 3)} | "
                         f"{_fmt(s['alpha_psnr'])} | {_fmt(s['seconds'], 3)} | {s.get('note', '')} |")
        commands = data["command"] if isinstance(data["command"], list) else [data["command"]]
        lines += ["", "Made by: " + "; ".join(f"`{c}`" for c in commands) + " (one thread each).", "",
                  "![crops: input, peers, coordsr, truth](docs/img/drawing_peers.png)", ""]
    return lines
