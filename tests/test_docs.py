"""The documentation site builds in strict mode (a broken link, include or reference fails), and
its Python API page documents exactly the public names (coordsr.__all__); the README's five
commands run as written (its Python lines: tests/test_api.py)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

import pytest

import coordsr

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_every_page_is_built(site):
    for page in ("index", "upscale", "drawings", "artefacts", "fields", "cli", "api", "web", "methods", "model",
                 "benchmarks", "design", "contributing", "changelog", "research", "research/stopping",
                 "research/speed"):
        html = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert html.is_file(), page
    index = (site / "index.html").read_text()
    assert "coordsr serve" in index and "EDSR-baseline" in index  # the README's commands and results, included
    assert "Errors are one line" in (site / "cli" / "index.html").read_text()
    assert "Set5" in (site / "benchmarks" / "index.html").read_text()
    assert "../shared/data" in (site / "contributing" / "index.html").read_text()  # CONTRIBUTING.md, included


def test_the_api_page_documents_the_public_names_and_nothing_else(site):
    html = (site / "api" / "index.html").read_text()
    documented = set(re.findall(r'id="coordsr\.(?:api|errors|progress)\.(\w+)"', html))
    assert documented == set(coordsr.__all__) - {"__version__"}


def test_a_broken_link_fails_the_build(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    import shutil

    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for name in ("README.md", "BENCHMARKS.md", "MODEL.md", "RELIABILITY.md", "CHANGELOG.md", "CONTRIBUTING.md"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "src", tmp_path / "src")
    (tmp_path / "docs" / "cli.md").write_text("# CLI\n\nSee [nowhere](nowhere.md).\n")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "s")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode != 0 and "nowhere.md" in run.stderr


# --- the README's five commands, as written --------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """The lines of the README's "Five commands" block, comments dropped, split as a shell would."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- --8<-- [start:commands] -->", 1)[1].split("<!-- --8<-- [end:commands] -->", 1)[0]
    sh = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in sh.splitlines() if line.strip()]


def coordsr_command() -> list[str]:
    script = Path(sys.executable).with_name("coordsr")  # the console script, as a user types it
    return [str(script)] if script.is_file() else [sys.executable, "-m", "coordsr"]


def picture(path: Path, h: int = 24, w: int = 20, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 5.0
    img = np.stack([np.sin(xx * rng.uniform(0.5, 2) + yy), np.cos(yy * rng.uniform(0.5, 2)), np.sin(xx * yy / 4)], -1)
    Image.fromarray(((img * 0.4 + 0.5) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture
def user(tmp_path) -> tuple[Path, dict]:
    """A folder with photo.png and photos/ (tiny images), and an environment whose HOME is in it."""
    picture(tmp_path / "photo.png")
    (tmp_path / "photos").mkdir()
    picture(tmp_path / "photos" / "a.png", seed=1)
    picture(tmp_path / "photos" / "b.jpg", seed=2)
    (tmp_path / "home").mkdir()
    return tmp_path, {**os.environ, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}


def test_the_readme_has_five_commands():
    assert [line[:2] for line in readme_commands()] == [["coordsr", "upscale"], ["coordsr", "upscale"],
                                                        ["coordsr", "fit"], ["coordsr", "render"], ["coordsr", "serve"]]


def test_the_readme_commands_run_as_written(user):
    """One image, a folder, a field saved and drawn later: each line as the README has it, on tiny images
    (a few seconds each on an idle machine; the timeout allows for a busy one)."""
    from PIL import Image

    folder, env = user
    for line in readme_commands()[:4]:
        run = subprocess.run([*coordsr_command(), *line[1:]], cwd=folder, env=env, capture_output=True, text=True,
                             timeout=180)
        assert run.returncode == 0, f"{shlex.join(line)}\n{run.stderr[-3000:]}"
    assert Image.open(folder / "big.png").size == (80, 96)  # x4 of 20 x 24
    assert Image.open(folder / "big" / "a.png").size == (40, 48) and Image.open(folder / "big" / "b.jpg").size == (40, 48)
    assert (folder / "photo.field").is_file()
    assert Image.open(folder / "zoom.png").size == (1024, 1024)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_readme_serve_command_serves_the_page(user):
    pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e '.[web]')")
    folder, env = user
    line = readme_commands()[4]
    args, port = line[1:], 7860
    if not _port_is_free(port):  # a server of the user's own: the same command on another port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args += ["--port", str(port)]
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen([*coordsr_command(), *args], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status = r.status
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (folder / "serve.log").read_text()[-3000:]
        assert (folder / "home" / ".local" / "share" / "coordsr").is_dir()  # its data folder, under HOME
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
