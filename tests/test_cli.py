"""The CLI in-process: every command, and every bad input gives one line and no output file."""

import numpy as np
import pytest
from PIL import Image

from coordsr.cli import main

from test_methods import smooth_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray((smooth_image(12, 16, 3) * 255).astype(np.uint8)).save(path)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_upscale_by_scale_size_and_width(tmp_path, photo, capsys):
    out = tmp_path / "big.png"
    assert run(capsys, "upscale", photo, "-o", out, "--scale", 2.5, "--method", "bicubic", "-q")[0] == 0
    assert Image.open(out).size == (40, 30)
    out.unlink()
    assert run(capsys, "upscale", photo, "-o", out, "--size", "50x20", "--method", "bicubic", "-q")[0] == 0
    assert Image.open(out).size == (50, 20)
    out.unlink()
    assert run(capsys, "upscale", photo, "-o", out, "--width", 64, "--method", "bicubic", "-q")[0] == 0
    assert Image.open(out).size == (64, 48)


def test_upscale_with_a_field_method_and_settings(tmp_path, photo, capsys):
    out = tmp_path / "big.png"
    code, _, err = run(capsys, "upscale", photo, "-o", out, "--scale", 2, "--method", "siren", "--steps", 10,
                       "--seed", 3, "--fit", "consistent")
    assert code == 0, err
    assert Image.open(out).size == (32, 24)


def test_fit_then_render_reproduces_upscale(tmp_path, photo, capsys):
    field, a, b = tmp_path / "p.field", tmp_path / "a.png", tmp_path / "b.png"
    common = ["--method", "hashgrid", "--steps", 20, "--seed", 3, "--scale", 2, "-q"]
    assert run(capsys, "fit", photo, "-o", field, *common)[0] == 0
    assert run(capsys, "render", field, "-o", a, "--scale", 2, "-q")[0] == 0
    assert run(capsys, "upscale", photo, "-o", b, *common)[0] == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    big = tmp_path / "huge.png"
    assert run(capsys, "render", field, "-o", big, "--size", "300x200", "-q")[0] == 0
    assert Image.open(big).size == (300, 200)


def test_methods_lists_every_method(capsys):
    from coordsr.methods import METHODS

    code, out, _ = run(capsys, "methods")
    assert code == 0
    for name in METHODS:
        assert f" {name} " in out


def bad_inputs(tmp_path, photo):
    (tmp_path / "notimage.png").write_text("hello")
    data = photo.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "tiny.png")
    out = tmp_path / "out.png"
    return {
        "missing": (["upscale", tmp_path / "nope.png", "-o", out], "nope.png"),
        "not an image": (["upscale", tmp_path / "notimage.png", "-o", out], "notimage.png"),
        "truncated": (["upscale", tmp_path / "truncated.png", "-o", out], "truncated.png"),
        "1x1": (["upscale", tmp_path / "tiny.png", "-o", out], "tiny.png"),
        "scale 0": (["upscale", photo, "-o", out, "--scale", 0], "scale"),
        "scale -2": (["upscale", photo, "-o", out, "--scale", -2], "scale"),
        "unknown method": (["upscale", photo, "-o", out, "--method", "magic"], "magic"),
        "unknown setting": (["upscale", photo, "-o", out, "--method", "bicubic", "--steps", 5], "steps"),
        "missing folder": (["upscale", photo, "-o", tmp_path / "no" / "out.png"], "does not exist"),
        "overwrite input": (["upscale", photo, "-o", photo], "overwrite the input"),
        "bad size": (["upscale", photo, "-o", out, "--size", "big"], "WIDTHxHEIGHT"),
        "bad field": (["render", tmp_path / "notimage.png", "-o", out], "notimage.png"),
        "bad suffix": (["upscale", photo, "-o", tmp_path / "out.xyz", "--method", "bicubic"], "out.xyz"),
        "bad setting value": (["upscale", photo, "-o", out, "--method", "zeroshot", "--set", "quality=superb"],
                              "superb"),
        "larger than memory": (["upscale", photo, "-o", out, "--scale", 30000, "--method", "bicubic"], "GiB"),
    }


