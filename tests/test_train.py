"""Training the local implicit model: data, checkpoints, resume, guards, distributed runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from coordsr.liif import data as D
from coordsr.liif import train as T
from coordsr.liif.model import LIIFConfig, load_weights
from coordsr.resize import imresize

TINY = LIIFConfig(channels=8, blocks=1, hidden=16, mlp_layers=1)


def _write_images(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = rng.integers(40, 60, size=2)
        yy, xx = np.mgrid[0:h, 0:w] / 10.0
        img = np.stack([np.sin(xx * rng.uniform(0.5, 2) + yy), np.cos(yy * rng.uniform(0.5, 2)),
                        np.sin(xx * yy / 4)], axis=-1)
        Image.fromarray(((img * 0.5 + 0.5) * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return [str(_write_images(root / "a", 6, 0)), str(_write_images(root / "b", 4, 1))]


def tiny_cfg(folders, out: Path, **kw) -> T.TrainConfig:
    base = dict(data=folders, out=str(out), model=TINY, patch=12, batch=2, queries=64, steps=6,
                warmup=2, val_fraction=0.3, val_every=3, val_scales=(2,), ckpt_every=2, log_every=1,
                threads=1, device="cpu")
    base.update(kw)
    return T.TrainConfig(**base)


def test_split_is_deterministic_by_name():
    files = [Path(f"/x/{i}.png") for i in range(400)]
    train, val = D.split(files, 0.1)
    assert 20 < len(val) < 60 and len(train) + len(val) == 400
    moved = [Path("/elsewhere") / p.name for p in reversed(files)]
    assert {p.name for p in D.split(moved, 0.1)[1]} == {p.name for p in val}


def test_batch_is_deterministic_and_lr_is_matlab_bicubic():
    img = (torch.rand(3, 50, 60) * 255).to(torch.uint8)
    kw = dict(batch=3, patch=10, scale_min=1.0, scale_max=4.0, queries=20, seed=5)
    a, b = D.make_batch([img], step=7, **kw), D.make_batch([img], step=7, **kw)
    torch.testing.assert_close(a.lr, b.lr, rtol=0, atol=0)
    assert not torch.equal(a.lr, D.make_batch([img], step=8, **kw).lr)
    assert not torch.equal(a.lr, D.make_batch([img], step=7, rank=1, **kw).lr)
    assert a.lr.shape == (3, 3, 10, 10) and a.coords.shape == (3, 20, 2) and a.target.shape == (3, 20, 3)
    # A crop of exactly 25 pixels (scale 2.5), no augmentation: LR is imresize of the crop,
    # and each target is the HR pixel whose centre is at the sampled coordinate.
    g = torch.Generator().manual_seed(0)
    img = (torch.rand(3, 25, 25) * 255).to(torch.uint8)
    orig_aug = D._augment
    D._augment = lambda x, code: x
    try:
        lr, coords, cell, target = D.sample_pair(img, 10, 2.5, g, 30)
    finally:
        D._augment = orig_aug
    hr = img.float() / 255
    torch.testing.assert_close(lr, imresize(hr, (10, 10), scale=0.4).clamp(0, 1))
    cols = ((coords[:, 0] + 1) * 25 / 2 - 0.5).round().long()
    rows = ((coords[:, 1] + 1) * 25 / 2 - 0.5).round().long()
    torch.testing.assert_close(target, hr[:, rows, cols].t())
    torch.testing.assert_close(cell, torch.tensor([2 / 25, 2 / 25]))


def test_train_checkpoint_and_resume(folders, tmp_path):
    out = tmp_path / "m.safetensors"
    res = T.train(tiny_cfg(folders, out))
    assert res.step == 6 and res.best_psnr is not None and res.history
    ckpt = T.load_checkpoint(out.with_suffix(".ckpt"))
    assert ckpt["step"] == 6 and "optimizer" in ckpt and "rng" in ckpt
    assert load_weights(out).cfg == TINY  # exported weights load on their own
    res2 = T.train(tiny_cfg(folders, out, steps=10, resume=True))
    assert res2.step == 10
    assert T.load_checkpoint(out.with_suffix(".ckpt"))["step"] == 10


def test_nan_loss_stops_and_keeps_last_good_checkpoint(folders, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    calls = {"n": 0}
    real = T.loss_fn

    def poisoned(pred, target):
        calls["n"] += 1
        loss = real(pred, target)
        return loss * float("nan") if calls["n"] == 6 else loss  # step index 5

    monkeypatch.setattr(T, "loss_fn", poisoned)
    with pytest.raises(T.TrainingDiverged):
        T.train(tiny_cfg(folders, out, steps=10, val_every=100))
    ckpt = T.load_checkpoint(out.with_suffix(".ckpt"))
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_ctrl_c_writes_a_usable_checkpoint(folders, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    calls = {"n": 0}
    real = T.loss_fn

    def interrupted(pred, target):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(pred, target)

    monkeypatch.setattr(T, "loss_fn", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.train(tiny_cfg(folders, out, steps=10, ckpt_every=100, val_every=100))
    assert T.load_checkpoint(out.with_suffix(".ckpt"))["step"] == 3
    monkeypatch.setattr(T, "loss_fn", real)
    resumed = T.train(tiny_cfg(folders, out, steps=10, ckpt_every=100, val_every=100, resume=True))
    assert resumed.step == 10
    # the interrupted-then-resumed run ends with the weights of an uninterrupted one
    straight = T.train(tiny_cfg(folders, tmp_path / "s.safetensors", steps=10, ckpt_every=100, val_every=100))
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, atol=1e-6, rtol=1e-5)


TINY_ARGV = ["--patch", "12", "--batch", "2", "--channels", "8", "--blocks", "1", "--hidden", "16",
             "--mlp-layers", "1", "--val-every", "2", "--threads", "1", "--device", "cpu"]


class _Pwn:
    """The issue's recipe: a pickle that runs a shell command when it is loaded."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_checkpoint_is_safetensors_and_resume_is_exact_across_rng_states(folders, tmp_path):
    """No pickle in a checkpoint; python's, numpy's and torch's generators come back as they were."""
    import random

    out = tmp_path / "m.safetensors"
    T.train(tiny_cfg(folders, out, steps=2))
    ckpt = out.with_suffix(".ckpt")
    assert ckpt.read_bytes()[8:9] == b"{"  # a safetensors header, not a zip of pickles
    state = T.load_checkpoint(ckpt)
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    from coordsr.liif.model import LIIF

    model = LIIF(T.checked_model_config(ckpt, LIIFConfig, LIIF, state))
    opt = torch.optim.Adam(model.parameters())
    T.restore_state(ckpt, model, opt, state)
    a = (torch.rand(3), np.random.rand(3), random.random())
    torch.set_rng_state(state["rng"]["torch"]), np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert opt.state_dict()["state"][0]["step"] == 2  # Adam's state came back too


