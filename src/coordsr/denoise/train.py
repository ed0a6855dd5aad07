"""Train the blind denoiser (``coordsr.denoise.net``): ``train(DenoiseTrainConfig(data=[...]))``, or

    coordsr train-denoiser --data T91 BSD200 --out runs/denoiser/model.safetensors --steps 1200
    coordsr train-denoiser --data T91 BSD200 --out runs/denoiser/model.safetensors --resume

Random square crops of the training images, flipped and rotated (the upscaler's ``_augment``),
each with additive white Gaussian noise of a level drawn uniformly from [sigma_min, sigma_max]
(8-bit levels), added in float and not clipped (the protocol's noise), or, for a share
``stored_share`` of the crops, then clipped to [0, 1] and rounded to 8 bits, as a noisy photo
file stores it (the same validation crops are then scored both ways, "25" and "25/8bit");
``init`` starts from a trained denoiser's weights instead of random ones; L2 loss on the denoised
crop, Adam, warm-up then cosine learning rate (the upscaler's ``learning_rate``). A batch is a
pure function of (seed, step), so resuming replays nothing. The checkpoint (model, Adam state,
step, best validation PSNR) is one safetensors file, written atomically every ``ckpt_every``
steps and when SIGINT or SIGTERM stops the run; ``resume=True`` continues from it. A NaN loss
stops the run before the weights are touched. Validation: RGB PSNR (the protocol's) on centre
crops of a held-out part of the training folders (split by file-name hash, as the upscaler's)
at sigma 15, 25 and 50; the best weights are exported to ``out``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch

from coordsr.denoise.net import DenoiseNet, DenoiseNetConfig, denoise_tensor, save_denoiser
from coordsr.denoise.protocol import add_noise, noise_seed, psnr_rgb
from coordsr.errors import CoordsrError, FieldFileError
from coordsr.liif import data as D
from coordsr.liif.model import read_weights, write_weights
from coordsr.liif.train import (RunConfig, TrainingDiverged, TrainingInterrupted, checked_model_config,
                                learning_rate, pick_device, refuse_pickle, restore_state, run_training_cli,
                                training_parser)
from coordsr.metrics import quantize
from coordsr.precision import autocast, resolve_precision
from coordsr.progress import Progress, ProgressCallback

CHECKPOINT_FORMAT = "coordsr.denoiser-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class DenoiseTrainConfig(RunConfig):
    """Everything one training run of the denoiser depends on (``RunConfig`` and these)."""

    out: str = "denoiser.safetensors"
    steps: int = 1200
    lr: float = 1e-3
    warmup: int = 50
    lr_min: float = 0.05
    val_every: int = 200
    ckpt_every: int = 100
    log_every: int = 25
    model: DenoiseNetConfig = field(default_factory=DenoiseNetConfig)
    """Architecture (ignored when resuming: the checkpoint's is used)."""
    patch: int = 64
    """Side of the training crop, in pixels (even)."""
    batch: int = 32
    """Crops per step."""
    sigma_min: float = 0.0
    """Lowest training noise level (8-bit levels)."""
    sigma_max: float = 50.0
    """Highest training noise level (8-bit levels)."""
    val_crop: int = 128
    """Side of the centre crop of each held-out image that validation denoises."""
    val_sigmas: tuple[float, ...] = (15.0, 25.0, 50.0)
    """Noise levels of the validation PSNR (the sigma is given, as in the benchmark)."""
    stored_share: float = 0.0
    """Share of the training crops whose noisy version is clipped and rounded to 8 bits (noise
    as image files carry it); above 0, validation scores the 8-bit crops too."""
    init: str | None = None
    """Denoiser weights to start from (``coordsr.denoise.net.save_denoiser``); ignored on resume."""

    checkpoint_suffix: ClassVar[str] = ".ckpt.safetensors"


@dataclass
class DenoiseTrainResult:
    model: DenoiseNet
    step: int
    """Steps done in total, including earlier runs when resumed."""
    best_psnr: float | None
    """Best mean validation RGB PSNR (dB) over ``val_sigmas``."""
    history: list[dict]
    """Validation records of this run."""


def make_batch(images: list[torch.Tensor], *, batch: int, patch: int, sigma_min: float, sigma_max: float,
               seed: int, step: int, stored_share: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy, clean, sigma) for ``step``: (B, 3, patch, patch) twice and (B,) levels; deterministic.
    A ``stored_share`` of the noisy crops is clipped and rounded to 8 bits (drawn after the noise,
    so the batches of a run without it are the ones they always were)."""
    gen = torch.Generator().manual_seed(D.hash_seed(seed, step, 1))
    clean, levels = [], []
    for _ in range(batch):
        img = images[int(torch.randint(0, len(images), (1,), generator=gen))]
        _, h, w = img.shape
        side = min(patch, h, w) // 2 * 2
        top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        crop = img[:, top:top + side, left:left + side].float() / 255
        crop = D._augment(crop, int(torch.randint(0, 8, (1,), generator=gen)))
        if side < patch:  # an image smaller than the patch (none in T91 / BSD200 at 64)
            crop = torch.nn.functional.pad(crop[None], (0, patch - side, 0, patch - side), mode="reflect")[0]
        clean.append(crop)
        levels.append(sigma_min + (sigma_max - sigma_min) * float(torch.rand((), generator=gen)))
    clean_t = torch.stack(clean)
    sigma = torch.tensor(levels)
    noisy = clean_t + torch.randn(clean_t.shape, generator=gen) * (sigma / 255)[:, None, None, None]
    if stored_share > 0:
        stored = (torch.rand(batch, generator=gen) < stored_share)[:, None, None, None]
        noisy = torch.where(stored, quantize_tensor(noisy), noisy)
    return noisy, clean_t, sigma


def quantize_tensor(x: torch.Tensor) -> torch.Tensor:
    """Clipped to [0, 1] and rounded to 1/255: what an 8-bit file keeps."""
    return (x.clamp(0, 1) * 255).round() / 255


def validation_set(paths: list[Path], images: list[torch.Tensor], crop: int, sigmas,
                   stored: bool = False) -> list[tuple]:
    """Fixed (noisy, clean, sigma, label) tuples: centre crops with the protocol's seeded noise
    (label "25"); with ``stored``, each also clipped and rounded to 8 bits (label "25/8bit")."""
    out = []
    for p, img in zip(paths, images):
        _, h, w = img.shape
        ch, cw = min(h, crop) // 2 * 2, min(w, crop) // 2 * 2
        t, l = (h - ch) // 2, (w - cw) // 2
        clean = img[:, t:t + ch, l:l + cw].permute(1, 2, 0).numpy().astype(np.float64) / 255
        for s in sigmas:
            noisy = torch.from_numpy(add_noise(clean, s, noise_seed(p.name, s))).float().permute(2, 0, 1)
            out.append((noisy, clean, float(s), f"{s:g}"))
            if stored:
                out.append((quantize_tensor(noisy), clean, float(s), f"{s:g}/8bit"))
    return out


@torch.no_grad()
def validate(model: DenoiseNet, pairs) -> dict[str, float]:
    """Mean RGB PSNR (output quantized to 8 bits, the protocol's score) per label."""
    dev = next(model.parameters()).device
    per: dict[str, list[float]] = {}
    for noisy, clean, s, label in pairs:
        out = denoise_tensor(model, noisy[None].to(dev), s)[0].permute(1, 2, 0).cpu().numpy()
        per.setdefault(label, []).append(psnr_rgb(quantize(out), clean))
    model.train()
    return {s: float(np.mean(v)) for s, v in per.items()}


# ---------------------------------------------------------------- checkpoints (safetensors, no pickle)

def save_checkpoint(path: Path, model: DenoiseNet, opt: torch.optim.Adam, step: int, best: float | None,
                    cfg: DenoiseTrainConfig) -> None:
    """Model, Adam state, step and best validation PSNR as one safetensors file (atomic)."""
    sd = opt.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    extra = {"step": str(step), "best_psnr": json.dumps(best), "param_groups": json.dumps(sd["param_groups"]),
             "train_config": json.dumps({k: v for k, v in asdict(cfg).items() if k != "model"})}
    write_weights(tensors, asdict(model.cfg), path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                  dtype=None, extra=extra)


def load_checkpoint(path: Path) -> dict:
    """What ``save_checkpoint`` wrote: model config and state, optimizer state, step, best PSNR."""
    refuse_pickle(path, CHECKPOINT_FORMAT)
    config, tensors, meta = read_weights(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    try:
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        out = {"model_config": dict(config), "model": model,
               "optimizer": {"state": state, "param_groups": list(json.loads(meta["param_groups"]))},
               "step": int(meta["step"]), "best_psnr": json.loads(meta["best_psnr"])}
    except Exception as e:  # a key missing, a value of the wrong type
        raise FieldFileError(f"{path}: not a complete {CHECKPOINT_FORMAT} checkpoint ({type(e).__name__}: "
                             f"{e})".replace("\n", " ")) from None
    if out["step"] < 0 or (out["best_psnr"] is not None and not isinstance(out["best_psnr"], (int, float))):
        raise FieldFileError(f"{path}: step {out['step']} / best_psnr {out['best_psnr']!r} out of range")
    return out


def train(cfg: DenoiseTrainConfig, progress: ProgressCallback | None = None) -> DenoiseTrainResult:
    """Run (or resume) a training run; see the module docstring."""
    if cfg.patch < 2 or cfg.patch % 2 or cfg.batch < 1 or cfg.steps < 1:
        raise CoordsrError("patch must be even and at least 2; batch and steps at least 1")
    if not 0 <= cfg.stored_share <= 1:
        raise CoordsrError(f"stored_share must be between 0 and 1, got {cfg.stored_share}")
    if not 0 <= cfg.sigma_min <= cfg.sigma_max <= 100:
        raise CoordsrError(f"need 0 <= sigma_min <= sigma_max <= 100, got {cfg.sigma_min}, {cfg.sigma_max}")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, progress, pick_device(cfg))
    finally:
        torch.set_num_threads(threads)


def _train(cfg: DenoiseTrainConfig, progress, device) -> DenoiseTrainResult:
    ckpt_path = cfg.checkpoint_path()
    files = D.list_images(cfg.data)
    train_files, val_files = D.split(files, cfg.val_fraction)
    if not train_files:
        raise CoordsrError(f"no training images in {', '.join(map(str, cfg.data))}")
    try:
        images = [D.load_rgb(p) for p in train_files]
        val = validation_set(val_files, [D.load_rgb(p) for p in val_files], cfg.val_crop, cfg.val_sigmas,
                             stored=cfg.stored_share > 0)
    except KeyboardInterrupt as e:
        raise TrainingInterrupted(e, None, None) from e

    state = load_checkpoint(ckpt_path) if cfg.resume and ckpt_path.exists() else None
    torch.manual_seed(cfg.seed)
    model_cfg = checked_model_config(ckpt_path, DenoiseNetConfig, DenoiseNet, state) if state else cfg.model
    if cfg.init and not state:
        from coordsr.denoise.net import load_denoiser

        model = load_denoiser(cfg.init, device=device).train()
        model_cfg = model.cfg
    else:
        model = DenoiseNet(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, best = 0, None
    if state:
        restore_state(ckpt_path, model, opt, state)
        step, best = state["step"], state["best_psnr"]
    log_path = Path(cfg.out).with_suffix(".log.jsonl")

    def log(rec: dict) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    log({"event": "start", "step": step, "train_images": len(train_files), "val_images": len(val_files),
         "val_files": [p.name for p in val_files],
         "config": {k: v for k, v in asdict(cfg).items() if k != "model"}, "model": asdict(model_cfg),
         "time": time.time()})
    compute = resolve_precision(cfg.precision, device)
    history: list[dict] = []
    t0, loss_sum, loss_n = time.time(), 0.0, 0
    model.train()
    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = learning_rate(cfg, step)
            noisy, clean, sigma = make_batch(images, batch=cfg.batch, patch=cfg.patch, sigma_min=cfg.sigma_min,
                                             sigma_max=cfg.sigma_max, seed=cfg.seed, step=step,
                                             stored_share=cfg.stored_share)
            with autocast(compute, device):
                pred = model(noisy.to(device), sigma.to(device))
            loss = torch.nn.functional.mse_loss(pred.float(), clean.to(device))
            if not torch.isfinite(loss):
                log({"event": "diverged", "step": step, "loss": float(loss)})
                raise TrainingDiverged(f"loss is {float(loss)} at step {step}; stopped, the last good "
                                       f"checkpoint ({ckpt_path}) is kept")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                mse = loss_sum / loss_n
                rec = {"event": "train", "step": step, "loss": mse, "psnr": -10 * math.log10(max(mse, 1e-12)),
                       "lr": opt.param_groups[0]["lr"], "elapsed": time.time() - t0}
                log(rec)
                if progress is not None:
                    progress(Progress(step=step, total=cfg.steps, stage="train", loss=mse, elapsed=rec["elapsed"]))
                loss_sum, loss_n = 0.0, 0
            if step % cfg.val_every == 0 or step == cfg.steps:
                rec = {"event": "val", "step": step, "elapsed": time.time() - t0}
                if val:
                    psnr = validate(model, val)
                    rec.update(psnr=psnr, mean=float(np.mean(list(psnr.values()))))
                    if best is None or rec["mean"] > best:
                        best = rec["mean"]
                        save_denoiser(model, cfg.out, extra={"step": str(step), "val_psnr": json.dumps(rec["psnr"])})
                        rec["exported"] = True
                else:  # no held-out images: export the latest weights
                    save_denoiser(model, cfg.out, extra={"step": str(step)})
                    rec["exported"] = True
                history.append(rec)
                log(rec)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt_path, model, opt, step, best, cfg)
    except KeyboardInterrupt as e:
        save_checkpoint(ckpt_path, model, opt, step, best, cfg)
        log({"event": "interrupted", "step": step, "checkpoint": str(ckpt_path)})
        raise TrainingInterrupted(e, step, ckpt_path) from e
    log({"event": "done", "step": step, "best_psnr": best, "elapsed": time.time() - t0})
    return DenoiseTrainResult(model=model.eval(), step=step, best_psnr=best, history=history)


def main(argv: list[str] | None = None, prog: str = "python -m coordsr.denoise.train") -> int:
    """A thin argparse front end over ``train`` (the upscaler's: SIGINT / SIGTERM stop with a checkpoint)."""
    parser = training_parser(prog, __doc__.splitlines()[0], DenoiseTrainConfig(), DenoiseNetConfig(),
                             ints=("patch", "batch", "val_crop"), floats=("sigma_min", "sigma_max", "stored_share"),
                             model_ints=("channels", "blocks"))
    return run_training_cli(prog, argv, parser, DenoiseTrainConfig, DenoiseNetConfig, train, "PSNR")


if __name__ == "__main__":
    sys.exit(main())