@pytest.mark.parametrize("case", ["missing", "not an image", "truncated", "1x1", "scale 0", "scale -2",
                                  "unknown method", "unknown setting", "missing folder", "overwrite input",
                                  "bad size", "bad field", "bad suffix", "bad setting value",
                                  "larger than memory"])
def test_bad_input_gives_one_line_and_no_output(tmp_path, photo, capsys, case):
    args, needle = bad_inputs(tmp_path, photo)[case]
    before = photo.read_bytes()
    code, out, err = run(capsys, *args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.xyz").exists()
    assert photo.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.suffix == ".tmp"]


def test_existing_output_needs_force(tmp_path, photo, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "upscale", photo, "-o", out, "--method", "bicubic")
    assert code != 0 and "--force" in err and out.read_bytes() == b"precious"
    assert run(capsys, "upscale", photo, "-o", out, "--method", "bicubic", "--force", "-q")[0] == 0


def test_traceback_flag_shows_the_exception(tmp_path, capsys):
    with pytest.raises(Exception):
        main(["--traceback", "upscale", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png")])


def test_module_entry_point_runs():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "coordsr", "methods"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "bicubic" in r.stdout


def test_short_spin_sets_libgomps_spin_unless_the_user_chose_a_wait_policy():
    from coordsr.openmp_wait import SPIN_COUNT, short_spin

    env = {"PATH": "/bin"}
    assert short_spin(env) and env == {"PATH": "/bin", "GOMP_SPINCOUNT": SPIN_COUNT}
    for mine in ({"GOMP_SPINCOUNT": "300000"}, {"OMP_WAIT_POLICY": "ACTIVE"}):
        env = dict(mine)
        assert not short_spin(env) and env == mine


@pytest.mark.parametrize("user", [None, "5"])
def test_cli_sets_the_spin_before_torch_loads(user):
    """libgomp reads its environment once, when torch loads it: the CLI module must not import
    torch, and the entry point must set the spin (leaving a user's own) before a command runs."""
    import os
    import subprocess
    import sys

    code = ("import atexit, os, sys; import coordsr.cli as cli; loaded = 'torch' in sys.modules; "
            "atexit.register(lambda: print(loaded, os.environ.get('GOMP_SPINCOUNT'))); "
            "sys.argv = ['coordsr', '--help']; cli.app_main()")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    if user:
        env["GOMP_SPINCOUNT"] = user
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["False", user or "1000"]


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for k, (h, w) in enumerate(((24, 28), (26, 24))):
        Image.fromarray((smooth_image(h, w, 3, seed=k) * 255).astype(np.uint8)).save(folder / f"im{k}.png")
    return folder


def test_bench_writes_table_json_and_figures(tmp_path, hr_folder, capsys):
    import json

    out, figs = tmp_path / "rows.json", tmp_path / "figs"
    code, text, err = run(capsys, "bench", hr_folder, "--scales", "2", "--methods", "bicubic,hashgrid",
                          "--steps", 3, "--set", "batch=16", "--json", out, "--figures", figs)
    assert code == 0, err
    assert "bicubic" in text and "hashgrid" in text
    rows = json.loads(out.read_text())["rows"]
    assert {(r["method"], r["image"]) for r in rows} == {(m, i) for m in ("bicubic", "hashgrid") for i in ("im0", "im1")}
    assert all(r["error"] is None and r["psnr"] > 0 and r["seconds"] >= 0 for r in rows)
    fitted = [r["settings"] for r in rows if r["method"] == "hashgrid"]
    assert all(s["batch"] == 16 and s["steps"] == 3 for s in fitted)
    assert any(p.suffix == ".png" for p in figs.iterdir())


@pytest.mark.parametrize("args, message", [
    (["--set", "nonsense=1"], "--set nonsense: none of the methods"),
    (["--set", "batch=many"], "setting batch: expected int"),
    (["--set", "batch"], "expected NAME=VALUE"),
])
def test_bench_bad_settings_give_one_line_and_no_output(tmp_path, hr_folder, capsys, args, message):
    out = tmp_path / "rows.json"
    code, _, err = run(capsys, "bench", hr_folder, "--scales", "2", "--methods", "bicubic,hashgrid",
                       "--steps", 2, "--json", out, *args)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
