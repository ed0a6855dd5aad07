"""How OpenMP's wait policy makes the CLI's speed depend on the machine's other work.

PyTorch's CPU wheels run their parallel regions on libgomp's threads. Between regions a
thread spins (GOMP_SPINCOUNT, 300000 polls by default) before it sleeps. On an idle machine
spinning saves a wake-up; when another process holds one of the cores, the spinning thread
burns the time slice that the thread it waits for needs, and every region waits for the
scheduler. This script times the seed's job from the CLI (64x64 -> 1024x1024, the default
method and hashgrid) under several wait settings, on an idle machine and beside one competing
process (a single-threaded float32 matrix-product loop, as a user's other job, started in its
own session: Linux's autogroup scheduler shares the CPU between sessions, as it would between a
user's two terminals), alternating so that drift hits each alike. It prints a table and writes
JSON.

"libgomp default" runs the CLI with torch imported before coordsr (so coordsr's own setting,
applied before torch loads, cannot take effect); every other row sets its variables explicitly.

    .venv/bin/python benchmarks/omp_wait.py --json benchmarks/results/omp_wait.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402
from cli_speed import wall, write_x64  # noqa: E402

def settings(spincounts: list[str]) -> dict[str, dict[str, str]]:
    """Wait settings to compare: libgomp's default, no spin, and each of ``spincounts``."""
    return {"libgomp default": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
            **{f"GOMP_SPINCOUNT={n}": {"GOMP_SPINCOUNT": n} for n in spincounts}}


COMMANDS: dict[str, list[str]] = {
    "upscale (pretrained)": ["upscale", "x64.png", "-o", "y.png", "--size", "1024x1024", "--force", "-q"],
    "upscale --method hashgrid": ["upscale", "x64.png", "-o", "y.png", "--size", "1024x1024",
                                  "--method", "hashgrid", "--force", "-q"],
}
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

BUSY = ("import torch; torch.set_num_threads(1); a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)\n"
        "while True: a @ b")


def cli(args: list[str], setting: str) -> list[str]:
    if setting == "libgomp default":  # torch (and libgomp) loaded before coordsr can set anything
        code = f"import sys, torch; sys.argv = {['coordsr', *args]!r}; from coordsr.cli import app_main; app_main()"
        return [sys.executable, "-c", code]
    return [sys.executable, "-m", "coordsr", *args]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--spincounts", default="10000,1000",
                   help="comma-separated GOMP_SPINCOUNT values to time beside the default and PASSIVE")
    a = p.parse_args(argv)
    waits = settings(a.spincounts.split(","))
    base_env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    before = machine_record()
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        load: {c: {s: [] for s in waits} for c in COMMANDS} for load in ("idle", "busy")}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        write_x64(cwd / "x64.png")
        for load in ("idle", "busy"):
            busy = (subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True)
                    if load == "busy" else None)
            try:
                time.sleep(1.0 if busy else 0.0)
                for _ in range(a.repeats):
                    for c, args in COMMANDS.items():
                        for s, extra in waits.items():
                            times[load][c][s].append(wall(cli(args, s), cwd, {**base_env, **extra}))
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    after = machine_record()
    print("| command | wait setting | idle: best / median s | one core busy: best / median s | busy / idle (median) |")
    print("|---|---|---|---|---|")
    summary = {}
    for c in COMMANDS:
        for s in waits:
            idle, busy_t = times["idle"][c][s], times["busy"][c][s]
            mi, mb = statistics.median(idle), statistics.median(busy_t)
            summary.setdefault(c, {})[s] = {"idle_best": min(idle), "idle_median": mi,
                                            "busy_best": min(busy_t), "busy_median": mb}
            print(f"| {c} | {s} | {min(idle):.2f} / {mi:.2f} | {min(busy_t):.2f} / {mb:.2f} | {mb / mi:.1f}x |")
    print(f"machine before: {machine_line(before)}; after: {machine_line(after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "machine_before": before,
                                      "machine_after": after, "busy_load": BUSY, "times": times,
                                      "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
