"""Streamed output (issue 17, parts 1 and 2): peak memory and speed of writing tiles as they are made.

Each case runs in a fresh process (its peak resident memory, ``ru_maxrss``, is its own):

- ``memory``: a hashgrid field (fitted to a 64x64 photo) drawn into one in-memory uint8 array
  (``render_field``) at --memory-size: the reference speed, measured before and after the stream;
- ``stream``: the same field drawn at --size x --size RGB to a tiled, pyramidal TIFF
  (``coordsr.stream``, what ``coordsr render FIELD -o x.tif`` does), peak RSS and speed, and the
  speed as a fraction of the mean of the two in-memory runs; on a shared machine whose speed
  changes from minute to minute, also as the fraction of the run spent drawing (the renderer's
  in-memory work, band by band, timed inside the same run: the rest is the writer's cost);
- ``pretrained``: ``coordsr upscale IN.png -o out.tif --scale 2 --method pretrained`` on a
  --input photo (4000x3000), the whole command in-process (decoding included): peak RSS, seconds.

Options add the 131072 x 131072 run (--huge, long) and an 8000x6000 input (--big-input).

    nice -n 10 python benchmarks/stream_speed.py --json benchmarks/results/stream_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _machine import machine_line, machine_record  # benchmarks/ is on sys.path when run as a script
from _spawn import in_process


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def photo(h: int, w: int) -> np.ndarray:
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    return np.clip(imresize_np(img, (h, w), scale=(h / img.shape[0], w / img.shape[1])), 0, 1).astype(np.float32)


def make_field(path: Path) -> dict:
    """A hashgrid field fitted to a 64x64 photo (its default preset), saved to ``path``."""
    from coordsr.cli import build_method

    method = build_method("hashgrid", {"precision": "fp32"}, "cpu")
    field, result = method.fit_field(photo(64, 64), (64, 64))
    field.save(path, method="hashgrid", settings=method.settings())
    return {"steps": result.steps, "psnr": result.psnr}


def in_memory(field_path: str, size: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.field import Field
    from coordsr.render import render_field

    field = Field.load(field_path, device="cpu")
    render_field(field, (256, 256), dtype=np.uint8)  # warm-up
    machine = machine_record()
    start = time.perf_counter()
    out = render_field(field, (size, size), dtype=np.uint8)
    seconds = time.perf_counter() - start
    queue.put({"case": f"in-memory {size}x{size}", "seconds": seconds, "mpx_s": size * size / 1e6 / seconds,
               "output_mb": out.nbytes / 2**20, "peak_rss_mb": peak_rss_mb(), "machine": machine})


def streamed(field_path: str, size: int, height: int, out_path: str, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.field import Field
    from coordsr.render import render_field, render_field_rows
    from coordsr.stream import Rows, write_rows

    field = Field.load(field_path, device="cpu")
    render_field(field, (256, 256), dtype=np.uint8)  # the same warm-up as the in-memory case
    machine = machine_record()
    drawing = 0.0

    def timed(bands):
        """The renderer's own time, band by band: the in-memory work inside the same run."""
        nonlocal drawing
        it = iter(bands)
        while True:
            t = time.perf_counter()
            item = next(it, None)
            drawing += time.perf_counter() - t
            if item is None:
                return
            yield item

    start = time.perf_counter()
    write_rows(out_path, Rows(height, size, 3, np.dtype(np.uint8),
                              timed(render_field_rows(field, (height, size), dtype=np.uint8))))
    seconds = time.perf_counter() - start
    row = {"case": f"streamed {size}x{height} -> {Path(out_path).suffix}", "seconds": seconds,
           "mpx_s": size * height / 1e6 / seconds, "file_mb": os.path.getsize(out_path) / 2**20,
           "render_seconds": drawing, "fraction_of_render_in_run": drawing / seconds,
           "peak_rss_mb": peak_rss_mb(), "machine": machine}
    import tifffile

    with tifffile.TiffFile(out_path) as tif:
        row["bigtiff"] = tif.is_bigtiff
        row["levels"] = [list(lv.shape) for lv in tif.series[0].levels]
        row["tiles_checked"] = check_tiles(field, tif, (height, size))
    os.unlink(out_path)
    queue.put(row)


