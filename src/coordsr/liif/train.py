"""Train the local implicit model: ``train(TrainConfig(data=[...]))``, or from a shell

    python -m coordsr.liif.train --data T91 BSD200 --out model.safetensors --steps 20000
    torchrun --nproc_per_node 2 -m coordsr.liif.train --data T91 BSD200 --out model.safetensors

Random crops at random non-integer scales in [scale_min, scale_max], LR made with the
benchmark's MATLAB-style bicubic, flips and 90-degree rotations, L1 loss on sampled HR pixels.
Checkpoints (model, optimizer, step, RNG: one safetensors file, no pickle, so a crafted checkpoint
runs no code) are written atomically every ``ckpt_every`` steps and
when SIGINT or SIGTERM stops a run that has started its steps (``TrainingInterrupted`` says
whether one was written); ``resume=True`` continues from the last one. A NaN/inf loss stops the run before the
weights are touched, leaving the last good checkpoint. Validation Y-PSNR on a held-out part of
the training folders (split by file-name hash) runs every ``val_every`` steps; the best weights
are exported to ``out`` (safetensors, loadable by ``load_weights`` and the ``pretrained`` method).
Under torchrun (WORLD_SIZE/RANK set) it runs DistributedDataParallel: gloo on CPU, nccl on CUDA,
each rank draws its own batches, only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from coordsr.errors import CoordsrError, FieldFileError
from coordsr.liif import data as D
from coordsr.liif.model import (DECODERS, LIIF, LIIFConfig, load_weights, read_weights, save_weights, upscale,
                               write_weights)
from coordsr.memory import reusing_memory
from coordsr.precision import autocast, resolve_precision
from coordsr.progress import Progress, ProgressCallback

CHECKPOINT_VERSION = 2


class TrainingDiverged(CoordsrError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """A signal (or Ctrl-C) stopped training; says truthfully what was saved on the way out."""

    def __init__(self, cause: KeyboardInterrupt, step: int | None, checkpoint: Path | None):
        super().__init__(*cause.args)
        self.cause = cause
        self.step = step
        """Steps done when it stopped; None: stopped before training began (loading images)."""
        self.checkpoint = checkpoint
        """The checkpoint written on the way out, or None when none was."""

    def describe(self) -> str:
        if self.step is None:
            return "stopped while loading the training images: no checkpoint written"
        if self.checkpoint is None:
            return f"stopped at step {self.step}: no checkpoint written by this process"
        return f"stopped at step {self.step}: checkpoint written to {self.checkpoint} (continue with --resume)"


@dataclass
class RunConfig:
    """What every training run of a shipped model has: its files, its schedule (warm-up, then
    cosine: ``learning_rate``), its validation and checkpoint cadence, and the machine it uses.
    ``TrainConfig`` (the upscaler) and the denoiser's ``DenoiseTrainConfig`` add their data and
    model, and set their own defaults."""

    data: list[str] = field(default_factory=list)
    """Folders of clean training images (never the benchmark sets)."""
    out: str = "model.safetensors"
    """Where the best weights (by validation PSNR) are exported, as safetensors."""
    checkpoint: str | None = None
    """Training checkpoint path; default: ``out`` with ``checkpoint_suffix``."""
    steps: int = 10_000
    """Total optimizer steps (a resumed run continues up to this count)."""
    lr: float = 4e-4
    """Peak Adam learning rate."""
    warmup: int = 100
    """Steps of linear warm-up before the cosine decay."""
    lr_min: float = 0.02
    """Final learning rate as a fraction of ``lr`` (cosine decay)."""
    seed: int = 0
    """Seed of the weights and of the batches (each rank and step derive theirs from it)."""
    resume: bool = False
    """Continue from ``checkpoint`` when it exists."""
    val_fraction: float = 0.05
    """Share of the training files held out for validation (by file-name hash)."""
    val_every: int = 500
    """Validate (and export the best weights) every this many steps and at the end."""
    ckpt_every: int = 250
    """Write the checkpoint every this many steps."""
    log_every: int = 50
    """Report progress every this many steps."""
    threads: int | None = 2
    """torch CPU threads per process (None: torch's default)."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda'."""
    precision: str = "fp32"
    """Compute precision of the forward pass: 'fp32', 'bf16' (bfloat16 autocast, float32 weights
    and optimizer state) or 'auto' (bf16 where this machine runs it faster: coordsr.precision)."""

    checkpoint_suffix: ClassVar[str] = ".ckpt"

    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint) if self.checkpoint else Path(self.out).with_suffix(self.checkpoint_suffix)


@dataclass
class TrainConfig(RunConfig):
    """Everything one training run of the upscaler depends on (``RunConfig`` and these)."""

    model: LIIFConfig = field(default_factory=LIIFConfig)
    """Architecture (ignored when resuming: the checkpoint's is used)."""
    init: str | None = None
    """Weights file to start from instead of a random model, grown to ``model`` when that is
    wider or deeper (same function at the start: :mod:`coordsr.liif.grow`); ignored on resume."""
    patch: int = 32
    """Side of the LR training crop, in pixels."""
    batch: int = 16
    """Crops per step and per process."""
    queries: int | None = None
    """HR pixels sampled per crop; default patch**2."""
    scale_min: float = 1.0
    """Smallest training scale factor."""
    scale_max: float = 4.0
    """Largest training scale factor (uniform, non-integer scales in between)."""
    val_scales: tuple[int, ...] = (2, 3, 4)
    """Scales of the validation PSNR."""
    degradation: str = "clean"
    """'clean': LR = bicubic of the HR crop (the benchmark's operator); 'real': LR through a random
    chain of blur, resizing, noise and JPEG/WebP (coordsr.degradations), the blind model's
    training, validated on the degraded benchmark's kinds (``data.VALIDATION_DEGRADATIONS``)."""


@dataclass
class TrainResult:
    model: LIIF
    """The trained model (every rank holds identical weights)."""
    step: int
    """Steps done in total, including earlier runs when resumed."""
    best_psnr: float | None
    """Best mean validation Y-PSNR (dB) over ``val_scales``."""
    history: list[dict]
    """Validation records of this run."""


def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1, as LIIF and EDSR (sharper than L2 at equal training time)."""
    return (pred - target).abs().mean()


class _Predict(nn.Module):
    """encode + query as one forward, the call DistributedDataParallel needs to sync gradients."""

    def __init__(self, model: LIIF):
        super().__init__()
        self.model = model

    def forward(self, lr, coords, cell):
        return self.model.query(self.model.encode(lr), coords, cell)


def learning_rate(cfg: RunConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min((step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1), 1.0)
    return cfg.lr * (cfg.lr_min + (1 - cfg.lr_min) * 0.5 * (1 + math.cos(math.pi * t)))


CHECKPOINT_FORMAT = "coordsr.liif.checkpoint"


def _save_checkpoint(path: Path, model: LIIF, opt, step: int, best: float | None, run: dict):
    """Model, Adam state, step, best score and the RNG states as one safetensors file (atomic):
    tensors for the weights, the Adam moments and the torch / numpy generator states, JSON in the
    metadata for the rest (python's state is a tuple of ints, ``run`` the run's settings), so
    resuming unpickles nothing. Every trainer of a LIIF model (the upscaler's, the drawing
    model's) writes this format."""
    sd = opt.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    extra = {"step": str(step), "best_psnr": json.dumps(best), "param_groups": json.dumps(sd["param_groups"]),
             "rng_numpy": json.dumps([name, int(pos), int(has_gauss), float(gauss)]),
             "rng_python": json.dumps([version, list(internal), gauss_next]),
             "train_config": json.dumps(run)}
    write_weights(tensors, asdict(model.cfg), path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                  dtype=None, extra=extra)


def refuse_pickle(path: Path, format: str) -> None:
    """FieldFileError, one line, when ``path`` is a pickle or ``torch.save`` file (zip or raw
    pickle): such a file is never loaded, since unpickling it can run any code."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise FieldFileError(f"{path}: cannot read the checkpoint ({e.strerror or e})") from None
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise FieldFileError(f"{path}: a pickle (torch.save) file, not a {format} safetensors checkpoint; "
                             "not loaded, since unpickling can run code")


def load_checkpoint(path: str | Path) -> dict:
    """What ``_save_checkpoint`` wrote (model config and state, optimizer state, step, best PSNR,
    RNG states, run settings); FieldFileError, one line, for anything else: a pickle file
    (``torch.save``: never unpickled, since unpickling can run code), junk, a truncated file."""
    path = Path(path)
    refuse_pickle(path, CHECKPOINT_FORMAT)
    config, tensors, meta = read_weights(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    try:
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        name, pos, has_gauss, gauss = json.loads(meta["rng_numpy"])
        version, internal, gauss_next = json.loads(meta["rng_python"])
        out = {"version": CHECKPOINT_VERSION, "model_config": dict(config),
               "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
               "optimizer": {"state": state, "param_groups": list(json.loads(meta["param_groups"]))},
               "step": int(meta["step"]), "best_psnr": json.loads(meta["best_psnr"]),
               "rng": {"torch": tensors["rng.torch"],
                       "numpy": (str(name), tensors["rng.numpy"].numpy().astype(np.uint32), int(pos),
                                 int(has_gauss), float(gauss)),
                       "python": (int(version), tuple(int(x) for x in internal), gauss_next)},
               "train_config": dict(json.loads(meta["train_config"]))}
    except Exception as e:  # a key missing, a value of the wrong type or shape
        raise FieldFileError(f"{path}: not a complete {CHECKPOINT_FORMAT} checkpoint ({type(e).__name__}: "
                             f"{e})".replace("\n", " ")) from None
    if out["step"] < 0 or (out["best_psnr"] is not None and not isinstance(out["best_psnr"], (int, float))):
        raise FieldFileError(f"{path}: step {out['step']} / best_psnr {out['best_psnr']!r} out of range")
    return out


def checked_model_config(path: Path, config_cls, build, state: dict):
    """``config_cls(**state["model_config"])``, checked before any memory is spent on it: the model
    ``build(config)`` makes is first built on the meta device (no storage), and its tensor names
    and shapes must be those of ``state["model"]``; FieldFileError, one line, otherwise (an unknown
    or mistyped field, a size the stored tensors do not have)."""
    try:
        cfg = config_cls(**state["model_config"])
        with torch.device("meta"):
            want = {k: tuple(v.shape) for k, v in build(cfg).state_dict().items()}
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FieldFileError(f"{path}: the checkpoint's model config is not valid ({first})") from None
    if want != {k: tuple(v.shape) for k, v in state["model"].items()}:
        raise FieldFileError(f"{path}: the checkpoint's weights do not match its model config")
    return cfg


def restore_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's model and optimizer state (and its RNG states, when it has them) into a
    freshly built model and optimizer; FieldFileError, one line, when they do not fit."""
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if "rng" in state:
            torch.set_rng_state(state["rng"]["torch"])
            np.random.set_state(state["rng"]["numpy"])
            random.setstate(state["rng"]["python"])
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FieldFileError(f"{path}: the checkpoint does not fit its model ({first})") from None


@torch.no_grad()
def validate(model: LIIF, pairs) -> dict[int | str, float]:
    """Mean Y-PSNR per label (the scale, or scale and degradation) over the validation
    (lr, hr, scale, label) tuples, ``scale`` pixels shaved."""
    model.eval()
    dev = next(model.parameters()).device
    per: dict[int, list[float]] = {}
    for lr, hr, s, label in pairs:
        sr = upscale(model, lr[None].to(dev), tuple(hr.shape[-2:]))[0].cpu()
        per.setdefault(label, []).append(D.y_psnr(sr, hr, s))
    model.train()
    return {s: float(np.mean(v)) for s, v in per.items()}


def _init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group when WORLD_SIZE > 1; True when this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def pick_device(cfg: RunConfig) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(cfg.device)


def train(cfg: TrainConfig, progress: ProgressCallback | None = None) -> TrainResult:
    """Run (or resume) a training run; see the module docstring. Returns the trained model."""
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    created = _init_distributed(device)
    distributed = dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    try:
        with reusing_memory():  # the same batch-sized tensors every step: keep freed memory for reuse
            return _train(cfg, progress, device, rank, world, distributed)
    finally:
        torch.set_num_threads(threads)
        if created:
            dist.destroy_process_group()


def _train(cfg, progress, device, rank, world, distributed) -> TrainResult:
    ckpt_path = cfg.checkpoint_path()
    state = load_checkpoint(ckpt_path) if cfg.resume and ckpt_path.exists() else None  # refused before any work
    files = D.list_images(cfg.data)
    train_files, val_files = D.split(files, cfg.val_fraction)
    if not train_files:
        raise CoordsrError(f"no training images in {', '.join(map(str, cfg.data))}")
    try:
        images = [D.load_rgb(p) for p in train_files]  # decoded once, kept as uint8
        kinds = D.VALIDATION_DEGRADATIONS if cfg.degradation == "real" else ()
        val_pairs = (D.validation_pairs([D.load_rgb(p) for p in val_files], cfg.val_scales, degradations=kinds)
                     if rank == 0 else [])
    except KeyboardInterrupt as e:
        raise TrainingInterrupted(e, None, None) from e

    torch.manual_seed(cfg.seed)
    model_cfg = cfg.model
    if state:
        model_cfg = checked_model_config(ckpt_path, LIIFConfig, LIIF, state)
    if cfg.init and not state:
        from coordsr.liif.grow import grow

        model = grow(load_weights(cfg.init), model_cfg, seed=cfg.seed).train().to(device)
    else:
        model = LIIF(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, best = 0, None
    if state:
        restore_state(ckpt_path, model, opt, state)
        step, best = state["step"], state["best_psnr"]
    net = _Predict(model)
    if distributed:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    log_path = Path(cfg.out).with_suffix(".log.jsonl")

    def log(rec: dict) -> None:
        if rank == 0:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def checkpoint() -> Path | None:
        if rank == 0:
            _save_checkpoint(ckpt_path, model, opt, step, best,
                             {k: v for k, v in asdict(cfg).items() if k != "model"})
            return ckpt_path
        return None

    if rank == 0:
        log({"event": "start", "step": step, "world": world, "train_images": len(train_files),
             "val_images": len(val_files), "config": {k: v for k, v in asdict(cfg).items() if k != "model"},
             "model": asdict(model_cfg), "time": time.time()})
    queries = cfg.queries or cfg.patch ** 2
    compute = resolve_precision(cfg.precision, device)
    history: list[dict] = []
    t0, loss_sum, loss_n = time.time(), 0.0, 0
    model.train()
    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = learning_rate(cfg, step)
            b = D.make_batch(images, batch=cfg.batch, patch=cfg.patch, scale_min=cfg.scale_min,
                             scale_max=cfg.scale_max, queries=queries, seed=cfg.seed, step=step, rank=rank,
                             degrade=cfg.degradation == "real")
            with autocast(compute, device):
                pred = net(b.lr.to(device), b.coords.to(device), b.cell.to(device))
            loss = loss_fn(pred.float(), b.target.to(device))
            seen = loss.detach().clone()
            if distributed:  # every rank takes the same decision below
                dist.all_reduce(seen)
                seen /= world
            if not torch.isfinite(seen):
                log({"event": "diverged", "step": step, "loss": float(seen)})
                raise TrainingDiverged(f"loss is {float(seen)} at step {step}; stopped, the last good "
                                       f"checkpoint ({ckpt_path}) is kept")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum, loss_n = loss_sum + float(seen), loss_n + 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"event": "train", "step": step, "loss": loss_sum / loss_n,
                       "lr": opt.param_groups[0]["lr"], "elapsed": time.time() - t0}
                log(rec)
                if progress is not None:
                    progress(Progress(step=step, total=cfg.steps, stage="train", loss=rec["loss"],
                                      elapsed=rec["elapsed"]))
                loss_sum, loss_n = 0.0, 0
            if step % cfg.val_every == 0 or step == cfg.steps:
                if rank == 0:
                    if val_pairs:
                        psnr = validate(model, val_pairs)
                        mean = float(np.mean(list(psnr.values())))
                        rec = {"event": "val", "step": step, "psnr": {str(k): v for k, v in psnr.items()},
                               "mean": mean, "elapsed": time.time() - t0}
                        if best is None or mean > best:
                            best = mean
                            save_weights(model, cfg.out, extra={"step": str(step), "val_psnr": json.dumps(rec["psnr"])})
                            rec["exported"] = True
                    else:  # no held-out images: export the latest weights
                        save_weights(model, cfg.out, extra={"step": str(step)})
                        rec = {"event": "val", "step": step, "psnr": None, "exported": True}
                    history.append(rec)
                    log(rec)
                if distributed:
                    dist.barrier()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                checkpoint()
    except KeyboardInterrupt as e:
        written = checkpoint()
        log({"event": "interrupted", "step": step, "checkpoint": str(written) if written else None})
        raise TrainingInterrupted(e, step, written) from e
    if distributed:
        dist.barrier()
    log({"event": "done", "step": step, "best_psnr": best, "elapsed": time.time() - t0})
    return TrainResult(model=model.eval(), step=step, best_psnr=best, history=history)


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line CoordsrError instead of printing usage and exiting."""

    def error(self, message: str):
        raise CoordsrError(f"{self.prog}: {message}")


def training_parser(prog: str, description: str, defaults: RunConfig, model_defaults, *,
                    ints: tuple[str, ...] = (), floats: tuple[str, ...] = (),
                    model_ints: tuple[str, ...] = (),
                    model_choices: dict[str, tuple[str, ...]] | None = None) -> argparse.ArgumentParser:
    """The options of every training command (``RunConfig``'s), plus the run's own ``ints`` and
    ``floats`` and the model's ``model_ints`` and ``model_choices`` (name: valid values);
    defaults from the dataclasses."""
    model_choices = model_choices or {}
    p = _Parser(prog=prog, description=description)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--out", default=defaults.out)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--resume", action="store_true")
    if hasattr(defaults, "init"):
        p.add_argument("--init", default=None, help="weights to start from (grown to the model's size)")
    for name in ("steps", "warmup", "seed", "val_every", "ckpt_every", "log_every", "threads", *ints):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "lr_min", "val_fraction", *floats):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    for name in model_ints:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(model_defaults, name))
    for name, choices in model_choices.items():
        p.add_argument("--" + name.replace("_", "-"), choices=choices, default=getattr(model_defaults, name))
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--precision", default=defaults.precision, choices=["auto", "fp32", "bf16"])
    return p


def run_training_cli(prog: str, argv: list[str] | None, parser: argparse.ArgumentParser, config_cls, model_cls,
                     train_fn, score: str) -> int:
    """Parse ``argv``, build ``config_cls`` (its ``model`` a ``model_cls`` from the same options),
    run ``train_fn`` and say how it ended: exit status 0, 2 for bad options or data, 130 / 143
    when SIGINT / SIGTERM stopped it (the last line says whether a checkpoint was written).
    Only rank 0 of a torchrun job prints progress."""
    from coordsr.interrupt import exit_code_of, stop_on_signals

    try:
        a = parser.parse_args(argv)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except CoordsrError as e:
        print(str(e) if str(e).startswith(prog) else f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    model = model_cls(**{f.name: getattr(a, f.name) for f in fields(model_cls) if hasattr(a, f.name)})
    cfg = config_cls(**{f.name: getattr(a, f.name) for f in fields(config_cls)
                        if f.name != "model" and hasattr(a, f.name)}, model=model)
    rank0 = int(os.environ.get("RANK", "0")) == 0

    def show(pr: Progress) -> None:
        if rank0:
            print(f"step {pr.step}/{pr.total} loss {pr.loss:.6f} {pr.elapsed:.0f}s", flush=True)

    with stop_on_signals() as stopped:
        try:
            res = train_fn(cfg, show)
        except KeyboardInterrupt as e:
            cause = stopped[0] if stopped else getattr(e, "cause", e)
            what = cause.describe() if hasattr(cause, "describe") else "interrupted"
            detail = e.describe() if isinstance(e, TrainingInterrupted) else "no checkpoint written"
            print(f"{prog}: {what}; {detail}", file=sys.stderr)
            return exit_code_of(cause)
        except (CoordsrError, FileNotFoundError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return getattr(e, "exit_code", 2)
    if rank0:
        print(f"done: step {res.step}, best validation {score} {res.best_psnr}", flush=True)
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m coordsr.liif.train") -> int:
    """``python -m coordsr.liif.train``: a thin argparse front end over ``train``.

    SIGINT and SIGTERM (torchrun on a failing peer, job schedulers, ``kill``) stop the run with a
    checkpoint when its steps have begun (coordsr.interrupt; Python would otherwise die on
    SIGTERM without one, and leaves SIGINT ignored when started with ``cmd &`` from a script);
    the exit status is 130 or 143 and the last line says whether a checkpoint was written.
    """
    parser = training_parser(prog, __doc__.splitlines()[0], TrainConfig(), LIIFConfig(),
                             ints=("patch", "batch"), floats=("scale_min", "scale_max"),
                             model_ints=("channels", "blocks", "hidden", "mlp_layers"),
                             model_choices={"decoder": DECODERS})
    parser.add_argument("--degradation", choices=["clean", "real"], default=TrainConfig.degradation,
                        help="clean: bicubic LR; real: blur, resizing, noise and JPEG at random (the blind model)")
    return run_training_cli(prog, argv, parser, TrainConfig, LIIFConfig, train, "Y-PSNR")


if __name__ == "__main__":
    sys.exit(main())
