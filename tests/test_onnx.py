"""Issue 37: ONNX export (coordsr.onnx_export), the torch-free backend (coordsr.onnx_backend) and
`coordsr upscale --backend`, `coordsr export`.

Each exported graph runs in onnxruntime on real pictures (the bundled frog, the demo photo) and
is compared with PyTorch at float32 on the same inputs: within 1/255 of the output range. Measured
on the 2-core Xeon (2026-12-08): standalone graphs 5e-7 (pretrained and drawing), the backend's
upscale against the torch method 1e-6 to 5e-6 (RGB, grey, RGB + bicubic alpha), the drawing
model's straight alpha colour up to 3e-3 where alpha is near 0 (its premultiplied output: 5e-6;
un-premultiplying divides the difference by alpha), the denoiser 2e-6.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from coordsr import onnx_backend as B  # noqa: E402
from coordsr.cli import main  # noqa: E402
from coordsr.coords import cell_size, pixel_centers  # noqa: E402
from coordsr.methods import get_method  # noqa: E402
from coordsr.onnx_export import export_runtime, export_standalone  # noqa: E402
from coordsr.samples import demo_image  # noqa: E402

DATA = Path(B.__file__).parent / "data"
BOUND = 1 / 255


def frog() -> np.ndarray:
    with Image.open(DATA / "frog_32.png") as im:
        return np.asarray(im.convert("RGBA"), np.float32) / 255


def photo() -> np.ndarray:
    return demo_image()[40:88, 100:156].astype(np.float32)  # 48 x 56 of the bundled photo


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ coordinates, resize: the same numbers

@pytest.mark.parametrize("h,w,box", [(5, 7, (-1.0, -1.0, 1.0, 1.0)), (1024, 3, (-0.25, 0.5, 0.75, 0.625))])
def test_numpy_coordinates_equal_coordsr_coords(h, w, box):
    np.testing.assert_array_equal(B.pixel_centers(h, w, box), pixel_centers(h, w, box=box).numpy())
    np.testing.assert_array_equal(B.cell_size(h, w, box), cell_size(h, w, box=box).numpy())


@pytest.mark.parametrize("size", [(40, 70), (9, 13), (48, 20)])
def test_numpy_imresize_equals_coordsr_resize(size):
    from coordsr.resize import imresize, imresize_rows

    a = np.random.default_rng(0).random((16, 24))
    t = torch.from_numpy(a)
    ref = imresize(t, size, scale=(size[0] / 16, size[1] / 24)).numpy()
    np.testing.assert_allclose(B.imresize(a, size), ref, atol=1e-12)
    np.testing.assert_allclose(B.imresize(a, size, (3, 7)), imresize_rows(t, size, (3, 7)).numpy(), atol=1e-12)


# ------------------------------------------------------------------ the exported graphs against torch

@pytest.mark.parametrize("name,image", [("pretrained", photo), ("drawing", frog)])
def test_standalone_graph_matches_torch(tmp_path, name, image):
    from coordsr.liif.model import load_weights
    from coordsr.methods.base import shipped_weights_file

    path = export_standalone(name, tmp_path / f"{name}.onnx")
    model = load_weights(shipped_weights_file(f"{name}.safetensors"))
    img = image()
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, :model.cfg.in_channels].transpose(2, 0, 1)))[None]
    coords = pixel_centers(97, 83).reshape(1, -1, 2)  # an odd output grid over the whole image
    cell = cell_size(97, 83)[None]
    with torch.no_grad():
        ref = model.query(model.encode(x), coords, cell).numpy()
    out = session(path).run(None, {"image": x.numpy(), "coords": coords.numpy(), "cell": cell.numpy()})[0]
    diff = float(np.abs(out - ref).max())
    print(f"{name} standalone graph: max |onnx - torch| = {diff:.2e}")
    assert out.shape == ref.shape and diff < BOUND


def test_denoiser_graph_matches_torch(tmp_path):
    from coordsr.denoise.net import denoise_tensor, load_denoiser
    from coordsr.methods.base import shipped_weights_file

    path = export_standalone("trained", tmp_path / "denoiser.onnx")
    model = load_denoiser(shipped_weights_file("denoiser.safetensors"))
    rng = np.random.default_rng(1)
    noisy = (photo() + rng.normal(0, 25 / 255, (48, 56, 3))).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]
    ref = denoise_tensor(model, x, 25.0).numpy()
    out = session(path).run(None, {"noisy": x.numpy(), "sigma": np.array([25.0], np.float32)})[0]
    diff = float(np.abs(out - ref).max())
    print(f"denoiser graph: max |onnx - torch| = {diff:.2e}")
    assert diff < BOUND


CASES = {
    "photo RGB": ("pretrained", photo, (130, 171)),
    "photo grey": ("pretrained", lambda: photo()[:, :, :1], (100, 61)),
    "RGBA, bicubic alpha": ("pretrained", frog, (96, 128)),
    "drawing RGBA": ("drawing", frog, (128, 128)),
    "drawing RGB": ("drawing", lambda: frog()[:, :, :3], (100, 90)),
}


@pytest.mark.parametrize("case", CASES)
def test_backend_upscale_matches_torch(case):
    name, image, size = CASES[case]
    img = image()
    ref = get_method(name)(precision="fp32", tile=64).upscale(img, size)  # tiles of 64: several, cut anywhere
    out = B.OnnxUpscaler(name, tile=64, chunk=1000).upscale(img, size)
    diff = float(np.abs(out - ref).max())
    print(f"{case}: max |onnx - torch| = {diff:.2e}")
    assert out.shape == ref.shape and out.dtype == np.float32 and diff < BOUND


def test_backend_rows_equal_its_upscale():
    from coordsr.images import quantize

    up = B.OnnxUpscaler("pretrained", tile=48, chunk=700)
    img = frog()
    rows = up.upscale_rows(img, (100, 75))
    got = np.concatenate([band for _, band in rows.bands])
    np.testing.assert_array_equal(got, quantize(up.upscale(img, (100, 75)), 8))


# ------------------------------------------------------------------ shipped graphs, stale graphs

@pytest.mark.parametrize("name", list(B.SHIPPED))
def test_shipped_graphs_are_current(name):
    """Fails when a shipped weights file changed without `coordsr export NAME --runtime`."""
    assert B.export_problem(B.shipped_weights(name)) is None


def test_a_graph_of_other_weights_is_refused(tmp_path):
    weights = tmp_path / "mine.safetensors"
    shutil.copy(B.shipped_weights("pretrained"), weights)
    assert "no ONNX export" in B.export_problem(weights)
    export_runtime(str(weights))
    assert B.export_problem(weights) is None
    assert B.OnnxUpscaler("pretrained", weights=str(weights)).upscale(photo(), (60, 70)).shape == (60, 70, 3)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert "other weights" in B.export_problem(weights)
    assert B.onnx_upscaler("pretrained", {"weights": str(weights)}, "cpu", "auto") is None  # auto: torch


# ------------------------------------------------------------------ the CLI

def test_cli_onnx_backend_never_imports_torch(tmp_path):
    """A real upscale through the CLI with the onnx backend: torch is never imported."""
    src = tmp_path / "x.png"
    Image.fromarray((frog() * 255).round().astype(np.uint8)).save(src)
    script = ("import sys\nfrom coordsr.cli import main\n"
              f"code = main(['upscale', {str(src)!r}, '-o', {str(tmp_path / 'y.png')!r}, '--size', '256x256', "
              "'--backend', 'onnx', '-q'])\n"
              "assert code == 0, code\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert Image.open(tmp_path / "y.png").size == (256, 256)


@pytest.mark.parametrize("content", ["photo", "drawing"])
def test_cli_backends_agree(tmp_path, content):
    src = tmp_path / "x.png"
    Image.fromarray((frog() * 255).round().astype(np.uint8)).save(src)
    outs = {}
    for backend in ("torch", "onnx"):
        outs[backend] = tmp_path / f"{backend}.png"
        assert main(["upscale", str(src), "-o", str(outs[backend]), "--scale", "3", "--content", content,
                     "--set", "precision=fp32", "--backend", backend, "-q"]) == 0
    a, b = (np.asarray(Image.open(p), np.int32) for p in outs.values())
    assert np.abs(a - b).max() <= 1  # 8-bit files: a rounding step at most


@pytest.mark.parametrize("args,words", [
    (["--backend", "gpu"], "--backend gpu: expected one of auto, torch, onnx"),
    (["--backend", "onnx", "--method", "bicubic"], "method bicubic has no ONNX export"),
    (["--backend", "onnx", "--set", "ensemble=2"], "ensemble > 1 runs on the torch backend"),
    (["--backend", "onnx", "--set", "precision=bf16"], "precision bf16 runs on the torch backend"),
])
def test_cli_backend_errors_are_one_line(tmp_path, capsys, args, words):
    src = tmp_path / "x.png"
    Image.fromarray((photo() * 255).round().astype(np.uint8)).save(src)
    code = main(["upscale", str(src), "-o", str(tmp_path / "y.png"), "--scale", "2", "-q", *args])
    err = capsys.readouterr().err
    assert code != 0 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "y.png").exists()


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "drawing.onnx"
    assert main(["export", "drawing", "-o", str(out), "-q"]) == 0
    meta = session(out).get_modelmeta().custom_metadata_map
    assert meta["coordsr.kind"] == "liif" and "coords (1,N,2)" in meta["coordsr.signature"]
    for args, words in [(["drawing", "-o", str(out)], "already exists"),
                        (["nothing.safetensors", "-o", str(tmp_path / "n.onnx")], "not a model name"),
                        (["drawing", "-o", str(tmp_path / "n.png")], "a .onnx file"),
                        (["drawing"], "give -o FILE.onnx")]:
        capsys.readouterr()
        assert main(["export", *args]) != 0
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
