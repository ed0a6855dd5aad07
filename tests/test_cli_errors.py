"""Issue 11: every bad input a clear error, checked before any work, with the installed typer.

Each case runs ``main([...])`` in-process and asks for the same outcome: a non-zero status, one
line on stderr that says what is wrong, no traceback, no output file, no temporary file, and the
input unchanged.
"""

import errno
import importlib
import json
import os
import warnings

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


@pytest.fixture
def field_file(tmp_path, photo, capsys):
    path = tmp_path / "photo.field"
    assert main(["fit", str(photo), "-o", str(path), "--method", "hashgrid", "--steps", "2",
                 "--set", "levels=2", "--set", "log2_table_size=8", "-q"]) == 0
    capsys.readouterr()
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle, *, status=None):
    assert code != 0 if status is None else code == status, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("coordsr: "), err
    assert needle in lines[0], err
    assert "Traceback" not in err


def no_leftovers(folder, *names):
    """No named output and no temporary file of any write in ``folder``."""
    assert not [n for n in names if (folder / n).exists()]
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- 1. usage errors through the installed typer (no click needed) -----------------------------


@pytest.mark.parametrize("args, needle", [
    (["upscale", "small.png"], "Missing option '--output'"),
    (["upscale", "small.png", "-o", "o.png", "--scale", "abc"], "--scale"),
    (["upscale", "small.png", "-o", "o.png", "--steps", "1.5"], "--steps"),
    (["frobnicate"], "No such command 'frobnicate'"),
    ([], "missing command"),
    (["upscale", "small.png", "-o", "o.png", "--no-such-option"], "--no-such-option"),
    (["render"], "Missing argument"),
])
def test_usage_errors_are_one_line_with_status_2(capsys, args, needle):
    assert_one_line_error(*run(capsys, *args)[::2], needle, status=2)


