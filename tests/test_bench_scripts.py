"""The benchmark scripts of benchmarks/ run and report what they measured (tiny settings)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return lambda name: importlib.import_module(name)


def test_siren_anchor_runs_both_networks_and_reports_ratios(scripts, tmp_path, one_thread, capsys):
    out = tmp_path / "siren.json"
    assert scripts("siren_speed").main(["--size", "16", "--width", "16", "--steps", "4", "--eval-every", "2",
                                        "--render-size", "32", "--repeats", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    names = [r["network"] for r in doc["rows"]]
    assert names[:2] == ["siren-pytorch (reference)", "coordsr"]
    assert len(names) == 3 and names[2].startswith("preset siren (")  # the preset as a user gets it
    # Same width, depth and seed-initialised shapes: the parameter counts agree.
    assert doc["rows"][0]["params"] == doc["rows"][1]["params"] == doc["rows"][2]["params"]
    assert all(r["steps"] == 4 and r["render_mpixels_per_s"] > 0 for r in doc["rows"][:2])
    preset = doc["rows"][2]
    assert preset["steps_to_target"] is not None and preset["final_psnr"] >= preset["target_psnr"] - 1e-6
    assert {"fit_time_to_target", "seconds_per_step", "render", "preset siren: render"} <= set(doc["speedup"])
    assert "speed-up over the reference" in capsys.readouterr().out


def test_speed_sections_report_the_json_rows(scripts, tmp_path):
    md = scripts("make_benchmarks_md")
    assert md.speed_sections(tmp_path) == []  # nothing measured: no section
    (tmp_path / "fields_speed.json").write_text(json.dumps({
        "date": "2026-01-02", "torch": "2.13.0", "cpus": 2, "max_steps": 100, "big_render": None,
        "rows": [{"method": "hashgrid", "fit64_30db_s": 1.25, "fit64_steps": 30, "fit256_30db_s": None,
                  "fit256_steps": 100, "seed_job_s": 0.5, "render_mpx_s": 7.5, "peak_rss_mb": 500.2}]}))
    text = "\n".join(md.speed_sections(tmp_path))
    assert "| hashgrid | 1.25 s (30 steps) | not reached (100 steps) | 0.50 s | 7.50 | 500 | not recorded |" in text


def test_speed_sections_report_the_anchor(scripts, tmp_path):
    md = scripts("make_benchmarks_md")
    row = {"params": 10, "steps": 4, "seconds_per_step": 0.5, "final_psnr": 30.0, "target_psnr": 29.0,
           "steps_to_target": 4, "seconds_to_target": 2.0, "render_mpixels_per_s": 1.5}
    (tmp_path / "siren_speed.json").write_text(json.dumps({
        "args": {"width": 16, "depth": 3, "w0": 30.0, "lr": 1e-4, "steps": 4, "eval_every": 2,
                 "render_size": 32, "repeats": 1},
        "image": {"width": 16, "height": 16, "channels": 3}, "device": "cpu",
        "environment": {"torch": "2.13.0", "torch_threads": 2, "date": "2026-01-02"},
        "speedup": {"fit_time_to_target": 1.25, "seconds_per_step": 1.25, "render": None},
        "rows": [{**row, "network": "siren-pytorch (reference)", "seconds_per_step": 0.625},
                 {**row, "network": "coordsr"}]}))
    text = "\n".join(md.speed_sections(tmp_path))
    assert "## Speed anchor: our SIREN against siren-pytorch, 16x16 pixels" in text
    assert "| coordsr | 10 | 0.500 | 30.00 | 2.0 s (4 steps, 29.00 dB) | 1.50 |" in text
    assert "fit time to target 1.25x" in text and "render not reached" not in text


def _row(method, settings, image, scale, psnr):
    return {"dataset": "D", "image": image, "method": method, "settings": settings, "scale": scale,
            "psnr": psnr, "ssim": 0.5, "seconds": 1.0, "error": None}


def test_versus_bicubic_reports_each_fits_best_complete_budget(scripts):
    md = scripts("make_benchmarks_md")
    short = {"fit": "point", "steps": 300, "batch": 4096}
    long = {"fit": "point", "steps": 2000, "batch": 4096}
    cons = {"fit": "consistent", "steps": 300, "batch": 0}
    rows = []
    for image in ("a", "b"):
        for scale, bic in ((2.0, 30.0), (4.0, 25.0)):
            rows += [_row("bicubic", {}, image, scale, bic),
                     _row("siren", short, image, scale, bic - 1.0),
                     _row("siren", long, image, scale, bic + 0.5),
                     _row("siren", cons, image, scale, bic + 0.25)]
    rows.append(_row("hashgrid", short, "a", 2.0, 40.0))  # one image, one scale: not complete
    lines = md.versus_bicubic("D", rows, 2, [2.0, 4.0])
    assert "| siren | fit=point, steps=2000, batch=4096 | +0.50 | +0.50 |" in lines
    assert "| siren | fit=consistent, steps=300, batch=all | +0.25 | +0.25 |" in lines
    assert not any("steps=300, batch=4096" in line or "hashgrid" in line for line in lines)
    # Without a complete bicubic row there is nothing to compare with.
    assert md.versus_bicubic("D", [r for r in rows if not (r["method"] == "bicubic" and r["image"] == "b")],
                             2, [2.0, 4.0]) == []


def test_art_speed_reports_poster_and_animation_rows(scripts, tmp_path, capsys):
    out = tmp_path / "art.json"
    assert scripts("art_speed").main(["--threads", "1", "--poster", "48x32", "--frame", "16x16", "--frames", "3",
                                      "--format", "gif", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["case"] for r in doc["rows"]] == ["poster 48x32 PNG", "animation 3 x 16x16 GIF",
                                                "animation 1 x 16x16 GIF"]
    assert all(r["mpx_per_s"] > 0 and r["peak_rss_mb"] > 0 and "loadavg_before" in r for r in doc["rows"])
    assert "| poster 48x32 PNG | 1 |" in capsys.readouterr().out


def test_stop_rule_and_precision_sections_report_their_json(scripts, tmp_path):
    md = scripts("make_benchmarks_md")
    (tmp_path / "stop_rule.json").write_text(json.dumps({
        "rule": {"threshold": 0.25, "patience": 2, "every": 25, "points": 16384},
        "rows": [{"method": "hashgrid", "dataset": "Set5", "scale": 4.0, "images": 5, "psnr_full": 29.07,
                  "psnr_auto": 29.074, "change": 0.004, "worst_image_change": -0.032, "steps_full": 1000,
                  "steps_auto": 215, "seconds_full": 158.4, "seconds_auto": 31.0, "time_saved": 0.8}]}))
    (tmp_path / "precision_pretrained.json").write_text(json.dumps({"rows": [
        {"method": "pretrained", "dataset": "Set5", "scale": 2.0, "images": 5, "psnr_fp32": 37.25,
         "psnr_bf16": 37.249, "psnr_change": -0.001}]}))
    text = "\n".join(md.speed_sections(tmp_path))
    assert "| hashgrid | Set5 | x4 | 5 | 29.07 | 29.07 | +0.004 (-0.032) | 215 / 1000 | 158.4 | 31.0 | 80% |" in text
    assert "| pretrained | Set5 | x2 | 5 | 37.25 | 37.25 | -0.001 |" in text


def test_denoise_bench_and_report(scripts, tmp_path, monkeypatch):
    """benchmarks/denoise_bench.py writes rows and its command; denoise_report.py turns them into
    the BENCHMARKS.md section, and writes nothing when nothing was measured."""
    import numpy as np
    from PIL import Image

    report = scripts("denoise_report")
    assert report.denoise_sections(tmp_path) == []
    data = tmp_path / "Kodak24"
    data.mkdir()
    for k in range(2):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(data / f"k{k}.png")
    bench = scripts("denoise_bench")
    monkeypatch.setattr(bench, "REPO", tmp_path)  # its cache goes under tmp_path
    out = tmp_path / "denoise_kodak24_classical.json"
    assert bench.main(["--data", str(data), "--methods", "wavelet", "--sigmas", "15,25", "--images", "1",
                       "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["rows"]) == 2 and doc["command"].startswith("python benchmarks/denoise_bench.py")
    text = "\n".join(report.denoise_sections(tmp_path))
    assert "## Denoising (issue 14)" in text and "| Kodak24 | wavelet (wavelet=db2), sigma given | 1 |" in text
    assert "CBM3D" in text and "non-commercial" in text  # published rows beside whole Kodak24 rows


def test_footprint_benchmark_compares_every_footprint_with_the_reference(scripts, tmp_path, one_thread, capsys):
    import numpy as np
    from PIL import Image

    # A picture made here, not one of ../shared/data: a clone alone runs this test too. An absolute
    # --images path is taken as it is (the script joins it to ../shared/data).
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    rgb = np.stack([np.sin(9 * xx + 4 * yy), np.cos(7 * yy * xx * 3), np.sin(5 * (xx - yy))], -1)
    Image.fromarray(((rgb * 0.45 + 0.5) * 255).round().astype(np.uint8)).save(tmp_path / "picture.png")
    out = tmp_path / "footprint.json"
    assert scripts("footprint").main(["--images", str(tmp_path / "picture.png"), "--families", "hashgrid,siren", "--size", "32",
                                      "--shrink", "2", "--repeats", "1", "--set", "steps=5", "--set", "hidden=16",
                                      "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["family"] for r in doc["rows"]] == ["hashgrid", "siren"]
    assert [r["closed_form"] for r in doc["rows"]] == [True, False]
    for row in doc["rows"]:
        assert set(row["shrinks"]["2"]) == {"point", "area", "supersample:2"}
        assert row["cost_vs_point"]["supersample:4"] > 1
    assert "| hashgrid | 1/2 |" in capsys.readouterr().out


def test_sections_only_keeps_the_tables_and_rewrites_the_results(scripts, tmp_path):
    md = scripts("make_benchmarks_md")
    results = tmp_path / "results"
    results.mkdir()
    (results / "ensemble_x.json").write_text(json.dumps({"rows": [
        {"dataset": "Set5", "scale": 2.0, "images": 5, "method": "pretrained", "vary": "ensemble",
         "psnr_1": 37.0, "psnr_8": 37.2, "seconds_1": 0.3, "seconds_8": 2.9, "psnr_change": 0.2}]}))
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\n## Set5\n\n| a table |\n\n## Stopping: old\n\nold text\n\n## Errors\n\n- e\n")
    assert md.main(["--sections-only", "--out", str(out), "--results", str(results)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\n## Set5\n\n| a table |\n")
    assert "old text" not in text and "## Self-ensemble" in text and "| ensemble = 1 / 8 | Set5 | x2 |" in text
    assert text.rstrip().endswith("- e")


def test_refresh_replaces_only_the_named_methods_lines(scripts):
    md = scripts("make_benchmarks_md")
    text = ("# B\n\n## Set5\n\n| method | budget |\n|---|---|\n| bicubic | - | measured | 1 |\n"
            "| pretrained | - | measured | old |\n| pretrained | - | published | 9 |\n\n## Set14\n\n"
            "| pretrained | - | measured | other |\n")
    new = md._replace_lines(text, "## Set5", md._measured_by("pretrained"), ["| pretrained | - | measured | new |"])
    assert new == text.replace("| old |", "| new |")  # in place; the published line and Set14 untouched
    added = md._replace_lines(text, "## Set5", md._measured_by("zeroshot"), ["| zeroshot | - | measured | z |"])
    assert "| pretrained | - | published | 9 |\n| zeroshot | - | measured | z |\n\n## Set14" in added
    published = md._replace_lines(text, "## Set5", md._published, ["| VDSR | - | published | 8 |", "| p | - | published | 9 |"])
    assert published == text.replace("| pretrained | - | published | 9 |", "| VDSR | - | published | 8 |\n| p | - | published | 9 |")


def test_subnormals_times_both_modes_and_reports_the_output_change(scripts, tmp_path, one_thread, capsys):
    out = tmp_path / "subnormals.json"
    assert scripts("subnormals").main(["--methods", "hashgrid", "--steps", "2", "--size", "8", "--repeats", "1",
                                       "--json", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["method"] == "hashgrid" and len(row["seconds"]["flushed"]) == len(row["seconds"]["kept"]) == 1
    assert row["speedup"] > 0 and row["max_output_change"] < 1e-4  # flushing changes no output visibly
    assert "| hashgrid |" in capsys.readouterr().out
