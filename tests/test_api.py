"""The public Python API (coordsr/__init__.py's __all__): every name, with each input type.

Tiny images (16 x 16), bicubic and wavelet where any method will do, a few hashgrid steps where a
field is needed: fast and deterministic. The results are compared with the registry's own
methods called directly, so the API is shown to be the same code path, not a second one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import coordsr
from coordsr.cli import main
from coordsr.methods import METHODS, methods_for
from coordsr.methods.denoisers import wavelet
from coordsr.methods.interpolation import bicubic

REPO = Path(__file__).resolve().parents[1]
FAST_FIT = dict(method="hashgrid", steps=5, until="steps", seed=0, device="cpu")


def smooth(h: int = 16, w: int = 16, c: int = 3) -> np.ndarray:
    """A deterministic smooth test picture, (h, w, c) float32 in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w] / 4.0
    chans = [np.sin(xx + k) * np.cos(yy * (k + 1) / 2) for k in range(c)]
    return (np.stack(chans, axis=-1) * 0.4 + 0.5).astype(np.float32)


U8 = (smooth() * 255).round().astype(np.uint8)  # (16, 16, 3)


def reference(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bicubic from the registry, called directly: (H, W, C) float32."""
    return bicubic(device="cpu").upscale(pixels, size)


def q8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


# --- the names -------------------------------------------------------------------------------------


def test_every_public_name_resolves_and_nothing_else_is_listed():
    assert len(set(coordsr.__all__)) == len(coordsr.__all__)
    for name in coordsr.__all__:
        assert getattr(coordsr, name) is not None, name
    assert set(coordsr.__all__) <= set(dir(coordsr))
    with pytest.raises(AttributeError):
        coordsr.no_such_name


def test_version_is_the_installed_metadata():
    assert coordsr.__version__ == version("coordsr")
    assert re.match(r"^\d+\.\d+", coordsr.__version__)


def test_import_is_cheap_and_public_names_are_not_the_internal_modules():
    code = ("import sys, coordsr; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
            "from coordsr.fit import FitConfig; import coordsr.methods.fields, coordsr.denoise.protocol; "
            "assert callable(coordsr.fit) and callable(coordsr.methods) and callable(coordsr.denoise); "
            "assert coordsr.fit.__module__ == 'coordsr.api'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_errors_are_the_library_classes():
    from coordsr import errors

    for name in ("CoordsrError", "ImageError", "SettingError", "FieldFileError", "Cancelled", "StopEarly"):
        assert getattr(coordsr, name) is getattr(errors, name)
    assert issubclass(coordsr.SettingError, coordsr.CoordsrError) and issubclass(coordsr.SettingError, ValueError)
    assert issubclass(coordsr.ImageError, coordsr.CoordsrError)


def test_py_typed_marker_ships():
    assert (REPO / "src" / "coordsr" / "py.typed").is_file()


# --- upscale: each input type comes back as itself -------------------------------------------------


def _png(tmp_path: Path, arr: np.ndarray, name="in.png") -> Path:
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return path


CASES = {
    # name: (make input from tmp_path, float pixels it holds (H, W, C), check the output)
    "path": (lambda t: _png(t, U8), U8 / np.float32(255),
             lambda out, ref: out.dtype == np.float32 and out.shape == (32, 32, 3) and np.allclose(out, ref, atol=1e-6)),
    "path grey 16-bit": (lambda t: _png(t, (smooth(c=1)[:, :, 0] * 65535).round().astype(np.uint16)),
                         (smooth(c=1) * 65535).round() / np.float32(65535),
                         lambda out, ref: out.shape == (32, 32, 1) and np.allclose(out, ref, atol=1e-6)),
    "pil RGB": (lambda t: Image.fromarray(U8), U8 / np.float32(255),
                lambda out, ref: isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (32, 32)
                and np.array_equal(np.asarray(out), q8(ref))),
    "pil L": (lambda t: Image.fromarray(U8[:, :, 0]), U8[:, :, :1] / np.float32(255),
              lambda out, ref: out.mode == "L" and np.array_equal(np.asarray(out), q8(ref)[:, :, 0])),
    "pil I;16": (lambda t: Image.fromarray((smooth(c=1)[:, :, 0] * 65535).round().astype(np.uint16)),
                 (smooth(c=1) * 65535).round() / np.float32(65535),
                 lambda out, ref: out.mode == "I;16"
                 and np.array_equal(np.asarray(out), (np.clip(ref[:, :, 0], 0, 1) * 65535).round().astype(np.uint16))),
    "numpy uint8": (lambda t: U8.copy(), U8 / np.float32(255),
                    lambda out, ref: out.dtype == np.uint8 and np.array_equal(out, q8(ref))),
    "numpy uint16": (lambda t: (smooth() * 65535).round().astype(np.uint16), (smooth() * 65535).round() / np.float32(65535),
                     lambda out, ref: out.dtype == np.uint16
                     and np.array_equal(out, (np.clip(ref, 0, 1) * 65535).round().astype(np.uint16))),
    "numpy float32 HW": (lambda t: smooth(c=1)[:, :, 0], smooth(c=1),
                         lambda out, ref: out.dtype == np.float32 and out.shape == (32, 32)
                         and np.allclose(out, ref[:, :, 0], atol=1e-6)),
    "numpy float64 RGBA": (lambda t: smooth(c=4).astype(np.float64), smooth(c=4),
                           lambda out, ref: out.dtype == np.float64 and out.shape == (32, 32, 4)
                           and np.allclose(out, ref, atol=1e-6)),
    "tensor CHW float": (lambda t: torch.from_numpy(smooth()).permute(2, 0, 1).contiguous(), smooth(),
                         lambda out, ref: isinstance(out, torch.Tensor) and out.shape == (3, 32, 32)
                         and out.dtype == torch.float32 and np.allclose(out.permute(1, 2, 0).numpy(), ref, atol=1e-6)),
    "tensor HWC float64": (lambda t: torch.from_numpy(smooth().astype(np.float64)), smooth(),
                           lambda out, ref: out.shape == (32, 32, 3) and out.dtype == torch.float64
                           and np.allclose(out.numpy(), ref, atol=1e-6)),
    "tensor CHW uint8": (lambda t: torch.from_numpy(U8).permute(2, 0, 1), U8 / np.float32(255),
                         lambda out, ref: out.dtype == torch.uint8 and out.shape == (3, 32, 32)
                         and np.array_equal(out.permute(1, 2, 0).numpy(), q8(ref))),
    "tensor HW": (lambda t: torch.from_numpy(smooth(c=1)[:, :, 0]), smooth(c=1),
                  lambda out, ref: out.shape == (32, 32) and np.allclose(out.numpy(), ref[:, :, 0], atol=1e-6)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_upscale_gives_back_the_type_that_came_in(tmp_path, case):
    make, pixels, check = CASES[case]
    out = coordsr.upscale(make(tmp_path), scale=2, method="bicubic", device="cpu")
    ref = reference(np.asarray(pixels, np.float32).reshape(16, 16, -1), (32, 32))
    assert check(out, ref), case


@pytest.mark.parametrize("output, kind", [("numpy", np.ndarray), ("pil", Image.Image), ("tensor", torch.Tensor)])
@pytest.mark.parametrize("source", ["path", "numpy uint8", "tensor CHW float"])
def test_output_chooses_the_type(tmp_path, source, output, kind):
    out = coordsr.upscale(CASES[source][0](tmp_path), scale=2, method="bicubic", output=output)
    assert isinstance(out, kind)
    if output == "tensor" and source != "tensor CHW float":
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32  # float32 (C, H, W)
    if output == "numpy" and source != "numpy uint8":
        assert out.shape == (32, 32, 3) and out.dtype == np.float32  # float32 (H, W, C)


def test_tensor_layout_rule_and_override():
    chw = torch.rand(3, 10, 3, generator=torch.Generator().manual_seed(0))  # both ends 1..4: CHW
    assert coordsr.upscale(chw, size=(20, 6), method="nearest").shape == (3, 20, 6)
    assert coordsr.upscale(chw, size=(6, 20), method="nearest", layout="hwc").shape == (6, 20, 3)
    hwc = torch.rand(10, 12, 3, generator=torch.Generator().manual_seed(0))
    assert coordsr.upscale(hwc, scale=2, method="nearest").shape == (20, 24, 3)
    with pytest.raises(coordsr.SettingError, match="layout"):
        coordsr.upscale(hwc, method="nearest", layout="whc")


def test_size_is_height_width_and_the_default_scale_is_four():
    img = smooth(10, 12)
    assert coordsr.upscale(img, size=(15, 31), method="bicubic").shape == (15, 31, 3)
    assert coordsr.upscale(img, method="bicubic").shape == (40, 48, 3)
    assert coordsr.upscale(img, scale=1.5, method="bicubic").shape == (15, 18, 3)


def test_settings_precision_and_progress_reach_the_method():
    out = coordsr.upscale(U8, scale=2, method="pretrained", precision="fp32", tile=8, device="cpu")
    direct = METHODS["pretrained"](precision="fp32", tile=8, device="cpu").upscale(U8 / np.float32(255), (32, 32))
    assert np.array_equal(out, q8(direct))
    reports = []
    coordsr.upscale(U8, scale=2, method="pretrained", tile=16, progress=reports.append)
    assert reports and all(isinstance(r, coordsr.Progress) for r in reports)
    assert reports[-1].step == reports[-1].total == 4


@pytest.mark.parametrize("kwargs, error, needle", [
    (dict(method="nope"), coordsr.SettingError, "unknown method 'nope'; valid: nearest"),
    (dict(method="wavelet"), coordsr.SettingError, "method wavelet does not upscale"),
    (dict(method="bicubic", steps=3), coordsr.SettingError, "method bicubic has no setting 'steps'"),
    (dict(method="siren", steps=0), coordsr.SettingError, "method siren: steps must be at least 1"),
    (dict(method="siren", lr=float("nan")), coordsr.SettingError, "lr must be a finite number"),
    (dict(method="bicubic", device="bogus"), coordsr.SettingError, "unknown device 'bogus'"),
    (dict(method="bicubic", scale=0), coordsr.SettingError, "scale must be a positive number"),
    (dict(method="bicubic", scale=2, size=(3, 3)), coordsr.SettingError, "not both"),
    (dict(method="bicubic", size=(0, 3)), coordsr.SettingError, "size must be (height, width)"),
    (dict(method="bicubic", output="jpeg"), coordsr.SettingError, "output must be"),
    (dict(method="bicubic", progress="yes"), coordsr.SettingError, "progress must be"),
    (dict(method="bicubic", size=(1 << 20, 1 << 20)), coordsr.CoordsrError, "memory available"),
])
def test_bad_requests_raise_the_documented_classes(kwargs, error, needle):
    with pytest.raises(error) as info:
        coordsr.upscale(U8, **kwargs)
    assert needle in str(info.value)


def test_settings_are_checked_before_the_image_is_read(tmp_path):
    with pytest.raises(coordsr.SettingError, match="unknown method"):
        coordsr.upscale(tmp_path / "missing.png", method="nope")


@pytest.mark.parametrize("image, error, needle", [
    ("missing.png", coordsr.ImageError, "no such file"),
    ("not-an-image.png", coordsr.ImageError, "not an image"),
    (np.zeros((16, 16, 5), np.uint8), coordsr.ImageError, "C in 1..4"),
    (np.zeros((16, 16), np.int32), coordsr.ImageError, "uint8, uint16 or floating-point"),
    (np.full((16, 16), np.nan, np.float32), coordsr.ImageError, "NaN"),
    (np.zeros((1, 16), np.float32), coordsr.ImageError, "at least 2x2"),
    (torch.zeros(2, 3, 16, 16), coordsr.ImageError, "tensor"),
    ([[0.0, 1.0], [1.0, 0.0]], TypeError, "expected a path"),
])
def test_bad_images_raise_the_documented_classes(tmp_path, image, error, needle):
    (tmp_path / "not-an-image.png").write_text("hello")
    if isinstance(image, str):
        image = tmp_path / image
    with pytest.raises(error, match=re.escape(needle)):
        coordsr.upscale(image, method="bicubic")


# --- fit, Field, load_field --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def field():
    return coordsr.fit(U8, **FAST_FIT)


@pytest.mark.parametrize("case", ["path", "pil RGB", "numpy float32 HW", "tensor CHW float"])
def test_fit_takes_each_input_type_and_is_the_registry_fit(tmp_path, case):
    make, pixels, _ = CASES[case]
    got = coordsr.fit(make(tmp_path), scale=2, **FAST_FIT)
    direct, _ = METHODS["hashgrid"](steps=5, until="steps", seed=0, device="cpu").fit_field(
        np.asarray(pixels, np.float32).reshape(16, 16, -1), (32, 32))
    assert isinstance(got, coordsr.Field) and got.steps == 5 and got.method == "hashgrid"
    assert got.image_size == (16, 16)
    for a, b in zip(got.module.state_dict().values(), direct.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_is_deterministic_and_renders_any_size_and_region(field):
    again = coordsr.fit(U8, **FAST_FIT)
    assert np.array_equal(field.render((16, 16)), again.render((16, 16)))
    full = field.render((32, 32))
    assert full.shape == (32, 32, 3) and full.dtype == np.float32 and 0 <= full.min() and full.max() <= 1
    assert field.render(scale=1).shape == (16, 16, 3) and field.render().shape == (64, 64, 3)
    # The right half of the picture, drawn alone, is the right half of the whole.
    assert np.allclose(field.render((32, 16), box=(0, -1, 1, 1)), full[:, 16:], atol=1e-5)
    pil = field.render((8, 12), output="pil")
    assert isinstance(pil, Image.Image) and pil.size == (12, 8) and pil.mode == "RGB"
    tensor = field.render((8, 12), output="tensor")
    assert tensor.shape == (3, 8, 12) and np.array_equal(q8(tensor.permute(1, 2, 0).numpy()), np.asarray(pil))
    assert field.channels == 3 and field.psnr > 0 and "hashgrid" in repr(field)
    assert field.settings["out_size"] == [64, 64] and field.settings["steps"] == 5


def test_render_checks_its_arguments(field):
    with pytest.raises(coordsr.SettingError, match="box"):
        field.render((8, 8), box=(1, 0, 0, 1))
    with pytest.raises(coordsr.SettingError, match="precision"):
        field.render((8, 8), precision="fp8")
    reports = []
    field.render((300, 300), progress=reports.append)
    assert reports[-1].stage == "render" and reports[-1].step == reports[-1].total == 90000


def test_save_and_load_field_round_trip_and_the_cli_reads_the_file(tmp_path, field, capsys):
    path = tmp_path / "u8.field"
    field.save(path)
    loaded = coordsr.load_field(path, device="cpu")
    assert loaded.method == "hashgrid" and loaded.steps is None and loaded.image_size == (16, 16)
    assert np.array_equal(loaded.render((24, 20)), field.render((24, 20)))
    field.save(path)  # replaces the file
    assert main(["render", str(path), "-o", str(tmp_path / "r.png"), "--size", "20x24", "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r.png")), np.asarray(field.render((24, 20), output="pil")))


def test_a_cli_field_loads(tmp_path):
    _png(tmp_path, U8, "in.png")
    assert main(["fit", str(tmp_path / "in.png"), "-o", str(tmp_path / "c.field"), "--steps", "5",
                 "--until", "steps", "--scale", "2", "-q"]) == 0
    cli_field = coordsr.load_field(tmp_path / "c.field")
    api_field = coordsr.fit(tmp_path / "in.png", scale=2, **FAST_FIT)
    assert np.array_equal(cli_field.render((16, 16)), api_field.render((16, 16)))


def test_load_field_errors(tmp_path):
    with pytest.raises(coordsr.FieldFileError, match="no such field file"):
        coordsr.load_field(tmp_path / "none.field")
    (tmp_path / "junk.field").write_bytes(b"junk" * 10)
    with pytest.raises(coordsr.FieldFileError, match="not a coordsr field file"):
        coordsr.load_field(tmp_path / "junk.field")
    with pytest.raises(coordsr.SettingError, match="device"):
        coordsr.load_field(tmp_path / "none.field", device="bogus")
    with pytest.raises(coordsr.FieldFileError, match="does not exist"):
        coordsr.fit(U8, **FAST_FIT).save(tmp_path / "no" / "x.field")


def test_fit_refuses_methods_without_a_field():
    with pytest.raises(coordsr.SettingError, match="method bicubic does not fit a field; choose one of: cppn"):
        coordsr.fit(U8, method="bicubic")


def test_fit_progress_callback_stop_early_and_cancel():
    reports = []

    def stop_now(report):
        reports.append(report)
        if report.step >= 1:  # reports come every few steps: stop at the first one
            raise coordsr.StopEarly(report.step, report.psnr)

    kept = coordsr.fit(U8, method="hashgrid", steps=200, until="steps", progress=stop_now)
    assert 1 <= kept.steps == reports[-1].step < 200 and all(isinstance(r, coordsr.Progress) for r in reports)

    def cancel(report):
        raise coordsr.Cancelled()

    with pytest.raises(coordsr.Cancelled):
        coordsr.fit(U8, method="hashgrid", steps=50, until="steps", progress=cancel)


def test_fit_consistent_is_the_clis_name(capsys):
    got = coordsr.fit(U8, fit="consistent", scale=2, **FAST_FIT)
    assert got.settings["fit"] == "consistent"
    with pytest.raises(coordsr.SettingError, match="fit must be one of"):
        coordsr.fit(U8, fit="exact", **FAST_FIT)


def test_progress_true_draws_a_bar(capsys):
    coordsr.fit(U8, progress=True, **FAST_FIT)
    assert "fit hashgrid 16x16" in capsys.readouterr().err


# --- methods -----------------------------------------------------------------------------------------


def test_methods_is_the_registry():
    everything = coordsr.methods()
    assert list(everything) == list(METHODS)
    assert list(coordsr.methods("denoise")) == list(methods_for("denoise"))
    siren = everything["siren"]
    assert isinstance(siren, coordsr.MethodInfo) and siren.task == "upscale" and siren.fits_field
    assert siren.description == METHODS["siren"].description()
    w0 = siren.settings["w0"]
    assert isinstance(w0, coordsr.Setting) and w0.default == 30.0 and w0.type == "float"
    assert w0.doc == "Frequency of the sine activations."
    assert siren.settings["steps"].doc.startswith("Most Adam steps")  # documented on the base class
    assert "device" not in siren.settings
    assert [n for n, m in everything.items() if m.default] == ["pretrained", "trained"]
    assert not everything["bicubic"].settings and not everything["bicubic"].fits_field
    with pytest.raises(coordsr.SettingError, match="unknown task"):
        coordsr.methods("sharpen")


# --- denoise -----------------------------------------------------------------------------------------


NOISY = np.clip(smooth() + np.random.default_rng(0).normal(0, 0.1, (16, 16, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("kind", ["numpy", "pil", "tensor", "path"])
def test_denoise_each_input_type(tmp_path, kind):
    noisy8 = q8(NOISY)
    image = {"numpy": noisy8, "pil": Image.fromarray(noisy8), "tensor": torch.from_numpy(noisy8).permute(2, 0, 1),
             "path": _png(tmp_path, noisy8)}[kind]
    out = coordsr.denoise(image, sigma=25, method="wavelet")
    want = wavelet(device="cpu").denoise(noisy8 / np.float32(255), 25)
    got = {"numpy": lambda o: o, "pil": np.asarray, "tensor": lambda o: o.permute(1, 2, 0).numpy(),
           "path": q8}[kind](out)
    assert np.array_equal(got, q8(want))


def test_denoise_estimates_sigma_and_checks_it():
    out = coordsr.denoise(NOISY, method="wavelet")
    assert out.dtype == np.float32 and np.array_equal(out, wavelet(device="cpu").denoise(NOISY))
    assert np.abs(out - smooth()).mean() < np.abs(NOISY - smooth()).mean()
    with pytest.raises(coordsr.SettingError, match="sigma"):
        coordsr.denoise(NOISY, sigma=500)
    with pytest.raises(coordsr.SettingError, match="method bicubic does not denoise"):
        coordsr.denoise(NOISY, method="bicubic")


# --- the README's lines --------------------------------------------------------------------------------


def readme_python() -> str:
    """The first ```python block of the README's "Python" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_python_lines_run(tmp_path, monkeypatch):
    _png(tmp_path, U8, "photo.png")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_python(), "README.md", "exec"), scope)
    assert scope["big"].shape == (64, 64, 3)
    assert (tmp_path / "photo.field").is_file()


# --- train -------------------------------------------------------------------------------------------


def test_train_writes_weights_that_pretrained_takes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        _png(data, (smooth(40 + i, 44) * 255).round().astype(np.uint8), f"{i}.png")
    reports = []
    weights = coordsr.train(data, tmp_path / "m.safetensors", steps=3, device="cpu", progress=reports.append,
                            channels=8, blocks=1, hidden=16, mlp_layers=1, patch=12, batch=2, queries=64,
                            val_every=3, val_scales=(2,), val_fraction=0.3, warmup=1, log_every=1, threads=1)
    assert weights == tmp_path / "m.safetensors" and weights.is_file()
    assert [r.step for r in reports if r.stage == "train"][-1] == 3
    assert coordsr.upscale(U8, scale=2, method="pretrained", weights=str(weights)).shape == (32, 32, 3)
    with pytest.raises(coordsr.SettingError, match="training has no setting 'speed'"):
        coordsr.train(data, tmp_path / "x.safetensors", steps=1, speed=3)
