"""The documentation site builds in strict mode (a broken link, include or reference fails), and
its Python API page documents exactly the public names (coordsr.__all__)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
    for page in ("index", "cli", "api", "web", "methods", "model", "benchmarks", "design", "changelog"):
        html = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert html.is_file(), page
    assert "Errors are one line" in (site / "cli" / "index.html").read_text()  # the README, included
    assert "Set5" in (site / "benchmarks" / "index.html").read_text()


def test_the_api_page_documents_the_public_names_and_nothing_else(site):
    html = (site / "api" / "index.html").read_text()
    documented = set(re.findall(r'id="coordsr\.(?:api|errors|progress)\.(\w+)"', html))
    assert documented == set(coordsr.__all__) - {"__version__"}


def test_a_broken_link_fails_the_build(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    import shutil

    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for name in ("README.md", "BENCHMARKS.md", "MODEL.md", "RELIABILITY.md", "CHANGELOG.md"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "src", tmp_path / "src")
    (tmp_path / "docs" / "cli.md").write_text("# CLI\n\nSee [nowhere](nowhere.md).\n")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "s")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode != 0 and "nowhere.md" in run.stderr
