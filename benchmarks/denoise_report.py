"""The denoising section of BENCHMARKS.md, from the JSON of the denoising benchmarks (issue 14).

`make_benchmarks_md.py` appends :func:`denoise_sections`; run alone, this script rewrites only
that section of BENCHMARKS.md (from its title to the end of the file or the next section that
is not a denoising one):

    python benchmarks/denoise_report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TITLE = "## Denoising (issue 14)"

SECTIONS = [  # (JSON files in benchmarks/results, heading, note)
    (["denoise_kodak24_classical.json"], "Kodak24, all 24 images: classical baselines",
     "scikit-image's denoisers with the noise level given; settings chosen on BSD200 "
     "(experiments/denoise/tune_classical.py), never on Kodak24."),
    (["denoise_kodak24_trained.json", "denoise_kodak24_trained_blind.json", "denoise_kodak24_trained_ens8.json"],
     "Kodak24, all 24 images: the trained denoiser",
     "`trained`: the shipped CNN (T91 + BSD200 only, noise levels 0-50, one pass), with the level "
     "given and blind (estimated by scikit-image's `estimate_sigma`). Training record: docs/DENOISE.md. "
     "Seconds: the denoise call alone (the first one also loads the weights); the median "
     "over repeated calls on 2 threads is in `benchmarks/results/denoise_trained_speed.json`. "
     "`ensemble=8`: the mean of 8 passes over the flips and turns (run on one thread)."),
    (["denoise_kodak24_zsn2n.json"], "Kodak24, {images}: ZS-N2N",
     "Zero-shot: learned from the noisy image alone. The classical rows of the same images are "
     "repeated beneath when they are not all 24. Wall-clock varies with the shared machine's load: "
     "the kodim01 sigma 25 cell ran at a load average of 25-33 (2823 s wall, 246 s CPU), kodim05 at "
     "sigma 25 took 89 s; the other cells took 13-23 s (25-37 s of CPU) at a load average of 2-5. The "
     "run over all 24 images was stopped after kodim05 (time); the JSON was rebuilt from the cache."),
    (["denoise_kodak24_zsnlm.json"], "Kodak24, {images}: zero-shot, ZS-N2N blended with non-local means",
     "`zsnlm`: the ZS-N2N network above (300 steps on 192x192 crops, then self-ensembled over the 8 "
     "flips and transposes) and non-local means, each run on the noisy image alone, blended with a "
     "weight chosen per image by SURE from the noisy image and sigma (docs/DENOISE.md; the rule and its "
     "settings chosen on BSD200 training images: `experiments/denoise/zsn2n_dev.py`). Sigma 25 and 50 "
     "ran on one thread each (`OMP_NUM_THREADS=1`, two processes side by side), sigma 15 on 2 threads "
     "alone; the median 2-thread time per image is in docs/research/denoising.md."),
    (["denoise_crop128_reference.json", "denoise_crop128_field_hashgrid.json",
      "denoise_crop128_field_hashgrid_coarse.json", "denoise_crop128_field_siren.json",
      "denoise_crop128_field_fourier.json", "denoise_crop128_field_wire.json"],
     "Coordinate networks: central 128x128 crops of {images}, sigma 25",
     "The `field` denoiser fitted to the pixel centres of the noisy crop, full batch, stopped by the "
     "discrepancy principle (mean squared residual <= sigma^2, sigma given), beside its **oracle**: "
     "the best of its iterates drawn every 10 steps, chosen with the clean image (benchmark only; the "
     "method never sees it). A small subset: per-image fits of full-size images cost minutes per "
     "image on 2 shared cores. Published rows are 24 full images: not comparable, not printed."),
]


def _load(results: Path, name: str) -> dict | None:
    path = results / name
    return json.loads(path.read_text()) if path.is_file() else None


def denoise_sections(results: Path | None = None) -> list[str]:
    from coordsr.denoise.bench import format_table

    results = results or REPO / "benchmarks" / "results"
    lines = [TITLE, "",
             "Protocol (docs/DENOISE.md): clean 8-bit RGB in [0, 1]; white Gaussian noise of sigma/255 "
             "added in float64 with a fixed seed per (image, sigma), not clipped, not quantized; the output "
             "quantized to 8 bits; PSNR on RGB over all pixels (no shave), SSIM on the BT.601 luma. Cells: "
             "mean PSNR (dB) / SSIM / seconds per image (wall-clock on a shared 2-core machine; the load "
             "average is given with each run). BM3D is not run: the `bm3d` package is licensed for "
             "non-commercial use only, which MIT-licensed coordsr cannot depend on; its published row is "
             "quoted instead.", ""]
    docs = {}
    for files, heading, note in SECTIONS:
        found = [(f, d) for f in files if (d := _load(results, f)) is not None]
        if not found:
            continue
        rows = [r for _, d in found for r in d["rows"]]
        published = "crop" not in found[0][1]["rows"][0]["dataset"]
        images = sorted({r["image"].rsplit(".", 1)[0] for r in rows})
        named = f"all {len(images)} images" if len(images) >= 24 else ", ".join(images)
        lines += [f"### {heading.format(images=named)}", "", note, "",
                  format_table(rows, published=published), ""]
        if "ZS-N2N" in heading and len(images) < 24 and (classical := _load(results, "denoise_kodak24_classical.json")):
            images = {r["image"] for r in rows}
            same = [r for r in classical["rows"] if r["image"] in images]
            lines += ["Classical rows on the same images:", "", format_table(same, published=False), ""]
        lines += ["Made by:", ""]
        for f, d in found:
            load = d.get("loadavg_end")
            lines.append(f"- `{d['command']}` ({d['environment']['date']}"
                         + (f", load average {load[0]:.1f} at the end" if load else "") + ")")
        lines.append("")
        docs.update(found)
    for joint_file in ("denoise_joint.json", "denoise_joint_trained.json"):  # one table per run
        joint = _load(results, joint_file)
        if not joint:
            continue
        lines += ["### Joint denoise + upscale: noisy LR (sigma 15) in, HR out", "",
                  "The SR protocol's LR (MATLAB bicubic, 8-bit) plus the denoising protocol's noise (sigma 15, "
                  "float, not clipped); outputs scored on the SR protocol (Y-PSNR / SSIM, `scale` pixels "
                  "shaved). `DENOISER, then pretrained` is what `coordsr upscale --denoise` runs (DENOISER: the "
                  "default denoiser, `coordsr methods` marks it).", ""]
        scales = sorted({s["scale"] for s in joint["summary"]})
        lines += ["| dataset | pipeline | " + " | ".join(f"x{s:g}" for s in scales) + " |",
                  "|---|---|" + "---|" * len(scales)]
        keys = list(dict.fromkeys((s["dataset"], s["pipeline"]) for s in joint["summary"]))
        for d, p in keys:
            cells = {s["scale"]: s for s in joint["summary"] if s["dataset"] == d and s["pipeline"] == p}
            lines.append(f"| {d} | {p} | " + " | ".join(
                f"{cells[s]['psnr']:.2f} / {cells[s]['ssim']:.4f} / {cells[s]['seconds']:.2f} s" if s in cells else ""
                for s in scales) + " |")
        load = joint.get("loadavg_end")
        lines += ["", f"Made by: `{joint['command']}` ({joint['environment']['date']}"
                  + (f", load average {load[0]:.1f} at the end" if load else "") + ")", ""]
    measured = len(lines) > 4  # more than the title and the protocol
    figure = REPO / "docs" / "img" / "denoise_crops.png"
    if measured and figure.is_file():
        import json

        labels = json.loads(figure.with_suffix(".json").read_text()) if figure.with_suffix(".json").is_file() else {}
        psnrs = ", ".join(f"{k} {v:.2f}" for k, v in labels.get("psnr", {}).items())
        lines += ["### Crops side by side", "",
                  f"![{', '.join(labels.get('psnr', {}))}, clean](docs/img/denoise_crops.png)", "",
                  "Made by: `python benchmarks/denoise_figure.py --out docs/img/denoise_crops.png` (kodim05, "
                  "central 160x160, sigma 25; every method run on that crop with its defaults; PSNR of the crop "
                  "in each label" + (f": {psnrs} dB" if psnrs else "") + ").", ""]
    return lines if measured else []


def main() -> int:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text()
    head, sep, tail = text.partition(TITLE)
    rest = ""
    if sep:  # keep any later section that is not ours
        after = tail.split("\n## ")
        rest = "".join("\n## " + part for part in after[1:])
    new = head.rstrip("\n") + "\n\n" + "\n".join(denoise_sections()) + rest
    path.write_text(new.rstrip("\n") + "\n")
    print(f"wrote the denoising section of {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