def check_tiles(field, tif, size: tuple[int, int], count: int = 8, seed: int = 0) -> dict:
    """Level-0 tiles of the written file (the four corners and random others, read alone) against
    the in-memory render of their region (``render_field`` over that tile's box): how many are
    byte-equal, and the largest difference."""
    from coordsr.render import render_field

    page = tif.pages[0]
    th, tw = page.tilelength, page.tilewidth
    rows, cols = -(-size[0] // th), -(-size[1] // tw)
    rng = np.random.default_rng(seed)
    picks = {(0, 0), (0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1)}
    while len(picks) < min(count, rows * cols):
        picks.add((int(rng.integers(rows)), int(rng.integers(cols))))
    equal, worst = 0, 0
    for r, c in sorted(picks):
        index = r * cols + c
        tif.filehandle.seek(page.dataoffsets[index])
        segment, _, _ = page.decode(tif.filehandle.read(page.databytecounts[index]), index)
        r0, c0 = r * th, c * tw
        r1, c1 = min(r0 + th, size[0]), min(c0 + tw, size[1])
        got = np.asarray(segment).reshape(th, tw, -1)[:r1 - r0, :c1 - c0]
        box = (-1 + 2 * c0 / size[1], -1 + 2 * r0 / size[0], -1 + 2 * c1 / size[1], -1 + 2 * r1 / size[0])
        want = render_field(field, (r1 - r0, c1 - c0), box=box, dtype=np.uint8)
        diff = int(np.abs(got.astype(np.int16) - want).max())
        equal += diff == 0
        worst = max(worst, diff)
    return {"tiles": len(picks), "byte_equal": equal, "max_abs_diff": worst}


def pretrained_cli(in_path: str, out_path: str, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from coordsr.cli import main

    machine = machine_record()
    start = time.perf_counter()
    code = main(["upscale", in_path, "-o", out_path, "--scale", "2", "--method", "pretrained", "-q", "--force",
                 "--max-pixels", str(200_000_000)])
    seconds = time.perf_counter() - start
    import tifffile

    with tifffile.TiffFile(out_path) as tif:
        shape = list(tif.pages[0].shape)
    os.unlink(out_path)
    queue.put({"case": f"pretrained {Path(in_path).stem} x2 -> .tif", "status": code, "seconds": seconds,
               "output_shape": shape, "mpx_s": shape[0] * shape[1] / 1e6 / seconds,
               "peak_rss_mb": peak_rss_mb(), "machine": machine})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32768, help="side of the streamed render (0 = skip)")
    ap.add_argument("--height", type=int, default=0, help="height of the streamed render (default: --size); "
                    "a band of the full width has the same peak memory in less time")
    ap.add_argument("--memory-size", type=int, default=8192, help="side of the in-memory reference render")
    ap.add_argument("--huge", action="store_true", help="also stream 131072 x 131072 (17 Gpx; long)")
    ap.add_argument("--input", default="4000x3000", help="WxH of the pretrained input ('' = skip)")
    ap.add_argument("--big-input", action="store_true", help="also run pretrained on 8000x6000")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each process")
    ap.add_argument("--workdir", type=Path, default=None, help="folder for the outputs (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/stream_speed.json"))
    args = ap.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        fitted = make_field(tmp / "h.field")
        print(f"field: hashgrid fitted to 64x64 in {fitted['steps']} steps, {fitted['psnr']:.2f} dB", file=sys.stderr)

        def run(*a):
            row = in_process(*a)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
            return row

        for size in [s for s in (args.size, 131072 if args.huge else 0) if s]:
            before = run(in_memory, str(tmp / "h.field"), args.memory_size, args.threads)
            row = run(streamed, str(tmp / "h.field"), size, args.height or size, str(tmp / "out.tif"), args.threads)
            after = run(in_memory, str(tmp / "h.field"), args.memory_size, args.threads)
            row["fraction_of_in_memory"] = row["mpx_s"] / ((before["mpx_s"] + after["mpx_s"]) / 2)
        from PIL import Image

        for spec in [s for s in (args.input, "8000x6000" if args.big_input else "") if s]:
            w, h = (int(v) for v in spec.split("x"))
            src = tmp / f"{w}x{h}.png"
            Image.fromarray((photo(h, w) * 255).round().astype(np.uint8)).save(src)
            run(pretrained_cli, str(src), str(tmp / "up.tif"), args.threads)

    print("| case | seconds | MP/s | of in-memory speed (separate runs / within the run) | peak RSS MB "
          "| machine (same process) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        frac = (f"{r['fraction_of_in_memory']:.0%} / {r['fraction_of_render_in_run']:.0%}"
                if "fraction_of_in_memory" in r else "")
        print(f"| {r['case']} | {r['seconds']:.1f} | {r['mpx_s']:.2f} | {frac} | {r['peak_rss_mb']:.0f} "
              f"| {machine_line(r['machine'])} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
                                     "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                     "command": "python benchmarks/stream_speed.py " + " ".join(sys.argv[1:]),
                                     "field": fitted, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
