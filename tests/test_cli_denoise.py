"""`coordsr denoise`, `upscale --denoise` and `bench --task denoise` in-process: results, and one
line with no output file for every bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from coordsr.cli import main
from coordsr.denoise.protocol import add_noise
from coordsr.images import read_image, write_image

from test_methods import smooth_image


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def noisy_file(path, channels=3, sigma=25.0, size=(40, 48), bit_depth=8):
    clean = smooth_image(*size, channels)
    noisy = add_noise(clean, sigma, seed=0)
    if channels in (2, 4):
        noisy[:, :, -1] = clean[:, :, -1]
    write_image(path, np.clip(noisy, 0, 1).astype(np.float32), bit_depth=bit_depth)
    return clean


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_denoise_blind_and_given(tmp_path, capsys):
    src, out = tmp_path / "noisy.png", tmp_path / "clean.png"
    clean = noisy_file(src)
    code, _, err = run(capsys, "denoise", src, "-o", out)
    assert code == 0, err
    assert "estimated noise level sigma" in err
    assert psnr(read_image(out).pixels, clean) > psnr(read_image(src).pixels, clean) + 3
    out2 = tmp_path / "given.png"
    assert run(capsys, "denoise", src, "-o", out2, "--sigma", 25, "--method", "nlmeans", "-q")[0] == 0
    assert Image.open(out2).size == (48, 40)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_grey_and_alpha_images(tmp_path, capsys, channels):
    src, out = tmp_path / "noisy.png", tmp_path / "out.png"
    clean = noisy_file(src, channels)
    assert run(capsys, "denoise", src, "-o", out, "--sigma", 25, "-q")[0] == 0
    got, before = read_image(out), read_image(src)
    assert got.channels == channels
    if channels in (2, 4):
        assert np.array_equal(got.pixels[:, :, -1], before.pixels[:, :, -1])  # alpha passed through
    assert psnr(got.pixels[:, :, :1], clean[:, :, :1]) > psnr(before.pixels[:, :, :1], clean[:, :, :1])


def test_sixteen_bit_in_sixteen_bit_out(tmp_path, capsys):
    src, out = tmp_path / "noisy16.png", tmp_path / "out16.png"
    noisy_file(src, bit_depth=16)
    assert run(capsys, "denoise", src, "-o", out, "--sigma", 25, "-q")[0] == 0
    assert read_image(out).bit_depth == 16


def test_a_clean_image_is_kept(tmp_path, capsys):
    src, out = tmp_path / "clean.png", tmp_path / "out.png"
    Image.fromarray((smooth_image(48, 48, 3) * 255).round().astype(np.uint8)).save(src)
    code, _, err = run(capsys, "denoise", src, "-o", out)
    assert code == 0 and "looks clean" in err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(src)))


@pytest.mark.parametrize("args, message", [
    (["--sigma", "101"], "between 0 and 100"),
    (["--sigma", "-5"], "between 0 and 100"),
    (["--method", "bicubic"], "does not denoise"),
    (["--method", "nope"], "unknown method"),
    (["--set", "nope=1"], "no setting 'nope'"),
    (["--method", "zsn2n", "--set", "steps=0"], "steps must be at least 1"),
    (["--method", "nlmeans", "--set", "h=nan"], "h must be a finite number"),
    (["--method", "wavelet", "--set", "wavelet=nope"], "wavelet must be a discrete PyWavelets name"),
    (["--method", "field", "--set", "network=bicubic"], "not a per-image preset"),
    (["--device", "bogus"], "device"),
])
def test_bad_denoise_options_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    src, out = tmp_path / "noisy.png", tmp_path / "out.png"
    noisy_file(src)
    code, _, err = run(capsys, "denoise", src, "-o", out, "-q", *args)
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_upscale_with_denoise(tmp_path, capsys):
    src, out = tmp_path / "noisy.png", tmp_path / "big.png"
    noisy_file(src)
    code, _, err = run(capsys, "upscale", src, "-o", out, "--scale", 2, "--method", "bicubic", "--denoise",
                       "--sigma", 25, "-q")
    assert code == 0, err
    assert Image.open(out).size == (96, 80)
    # the denoised upscale is smoother than the plain one
    plain = tmp_path / "plain.png"
    assert run(capsys, "upscale", src, "-o", plain, "--scale", 2, "--method", "bicubic", "-q")[0] == 0
    rough = lambda p: np.abs(np.diff(np.asarray(Image.open(p), np.float64), axis=1)).mean()  # noqa: E731
    assert rough(out) < rough(plain)


@pytest.mark.parametrize("args, message", [
    (["--sigma", "25"], "go with --denoise"),
    (["--denoise", "--denoiser", "bicubic"], "does not denoise"),
    (["--method", "wavelet"], "does not upscale"),
])
def test_bad_upscale_denoise_options(tmp_path, capsys, args, message):
    src, out = tmp_path / "noisy.png", tmp_path / "big.png"
    noisy_file(src)
    code, _, err = run(capsys, "upscale", src, "-o", out, "--scale", 2, "-q", *args)
    assert code != 0 and message in err and not out.exists()


def test_bench_task_denoise(tmp_path, capsys):
    data = tmp_path / "set"
    data.mkdir()
    for k in range(2):
        Image.fromarray((smooth_image(32, 32, 3, seed=k) * 255).round().astype(np.uint8)).save(data / f"{k}.png")
    js = tmp_path / "rows.json"
    code, out, err = run(capsys, "bench", data, "--task", "denoise", "--sigmas", "15,25", "--methods",
                         "wavelet,tv", "--json", js)
    assert code == 0, err
    assert "sigma 15" in out and "sigma 25" in out and "| set | wavelet" in out
    doc = json.loads(js.read_text())
    assert len(doc["rows"]) == 8 and doc["protocol"].startswith("denoise-1")


@pytest.mark.parametrize("args, message", [
    (["--sigmas", "15,500"], "between 0 and 100"),
    (["--sigmas", "a"], "--sigmas"),
    (["--methods", "bicubic"], "does not denoise"),
    (["--variant", "16bit"], "--variant"),
])
def test_bench_denoise_bad_options(tmp_path, capsys, args, message):
    data = tmp_path / "set"
    data.mkdir()
    Image.fromarray((smooth_image(16, 16, 3) * 255).astype(np.uint8)).save(data / "a.png")
    code, _, err = run(capsys, "bench", data, "--task", "denoise", *args)
    assert code != 0 and message in err


def test_upscale_bench_refuses_denoisers(tmp_path, capsys):
    data = tmp_path / "set"
    data.mkdir()
    Image.fromarray((smooth_image(16, 16, 3) * 255).astype(np.uint8)).save(data / "a.png")
    code, _, err = run(capsys, "bench", data, "--methods", "wavelet")
    assert code != 0 and "use --task denoise" in err
