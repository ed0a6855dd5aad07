"""The trained denoiser: network shapes, weights files, the `trained` method, its training loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr.cli import main
from coordsr.denoise import net as N
from coordsr.denoise import train as T
from coordsr.denoise.protocol import add_noise, psnr_rgb
from coordsr.errors import FieldFileError
from coordsr.liif.model import LIIF, LIIFConfig, save_weights
from coordsr.methods import METHODS
from coordsr.methods.denoisers import shipped_denoiser, trained

from test_methods import smooth_image

TINY = N.DenoiseNetConfig(channels=8, blocks=1)


def _tiny_model(seed=0) -> N.DenoiseNet:
    torch.manual_seed(seed)
    model = N.DenoiseNet(TINY)
    torch.nn.init.normal_(model.out.weight, std=0.05)  # not the identity it starts as
    return model.eval()


# --- the network -------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w", [(16, 16), (15, 9), (2, 3)])
def test_shapes_any_size_and_batch(h, w):
    model = _tiny_model()
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        out = model(x, torch.tensor([10.0, 40.0]))
    assert out.shape == (2, 3, h, w) and out.dtype == torch.float32


def test_an_untrained_network_is_the_identity():
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(N.DenoiseNet(TINY)(x, torch.tensor([25.0])), x)


def test_the_sigma_map_matters_and_the_encoder_is_the_upscalers():
    from coordsr.liif.model import Encoder

    model = _tiny_model()
    assert isinstance(model.encoder, Encoder)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(model(x, torch.tensor([5.0])), model(x, torch.tensor([45.0])))


@pytest.mark.parametrize("tile", [6, 8, 10])
def test_tiles_give_the_one_pass_result(tile):
    model = _tiny_model()
    x = torch.rand(1, 3, 23, 19)
    whole = N.denoise_tensor(model, x, 25)
    tiled = N.denoise_tensor(model, x, 25, tile=tile)
    assert torch.allclose(whole, tiled, atol=1e-5)


# --- weights files -----------------------------------------------------------------------------------

def test_weights_round_trip(tmp_path):
    model = _tiny_model()
    path = tmp_path / "d.safetensors"
    N.save_denoiser(model, path, extra={"step": "7"})
    back = N.load_denoiser(path)
    assert back.cfg == model.cfg
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        assert torch.equal(back(x, torch.tensor([20.0])), model(x, torch.tensor([20.0])))
    assert path.read_bytes()[8:9] == b"{"  # safetensors: a length, then a JSON header (no pickle)


def test_other_files_are_refused(tmp_path):
    liif = tmp_path / "liif.safetensors"
    save_weights(LIIF(LIIFConfig(channels=4, blocks=1, hidden=8, mlp_layers=1)), liif)
    with pytest.raises(FieldFileError, match="coordsr.denoiser"):
        N.load_denoiser(liif)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(FieldFileError, match="cannot read"):
        N.load_denoiser(junk)


def test_shipped_weights_are_small_safetensors_and_packaged():
    path = Path(shipped_denoiser())
    assert path.stat().st_size < 2_000_000
    model = N.load_denoiser(path)
    assert sum(p.numel() for p in model.parameters()) < 500_000
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"weights/*"' in pyproject


# --- the registered method ---------------------------------------------------------------------------

def test_registered_with_a_description():
    assert METHODS["trained"] is trained and trained.task == "denoise" and trained.family == "pretrained"
    assert trained.description() and "\n" not in trained.description()


@pytest.mark.parametrize("sigma", [25, None])  # given, and blind
def test_trained_removes_noise(sigma):
    clean = smooth_image(64, 64, 3)
    noisy = add_noise(clean, 25, seed=0)
    out = trained(device="cpu").denoise(noisy, sigma)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert psnr_rgb(out, clean) > psnr_rgb(noisy, clean) + 5


def test_grey_is_denoised_too():
    clean = smooth_image(48, 48, 1)
    noisy = add_noise(clean, 25, seed=1)
    out = trained(device="cpu").denoise(noisy, 25)
    assert out.shape == clean.shape and psnr_rgb(out, clean) > psnr_rgb(noisy, clean) + 3


def test_bad_settings_and_inputs_are_refused(tmp_path):
    with pytest.raises(FieldFileError, match="no such weights file"):
        trained(weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="precision"):
        trained(precision="fp8")
    with pytest.raises(ValueError, match="tile"):
        trained(tile=-1)
    with pytest.raises(ValueError, match="sigma"):
        trained().denoise(np.zeros((8, 8, 3)), 101)


def test_cli_denoise_with_trained_and_a_bad_weights_file(tmp_path, capsys):
    src, out = tmp_path / "noisy.png", tmp_path / "out.png"
    clean = smooth_image(40, 48, 3)
    Image.fromarray((np.clip(add_noise(clean, 25, seed=0), 0, 1) * 255).round().astype(np.uint8)).save(src)
    assert main(["denoise", str(src), "-o", str(out), "--method", "trained", "--sigma", "25", "-q"]) == 0
    assert np.asarray(Image.open(out)).shape == (40, 48, 3)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    bad = tmp_path / "bad.png"
    capsys.readouterr()
    code = main(["denoise", str(src), "-o", str(bad), "--method", "trained", "--set", f"weights={junk}", "-q"])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and not bad.exists()


# --- training -----------------------------------------------------------------------------------------

def _write_images(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = rng.integers(20, 30, size=2)
        img = smooth_image(int(h), int(w), 3, seed=int(rng.integers(100)))
        Image.fromarray((img * 255).round().astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def tiny_cfg(folder: Path, out: Path, **kw) -> T.DenoiseTrainConfig:
    base = dict(data=[str(folder)], out=str(out), model=TINY, patch=12, batch=2, steps=2, warmup=1,
                val_fraction=0.3, val_crop=16, val_every=1, ckpt_every=1, log_every=1, threads=1, device="cpu")
    base.update(kw)
    return T.DenoiseTrainConfig(**base)


def test_batches_are_deterministic_and_noise_is_in_range():
    img = (torch.rand(3, 30, 40) * 255).to(torch.uint8)
    kw = dict(batch=4, patch=8, sigma_min=0.0, sigma_max=50.0, seed=3)
    a, b = T.make_batch([img], step=5, **kw), T.make_batch([img], step=5, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    noisy, clean, sigma = a
    assert noisy.shape == clean.shape == (4, 3, 8, 8) and sigma.shape == (4,)
    assert ((sigma >= 0) & (sigma <= 50)).all()
    assert not torch.equal(T.make_batch([img], step=6, **kw)[0], noisy)


def test_stored_noise_is_clipped_and_8bit_and_leaves_other_batches_alone():
    img = (torch.rand(3, 30, 40) * 255).to(torch.uint8)
    kw = dict(batch=4, patch=8, sigma_min=40.0, sigma_max=50.0, seed=3, step=5)
    floats = T.make_batch([img], **kw)
    assert all(torch.equal(x, y) for x, y in zip(floats, T.make_batch([img], stored_share=0.0, **kw)))
    stored, clean, _ = T.make_batch([img], stored_share=1.0, **kw)
    assert torch.equal(clean, floats[1]) and torch.equal(stored, (floats[0].clamp(0, 1) * 255).round() / 255)
    assert floats[0].min() < 0 or floats[0].max() > 1  # float noise strays outside [0, 1]; stored noise cannot


def test_stored_validation_scores_both_ways(tmp_path):
    data = _write_images(tmp_path / "data", 6, 0)
    res = T.train(tiny_cfg(data, tmp_path / "m.safetensors", steps=1, stored_share=0.5, val_sigmas=(25.0,)))
    assert set(res.history[-1]["psnr"]) == {"25", "25/8bit"}
    with pytest.raises(T.CoordsrError, match="stored_share"):
        T.train(tiny_cfg(data, tmp_path / "n.safetensors", stored_share=2.0))


def test_init_starts_from_trained_weights(tmp_path):
    from coordsr.denoise.net import load_denoiser, save_denoiser

    data = _write_images(tmp_path / "data", 6, 0)
    first = T.train(tiny_cfg(data, tmp_path / "a" / "m.safetensors", steps=2))
    save_denoiser(first.model, tmp_path / "w.safetensors")
    again = T.train(tiny_cfg(data, tmp_path / "b" / "m.safetensors", steps=1, lr=1e-12, warmup=0,
                             init=str(tmp_path / "w.safetensors")))
    w = load_denoiser(tmp_path / "w.safetensors").state_dict()
    assert all(torch.allclose(v, w[k], atol=1e-6) for k, v in again.model.state_dict().items())


def test_two_steps_then_resume_equals_one_run(tmp_path):
    data = _write_images(tmp_path / "data", 6, 0)
    whole = T.train(tiny_cfg(data, tmp_path / "a" / "m.safetensors", steps=4))
    first = T.train(tiny_cfg(data, tmp_path / "b" / "m.safetensors", steps=2))
    assert first.step == 2
    ckpt = tmp_path / "b" / "m.ckpt.safetensors"
    assert ckpt.read_bytes()[8:9] == b"{"  # the checkpoint is safetensors too: no pickle
    resumed = T.train(tiny_cfg(data, tmp_path / "b" / "m.safetensors", steps=4, resume=True))
    assert resumed.step == 4
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.best_psnr is not None and (tmp_path / "b" / "m.safetensors").is_file()
    N.load_denoiser(tmp_path / "b" / "m.safetensors")  # the exported best weights load


def test_train_denoiser_command(tmp_path, capsys):
    data = _write_images(tmp_path / "data", 4, 1)
    out = tmp_path / "m.safetensors"
    code = main(["train-denoiser", "--data", str(data), "--out", str(out), "--steps", "1", "--patch", "8",
                 "--batch", "1", "--channels", "4", "--blocks", "1", "--val-crop", "8", "--threads", "1"])
    assert code == 0 and out.is_file()
    capsys.readouterr()
    assert main(["train-denoiser", "--data", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not found" in err
    assert main(["train-denoiser", "--data", str(data), "--patch", "7"]) != 0


@pytest.mark.parametrize("kind", ["pickle", "junk", "lying config"])
def test_resume_from_a_crafted_checkpoint_is_one_line_and_runs_no_code(tmp_path, capsys, kind):
    """``train-denoiser --resume`` on a pickle whose loading would run a command, on junk, or on a
    real checkpoint whose config claims another model: one line, exit 2, nothing run."""
    import json
    import os

    from safetensors import safe_open
    from safetensors.torch import save_file

    data = _write_images(tmp_path / "data", 4, 1)
    out, pwned = tmp_path / "m.safetensors", tmp_path / "PWNED"
    ckpt = tmp_path / "m.ckpt.safetensors"
    argv = ["train-denoiser", "--data", str(data), "--out", str(out), "--steps", "2", "--patch", "8", "--batch", "1",
            "--channels", "8", "--blocks", "1", "--val-crop", "8", "--threads", "1", "--resume"]
    if kind == "pickle":
        class Pwn:
            def __reduce__(self):
                return (os.system, (f"touch {pwned}",))

        torch.save({"x": Pwn()}, ckpt)
    elif kind == "junk":
        ckpt.write_bytes(b"\x00" * 40)
    else:
        T.train(tiny_cfg(data, out, steps=1))
        with safe_open(str(ckpt), framework="pt") as f:
            meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        save_file(tensors, str(ckpt), metadata={**meta, "config": json.dumps({"channels": 4096, "blocks": 64})})
        out.unlink()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(ckpt) in err, err
    assert not pwned.exists() and not out.exists()