def test_a_crafted_pickle_checkpoint_runs_no_code(folders, tmp_path, capsys):
    """``--resume`` on a torch.save file whose unpickling would run a command: refused with one
    line, exit 2, and the command never runs."""
    out, pwned = tmp_path / "m.safetensors", tmp_path / "PWNED"
    torch.save({"x": _Pwn(pwned)}, out.with_suffix(".ckpt"))
    assert T.main(["--data", *folders, "--out", str(out), "--steps", "2", "--resume", *TINY_ARGV]) == 2
    err = capsys.readouterr().err.strip()
    assert not pwned.exists()
    assert len(err.splitlines()) == 1 and "pickle" in err and str(out.with_suffix(".ckpt")) in err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"junk", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}      ", b""])
def test_a_junk_checkpoint_is_one_line(folders, tmp_path, capsys, content):
    out = tmp_path / "m.safetensors"
    out.with_suffix(".ckpt").write_bytes(content)
    assert T.main(["--data", *folders, "--out", str(out), "--steps", "2", "--resume", *TINY_ARGV]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out.with_suffix(".ckpt")) in err, err


def test_a_checkpoint_whose_config_lies_is_refused_before_allocating(folders, tmp_path, capsys):
    """A valid checkpoint whose config claims a huge model (or a wrong type) is refused from the
    config and the stored shapes, never built."""
    import json
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "m.safetensors"
    T.train(tiny_cfg(folders, out, steps=2))
    ckpt = out.with_suffix(".ckpt")
    with safe_open(str(ckpt), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for config in ({**json.loads(meta["config"]), "channels": 1_000_000}, {"channels": "eight"},
                   {**json.loads(meta["config"]), "nonsense": 1}):
        save_file(tensors, str(ckpt), metadata={**meta, "config": json.dumps(config)})
        assert T.main(["--data", *folders, "--out", str(out), "--steps", "4", "--resume", *TINY_ARGV]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "config" in err, err
    save_file(tensors, str(ckpt), metadata={**meta, "rng_python": "[3, [1, 2], null]"})
    assert T.main(["--data", *folders, "--out", str(out), "--steps", "4", "--resume", *TINY_ARGV]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_main_returns_zero(folders, tmp_path):
    out = tmp_path / "m.safetensors"
    argv = ["--data", *folders, "--out", str(out), "--steps", "2", "--patch", "12", "--batch", "2",
            "--channels", "8", "--blocks", "1", "--hidden", "16", "--mlp-layers", "1", "--val-every", "2",
            "--threads", "1", "--device", "cpu"]
    assert T.main(argv) == 0 and out.exists()


def test_train_in_bf16_keeps_float32_weights(folders, tmp_path):
    out = tmp_path / "m.safetensors"
    argv = ["--data", *folders, "--out", str(out), "--steps", "2", "--patch", "12", "--batch", "2",
            "--channels", "8", "--blocks", "1", "--hidden", "16", "--mlp-layers", "1", "--val-every", "2",
            "--threads", "1", "--device", "cpu", "--precision", "bf16"]
    assert T.main(argv) == 0
    ckpt = T.load_checkpoint(out.with_suffix(".ckpt"))
    assert ckpt["step"] == 2 and ckpt["train_config"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, folders, out: str, result_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    res = T.train(tiny_cfg(folders, Path(out), steps=4, val_every=4, ckpt_every=2))
    torch.save(res.model.state_dict(), Path(result_dir) / f"rank{rank}.pt")


def test_distributed_two_gloo_processes_end_identical(folders, tmp_path):
    out = tmp_path / "ddp.safetensors"
    mp.spawn(_ddp_worker, args=(2, _free_port(), folders, str(out), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert T.load_checkpoint(out.with_suffix(".ckpt"))["step"] == 4
    # and the two ranks did not train on the same batches as a single process would
    single = T.train(tiny_cfg(folders, tmp_path / "one.safetensors", steps=4, val_every=4))
    assert any(not torch.equal(single.model.state_dict()[k], a[k]) for k in a)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_to_the_command_writes_a_checkpoint(folders, tmp_path, sig):
    """A real signal to ``python -m coordsr.liif.train`` (started with SIGINT ignored, as ``cmd &``
    from a script starts it) ends the run with a checkpoint, says so, and exits 130 (SIGINT) or 143."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "coordsr.liif.train", "--data", *folders, "--out", str(out),
           "--steps", "100000", "--patch", "12", "--batch", "2", "--channels", "8", "--blocks", "1",
           "--hidden", "16", "--mlp-layers", "1", "--val-every", "100000", "--ckpt-every", "100000",
           "--log-every", "1", "--threads", "1", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline().startswith("step 1/")  # training has started
        time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))
        rest, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == (130 if sig == "SIGINT" else 143), rest
    assert f"checkpoint written to {out.with_suffix('.ckpt')}" in rest
    assert T.load_checkpoint(out.with_suffix(".ckpt"))["step"] >= 1


def test_grow_keeps_the_function_and_every_new_weight_learns():
    """A wider, deeper model grown from a trained one computes the same colours at the start,
    and the loss reaches the new channels and blocks (none is stuck at zero gradient)."""
    from coordsr.liif.grow import grow
    from coordsr.liif.model import LIIF

    torch.manual_seed(1)
    small = LIIF(TINY)
    for p in small.parameters():  # a "trained" model: no zero weights anywhere
        torch.nn.init.normal_(p, std=0.2)
    big = grow(small, LIIFConfig(channels=12, blocks=3, hidden=16, mlp_layers=1))
    x = torch.rand(2, 3, 9, 11)
    coords, cell = torch.rand(2, 50, 2) * 2 - 1, torch.full((2, 2), 0.1)
    with torch.no_grad():
        torch.testing.assert_close(big.query(big.encode(x), coords, cell),
                                   small.query(small.encode(x), coords, cell), atol=1e-5, rtol=0)
    loss = big.query(big.encode(x), coords, cell).square().mean()
    loss.backward()
    # the new blocks' first convs sit behind a zero conv: they learn from the second step on
    two_steps = {f"encoder.body.{b}.conv1.{w}" for b in (1, 2) for w in ("weight", "bias")}
    for name, p in big.named_parameters():
        if name not in two_steps:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="grow"):
        grow(big, TINY)


def test_train_from_init_starts_from_those_weights(folders, tmp_path):
    """--init: step 0 of the run is the given model, grown; the run then trains it."""
    first = tmp_path / "a.safetensors"
    T.train(tiny_cfg(folders, first, steps=2, val_every=2))
    grown = tmp_path / "b.safetensors"
    res = T.train(tiny_cfg(folders, grown, steps=0, init=str(first),
                           model=LIIFConfig(channels=10, blocks=2, hidden=16, mlp_layers=1)))
    x, coords, cell = torch.rand(1, 3, 8, 8), torch.rand(1, 20, 2) * 2 - 1, torch.full((1, 2), 0.1)
    a, b = load_weights(first), res.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(b.query(b.encode(x), coords, cell), a.query(a.encode(x), coords, cell),
                                   atol=1e-3, rtol=0)  # float16 file
    assert b.cfg.channels == 10 and b.cfg.blocks == 2


def test_grow_into_lte_keeps_the_encoder_and_starts_the_new_decoder_at_bicubic():
    from coordsr.liif.grow import grow
    from coordsr.liif.model import LIIF, upscale
    from coordsr.resize import imresize

    torch.manual_seed(2)
    small = LIIF(TINY)
    for p in small.parameters():
        torch.nn.init.normal_(p, std=0.2)
    lte = grow(small, LIIFConfig(channels=8, blocks=2, hidden=24, mlp_layers=2, decoder="lte"))
    for name, p in small.encoder.state_dict().items():
        torch.testing.assert_close(lte.encoder.state_dict()[name][tuple(slice(0, n) for n in p.shape)], p)
    x = torch.rand(1, 3, 10, 10)
    torch.testing.assert_close(upscale(lte.eval(), x, (20, 20)),
                               upscale(LIIF(lte.cfg).eval(), x, (20, 20)), atol=1e-5, rtol=0)  # bicubic
    with pytest.raises(ValueError, match="grow"):  # and not back
        grow(lte, TINY)


def test_main_trains_an_lte_decoder(folders, tmp_path):
    out = tmp_path / "lte.safetensors"
    assert T.main(["--data", *folders, "--out", str(out), "--steps", "2", "--val-every", "2", "--threads", "1",
                   "--channels", "8", "--blocks", "1", "--hidden", "16", "--mlp-layers", "1",
                   "--decoder", "lte", "--patch", "12", "--batch", "2"]) == 0
    assert load_weights(out).cfg.decoder == "lte"
    assert T.main(["--data", *folders, "--decoder", "ltx"]) == 2
