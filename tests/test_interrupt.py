"""Issue 11, items 1 and 5: SIGINT and SIGTERM end a command honestly.

Real signals: sent to this process from inside a fit or a write (in-process ``main``, so the
moment is exact), and to a real ``coordsr`` process (the shell's view: status and stderr).
Each must give one line, 130 (SIGINT) or 143 (SIGTERM), no output file and no temporary file;
``coordsr train`` also says whether it wrote a checkpoint, truthfully.
"""

import importlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from coordsr.cli import main
from coordsr.interrupt import Interrupted, stop_on_signals

from test_methods import smooth_image

SIGNALS = [("SIGINT", 130, "coordsr: interrupted"), ("SIGTERM", 143, "coordsr: terminated (SIGTERM)")]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray((smooth_image(12, 16, 3) * 255).astype(np.uint8)).save(path)
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.suffix in (".field", ".ckpt"))


def test_stop_on_signals_raises_once_and_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with stop_on_signals() as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert info.value.exit_code == 143 and raised == [info.value]
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("sig, status, line", SIGNALS)
def test_signal_during_a_fit(tmp_path, photo, capsys, monkeypatch, sig, status, line):
    """The signal arrives at step 3 of the fit, from a real kill() of this process."""
    fit_module = importlib.import_module("coordsr.fit")  # coordsr.fit is the public function

    real = fit_module.psnr_from_mse
    calls = {"n": 0}

    def psnr_then_signal(mse):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), getattr(signal, sig))
        return real(mse)

    monkeypatch.setattr(fit_module, "psnr_from_mse", psnr_then_signal)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under `nohup ... &`
    for command, out in (("upscale", "out.png"), ("fit", "out.field")):
        calls["n"] = 0
        code = main([command, str(photo), "-o", str(tmp_path / out), "--method", "hashgrid", "--steps", "500",
                     "--set", "target_psnr=99", "-q"])  # PSNR checked every step
        err = capsys.readouterr().err
        assert code == status and err.strip().splitlines() == [line], err
        assert not (tmp_path / out).exists() and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


@pytest.mark.parametrize("sig, status, line", SIGNALS)
def test_signal_during_the_write_leaves_no_temporary_file(tmp_path, photo, capsys, monkeypatch, sig, status, line):
    import coordsr.images as images

    real = images.os.fsync

    def fsync_then_signal(fd):
        real(fd)
        os.kill(os.getpid(), getattr(signal, sig))

    monkeypatch.setattr(images.os, "fsync", fsync_then_signal)
    code = main(["upscale", str(photo), "-o", str(tmp_path / "out.png"), "--method", "bicubic", "-q"])
    err = capsys.readouterr().err
    assert code == status and err.strip().splitlines() == [line], err
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


def _start(args, cwd):
    """A real ``coordsr`` process; returns once its main() is about to install the handlers."""
    code = "import sys; from coordsr.cli import main; print('ready', flush=True); sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("sig, status, line", SIGNALS)
def test_signal_to_a_real_upscale_process(tmp_path, photo, sig, status, line):
    # --until steps: the default stop would end this small fit before the signal comes
    proc = _start(["upscale", photo, "-o", tmp_path / "out.png", "-m", "siren", "--steps", "100000",
                   "--until", "steps", "--set", "hidden=16", "-q"], tmp_path)
    try:
        time.sleep(1.5)  # imports, then the fit
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert err.strip().splitlines() == [line], err
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


# --- coordsr train -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    for k in range(4):
        Image.fromarray((smooth_image(48, 40, 3, seed=k) * 255).astype(np.uint8)).save(folder / f"im{k}.png")
    return folder


def tiny_train_args(folder, out):
    return ["train", "--data", str(folder), "--out", str(out), "--steps", "100000", "--patch", "12",
            "--batch", "2", "--channels", "8", "--blocks", "1", "--hidden", "16", "--mlp-layers", "1",
            "--val-every", "100000", "--ckpt-every", "100000", "--log-every", "1", "--threads", "1",
            "--device", "cpu"]


def test_train_interrupted_while_loading_says_no_checkpoint(tmp_path, train_folder, capsys, monkeypatch):
    from coordsr.liif import data as D

    real = D.load_rgb
    monkeypatch.setattr(D, "load_rgb", lambda p: (os.kill(os.getpid(), signal.SIGINT), real(p))[1])
    out = tmp_path / "m.safetensors"
    code = main(tiny_train_args(train_folder, out))
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip().splitlines() == [
        "coordsr train: interrupted; stopped while loading the training images: no checkpoint written"], err
    assert leftovers(tmp_path) == [] and not out.exists()


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_to_a_real_train_process_writes_and_says_checkpoint(tmp_path, train_folder, sig, status):
    from coordsr.liif import train as T

    out = tmp_path / "m.safetensors"
    proc = _start(tiny_train_args(train_folder, out), tmp_path)
    try:
        while not proc.stdout.readline().startswith("step 2/"):  # training has started
            assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    ckpt = out.with_suffix(".ckpt")
    assert proc.returncode == status, err
    lines = err.strip().splitlines()
    what = "interrupted" if sig == "SIGINT" else "terminated (SIGTERM)"
    assert len(lines) == 1 and lines[0].startswith(f"coordsr train: {what}; stopped at step "), err
    assert f"checkpoint written to {ckpt}" in lines[0]
    assert T.load_checkpoint(ckpt)["step"] >= 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_train_usage_errors_are_one_line(capsys):
    code = main(["train", "--steps", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "coordsr train: the following arguments are required: --data"], err