def test_the_cli_does_not_import_click():
    """pip install coordsr without extras has no click: the CLI must not need it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['click'] = None; from coordsr.cli import main; "
            "sys.exit(main(['upscale', 'x.png', '-o', 'y.png', '--scale', 'abc']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("coordsr: Invalid value for '--scale'"), r.stderr


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "upscale", "--help")
    assert code == 0 and "--max-pixels" in out


# --- 2 and 3. options checked before any work --------------------------------------------------


@pytest.mark.parametrize("extra, needle", [
    (["--scale", "inf"], "--scale"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "1e-9"], "less than one pixel"),
    (["--scale", "1e300"], "longest side"),
    (["--size", "99999999x1"], "longest side"),
    (["--width", "0"], "--width"),
    (["--bit-depth", "12"], "--bit-depth must be 8 or 16"),
    (["--method", "siren", "--set", "lr=nan"], "lr must be a finite number"),
    (["--method", "siren", "--set", "hidden=-3"], "hidden must be at least 1"),
    (["--method", "siren", "--steps", "0"], "steps must be at least 1"),
    (["--method", "siren", "--steps", "-5"], "steps must be at least 1"),
    (["--method", "siren", "--seed", "-1"], "seed must be between"),
    (["--method", "hashgrid", "--set", "log2_table_size=60"], "log2_table_size"),
    (["--method", "siren", "--fit", "sideways"], "fit must be one of point, area, mip, consistent"),
    (["--method", "zeroshot", "--set", "max_step=1"], "max_step"),
    (["--method", "pretrained", "--set", "weights=/nonexistent.safetensors"], "no such weights file"),
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["--device", "cuda:99"], "device 'cuda:99'"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, photo, capsys, monkeypatch, extra, needle):
    fields_module = importlib.import_module("coordsr.methods.fields")  # coordsr.methods is a function

    def no_fit(*a, **k):
        raise AssertionError("a bad option must be refused before fitting")

    monkeypatch.setattr(fields_module, "fit", no_fit)
    before = photo.read_bytes()
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "-q", *extra)
    assert_one_line_error(code, err, needle)
    no_leftovers(tmp_path, "out.png")
    assert photo.read_bytes() == before


@pytest.mark.parametrize("suffix, size, needle", [
    (".png", "1000001x2", "PNG holds at most 1000000 pixels a side"),
    (".webp", "16384x2", "WebP holds at most 16383 pixels a side"),
    (".jpg", "65501x2", "JPEG holds at most 65500 pixels a side"),
])
def test_output_format_limits_are_refused_before_any_work(tmp_path, photo, capsys, monkeypatch, suffix, size, needle):
    from coordsr.methods.interpolation import nearest

    def no_work(*a, **k):
        raise AssertionError("a size the format cannot hold must be refused before the upscale")

    monkeypatch.setattr(nearest, "_upscale", no_work)
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / f"out{suffix}", "-q", "--method", "nearest",
                       "--size", size)
    assert_one_line_error(code, err, needle)
    no_leftovers(tmp_path, f"out{suffix}")


def test_device_cuda_without_cuda(tmp_path, photo, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "--device", "cuda")
    assert_one_line_error(code, err, "CUDA is not available")
    code, _, err = run(capsys, "render", photo, "-o", tmp_path / "out.png", "--device", "cuda")
    assert_one_line_error(code, err, "CUDA is not available")


@pytest.mark.parametrize("extra, needle", [
    (["--box", "-inf,-1,inf,1"], "--box"),
    (["--box", "nan,0,1,1"], "--box"),
    (["--box", "0,0,1e9,1"], "--box"),
    (["--box", "1,0,0,1"], "--box"),
    (["--box", "0,0,1"], "--box"),
    (["--bit-depth", "12"], "--bit-depth"),
    (["--device", "bogus"], "unknown device"),
    (["--scale", "1e-9"], "less than one pixel"),
])
def test_render_options_are_refused_before_drawing(tmp_path, field_file, capsys, monkeypatch, extra, needle):
    import coordsr.render as render_module

    monkeypatch.setattr(render_module, "render", lambda *a, **k: pytest.fail("drew before checking"))
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "out.png", *extra)
    assert_one_line_error(code, err, needle)
    no_leftovers(tmp_path, "out.png")


# --- field files with bad headers ---------------------------------------------------------------


def rewrite_header(src, dst, change):
    """Copy a field file with its JSON header changed by ``change(header)``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        header = json.loads(f.metadata()["coordsr"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    change(header)
    save_file(tensors, str(dst), metadata={"coordsr": json.dumps(header)})
    return dst


@pytest.mark.parametrize("change, needle", [
    (lambda h: h["image"].update(height=0), "image size"),
    (lambda h: h["image"].update(height=-5), "image size"),
    (lambda h: h["image"].update(channels=7), "channels"),
    (lambda h: h["image"].update(width="wide"), "width"),
    (lambda h: h["image"].update(bit_depth=12), "bit_depth"),
    (lambda h: h["config"].update(convention="nonsense"), "convention"),
    (lambda h: h["config"].update(hidden=10**9), "tensors differ"),
    (lambda h: h["config"]["encoding_args"].update(log2_table_size=36), "tensors differ"),
    (lambda h: h["config"]["encoding_args"].update(n_levels=10**9), "n_levels = 1000000000 is more than"),
    (lambda h: h["config"].update(layers=10**9), "layers = 1000000000 is more than"),
    (lambda h: h.update(format_version=99), "format version 99"),
    (lambda h: h.update(format="something-else"), "not a coordsr field file"),
    (lambda h: h.pop("config"), "does not match"),
])
def test_fields_with_bad_headers_are_refused(tmp_path, field_file, capsys, change, needle):
    bad = rewrite_header(field_file, tmp_path / "bad.field", change)
    code, _, err = run(capsys, "render", bad, "-o", tmp_path / "out.png")
    assert_one_line_error(code, err, needle)
    assert "bad.field" in err
    no_leftovers(tmp_path, "out.png")


# --- outputs that cannot be written ------------------------------------------------------------


def test_read_only_folder_is_refused_before_work(tmp_path, photo, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "--method", "bicubic")
    assert_one_line_error(code, err, "permission denied")


@pytest.mark.parametrize("err_no, words", [(errno.EROFS, "Read-only file system"),
                                           (errno.ENOSPC, "No space left on device")])
def test_image_write_failure_is_one_line_and_leaves_nothing(tmp_path, photo, capsys, monkeypatch, err_no, words):
    """A read-only filesystem (the temporary file cannot be made) or a full disk (its write
    fails): the real cause is shown, not the cleanup's own error."""
    import coordsr.images as images

    if err_no == errno.EROFS:
        def fail_open(path, *a, **k):
            raise OSError(err_no, os.strerror(err_no), str(path))
        monkeypatch.setattr(images.os, "open", fail_open)
    else:
        def fail_fsync(fd):
            raise OSError(err_no, os.strerror(err_no))
        monkeypatch.setattr(images.os, "fsync", fail_fsync)
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "--method", "bicubic", "-q")
    assert_one_line_error(code, err, words)
    assert "out.png" in err
    no_leftovers(tmp_path, "out.png")


@pytest.mark.parametrize("where", ["create", "write"])
def test_fit_onto_a_full_or_read_only_disk(tmp_path, photo, capsys, monkeypatch, where):
    import safetensors.torch

    if where == "create":  # a read-only filesystem: the temporary file cannot even be made
        def fail(tensors, filename, metadata=None):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(filename))
        monkeypatch.setattr(safetensors.torch, "save_file", fail)
        words = "Read-only file system"
    else:
        def fail(tensors, filename, metadata=None):
            with open(filename, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(safetensors.torch, "save_file", fail)
        words = "No space left on device"
    code, _, err = run(capsys, "fit", photo, "-o", tmp_path / "p.field", "--steps", "2", "-q",
                       "--set", "levels=2", "--set", "log2_table_size=8")
    assert_one_line_error(code, err, words)
    no_leftovers(tmp_path, "p.field")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.field")]


# --- 4. input size from the header, memory of the whole method ---------------------------------


def png_claiming(path, width, height):
    """A small PNG whose header claims width x height (a 'decompression bomb' of zeros)."""
    import imagecodecs

    path.write_bytes(bytes(imagecodecs.png_encode(np.zeros((height, width), np.uint8), level=9)))
    return path


def test_max_pixels_refuses_from_the_header(tmp_path, capsys):
    big = png_claiming(tmp_path / "big.png", 3000, 3000)  # 9 Mpx in a few kB
    code, _, err = run(capsys, "upscale", big, "-o", tmp_path / "out.png", "--max-pixels", 4_000_000)
    assert_one_line_error(code, err, "too many pixels: 3000x3000")
    assert "big.png" in err
    no_leftovers(tmp_path, "out.png")


def test_max_pixels_default_is_the_readers():
    import coordsr.cli
    import coordsr.images

    assert coordsr.cli.DEFAULT_MAX_PIXELS == coordsr.images.DEFAULT_MAX_PIXELS


def test_max_pixels_must_be_positive(tmp_path, photo, capsys):
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "--max-pixels", 0)
    assert_one_line_error(code, err, "--max-pixels must be positive")


