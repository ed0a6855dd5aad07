"""Speed anchor: our SIREN against the reference package ``siren-pytorch``.

Both networks have the same width, depth and w0 (30 on every layer, Sitzmann et al.'s setting),
start from the same seed, and are fitted by the same loop (Adam, full batch of all pixel centres,
MSE on values in [-1, 1]) for the same number of steps, in interleaved blocks so that both see
the same load on a shared machine. Ours runs inside ``coordsr.memory.reusing_memory()``, as
``coordsr.fit`` does; the reference runs in the plain loop a user of that package writes. Reported per network:

- seconds per step, final PSNR on the fitted pixels (RGB, peak 1; a fit, not super-resolution);
- seconds of fitting to reach the same PSNR: the lower of the two final PSNRs (or ``--target``);
- render throughput: megapixels per second drawing a ``--render-size`` square grid, no grad,
  in chunks of ``--chunk`` points, best of ``--repeats``.

Our network is ``coordsr.networks.MLP(in_dim, out_dim, hidden, layers, activation=Sine)`` with
``Sine(w0=30.)``; while that module does not exist, the script measures the reference alone and
says so. The rows are printed as a table and written as JSON::

    nice -n 10 .venv/bin/python benchmarks/siren_speed.py --steps 300 --size 128
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=Path, default=None,
                   help="image to fit (default: the centre of the bundled 'astronaut' sample)")
    p.add_argument("--size", type=int, default=128, help="centre crop side in pixels (0: whole image)")
    p.add_argument("--width", type=int, default=256, help="hidden width")
    p.add_argument("--depth", type=int, default=3, help="hidden (sine) layers")
    p.add_argument("--w0", type=float, default=30.0)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--target", type=float, default=None, help="PSNR target (default: lower final PSNR)")
    p.add_argument("--render-size", type=int, default=1024)
    p.add_argument("--chunk", type=int, default=65536)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", action="append", default=None,
                   help="also fit coordsr's preset as a user gets it (its learning rate, schedule and "
                        "precision; same architecture) to the target PSNR (repeatable; default 'siren'; "
                        "'' to skip); NAME=VALUE,... after a colon overrides settings, e.g. "
                        "'siren:precision=bf16'")
    p.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "siren_speed.json")
    return p.parse_args(argv)


def load_image(path: Path | None, size: int) -> np.ndarray:
    if path is None:
        from coordsr.samples import load_sample

        img = load_sample("astronaut")
    else:
        from coordsr.images import read_image

        img = read_image(path).pixels
    img = img[:, :, :3] if img.shape[2] >= 3 else img[:, :, :1]
    if size:
        h, w = img.shape[:2]
        t, l = max(0, (h - size) // 2), max(0, (w - size) // 2)
        img = img[t:t + size, l:l + size]
    return np.ascontiguousarray(img, dtype=np.float32)


def reference_net(in_dim, out_dim, width, depth, w0):
    from siren_pytorch import SirenNet

    # num_layers counts the sine layers; the last layer is linear. w0 on every layer, as in the paper.
    return SirenNet(dim_in=in_dim, dim_hidden=width, dim_out=out_dim, num_layers=depth, w0=w0, w0_initial=w0)


def our_net(in_dim, out_dim, width, depth, w0):
    from coordsr.networks import MLP, Sine

    activation = Sine if w0 == 30.0 else (lambda: Sine(w0=w0))
    return MLP(in_dim, out_dim, hidden=width, layers=depth, activation=activation)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Run:
    """One network being fitted: its optimiser, the time spent in steps, its PSNR curve."""

    def __init__(self, name, net, lr, memory=contextlib.nullcontext):
        self.name, self.net, self.memory = name, net, memory
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.fit_seconds, self.steps, self.curve = 0.0, 0, []  # curve: (step, fit seconds, psnr)

    def train(self, coords, target, n, device):
        sync(device)
        start = time.perf_counter()
        with self.memory():
            self._steps(coords, target, n)
        sync(device)
        self.fit_seconds += time.perf_counter() - start
        self.steps += n

    def _steps(self, coords, target, n):
        for _ in range(n):
            self.opt.zero_grad(set_to_none=True)
            loss = torch.mean((self.net(coords) - target) ** 2)
            loss.backward()
            self.opt.step()

    @torch.no_grad()
    def evaluate(self, coords, target):
        out = self.net(coords).clamp(-1, 1)
        mse = float(torch.mean(((out - target) / 2) ** 2))  # on [0, 1] values
        psnr = math.inf if mse == 0 else -10 * math.log10(mse)
        self.curve.append((self.steps, self.fit_seconds, psnr))
        return psnr

    def time_to(self, target_psnr):
        for step, seconds, psnr in self.curve:
            if psnr >= target_psnr:
                return step, seconds
        return None, None


@torch.no_grad()
def render_mps(net, size, chunk, repeats, device):
    from coordsr.coords import pixel_centers

    coords = pixel_centers(size, size, device=device).reshape(-1, 2)
    net(coords[:chunk])  # warm-up
    best = math.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        for i in range(0, coords.shape[0], chunk):
            net(coords[i:i + chunk])
        sync(device)
        best = min(best, time.perf_counter() - start)
    return size * size / 1e6 / best


def preset_row(args, preset: str, img, target_psnr, device) -> dict:
    """coordsr's preset fitted the way ``coordsr fit`` does (its own learning rate, schedule and
    precision; point fit on the pixel centres) until the target PSNR, then drawn at
    ``--render-size`` the way ``coordsr render`` does. Runs after the interleaved pair, so its
    machine record is its own."""
    from coordsr.cli import typed_settings
    from coordsr.methods import METHODS
    from coordsr.render import render_field

    name, _, over = preset.partition(":")
    settings = typed_settings(name, dict(kv.split("=", 1) for kv in over.split(",") if kv))
    h, w = img.shape[:2]
    method = METHODS[name](device=str(device), steps=max(args.steps, 3000), until=f"psnr:{target_psnr:.4f}",
                           hidden=args.width, layers=args.depth, **settings)
    machine = machine_record()
    method.fit_field(img, (h, w), progress=None)  # warm-up of the same fit (kernels, allocator)
    torch.manual_seed(args.seed)
    field, result = method.fit_field(img, (h, w))
    render_size = (args.render_size, args.render_size)
    render_field(field, render_size, compute_dtype=method.compute_dtype())
    best = math.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        render_field(field, render_size, compute_dtype=method.compute_dtype())
        best = min(best, time.perf_counter() - start)
    reached = result.psnr >= target_psnr - 1e-6
    return {"network": f"preset {preset} ({method.precision_word()}, lr {method.lr:g})",
            "params": sum(p.numel() for p in field.parameters()), "steps": result.steps,
            "seconds_per_step": result.seconds / max(result.steps, 1), "final_psnr": result.psnr,
            "target_psnr": target_psnr, "steps_to_target": result.steps if reached else None,
            "seconds_to_target": result.seconds if reached else None,
            "render_mpixels_per_s": args.render_size**2 / 1e6 / best, "machine": machine, "curve": []}


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    from coordsr.coords import pixel_centers

    from coordsr.memory import reusing_memory

    img = load_image(args.image, args.size)
    h, w, c = img.shape
    coords = pixel_centers(h, w, device=device).reshape(-1, 2)  # (N, 2), house convention
    target = torch.from_numpy(img).to(device).reshape(-1, c) * 2 - 1  # (N, C) in [-1, 1]

    builders = {"siren-pytorch (reference)": reference_net, "coordsr": our_net}
    runs, notes = [], []
    for name, build in builders.items():
        torch.manual_seed(args.seed)
        try:
            net = build(2, c, args.width, args.depth, args.w0).to(device)
        except ImportError as exc:
            notes.append(f"{name}: not measured ({exc})")
            continue
        # warm-up on a throwaway copy: allocator and kernels, without moving the measured weights
        # coordsr.fit trains inside reusing_memory() (coordsr/memory.py); the reference package
        # has no fitting loop of its own, so it gets the plain loop a user would write.
        memory = reusing_memory if name == "coordsr" else contextlib.nullcontext
        scratch = Run(name, build(2, c, args.width, args.depth, args.w0).to(device), args.lr, memory)
        scratch.train(coords, target, 2, device)
        runs.append(Run(name, net, args.lr, memory))
    machine_before = machine_record()
    for run in runs:
        run.evaluate(coords, target)
    for done in range(0, args.steps, args.eval_every):  # interleaved blocks: same load for both
        n = min(args.eval_every, args.steps - done)
        for run in runs:
            run.train(coords, target, n, device)
            run.evaluate(coords, target)
    target_psnr = args.target if args.target is not None else min(r.curve[-1][2] for r in runs)

    rows = []
    for run in runs:
        step, seconds = run.time_to(target_psnr)
        with run.memory():
            mps = render_mps(run.net, args.render_size, args.chunk, args.repeats, device)
        rows.append({
            "network": run.name,
            "params": sum(p.numel() for p in run.net.parameters()),
            "steps": run.steps,
            "seconds_per_step": run.fit_seconds / max(run.steps, 1),
            "final_psnr": run.curve[-1][2],
            "target_psnr": target_psnr,
            "steps_to_target": step,
            "seconds_to_target": seconds,
            "render_mpixels_per_s": mps,
            "curve": run.curve,
        })

    for preset in args.preset if args.preset is not None else ["siren"]:
        if preset:
            rows.append(preset_row(args, preset, img, target_psnr, device))

    from coordsr.bench import environment

    print(f"image {w}x{h}x{c}, width {args.width}, depth {args.depth}, w0 {args.w0:g}, {args.steps} steps, "
          f"lr {args.lr:g}, device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'network':<28}{'params':>9}{'s/step':>9}{'final dB':>10}"
          f"{'to ' + format(target_psnr, '.2f') + ' dB':>16}{'render MP/s':>13}")
    ours = next((r for r in rows if r["network"] == "coordsr"), None)
    ref = next((r for r in rows if r["network"].startswith("siren-pytorch")), None)
    if ours and ref:
        if ours["seconds_to_target"] and ref["seconds_to_target"]:
            doc_ratio = ref["seconds_to_target"] / ours["seconds_to_target"]
        else:
            doc_ratio = None
        ratios = {"fit_time_to_target": doc_ratio,
                  "seconds_per_step": ref["seconds_per_step"] / ours["seconds_per_step"],
                  "render": ours["render_mpixels_per_s"] / ref["render_mpixels_per_s"]}
    else:
        ratios = {}
    for r in rows:
        if r["network"].startswith("preset") and ref:
            key = r["network"].split(" (")[0]
            if r["seconds_to_target"] and ref["seconds_to_target"]:
                ratios[f"{key}: fit_time_to_target"] = ref["seconds_to_target"] / r["seconds_to_target"]
            ratios[f"{key}: render"] = r["render_mpixels_per_s"] / ref["render_mpixels_per_s"]
    for r in rows:
        to = "not reached" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f} s ({r['steps_to_target']})"
        print(f"{r['network']:<28}{r['params']:>9}{r['seconds_per_step']:>9.3f}{r['final_psnr']:>10.2f}"
              f"{to:>16}{r['render_mpixels_per_s']:>13.2f}")
    machine_after = machine_record()
    print(f"machine before: {machine_line(machine_before)}; after: {machine_line(machine_after)}")
    for note in notes:
        print(note)
    if ratios:
        print("coordsr speed-up over the reference (reference time / ours; render: ours / reference): "
              + ", ".join(f"{k} {'n/a' if v is None else format(v, '.2f') + 'x'}" for k, v in ratios.items()))
    doc = {"benchmark": "siren_speed", "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "image": {"height": h, "width": w, "channels": c}, "device": str(device),
           "environment": environment(), "machine_before": machine_before, "machine_after": machine_after,
           "notes": notes, "speedup": ratios, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
