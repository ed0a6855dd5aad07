"""Every script in examples/ runs, on a tiny input, as a user runs it (its own process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def picture(path: Path, h: int = 24, w: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 5.0
    img = np.stack([np.sin(xx * rng.uniform(0.5, 2) + yy), np.cos(yy * rng.uniform(0.5, 2)), np.sin(xx * yy / 4)], -1)
    Image.fromarray(((img * 0.4 + 0.5) * 255).round().astype(np.uint8)).save(path)
    return path


def run(script: str, *args, cwd: Path) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_every_example_is_tested():
    tested = {"upscale_folder.py", "fit_and_zoom.py", "compare_methods.py", "train_briefly.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_upscale_folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    picture(src / "a.png")
    picture(src / "b.jpg", seed=1)
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_text("not an image either")
    out = run("upscale_folder.py", src, tmp_path / "out", "--scale", "2", "--method", "bicubic", cwd=tmp_path)
    assert Image.open(tmp_path / "out" / "a.png").size == (40, 48)
    assert Image.open(tmp_path / "out" / "b.png").size == (40, 48)
    assert "skipped" in out and not (tmp_path / "out" / "broken.png").exists()
    again = run("upscale_folder.py", src, tmp_path / "out", "--scale", "2", "--method", "bicubic", cwd=tmp_path)
    assert "->" not in again  # finished outputs are kept


def test_fit_and_zoom(tmp_path):
    out = run("fit_and_zoom.py", picture(tmp_path / "p.png"), tmp_path / "z", "--steps", "10", "--frames", "3",
              "--side", "32", cwd=tmp_path)
    assert (tmp_path / "z" / "p.field").is_file() and "x4" in out
    frames = [np.asarray(Image.open(tmp_path / "z" / f"zoom_{k}.png")) for k in range(3)]
    assert all(f.shape == (32, 32, 3) for f in frames) and not np.array_equal(frames[0], frames[2])


def test_compare_methods(tmp_path):
    out = run("compare_methods.py", picture(tmp_path / "p.png", 32, 32), tmp_path / "fig.png", "--methods",
              "bicubic,nearest", "--scale", "2", cwd=tmp_path)
    assert Image.open(tmp_path / "fig.png").size[0] > 400
    assert "bicubic:" in out and "nearest:" in out and "dB" in out


def test_train_briefly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        picture(data / f"{i}.png", 40 + i, 44, seed=i)
    out = run("train_briefly.py", data, tmp_path / "m.safetensors", "--steps", "4", "--small", cwd=tmp_path)
    assert (tmp_path / "m.safetensors").is_file() and "upscaled x2 with it: 88x80" in out