def test_pillow_bomb_warning_is_never_printed(tmp_path, capsys, monkeypatch):
    """Above Pillow's own limit Pillow warns; coordsr decides with --max-pixels and says so in
    one line, whatever the warnings filter says."""
    big = png_claiming(tmp_path / "big.png", 400, 400)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 160 kpx: between warning and error
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code, _, err = run(capsys, "upscale", big, "-o", tmp_path / "out.png", "--max-pixels", 1000, "-q")
    assert_one_line_error(code, err, "too many pixels")
    assert "DecompressionBomb" not in err


def test_tiff_size_is_refused_from_its_header(tmp_path, capsys):
    """A tiny TIFF that claims 100000x100000 is refused before any allocation."""
    import struct

    tags = [(256, 4, 100_000), (257, 4, 100_000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, 100_000), (279, 4, 100)]  # one strip of 100 bytes
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, value in tags) + struct.pack("<I", 0)
    path = tmp_path / "claims.tif"
    path.write_bytes(b"II*\0" + struct.pack("<I", 108) + bytes(100) + ifd)
    assert path.stat().st_size < 300
    code, _, err = run(capsys, "upscale", path, "-o", tmp_path / "out.png")
    assert_one_line_error(code, err, "too many pixels: 100000x100000")


def test_memory_check_counts_the_method_not_only_the_output(tmp_path, photo, capsys, monkeypatch):
    """An output whose array fits is still refused when the method's working set does not."""
    import coordsr.render as render_module
    from coordsr.methods import get_method

    size = (600, 800)
    out_bytes = 4 * 3 * size[0] * size[1]
    method = get_method("siren")(device="cpu", fit="consistent")
    assert method.peak_bytes((12, 16, 3), size) > 20 * out_bytes  # every output pixel drawn each step
    monkeypatch.setattr(render_module, "available_memory", lambda: (1 << 30) + 10 * out_bytes)
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "out.png", "--size", "800x600",
                       "--method", "siren", "--fit", "consistent", "--steps", "1", "-q")
    assert_one_line_error(code, err, "GiB")
    assert "siren from 16x12 to 800x600" in err


def test_every_method_estimates_more_than_its_output():
    from coordsr.methods import methods_for

    for name, cls in methods_for("upscale").items():
        m = cls(device="cpu")
        small, large = m.peak_bytes((20, 20, 3), (80, 80)), m.peak_bytes((20, 20, 3), (800, 800))
        assert small >= 2 * 4 * 3 * 80 * 80 and large > small, name


@pytest.mark.parametrize("args, needle", [
    (["demo", "--scale", "0", "-m", "bicubic"], "--scale must be between 2 and 32"),
    (["demo", "--scale", "999", "-m", "bicubic"], "--scale must be between 2 and 32"),
    (["bench", ".", "--scales", "inf"], "--scales 'inf'"),
    (["bench", ".", "--scales", "1"], "--scales '1'"),
    (["bench", ".", "--device", "bogus"], "unknown device"),
])
def test_demo_and_bench_options_are_checked_first(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args, *(["--out", "demo"] if args[0] == "demo" else []))
    assert_one_line_error(code, err, needle, status=2)
    assert list(tmp_path.iterdir()) == []
