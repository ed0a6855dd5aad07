"""`coordsr upscale DIR|GLOB|@LIST -o OUTDIR` and coordsr.batch: names, formats, resume, bad files,
workers, and the checks that keep a batch inside OUTDIR."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coordsr import batch
from coordsr.cli import main

from test_methods import smooth_image


def write_png(path, seed, h=16, w=16, c=3):
    pixels = (smooth_image(h, w, c, seed=seed) * 255).astype(np.uint8)
    Image.fromarray(pixels[..., 0] if c == 1 else pixels).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"p{i}.png", i)
    write_png(folder / "grey.png", 7, c=1)
    (folder / "notes.txt").write_text("not an image, and not picked up by the folder listing")
    return folder


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path):
    return np.asarray(Image.open(path))


def test_folder_keeps_names_and_matches_single_image_runs(tmp_path, photos, capsys):
    out = tmp_path / "big"
    code, _, err = run(capsys, "upscale", photos, "-o", out, "--scale", 2, "--method", "bicubic")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "p0.png", "p1.png", "p2.png"]
    assert err.strip().splitlines()[-1].startswith(f"upscaled 4 of 4 images into {out}")
    single = tmp_path / "single.png"
    for name in ("p1.png", "grey.png"):
        assert run(capsys, "upscale", photos / name, "-o", single, "--scale", 2, "--method", "bicubic",
                   "-q", "--force")[0] == 0
        assert np.array_equal(pixels(out / name), pixels(single))
    assert pixels(out / "p0.png").shape == (32, 32, 3)


def test_glob_list_and_format(tmp_path, photos, capsys, monkeypatch):
    out = tmp_path / "jpgs"
    code, _, err = run(capsys, "upscale", photos / "p*.png", "-o", out, "--scale", 2, "--method", "bicubic",
                       "--format", "jpg", "-q")
    assert code == 0 and err == ""
    assert sorted(p.name for p in out.iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert Image.open(out / "p0.jpg").format == "JPEG"
    monkeypatch.chdir(tmp_path)  # a list's relative paths are from the current folder, like tar -T
    (tmp_path / "list.txt").write_text("# two photos\nphotos/p2.png\n\nphotos/grey.png\nphotos/p2.png\n")
    code, _, err = run(capsys, "upscale", "@list.txt", "-o", "tifs", "--scale", 2, "--method", "bicubic",
                       "--format", "tif")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "tifs").iterdir()) == ["grey.tif", "p2.tif"]
    assert "upscaled 2 of 2 images" in err


def test_denoise_then_upscale_each_image(tmp_path, photos, capsys):
    out, single = tmp_path / "big", tmp_path / "one.png"
    common = ["--scale", 2, "--method", "bicubic", "--denoise", "--denoiser", "wavelet", "--sigma", 10, "-q"]
    assert run(capsys, "upscale", photos, "-o", out, *common)[0] == 0
    assert run(capsys, "upscale", photos / "p2.png", "-o", single, *common)[0] == 0
    assert np.array_equal(pixels(out / "p2.png"), pixels(single))


def test_rerun_skips_finished_outputs_and_force_redoes_them(tmp_path, photos, capsys):
    out = tmp_path / "big"
    out.mkdir()
    mine = write_png(out / "p1.png", 99, h=5, w=5)  # the user's own file: never overwritten
    before = mine.read_bytes()
    code, _, err = run(capsys, "upscale", photos, "-o", out, "--scale", 2, "--method", "bicubic")
    assert code == 0, err
    assert mine.read_bytes() == before
    assert "upscaled 3 of 4 images" in err and "1 skipped" in err
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = run(capsys, "upscale", photos, "-o", out, "--scale", 2, "--method", "bicubic")
    assert code == 0 and "upscaled 0 of 4 images" in err and "4 skipped" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    code, _, err = run(capsys, "upscale", photos, "-o", out, "--scale", 2, "--method", "bicubic", "--force")
    assert code == 0 and "upscaled 4 of 4 images" in err
    assert pixels(out / "p1.png").shape == (32, 32, 3)


def test_a_bad_file_is_reported_at_the_end_and_the_rest_is_done(tmp_path, photos, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    write_png(photos / "tiny.png", 3, h=1, w=1)
    out = tmp_path / "big"
    code, _, err = run(capsys, "upscale", photos, "-o", out, "--scale", 2, "--method", "bicubic", "-q")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3, err  # one line per bad file, then the summary
    assert lines[0].startswith(f"coordsr: {photos / 'broken.png'}: ")
    assert lines[1].startswith(f"coordsr: {photos / 'tiny.png'}: too small")
    assert lines[2].startswith("upscaled 4 of 6 images") and "2 failed" in lines[2]
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "p0.png", "p1.png", "p2.png"]  # no partial file


@pytest.mark.parametrize("args, message", [
    (["-o", "{photos}"], "holds inputs of this batch"),
    (["-o", "{photos}/../photos"], "holds inputs of this batch"),
    (["-o", "{photos}/p0.png"], "is a file"),
    (["-o", "{tmp}/missing/big"], "does not exist"),
    (["-o", "{tmp}/big", "--format", "gif"], "--format 'gif'"),
    (["-o", "{tmp}/big", "--workers", "0"], "--workers must be at least 1"),
    (["-o", "{tmp}/big", "--size", "12by5"], "--size '12by5'"),
    (["-o", "{tmp}/big", "--set", "nope=1"], "has no setting 'nope'"),
])
def test_bad_options_fail_before_any_work(tmp_path, photos, capsys, args, message):
    args = [a.format(photos=photos, tmp=tmp_path) for a in args]
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run(capsys, "upscale", photos, *args, "--method", "bicubic")
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_two_inputs_with_one_output_name_are_refused(tmp_path, photos, capsys):
    Image.open(photos / "p0.png").save(photos / "p0.jpg")
    code, _, err = run(capsys, "upscale", photos, "-o", tmp_path / "big", "--format", "png", "--method", "bicubic")
    assert code == 2 and "would both be written to" in err
    assert not (tmp_path / "big").exists()


def test_nothing_to_do_and_batch_options_on_one_image(tmp_path, photos, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "upscale", empty, "-o", tmp_path / "big")
    assert code == 2 and "no images" in err
    code, _, err = run(capsys, "upscale", tmp_path / "nothing*.png", "-o", tmp_path / "big")
    assert code == 2 and "no images" in err
    code, _, err = run(capsys, "upscale", "@" + str(tmp_path / "no-list.txt"), "-o", tmp_path / "big")
    assert code == 2 and "no such list file" in err
    for option in (["--workers", "2"], ["--format", "png"], ["--ray", "auto"]):
        code, _, err = run(capsys, "upscale", photos / "p0.png", "-o", tmp_path / "one.png", *option)
        assert code == 2 and "goes with many images" in err
    assert not (tmp_path / "big").exists() and not (tmp_path / "one.png").exists()


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = run(capsys, "upscale", photos, "-o", tmp_path / "big", "--ray", "auto")
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'coordsr[cluster]'" in err
    assert not (tmp_path / "big").exists()


@pytest.mark.slow  # two spawned processes import torch
def test_workers_give_the_same_outputs_and_the_model_loads_once(tmp_path, photos, capsys):
    from coordsr.methods.pretrained import _load

    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--scale", 2, "--method", "pretrained", "--precision", "fp32", "-q"]
    _load.cache_clear()
    assert run(capsys, "upscale", photos, "-o", one, *common)[0] == 0
    assert _load.cache_info().misses == 1 and _load.cache_info().hits >= 3  # built once for 4 images
    code, _, err = run(capsys, "upscale", photos, "-o", two, *common, "--workers", 2)
    assert code == 0, err
    for p in one.iterdir():
        assert np.abs(pixels(p).astype(int) - pixels(two / p.name)).max() <= 1  # threads: float rounding


def test_sweep_removes_only_temporaries_of_the_batch(tmp_path):
    items = [batch.Item(tmp_path / "a.png", tmp_path / "out" / "a.png")]
    (tmp_path / "out").mkdir()
    stale = tmp_path / "out" / ".a.png.0123456789abcdef.tmp"
    other = tmp_path / "out" / ".b.png.0123456789abcdef.tmp"
    stale.write_bytes(b"half")
    other.write_bytes(b"not ours")
    assert batch.sweep_temporaries(items) == 1
    assert not stale.exists() and other.exists()


def test_upscale_file_reports_instead_of_raising(tmp_path):
    from coordsr.cli import build_method

    recipe = batch.Recipe(build_method("bicubic", {}, "cpu"), lambda h, w: (2 * h, 2 * w))
    missing = batch.Item(tmp_path / "gone.png", tmp_path / "out.png")
    outcome = batch.upscale_file(recipe, missing)
    assert outcome.status == "failed" and outcome.code == 2
    assert outcome.message == f"{tmp_path / 'gone.png'}: no such file"
    assert not os.path.exists(tmp_path / "out.png")


def test_is_batch_input(tmp_path, photos):
    assert batch.is_batch_input(photos) and batch.is_batch_input("@list.txt")
    assert batch.is_batch_input(str(photos / "*.png"))
    assert not batch.is_batch_input(photos / "p0.png")
    odd = write_png(tmp_path / "a[1].png", 0)  # an existing file whose name looks like a glob
    assert not batch.is_batch_input(odd)


@pytest.mark.slow  # three commands in fresh processes
def test_batch_speed_script_reports_both_ways(tmp_path, photos, monkeypatch, capsys):
    import importlib
    import json

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    out = tmp_path / "speed.json"
    script = importlib.import_module("batch_speed")
    assert script.main(["--data", str(photos), "--count", "2", "--method", "bicubic", "--workers", "",
                        "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["stage"] for r in doc["rows"]] == ["batch (one process)", "shell loop of single commands"]
    assert all(r["images"] == 2 and r["images_per_s"] > 0 and r["max_diff_vs_loop_levels"] == 0
               for r in doc["rows"])
    assert "| shell loop of single commands |" in capsys.readouterr().out


@pytest.mark.slow  # a real command with two worker processes
def test_sigterm_stops_the_workers_cleanly(tmp_path, photos):
    import signal
    import subprocess
    import time

    out = tmp_path / "big"
    cmd = [sys.executable, "-m", "coordsr", "upscale", str(photos), "-o", str(out), "--scale", "2",
           "--method", "siren", "--steps", "100000", "--until", "steps", "--workers", "2", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:  # the pool's two processes
            time.sleep(0.2)
            workers = [int(c) for c in children_file.read_text().split()] if children_file.exists() else []
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert len(workers) >= 2
    assert proc.returncode == 143, err
    assert err.strip() == "coordsr: terminated (SIGTERM)"
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)], "a worker kept running on its own"
    assert not list(out.glob(".*")), "temporaries left behind"
    assert list(out.iterdir()) == []


def _running(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())
