"""Reliability figures: every bad input a clear error, every signal an honest exit, a server that holds.

    python benchmarks/reliability.py                      # all three parts, a few minutes on 2 cores
    python benchmarks/reliability.py --parts cli --jobs 3 # one part: cli, server or signals
    python benchmarks/reliability.py --parts server --server-src /tmp/old/src --json /tmp/old.json --md ''

Three parts, each run against real processes (``python -m coordsr ...``):

(a) **cli**: a matrix of bad invocations (issue 11's items and the usual ones: missing files, bad
    numbers, bad fields, bombs, read-only and full disks). Each runs in a folder of its own with a
    timeout and is classified: ``clean`` (non-zero exit, exactly one stderr line starting
    ``coordsr:``, no traceback, no file left behind, every input unchanged), ``traceback``,
    ``accepted`` (exit 0: taken silently), ``hang`` (killed at the timeout) or ``unclear`` (none
    of these: several lines, a file left, an input changed, death by a signal).
(b) **server**: a loopback load test of a real ``coordsr serve``: bursts of concurrent clients
    with valid and invalid uploads (2048x2048 images, bombs, non-images, oversized bodies, foreign
    Host headers, cross-origin posts), a second server started on the same data folder, then
    kill -9 in the middle and a restart: requests sent / accepted / refused / failed, latencies,
    peak server RSS, jobs lost after the restart (must be 0) and jobs left stuck.
(c) **signals**: SIGINT and SIGTERM during a fit (``upscale``, ``fit``) and during ``train``
    (while it loads images, and while it trains): the exit status (130 / 143 expected), a
    ``coordsr:`` message, no temporary files left, no claim of a checkpoint that was not written.

Prints a table, writes ``benchmarks/results/reliability.json`` and ``RELIABILITY.md`` from it.
Loopback only; needs root for the read-only and full-disk rows (tmpfs mounts), else skips them.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]")
TRACEBACK = "Traceback (most recent call last)"
OUTCOMES = ("clean", "traceback", "accepted", "hang", "unclear", "skipped")


# =============================================================================================
# (a) the bad-input matrix
# =============================================================================================


@dataclass
class Case:
    """One bad invocation: ``coordsr ARGS`` run in a fresh folder holding the fixtures."""

    item: str
    """Issue 11 item it checks ('1'-'5'), or '-' for the usual bad inputs."""
    name: str
    """What is wrong, in a few words."""
    args: list[str]
    """Arguments after ``coordsr`` (paths relative to the case's folder)."""
    mount: str | None = None
    """'ro' (read-only) or 'full' (4 KiB: one page) tmpfs mounted at ./mnt for the run (root only)."""
    timeout: float | None = None
    """Seconds before the case counts as a hang (default: --timeout)."""


SMALL = ["upscale", "small.png", "-o", "out.png"]
FIT = ["-m", "siren", "--steps", "2"]



MESSAGE = re.compile(r"^coordsr( [a-z]+)?: ")
"""A message of ours: 'coordsr: ...', or 'coordsr train: ...' from a subcommand with its own parser."""
CHECKPOINT_CLAIM = re.compile(r"(?<!no )checkpoint written")
"""A claim that a checkpoint was written ('no checkpoint written' is the honest opposite)."""

def cases() -> list[Case]:
    """The matrix. Every case is a request that must be refused."""
    c = Case
    return [
        # 1. usage errors: the error boundary against the installed typer/click
        c("1", "no arguments", []),
        c("1", "unknown command", ["enhance", "small.png"]),
        c("1", "unknown option", [*SMALL, "--bogus"]),
        c("1", "unknown global option", ["--bogus", "methods"]),
        c("1", "upscale without -o", ["upscale", "small.png"]),
        c("1", "-o without a value", ["upscale", "small.png", "-o"]),
        c("1", "render without a field", ["render", "-o", "out.png"]),
        c("1", "fit without -o", ["fit", "small.png"]),
        c("1", "--scale abc", [*SMALL, "--scale", "abc"]),
        c("1", "--steps 1.5", [*SMALL, "-m", "siren", "--steps", "1.5"]),
        c("1", "--width abc", [*SMALL, "--width", "abc"]),
        c("1", "--seed x", [*SMALL, "-m", "siren", "--seed", "x"]),
        c("1", "bench without a folder", ["bench"]),
        c("1", "serve --port abc", ["serve", "--port", "abc"]),
        c("1", "demo --scale abc", ["demo", "--scale", "abc", "--out", "demo"]),
        c("1", "train --steps abc", ["train", "--data", "trainset", "--steps", "abc"]),
        c("1", "train without --data", ["train", "--out", "m.safetensors"]),
        # 2. tracebacks instead of one line
        c("2", "--scale inf", [*SMALL, "-m", "bicubic", "--scale", "inf"]),
        c("2", "--scale nan", [*SMALL, "-m", "bicubic", "--scale", "nan"]),
        c("2", "--scale -inf", [*SMALL, "-m", "bicubic", "--scale", "-inf"]),
        c("2", "--set lr=nan", [*SMALL, *FIT, "--set", "lr=nan"]),
        c("2", "--set lr=-1", [*SMALL, *FIT, "--set", "lr=-1"]),
        c("2", "--set hidden=-3", [*SMALL, *FIT, "--set", "hidden=-3"]),
        c("2", "--set hidden=0", [*SMALL, *FIT, "--set", "hidden=0"]),
        c("2", "upscale --bit-depth 12", [*SMALL, "-m", "bicubic", "--bit-depth", "12"]),
        c("2", "render --bit-depth 12", ["render", "good.field", "-o", "out.png", "--bit-depth", "12"]),
        c("2", "--device cuda without CUDA", [*SMALL, "--device", "cuda"]),  # the default method
        c("2", "--device bogus", [*SMALL, "--device", "bogus"]),
        c("2", "fit --device bogus", ["fit", "small.png", "-o", "out.field", *FIT, "--device", "bogus"]),
        c("2", "render --device bogus", ["render", "good.field", "-o", "out.png", "--device", "bogus"]),
        c("2", "render --box -inf,-1,inf,1", ["render", "good.field", "-o", "out.png", "--box", "-inf,-1,inf,1"]),
        c("2", "render --box nan,0,1,1", ["render", "good.field", "-o", "out.png", "--box", "nan,0,1,1"]),
        c("2", "upscale onto a read-only disk", ["upscale", "small.png", "-o", "mnt/out.png", "-m", "bicubic"],
          mount="ro"),
        c("2", "fit onto a read-only disk", ["fit", "small.png", "-o", "mnt/out.field", *FIT], mount="ro"),
        c("2", "fit onto a full disk", ["fit", "small.png", "-o", "mnt/out.field", "-m", "siren", "--steps", "2",
                                        "--set", "hidden=128"], mount="full"),
        c("2", "upscale onto a full disk", ["upscale", "noise.png", "-o", "mnt/out.png", "-m", "bicubic",
                                            "--scale", "4"], mount="full"),
        c("2", "render onto a full disk", ["render", "good.field", "-o", "mnt/out.png", "--size", "512x512"],
          mount="full"),
        c("2", "serve --port 70000", ["serve", "--port", "70000", "--data-dir", "web"], timeout=30),
        c("2", "train on a missing folder", ["train", "--data", "nowhere", "--out", "m.safetensors"]),
        # 3. accepted silently
        c("3", "--steps 0", [*SMALL, "-m", "siren", "--steps", "0"]),
        c("3", "--steps -5", [*SMALL, "-m", "siren", "--steps", "-5"]),
        c("3", "--set steps=0", [*SMALL, "-m", "hashgrid", "--set", "steps=0"]),
        c("3", "fit --steps 0", ["fit", "small.png", "-o", "out.field", "-m", "siren", "--steps", "0"]),
        c("3", "--scale 1e-9", [*SMALL, "-m", "bicubic", "--scale", "1e-9"]),
        c("3", "render --scale 1e-9", ["render", "good.field", "-o", "out.png", "--scale", "1e-9"]),
        c("3", "field header height 0", ["render", "h0.field", "-o", "out.png", "--size", "32x32"]),
        c("3", "field header height -5", ["render", "hneg.field", "-o", "out.png", "--size", "32x32"]),
        c("3", "field header convention 'nonsense'", ["render", "conv.field", "-o", "out.png", "--size", "32x32"]),
        c("3", "field header channels 7", ["render", "ch7.field", "-o", "out.png", "--size", "32x32"]),
        c("3", "field header bit depth 12", ["render", "bd12.field", "-o", "out.png", "--size", "32x32"]),
        c("3", "serve --max-upload-mb -1", ["serve", "--port", "0", "--data-dir", "web", "--max-upload-mb", "-1"],
          timeout=30),
        c("3", "serve --max-pixels 0", ["serve", "--port", "0", "--data-dir", "web", "--max-pixels", "0"],
          timeout=30),
        # 4. memory: refuse from the header, before decoding
        c("4", "PNG of 12000x12000 (140 KB)", ["upscale", "bomb.png", "-o", "out.png", "-m", "bicubic",
                                               "--scale", "1"], timeout=120),
        c("4", "TIFF claiming 100000x100000 (200 B)", ["upscale", "bomb.tif", "-o", "out.png", "-m", "bicubic"]),
        c("4", "--size 99999999x1", [*SMALL, "-m", "bicubic", "--size", "99999999x1"]),
        c("4", "--size 100000x100000", [*SMALL, "-m", "bicubic", "--size", "100000x100000"]),
        c("4", "render --size 99999999x1", ["render", "good.field", "-o", "out.png", "--size", "99999999x1"]),
        # the usual bad inputs
        c("-", "input missing", ["upscale", "missing.png", "-o", "out.png"]),
        c("-", "input is a folder", ["upscale", "afolder", "-o", "out.png"]),
        c("-", "input is text", ["upscale", "notes.png", "-o", "out.png"]),
        c("-", "input is empty", ["upscale", "empty.png", "-o", "out.png"]),
        c("-", "input truncated", ["upscale", "truncated.png", "-o", "out.png", "-m", "bicubic"]),
        c("-", "input 1x1", ["upscale", "tiny.png", "-o", "out.png", "-m", "bicubic"]),
        c("-", "output exists, no --force", ["upscale", "small.png", "-o", "exists.png", "-m", "bicubic"]),
        c("-", "output is the input (--force)", ["upscale", "small.png", "-o", "small.png", "--force"]),
        c("-", "output folder missing", ["upscale", "small.png", "-o", "nowhere/out.png"]),
        c("-", "output type unknown", ["upscale", "small.png", "-o", "out.xyz"]),
        c("-", "output is a folder", ["upscale", "small.png", "-o", "afolder"]),
        c("-", "unknown method", [*SMALL, "-m", "esrgan"]),
        c("-", "fit with an interpolation", ["fit", "small.png", "-o", "out.field", "-m", "bicubic"]),
        c("-", "--fit bogus", [*SMALL, "-m", "siren", "--fit", "bogus"]),
        c("-", "--scale 0", [*SMALL, "-m", "bicubic", "--scale", "0"]),
        c("-", "--scale -2", [*SMALL, "-m", "bicubic", "--scale", "-2"]),
        c("-", "--scale and --size", [*SMALL, "--scale", "2", "--size", "10x10"]),
        c("-", "--size abc", [*SMALL, "--size", "abc"]),
        c("-", "--size 0x10", [*SMALL, "--size", "0x10"]),
        c("-", "--width 0", [*SMALL, "--width", "0"]),
        c("-", "--height -5", [*SMALL, "--height", "-5"]),
        c("-", "--set without =", [*SMALL, "--set", "lr"]),
        c("-", "--set unknown setting", [*SMALL, "-m", "siren", "--set", "colour=red"]),
        c("-", "--set steps=abc", [*SMALL, "-m", "siren", "--set", "steps=abc"]),
        c("-", "render a missing field", ["render", "missing.field", "-o", "out.png"]),
        c("-", "render a PNG as a field", ["render", "png.field", "-o", "out.png"]),
        c("-", "render a truncated field", ["render", "trunc.field", "-o", "out.png"]),
        c("-", "render a field of format 99", ["render", "v99.field", "-o", "out.png"]),
        c("-", "render --box 1,1,0,0", ["render", "good.field", "-o", "out.png", "--box", "1,1,0,0"]),
        c("-", "render --box a,b,c,d", ["render", "good.field", "-o", "out.png", "--box", "a,b,c,d"]),
        c("-", "bench a missing folder", ["bench", "nowhere"]),
        c("-", "bench --scales abc", ["bench", "benchset", "--scales", "abc"]),
        c("-", "bench --methods esrgan", ["bench", "benchset", "--methods", "esrgan", "--scales", "2"]),
        c("-", "bench --json into a missing folder", ["bench", "benchset", "--scales", "2", "--json", "no/x.json"]),
        c("-", "demo --method esrgan", ["demo", "--method", "esrgan", "--out", "demo"]),
        c("-", "demo --scale 0", ["demo", "--scale", "0", "--out", "demo", "-m", "bicubic"]),
        c("-", "serve --workers 0", ["serve", "--workers", "0", "--port", "0", "--data-dir", "web"], timeout=30),
        c("-", "serve --data-dir is a file", ["serve", "--port", "0", "--data-dir", "small.png"], timeout=30),
    ]


# --- fixtures ------------------------------------------------------------------------------------


def make_fixtures(folder: Path) -> Path:
    """Every file the cases name, made once; each case gets a copy."""
    import numpy as np

    from coordsr.images import encode_image_bytes

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    small = small_image()
    (folder / "small.png").write_bytes(encode_image_bytes(small))
    (folder / "exists.png").write_bytes((folder / "small.png").read_bytes())
    (folder / "noise.png").write_bytes(encode_image_bytes(rng.random((64, 64, 3)).astype(np.float32)))
    (folder / "tiny.png").write_bytes(encode_image_bytes(np.full((1, 1, 3), 0.5, np.float32)))
    (folder / "notes.png").write_text("shopping list: milk, eggs\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "noise.png").read_bytes()[:200])
    (folder / "bomb.png").write_bytes(png_of_zeros(12000, 12000))
    (folder / "bomb.tif").write_bytes(tiff_header_only(100_000, 100_000))
    (folder / "afolder").mkdir(exist_ok=True)
    (folder / "benchset").mkdir(exist_ok=True)
    (folder / "benchset" / "a.png").write_bytes(encode_image_bytes(rng.random((24, 24, 3)).astype(np.float32)))
    (folder / "trainset").mkdir(exist_ok=True)
    (folder / "trainset" / "a.png").write_bytes((folder / "noise.png").read_bytes())
    make_fields(folder, small)
    return folder


def small_image():
    """16x16 RGB, smooth: the input of most cases."""
    import numpy as np

    yy, xx = np.mgrid[0:16, 0:16] / 16
    return np.stack([np.sin(6 * xx + k) * np.cos(5 * yy - k) * 0.4 + 0.5 for k in range(3)], -1).astype(np.float32)


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width x height`` zeros: a few hundred KB that decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with almost no data after it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def tiff_header_only(width: int, height: int) -> bytes:
    """A little-endian TIFF whose only IFD claims width x height 8-bit grey pixels in one strip."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (278, 4, height), (279, 4, width)]  # one strip, its byte count a lie too
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\0" * 64


def make_fields(folder: Path, image) -> None:
    """A real small field, and copies with a header that lies or a body that is cut."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from coordsr.methods import get_method

    field_, _ = get_method("cppn")(device="cpu", steps=3, hidden=16, layers=2).fit_field(image, (32, 32))
    good = folder / "good.field"
    field_.save(good, method="cppn")
    with safe_open(str(good), framework="pt") as f:
        header = json.loads(f.metadata()["coordsr"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}

    def variant(name: str, change) -> None:
        h = json.loads(json.dumps(header))
        change(h)
        save_file(tensors, str(folder / name), metadata={"coordsr": json.dumps(h)})

    variant("h0.field", lambda h: h["image"].update(height=0))
    variant("hneg.field", lambda h: h["image"].update(height=-5))
    variant("ch7.field", lambda h: h["image"].update(channels=7))
    variant("bd12.field", lambda h: h["image"].update(bit_depth=12))
    variant("conv.field", lambda h: h["config"].update(convention="nonsense"))
    variant("v99.field", lambda h: h.update(format_version=99))
    data = good.read_bytes()
    (folder / "trunc.field").write_bytes(data[: len(data) // 2])
    (folder / "png.field").write_bytes((folder / "small.png").read_bytes())


# --- running and classifying --------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder`` (folders as 'dir')."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def stderr_lines(text: str) -> list[str]:
    """The non-empty lines of a program's output, without terminal codes (a progress bar's
    redraws, separated by carriage returns, count as lines of their own)."""
    return [line.rstrip()[:300] for line in ANSI.sub("", text).replace("\r", "\n").splitlines() if line.strip()]


def classify(rc: int | None, stdout: str, stderr: str, timed_out: bool, left: list[str],
             changed: list[str]) -> tuple[str, str]:
    """(outcome, why) of one bad invocation; the outcomes are described in the module docstring."""
    if timed_out:
        return "hang", "still running at the timeout"
    if TRACEBACK in stderr or TRACEBACK in stdout:
        last = stderr_lines(stderr)[-1:] or ["?"]
        return "traceback", last[0][:200]
    if rc == 0:
        return "accepted", f"exit 0, wrote {', '.join(left) or 'nothing'}"
    lines = stderr_lines(stderr)
    problems = []
    if rc is None or rc < 0:
        problems.append(f"killed by signal {-(rc or 0)}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    elif not MESSAGE.match(lines[0]):
        problems.append("the line does not start with 'coordsr:' (or 'coordsr COMMAND:')")
    if left:
        problems.append(f"left {', '.join(left[:3])}")
    if changed:
        problems.append(f"changed {', '.join(changed[:3])}")
    if problems:
        return "unclear", "; ".join(problems)
    return "clean", lines[0][:200]


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


def run_case(case: Case, fixtures: Path, workdir: Path, command: list[str], timeout: float,
             env: dict | None = None) -> dict:
    """Run one case in ``workdir`` (made from ``fixtures``) and classify it."""
    shutil.copytree(fixtures, workdir)
    mounted = False
    row = {"item": case.item, "name": case.name, "args": case.args}
    try:
        if case.mount:
            if not can_mount():
                return {**row, "outcome": "skipped", "why": "needs root to mount a tmpfs"}
            (workdir / "mnt").mkdir()
            opts = "ro,size=1m" if case.mount == "ro" else "size=4k"
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(workdir / "mnt")],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return {**row, "outcome": "skipped", "why": f"mount failed: {done.stderr.strip()[:100]}"}
            mounted = True
        before = snapshot(workdir)
        start = time.monotonic()
        proc = subprocess.Popen([*command, *case.args], cwd=workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=case.timeout or timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        seconds = time.monotonic() - start
        after = snapshot(workdir)
        left = sorted(set(after) - set(before))
        changed = sorted(p for p in before if after.get(p) != before[p])
        outcome, why = classify(None if timed_out else proc.returncode, out, err, timed_out, left, changed)
        return {**row, "outcome": outcome, "why": why, "rc": proc.returncode, "seconds": round(seconds, 2),
                "stderr_tail": stderr_lines(err)[-3:], "left": left, "changed": changed}
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(workdir / "mnt")], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def run_cases(case_list: list[Case], fixtures: Path, scratch: Path, command: list[str], timeout: float,
              jobs: int = 2, env: dict | None = None, echo=None) -> list[dict]:
    """Every case, ``jobs`` at a time, in the list's order."""
    scratch.mkdir(parents=True, exist_ok=True)
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(run_case, case, fixtures, scratch / f"case{i:03d}", command, timeout, env)
                   for i, case in enumerate(case_list)]
        rows = []
        for f in futures:
            rows.append(f.result())
            if echo:
                r = rows[-1]
                echo(f"  [{r['item']}] {r['name']:<40} {r['outcome']:<9} {r.get('why', '')[:90]}")
    return rows


def cli_env() -> dict:
    """The matrix's environment: no CUDA (the '--device cuda' row), one thread per process."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "COLUMNS": "100"}


def part_cli(args, scratch: Path, echo) -> dict:
    fixtures = make_fixtures(scratch / "fixtures")
    load = loadavg()
    start = time.monotonic()
    rows = run_cases(cases(), fixtures, scratch / "cases", [args.python, "-m", "coordsr"], args.timeout,
                     jobs=args.jobs, env=cli_env(), echo=echo)
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    return {"rows": rows, "counts": counts, "tried": len(rows), "seconds": round(time.monotonic() - start, 1),
            "loadavg_before": load, "loadavg_after": loadavg(), "timeout_s": args.timeout, "jobs": args.jobs}


# =============================================================================================
# (b) the server under load, kill -9 and restart
# =============================================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(fields: dict[str, str], file_name: str, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = "coordsr-reliability-" + hashlib.sha1(file_bytes[:64] + file_name.encode()).hexdigest()[:12]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + file_bytes + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Kind:
    """A kind of request the load test sends, and what a correct server answers."""

    name: str
    fields: dict
    file: str
    """Key of the payload (see ``payloads``)."""
    valid: bool
    """True: a job the server should take (202) or refuse for capacity only (503)."""
    headers: dict = field(default_factory=dict)
    expect: tuple[int, ...] = ()
    """The only right answers, when they are known before the queue is (() for an invalid upload:
    any 4xx, or 503 when the queue is full, since a full queue is checked first)."""


KINDS = {k.name: k for k in [
    Kind("small bicubic", {"method": "bicubic", "scale": "2"}, "small", True),
    Kind("hashgrid fit", {"method": "hashgrid", "steps": "30", "scale": "2"}, "small", True),
    Kind("2048x2048 PNG", {"method": "bicubic", "scale": "1"}, "big", True),
    Kind("not an image", {"method": "bicubic"}, "text", False),
    Kind("bomb header", {"method": "bicubic"}, "bomb", False),
    Kind("unknown method", {"method": "esrgan"}, "small", False),
    Kind("scale 1000", {"method": "bicubic", "scale": "1000"}, "small", False),
    Kind("21 MiB body", {"method": "bicubic"}, "huge", False, expect=(413,)),
    Kind("foreign Host", {"method": "bicubic"}, "small", False, {"Host": "attacker.example"}, expect=(400,)),
    Kind("cross-origin", {"method": "bicubic"}, "small", False, {"Origin": "http://attacker.example"},
         expect=(403,)),
]}
MIXED = ["small bicubic", "hashgrid fit", "2048x2048 PNG", "not an image", "bomb header", "unknown method",
         "scale 1000", "21 MiB body", "foreign Host", "cross-origin"]


def payloads() -> dict[str, bytes]:
    import numpy as np

    from coordsr.images import encode_image_bytes

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:2048, 0:2048].astype(np.float32) / 2048
    big = np.stack([np.sin(40 * xx + k) * np.cos(30 * yy - k) * 0.3 + 0.5 for k in range(3)], -1)
    big += 0.1 * rng.random(big.shape, dtype=np.float32)
    return {"small": encode_image_bytes(rng.random((32, 32, 3)).astype(np.float32)),
            "big": encode_image_bytes(np.clip(big, 0, 1)),
            "text": b"this is not an image\n" * 10,
            "bomb": png_header_only(100_000, 100_000),
            "huge": rng.integers(0, 256, 21 << 20, dtype=np.uint8).tobytes()}


def send(port: int, kind: Kind, data: dict[str, bytes], timeout: float = 120) -> dict:
    body, ctype = multipart(kind.fields, f"{kind.file}.png", data[kind.file])
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": ctype, "Content-Length": str(len(body)),
               **kind.headers}
    start = time.monotonic()
    row = {"kind": kind.name, "valid": kind.valid, "expect": list(kind.expect)}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.putrequest("POST", "/api/jobs", skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered without reading it all: its answer is still there to read
        r = conn.getresponse()
        text = r.read()
        conn.close()
        row.update(status=r.status, seconds=time.monotonic() - start)
        try:
            answer = json.loads(text)
            row["job"] = answer.get("id") if r.status == 202 else None
            row["detail"] = answer.get("detail") if r.status != 202 else None
        except ValueError:
            row["detail"] = text[:100].decode("latin-1")
    except (OSError, http.client.HTTPException) as exc:
        row.update(status=None, seconds=time.monotonic() - start, error=f"{type(exc).__name__}: {exc}"[:200])
    return row


def judge(row: dict) -> str:
    """accepted / refused / failed, or wrong: an answer that is not one of the kind's right ones."""
    s = row.get("status")
    if s is None or (s >= 500 and s != 503):
        return "failed"
    if row["expect"]:
        return "refused" if s in row["expect"] else "wrong"
    if 200 <= s < 300:
        return "accepted" if row["valid"] else "wrong"
    if s == 503 or (not row["valid"] and 400 <= s < 500):
        return "refused"
    return "wrong"


def get_json(port: int, path: str, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    return data


class Server:
    """A ``coordsr serve`` subprocess, with its peak RSS sampled from /proc."""

    def __init__(self, python: str, port: int, data_dir: Path, log: Path, env: dict):
        self.port, self.log = port, log
        self.proc = subprocess.Popen(
            [python, "-m", "coordsr", "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.peak_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        status = Path(f"/proc/{self.proc.pid}/status")
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):  # the kernel's own high-water mark of RSS
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.05)

    def wait_ready(self, limit: float = 180) -> float:
        start = time.monotonic()
        while time.monotonic() - start < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}")
            try:
                get_json(self.port, "/api/limits", timeout=2)
                return time.monotonic() - start
            except (OSError, ValueError, http.client.HTTPException):
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in {limit:.0f} s; see {self.log}")

    def kill(self, sig=signal.SIGKILL) -> int:
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self._stop.set()
        return rc


def burst(port: int, names: list[str], data: dict, clients: int) -> list[dict]:
    with cf.ThreadPoolExecutor(clients) as pool:
        rows = list(pool.map(lambda n: send(port, KINDS[n], data), names))
    for r in rows:
        r["outcome"] = judge(r)
    return rows


def jobs_by_id(port: int) -> dict[str, dict]:
    return {j["id"]: j for j in get_json(port, "/api/jobs?limit=1000")["jobs"]}


def summarize(rows: list[dict]) -> dict:
    def seconds(sel):
        xs = sorted(r["seconds"] for r in rows if sel(r))
        return {"n": len(xs), "median_s": round(xs[len(xs) // 2], 3) if xs else None,
                "max_s": round(xs[-1], 3) if xs else None}

    out = {"sent": len(rows)}
    for o in ("accepted", "refused", "failed", "wrong"):
        out[o] = sum(r["outcome"] == o for r in rows)
    out["status_counts"] = {str(s): sum(r.get("status") == s for r in rows)
                            for s in sorted({r.get("status") or 0 for r in rows})}
    out["latency_202"] = seconds(lambda r: r.get("status") == 202)
    out["latency_503"] = seconds(lambda r: r.get("status") == 503)
    out["latency_refused_other"] = seconds(lambda r: r.get("status") not in (None, 202, 503))
    return out


def part_server(args, scratch: Path, echo) -> dict:
    import random

    data_dir, log = scratch / "web", scratch / "server.log"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    if args.server_src:
        env["PYTHONPATH"] = str(Path(args.server_src).resolve())
    port = free_port()
    data = payloads()
    rng = random.Random(0)
    load = loadavg()
    start = time.monotonic()
    result: dict = {"loadavg_before": load, "server_src": args.server_src or str(REPO / "src"),
                    "big_png_bytes": len(data["big"]), "clients": args.clients, "clients_big": args.big_clients}

    first = Server(args.python, port, data_dir, log, env)
    try:
        result["start_s"] = round(first.wait_ready(), 1)
        echo(f"  server up in {result['start_s']} s (pid {first.proc.pid}, port {port})")
        rows = burst(port, ["2048x2048 PNG"] * args.big_burst, data, args.big_clients)
        result["big_burst"] = summarize(rows)
        echo(f"  burst of {args.big_burst} 2048x2048 uploads: {result['big_burst']}")
        names = [MIXED[i % len(MIXED)] for i in range(args.mixed)]
        rng.shuffle(names)
        rows2 = burst(port, names, data, args.clients)
        result["phase1"] = summarize(rows2)
        echo(f"  mixed burst 1: {result['phase1']}")
        accepted = [r["job"] for r in rows + rows2 if r.get("status") == 202 and r.get("job")]
        before = jobs_by_id(port)
        interrupted_before = {i for i, j in before.items() if "interrupted" in (j.get("error") or "")}

        # A second server on the same folder (on another port, so that only the folder can stop
        # it) must refuse and change nothing; one still running after a minute is stopped here.
        second = subprocess.Popen([args.python, "-m", "coordsr", "serve", "--port", str(free_port()),
                                   "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env, start_new_session=True)
        try:
            _, second_err = second.communicate(timeout=60)
            second_rc = second.returncode
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            _, second_err = second.communicate()
            second_rc = None
        after = jobs_by_id(port)
        newly_failed = sorted(i for i, j in after.items()
                              if "interrupted" in (j.get("error") or "") and i not in interrupted_before)
        result["second_server"] = {"rc": second_rc, "still_serving_after_60s": second_rc is None,
                                   "stderr": stderr_lines(second_err)[-2:],
                                   "names_the_holder": f"pid {first.proc.pid}" in second_err,
                                   "jobs_marked_failed": len(newly_failed)}
        echo(f"  second server on the same folder: {result['second_server']}")

        active = [j["status"] for j in jobs_by_id(port).values() if j["status"] in ("queued", "running")]
        result["at_kill"] = {"queued": active.count("queued"), "running": active.count("running"),
                             "accepted_so_far": len(accepted)}
        result["peak_rss_mb_first"] = round(first.peak_kb / 1024, 1)
        first.kill(signal.SIGKILL)
        echo(f"  kill -9 with {result['at_kill']}")
    finally:
        if first.proc.poll() is None:
            first.kill(signal.SIGKILL)

    second_srv = Server(args.python, port, data_dir, log, env)
    try:
        result["restart_s"] = round(second_srv.wait_ready(), 1)
        listed = jobs_by_id(port)
        result["jobs_lost"] = sum(1 for i in accepted if i not in listed)
        result["jobs_accepted_before_kill"] = len(accepted)
        result["interrupted_marked_failed"] = sum(
            1 for i in accepted if listed.get(i, {}).get("status") == "failed"
            and "interrupted" in (listed[i].get("error") or ""))
        echo(f"  restarted in {result['restart_s']} s: {result['jobs_lost']} of {len(accepted)} jobs lost")
        names = [MIXED[i % len(MIXED)] for i in range(args.mixed)]
        rng.shuffle(names)
        rows3 = burst(port, names + ["2048x2048 PNG"] * (args.big_burst // 2), data, args.clients)
        result["phase2"] = summarize(rows3)
        echo(f"  mixed burst 2: {result['phase2']}")
        accepted2 = accepted + [r["job"] for r in rows3 if r.get("status") == 202 and r.get("job")]
        deadline = time.monotonic() + args.drain_s
        while time.monotonic() < deadline:
            listed = jobs_by_id(port)
            if not any(j["status"] in ("queued", "running") for j in listed.values()):
                break
            time.sleep(1)
        result["final_status"] = {s: sum(1 for i in accepted2 if listed.get(i, {}).get("status") == s)
                                  for s in ("done", "failed", "cancelled", "queued", "running")}
        result["jobs_stuck"] = result["final_status"]["queued"] + result["final_status"]["running"]
        result["jobs_lost_end"] = sum(1 for i in accepted2 if i not in listed)
        result["peak_rss_mb_restarted"] = round(second_srv.peak_kb / 1024, 1)
        rc = second_srv.kill(signal.SIGTERM)
        result["sigterm_exit"] = rc if rc >= 0 else 128 - rc  # uvicorn re-raises the signal after shutting down
    finally:
        if second_srv.proc.poll() is None:
            second_srv.kill(signal.SIGKILL)
    everything = rows + rows2 + rows3
    result["all"] = summarize(everything)
    result["by_kind"] = {k: {o: sum(1 for r in everything if r["kind"] == k and r["outcome"] == o)
                             for o in ("accepted", "refused", "failed", "wrong")}
                         for k in KINDS}
    result["failures"] = [r for r in everything if r["outcome"] in ("failed", "wrong")][:20]
    result["peak_rss_mb"] = max(result["peak_rss_mb_first"], result["peak_rss_mb_restarted"])
    result["seconds"] = round(time.monotonic() - start, 1)
    result["loadavg_after"] = loadavg()
    return result


# =============================================================================================
# (c) signals during fit and train
# =============================================================================================


@dataclass
class SignalRow:
    name: str
    args: list[str]
    sig: int
    trigger: str
    """'progress' (a fit's progress bar shows a step), 'train-step' (train printed a step) or
    'loading' (train has one of the training images open)."""


def signal_rows() -> list[SignalRow]:
    fit = ["-m", "siren", "--steps", "100000", "--until", "steps"]  # the default stop could end it first
    train = ["train", "--data", "trainset", "--out", "m.safetensors", "--steps", "100000", "--patch", "16",
             "--batch", "2", "--log-every", "1", "--val-every", "100000", "--ckpt-every", "100000",
             "--threads", "1", "--channels", "8", "--blocks", "1", "--hidden", "16"]
    rows = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        rows += [SignalRow("upscale (siren fit)", ["upscale", "small.png", "-o", "out.png", *fit], sig, "progress"),
                 SignalRow("fit (siren)", ["fit", "small.png", "-o", "out.field", *fit], sig, "progress"),
                 SignalRow("train (training)", train, sig, "train-step"),
                 SignalRow("train (loading images)", train, sig, "loading")]
    return rows


def make_trainset(folder: Path, count: int = 24, side: int = 1024) -> None:
    """Noise images: slow enough to decode that 'while it loads' can be caught from outside."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            folder / f"t{i:02d}.png", compress_level=1)


def _reader(stream, sink: list[str]) -> None:
    for chunk in iter(lambda: stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096), b""):
        sink.append(chunk.decode("utf-8", "replace"))


def _opens_a_file_in(pid: int, folder: Path) -> bool:
    base = str(folder.resolve())
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(base + "/"):
                    return True
            except OSError:
                continue
    except OSError:
        pass
    return False


def run_signal(row: SignalRow, fixtures: Path, workdir: Path, python: str, limit: float = 180) -> dict:
    workdir.mkdir(parents=True)
    shutil.copy(fixtures / "small.png", workdir / "small.png")
    (workdir / "trainset").symlink_to(fixtures / "trainset")  # 75 MB: shared, only read
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1",
           "COLUMNS": "120"}
    start = time.monotonic()
    proc = subprocess.Popen([python, "-m", "coordsr", *row.args], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    out, err = [], []
    threads = [threading.Thread(target=_reader, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    seen, phase = False, None
    while time.monotonic() - start < limit and proc.poll() is None:
        text_err, text_out = ANSI.sub("", "".join(err)), "".join(out)
        if row.trigger == "progress" and re.search(r"\b[1-9]\d*/\d+\b", text_err):
            seen, phase = True, "fitting"
        elif row.trigger == "train-step" and "step " in text_out:
            seen, phase = True, "training"
        elif row.trigger == "loading" and _opens_a_file_in(proc.pid, workdir / "trainset"):
            seen, phase = True, "loading" if "step " not in text_out else "training"
        if seen:
            break
        time.sleep(0.001 if row.trigger == "loading" else 0.05)
    result = {"name": row.name, "signal": signal.Signals(row.sig).name, "args": row.args}
    if proc.poll() is not None:
        for t in threads:
            t.join(5)
        return {**result, "ok": False, "why": f"exited ({proc.returncode}) before the trigger",
                "stderr_tail": stderr_lines("".join(err))[-3:]}
    sent_at = time.monotonic() - start
    proc.send_signal(row.sig)
    try:
        rc = proc.wait(60)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc, hung = proc.wait(), True
    for t in threads:
        t.join(5)
    shown = rc if rc >= 0 else 128 - rc  # a death by signal N reads 128 + N in a shell
    lines = stderr_lines("".join(err))
    message = next((ln for ln in reversed(lines) if MESSAGE.match(ln)), None)
    temps = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")
                   if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("tmp")))
    ckpt_claimed = any(CHECKPOINT_CLAIM.search(ln) for ln in lines)
    ckpts = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*.ckpt"))
    expected = 128 + row.sig
    problems = []
    if hung:
        problems.append("did not exit within 60 s of the signal")
    if rc < 0:
        problems.append(f"killed by {signal.Signals(-rc).name} (no handler)")
    if shown != expected:
        problems.append(f"exit {shown}, expected {expected}")
    if message is None:
        problems.append("no 'coordsr:' message")
    if temps:
        problems.append(f"left {', '.join(temps[:3])}")
    if ckpt_claimed and not ckpts:
        problems.append("says 'checkpoint written' but none was")
    shutil.rmtree(workdir, ignore_errors=True)
    return {**result, "ok": not problems, "why": "; ".join(problems) or "clean", "phase": phase,
            "sent_after_s": round(sent_at, 1), "rc": rc, "exit_status": shown, "expected": expected,
            "message": message, "temp_files": temps, "checkpoints": ckpts, "stderr_tail": lines[-3:]}


def part_signals(args, scratch: Path, echo) -> dict:
    from coordsr.images import encode_image_bytes

    fixtures = scratch / "sig-fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    (fixtures / "small.png").write_bytes(encode_image_bytes(small_image()))
    make_trainset(fixtures / "trainset")
    load = loadavg()
    start = time.monotonic()
    rows = []
    for i, row in enumerate(signal_rows()):
        rows.append(run_signal(row, fixtures, scratch / f"sig{i:02d}", args.python))
        r = rows[-1]
        echo(f"  {r['name']:<24} {r['signal']:<8} {'ok' if r['ok'] else 'FAIL':<5} {r['why'][:90]}")
    return {"rows": rows, "passed": sum(r["ok"] for r in rows), "tried": len(rows),
            "seconds": round(time.monotonic() - start, 1), "loadavg_before": load, "loadavg_after": loadavg()}


# =============================================================================================
# report
# =============================================================================================


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def environment() -> dict:
    import torch

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(), "commit": commit, "root": can_mount()}


def markdown(doc: dict, command: str) -> str:
    env = doc["environment"]
    out = ["# Reliability", "",
           f"Written by `benchmarks/reliability.py` from `benchmarks/results/reliability.json` "
           f"({env['date']}, commit {env['commit'] or '?'}, {env['cpus']} CPUs, torch {env['torch']}). "
           f"Command: `{command}`. Every figure below comes from real processes: `python -m coordsr ...` "
           "subprocesses and a real `coordsr serve` on a loopback port.", ""]
    for part in ("cli", "server", "signals"):
        if doc.get(part, {}).get("error"):
            out += [f"**{part}: could not run**: {doc[part]['error']}", ""]
    cli = doc.get("cli")
    if cli and not cli.get("error"):
        c = cli["counts"]
        out += ["## Bad input (the CLI matrix)", "",
                f"{cli['tried']} bad invocations, each in a fresh folder with a {cli['timeout_s']:g} s timeout "
                f"({cli['seconds']:g} s in all, load average {cli['loadavg_before']} before, "
                f"{cli['loadavg_after']} after):", "",
                "| answered cleanly | traceback | accepted silently | hang | unclear | skipped |",
                "|---|---|---|---|---|---|",
                f"| {c['clean']} | {c['traceback']} | {c['accepted']} | {c['hang']} | {c['unclear']} | {c['skipped']} |",
                "", "Clean: non-zero exit, exactly one stderr line starting `coordsr:`, no traceback, no file left "
                "behind, every input unchanged. Unclear: none of the other outcomes (several lines, a file left, "
                "an input changed, death by a signal).", "",
                "| item | bad input | outcome | what happened |", "|---|---|---|---|"]
        for r in cli["rows"]:
            why = (r.get("why") or "").replace("|", "\\|")
            out.append(f"| {r['item']} | {r['name']} | {r['outcome']} | {why[:140]} |")
        out.append("")
    srv = doc.get("server")
    if srv and not srv.get("error"):
        a = srv["all"]
        out += ["## The server under load, kill -9 and restart", "",
                f"A real `coordsr serve` (one worker, default limits: queue 8, 20 MiB uploads, 2048x2048 "
                f"pixels) on a loopback port; load average {srv['loadavg_before']} before, "
                f"{srv['loadavg_after']} after, {srv['seconds']:g} s in all. First a burst of "
                f"{srv['big_burst']['sent']} uploads of a 2048x2048 PNG ({srv['big_png_bytes'] / 2**20:.1f} MiB) "
                f"from {srv['clients_big']} concurrent clients, then "
                f"{srv['phase1']['sent']} mixed requests (valid and invalid, from {srv['clients']} clients), a "
                "second server started on the same data folder, kill -9 of the server, a restart, and "
                f"{srv['phase2']['sent']} more requests.", "",
                "| requests sent | accepted (202) | refused (4xx, 503) | failed | wrong answer | peak server RSS "
                "| jobs lost after the restart | jobs stuck |", "|---|---|---|---|---|---|---|---|",
                f"| {a['sent']} | {a['accepted']} | {a['refused']} | {a['failed']} | "
                f"{a['wrong']} | {srv['peak_rss_mb']:.0f} MB | "
                f"{srv['jobs_lost']} of {srv['jobs_accepted_before_kill']} | {srv['jobs_stuck']} |", "",
                "Failed: no HTTP answer or a 5xx other than 503. Wrong answer: an invalid request accepted, a "
                "valid one refused for anything but capacity, or a foreign Host, a cross-origin post or an "
                "oversized body answered otherwise than 400, 403 and 413.", "",
                "| phase | sent | accepted | refused | failed | 202 median / max | 503 median / max |",
                "|---|---|---|---|---|---|---|"]
        for name, key in (("2048x2048 burst", "big_burst"), ("mixed, before kill", "phase1"),
                          ("mixed, after restart", "phase2")):
            p = srv[key]
            out.append(f"| {name} | {p['sent']} | {p['accepted']} | {p['refused']} | {p['failed']} | "
                       f"{_lat(p['latency_202'])} | {_lat(p['latency_503'])} |")
        s2 = srv["second_server"]
        out += ["", f"- Second server on the same data folder: exit "
                    f"{s2['rc'] if s2['rc'] is not None else 'none (still serving after 60 s, stopped)'}, names the holder: "
                    f"{'yes' if s2['names_the_holder'] else 'no'}, jobs it marked failed: {s2['jobs_marked_failed']} "
                    f"(`{(s2['stderr'] or [''])[-1][:160]}`).",
                f"- At the kill: {srv['at_kill']['running']} running, {srv['at_kill']['queued']} queued, "
                f"{srv['jobs_accepted_before_kill']} accepted so far; after the restart ({srv['restart_s']:g} s) "
                f"{srv['interrupted_marked_failed']} interrupted jobs were marked failed, {srv['jobs_lost']} lost.",
                f"- At the end: {srv['final_status']} (jobs stuck: {srv['jobs_stuck']}); peak RSS "
                f"{srv['peak_rss_mb_first']:.0f} MB before the kill, {srv['peak_rss_mb_restarted']:.0f} MB after; "
                f"SIGTERM: exit status {srv['sigterm_exit']}.", "",
                "| request kind | accepted | refused | failed | wrong |", "|---|---|---|---|---|"]
        for k, v in srv["by_kind"].items():
            out.append(f"| {k} | {v['accepted']} | {v['refused']} | {v['failed']} | {v['wrong']} |")
        out.append("")
    sig = doc.get("signals")
    if sig and not sig.get("error"):
        out += ["## Signals during fit and train", "",
                f"{sig['passed']} of {sig['tried']} clean (load average {sig['loadavg_before']} before). Expected: "
                "SIGINT exits 130, SIGTERM 143, a `coordsr:` message, no temporary file left, no checkpoint "
                "claimed that was not written.", "",
                "| command | signal | when | exit | message | temp files | verdict |", "|---|---|---|---|---|---|---|"]
        for r in sig["rows"]:
            msg = (r.get("message") or "none").replace("|", "\\|")[:80]
            out.append(f"| {r['name']} | {r['signal']} | {r.get('phase') or '-'} "
                       f"{'after ' + str(r['sent_after_s']) + ' s' if 'sent_after_s' in r else ''} | "
                       f"{r.get('exit_status', '-')} (expected {r.get('expected', '-')}) | {msg} | "
                       f"{len(r.get('temp_files', []))} | {'clean' if r['ok'] else r['why'][:120]} |")
        out.append("")
    return "\n".join(out)


def _lat(x: dict) -> str:
    return "-" if not x["n"] else f"{x['median_s']:.2f} / {x['max_s']:.2f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="cli,server,signals", help="Comma-separated: cli, server, signals.")
    p.add_argument("--python", default=sys.executable, help="Interpreter that runs `-m coordsr`.")
    p.add_argument("--jobs", type=int, default=3, help="CLI cases run at the same time.")
    p.add_argument("--timeout", type=float, default=60, help="Seconds before a CLI case is a hang.")
    p.add_argument("--clients", type=int, default=16, help="Concurrent clients of the mixed bursts.")
    p.add_argument("--big-clients", type=int, default=25, help="Concurrent clients of the 2048x2048 burst.")
    p.add_argument("--big-burst", type=int, default=50, help="Uploads of a 2048x2048 PNG in the first burst.")
    p.add_argument("--mixed", type=int, default=60, help="Requests in each mixed burst.")
    p.add_argument("--drain-s", type=float, default=240, help="Seconds allowed for the queue to empty at the end.")
    p.add_argument("--server-src", default=None, help="Run the server from this source folder (before/after).")
    p.add_argument("--json", default=str(RESULTS / "reliability.json"))
    p.add_argument("--md", default=str(REPO / "RELIABILITY.md"), help="'' to skip.")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(parts) - {"cli", "server", "signals"}
    if unknown:
        p.error(f"unknown parts: {', '.join(sorted(unknown))}")
    # A shell starts a background job with SIGINT ignored, and its children inherit that: give the
    # commands under test the default disposition, as a terminal would.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    doc = {"environment": environment(), "command": "python benchmarks/reliability.py " + " ".join(argv or sys.argv[1:])}
    echo = lambda text: print(text, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="coordsr-reliability-") as tmp:
        scratch = Path(tmp)
        for part, title, run in (("cli", "(a) bad CLI input", part_cli), ("server", "(b) the server under load",
                                 part_server), ("signals", "(c) signals", part_signals)):
            if part in parts:
                echo(title)
                try:
                    doc[part] = run(args, scratch, echo)
                except Exception as exc:  # a part that could not run is reported, not hidden
                    doc[part] = {"error": f"{type(exc).__name__}: {exc}"}
                    echo(f"  could not run: {doc[part]['error']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1))
    text = markdown(doc, doc["command"].strip())
    if args.md:
        Path(args.md).write_text(text + "\n")
    print()
    print(text)
    print(f"\nwrote {args.json}" + (f" and {args.md}" if args.md else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
