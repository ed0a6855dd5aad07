"""Train the drawing model: the local implicit model (``coordsr.liif``) on premultiplied RGBA
drawings, any scale from x2 to x32 (``coordsr.drawings.data``), from a shell:

    python -m coordsr.drawings.train --emoji ../shared/data/Emoji --out drawing.safetensors

It starts from the shipped photo model widened to four channels (``widen``: the alpha input
and output start at zero, so step 0 is that model on colour and bicubic on alpha), L1 on
premultiplied RGBA at sampled output pixels, Adam with warm-up and a cosine. Every
``val_every`` steps it scores the held-out emoji at x16 (PSNR, mean of the composites on white
and on black) and exports the best weights (safetensors, float16). The checkpoint (model and
optimizer state, step, best score) is the upscaler's (``coordsr.liif.train``: safetensors, a
pickle refused unread), so ``--resume`` runs no pickle.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from coordsr.drawings import data as D
from coordsr.drawings.data import unpremultiply
from coordsr.liif import train as liif_train
from coordsr.liif.model import LIIF, LIIFConfig, load_weights, save_weights, upscale
from coordsr.liif.train import RunConfig, learning_rate
from coordsr.memory import reusing_memory


def widen(photo: LIIF) -> LIIF:
    """The RGB model ``photo`` as a 4-channel (premultiplied RGBA) model computing the same colour:
    the alpha channel's input weights and output row start at zero (alpha is then bicubic)."""
    cfg = LIIFConfig(**{**photo.cfg.__dict__, "in_channels": 4})
    model = LIIF(cfg)
    state = {k: v.clone() for k, v in photo.state_dict().items()}
    head = state["encoder.head.weight"]
    state["encoder.head.weight"] = torch.cat([head, torch.zeros_like(head[:, :1])], dim=1)
    last = f"mlp.{len(photo.mlp) - 1}"
    state[f"{last}.weight"] = torch.cat([state[f"{last}.weight"], torch.zeros_like(state[f"{last}.weight"][:1])])
    state[f"{last}.bias"] = torch.cat([state[f"{last}.bias"], torch.zeros(1)])
    model.load_state_dict(state)
    return model


@torch.no_grad()
def validate(model: LIIF, pairs, scale_to: int = 512) -> float:
    """Mean x16 PSNR (mean of white and black composites) over held-out (name, LR, HR) pairs."""
    from coordsr.metrics import composite, psnr, quantize

    model.eval()
    scores = []
    for _, lr8, hr8 in pairs:
        y = upscale(model, lr8[None].float() / 255, (scale_to, scale_to))[0]
        sr = quantize(unpremultiply(y).permute(1, 2, 0).numpy())
        hr = unpremultiply(hr8.float() / 255).permute(1, 2, 0).numpy()
        scores.append(np.mean([psnr(composite(sr, b), composite(hr, b)) for b in (0.0, 1.0)]))
    model.train()
    return float(np.mean(scores))


def _save_checkpoint(path: Path, model: LIIF, opt: torch.optim.Adam, step: int, best: float | None, args) -> None:
    """The upscaler's checkpoint format (``coordsr.liif.train``: safetensors, no pickle) with this
    run's options as its settings."""
    liif_train._save_checkpoint(path, model, opt, step, best, vars(args))


def _load_checkpoint(path: Path, lr: float):
    """(model, Adam, step, best) from a checkpoint ``_save_checkpoint`` wrote, with the upscaler's
    checks (a pickle refused unread, the config checked against the tensors); SystemExit, one
    line, for anything else."""
    from coordsr.errors import FieldFileError

    try:
        state = liif_train.load_checkpoint(path)
        model = LIIF(liif_train.checked_model_config(path, LIIFConfig, LIIF, state))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        liif_train.restore_state(path, model, opt, state)
    except FieldFileError as e:
        raise SystemExit(f"{e}; not a coordsr drawing-model checkpoint") from None
    return model, opt, state["step"], state["best_psnr"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coordsr.drawings.train", description=__doc__.splitlines()[0])
    p.add_argument("--emoji", required=True, help="folder with LR32/ and HR512/ (split by file-name hash)")
    p.add_argument("--out", default="drawing.safetensors")
    p.add_argument("--init", default=None, help="RGB weights to widen (default: the shipped photo model)")
    p.add_argument("--scenes", type=int, default=2000, help="procedural scenes in the training pool")
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--real-share", type=float, default=0.5, help="share of batches of real x16 pairs")
    p.add_argument("--edge-share", type=float, default=0.0, help="share of each sample's queries drawn near edges")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-images", type=int, default=40)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    ckpt = out.with_suffix(".ckpt.safetensors")
    log = out.with_suffix(".log.jsonl")

    def note(rec):
        with open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)

    resumed = _load_checkpoint(ckpt, args.lr) if args.resume and ckpt.exists() else None  # refused before the data
    t0 = time.time()
    train_emoji = D.emoji_pairs(args.emoji, validation=False)
    val = D.emoji_pairs(args.emoji, validation=True)[:args.val_images]
    scenes = D.scene_pairs(range(args.scenes))
    pairs = [(lr, hr) for _, lr, hr in train_emoji] + scenes
    note({"event": "data", "emoji_train": len(train_emoji), "emoji_val": len(val), "scenes": len(scenes),
          "seconds": time.time() - t0})
    if resumed is not None:
        model, opt, step, best = resumed
    else:
        if args.init:
            photo = load_weights(args.init)
        else:
            from coordsr.methods.pretrained import shipped_weights
            photo = load_weights(shipped_weights())
        model = widen(photo)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        step, best = 0, None
        note({"event": "start", "val_psnr": validate(model, val), "args": vars(args)})
    model.train()
    with reusing_memory():  # the same large tensors every step: no mmap and page zeroing each time
        _loop(model, opt, pairs, val, args, step, best, out, ckpt, note)
    return 0


def _loop(model, opt, pairs, val, args, step, best, out, ckpt, note) -> None:
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    schedule = RunConfig(steps=args.steps, lr=args.lr, warmup=args.warmup)  # the upscaler's warm-up and cosine
    t0, losses = time.time(), []
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = learning_rate(schedule, step)
        b = D.make_batch(pairs, batch=args.batch, queries=args.queries, seed=args.seed, step=step,
                         real_share=args.real_share, edge_share=args.edge_share)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            pred = model.query(model.encode(b.lr), b.coords, b.cell)
        loss = (pred.float() - b.target).abs().mean()
        if not torch.isfinite(loss):
            raise SystemExit(f"loss is {float(loss)} at step {step}: stopped; the last checkpoint ({ckpt}) is kept")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            note({"event": "train", "step": step, "loss": float(np.mean(losses)), "seconds": time.time() - t0})
            losses = []
        if step % args.val_every == 0 or step == args.steps:
            score = validate(model, val)
            rec = {"event": "val", "step": step, "val_psnr": score}
            if best is None or score > best:
                best = score
                save_weights(model, out, extra={"step": str(step), "val_psnr_x16": f"{score:.3f}"})
                rec["exported"] = True
            note(rec)
        if step % args.ckpt_every == 0 or step == args.steps:
            _save_checkpoint(ckpt, model, opt, step, best, args)


if __name__ == "__main__":
    sys.exit(main())
