"""Speed and memory of `coordsr art` for a typical CPPN (8 hidden layers x 32 units, tanh; or
another activation with --activation, e.g. mix).

- a poster (default 3840x2160 PNG): seconds to draw, seconds with encoding, MP/s, peak RSS;
- an animation (default 240 frames of 512x512, latent walk, MP4 or GIF): seconds, MP/s, peak RSS,
  and the peak RSS of the same animation at a tenth of the frames (memory must not grow with
  the length: frames are streamed to the encoder).

Each case runs in a fresh process (its own peak RSS and warm-up). The machine's load average is
recorded before and after each case: on a shared machine timings are only comparable beside it.

    python benchmarks/art_speed.py --json benchmarks/results/art_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from _spawn import in_process  # benchmarks/ is on sys.path when run as a script

NETWORK = dict(depth=8, width=32, activation="tanh")


def loadavg() -> float:
    return os.getloadavg()[0]


def poster(threads: int, h: int, w: int, activation: str, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.art import CPPN, ArtConfig, Scene, draw, make_art

    cfg = ArtConfig(seed=7, **{**NETWORK, "activation": activation})
    draw(Scene(CPPN(cfg)), (64, 64))  # warm-up: kernels chosen, pages mapped
    load = loadavg()
    start = time.perf_counter()
    pixels = draw(Scene(CPPN(cfg)), (h, w))
    render_s = time.perf_counter() - start
    del pixels
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_art(Path(tmp) / "poster.png", cfg=cfg, size=(h, w))
        total_s = time.perf_counter() - start
    queue.put({"case": f"poster {w}x{h} PNG", "threads": threads, "render_s": render_s, "total_s": total_s,
               "mpx_per_s": h * w / render_s / 1e6, "output_mb": h * w * 3 / 2**20,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "loadavg_before": load, "loadavg_after": loadavg()})


def animation(threads: int, frames: int, h: int, w: int, fmt: str, activation: str, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.art import CPPN, Animation, ArtConfig, Scene, draw, make_art

    cfg = ArtConfig(seed=7, **{**NETWORK, "activation": activation})
    draw(Scene(CPPN(cfg)), (64, 64))
    load = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_art(Path(tmp) / f"walk.{fmt}", cfg=cfg, size=(h, w), animation=Animation(frames=frames))
        total_s = time.perf_counter() - start
        size_mb = (Path(tmp) / f"walk.{fmt}").stat().st_size / 2**20
    queue.put({"case": f"animation {frames} x {w}x{h} {fmt.upper()}", "threads": threads, "frames": frames,
               "total_s": total_s, "mpx_per_s": frames * h * w / total_s / 1e6, "file_mb": size_mb,
               "frame_mb": h * w * 3 / 2**20,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "loadavg_before": load, "loadavg_after": loadavg()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2", help="comma-separated torch thread counts, e.g. 1,2")
    ap.add_argument("--poster", default="3840x2160", help="WxH of the poster ('' to skip)")
    ap.add_argument("--frame", default="512x512", help="WxH of the animation frames")
    ap.add_argument("--frames", type=int, default=240, help="frames of the animation (0 to skip)")
    ap.add_argument("--format", choices=("mp4", "gif"), default=None, help="default: mp4 if imageio-ffmpeg is there")
    ap.add_argument("--activation", default=NETWORK["activation"], help="the CPPN's activation: tanh, mix, ...")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/art_speed.json"))
    args = ap.parse_args(argv)
    fmt = args.format
    if fmt is None:
        try:
            import imageio_ffmpeg  # noqa: F401
            fmt = "mp4"
        except ImportError:
            fmt = "gif"
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        if args.poster:
            w, h = (int(v) for v in args.poster.split("x"))
            rows.append(in_process(poster, threads, h, w, args.activation))
        if args.frames:
            w, h = (int(v) for v in args.frame.split("x"))
            rows.append(in_process(animation, threads, args.frames, h, w, fmt, args.activation))
            short = max(1, args.frames // 10)  # memory must not grow with the length
            rows.append(in_process(animation, threads, short, h, w, fmt, args.activation))
    print("| case | threads | seconds (draw / total) | MP/s | peak RSS MB | load avg before / after |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        secs = f"{r['render_s']:.2f} / {r['total_s']:.2f}" if "render_s" in r else f"{r['total_s']:.2f}"
        print(f"| {r['case']} | {r['threads']} | {secs} | {r['mpx_per_s']:.2f} | {r['peak_rss_mb']:.0f} "
              f"| {r['loadavg_before']:.1f} / {r['loadavg_after']:.1f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
                                     "cpus": os.cpu_count(),
                                     "network": {**NETWORK, "activation": args.activation}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
