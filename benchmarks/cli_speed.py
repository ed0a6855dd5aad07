"""The seed's job from the command line, as a user runs it, against `python -c "import torch"`.

Runs, alternating so that the machine's load hits each alike, ``--repeats`` times each:
- ``python -c "import torch"`` (the floor every command pays);
- ``coordsr upscale x64.png -o y.png --size 1024x1024`` as a user types it (the default method,
  ``pretrained``), with the default per-image method and its default stop (``--method
  hashgrid``), and with ``--method bicubic``;
and reports the best wall time of each, the upscale's time beyond ``import torch`` (issue 13's
target: < 0.7 s), with the load average and matmul GFLOP/s measured in the same run. One more
run with ``python -X importtime`` lists the slowest imports beyond torch.

    nice -n 10 .venv/bin/python benchmarks/cli_speed.py --json benchmarks/results/cli_speed.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line, machine_record  # noqa: E402


def write_x64(path: Path) -> None:
    from coordsr.images import write_image
    from coordsr.resize import imresize_np
    from coordsr.samples import load_sample

    img = load_sample("astronaut")
    small = imresize_np(img, (64, 64), scale=64 / img.shape[0]).clip(0, 1).astype("float32")
    write_image(path, small, bit_depth=8)


def wall(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run of ``cmd`` in ``cwd`` (``env``: its whole environment; None: ours)."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def slowest_imports(cmd: list[str], cwd: Path, n: int = 12) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time (seconds), torch and its submodules excluded."""
    # torch imported first, so that the first coordsr module to import it is not charged for it.
    assert cmd[1:3] == ["-m", "coordsr"]
    run = f"import torch, runpy, sys; sys.argv = {['coordsr', *cmd[3:]]!r}; runpy.run_module('coordsr', run_name='__main__')"
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", run], cwd=cwd, check=True,
                         capture_output=True, text=True).stderr
    tops: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        name = name.strip()
        if depth <= 2 and not name.startswith("torch") and cumulative.strip().isdigit():
            tops[name] = max(tops.get(name, 0.0), int(cumulative) / 1e6)
    return sorted(tops.items(), key=lambda kv: -kv[1])[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    py = sys.executable
    commands = {
        "import torch": [py, "-c", "import torch"],
        "upscale, default method (pretrained)": [py, "-m", "coordsr", "upscale", "x64.png", "-o", "y.png",
                                                 "--size", "1024x1024", "--force", "-q"],
        "upscale hashgrid (default stop)": [py, "-m", "coordsr", "upscale", "x64.png", "-o", "y.png",
                                            "--size", "1024x1024", "--method", "hashgrid", "--force", "-q"],
        "upscale bicubic": [py, "-m", "coordsr", "upscale", "x64.png", "-o", "y.png", "--size", "1024x1024",
                            "--method", "bicubic", "--force", "-q"],
    }
    before = machine_record()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        write_x64(cwd / "x64.png")
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(a.repeats):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, cwd))
        imports = slowest_imports(commands["upscale hashgrid (default stop)"], cwd)
    after = machine_record()
    best = {k: min(v) for k, v in times.items()}
    floor = best["import torch"]
    print("| command | best wall s | beyond import torch |")
    print("|---|---|---|")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {s - floor:+.2f} |")
    print("slowest imports beyond torch (cumulative s): " + ", ".join(f"{k} {v:.2f}" for k, v in imports))
    print(f"machine before: {machine_line(before)}; after: {machine_line(after)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "machine_before": before,
                                      "machine_after": after, "times": times, "best": best,
                                      "beyond_import_torch": {k: v - floor for k, v in best.items()},
                                      "slowest_imports": imports}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
