"""What this process may allocate: ``ulimit -v`` / ``-d`` and the memory cgroup (v1 and v2), as
the memory checks see them (coordsr.memory.memory_limits, coordsr.render.check_bytes_available)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coordsr import memory as M
from coordsr.errors import CoordsrError


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_limits_of_the_process_and_its_parents(tmp_path):
    root = _tree(tmp_path / "cg", {
        "app/memory.max": "max\n", "app/memory.current": "100\n",
        "app/job/memory.max": str(3 << 30), "app/job/memory.current": str(1 << 30),
        "app/job/memory.stat": f"anon 1000\ninactive_file {256 << 20}\n",
    })
    proc = _tree(tmp_path, {"cgroup": "0::/app/job\n"}) / "cgroup"
    assert M.cgroup_left(root, proc) == (3 << 30) - (1 << 30) + (256 << 20)  # dropped cache is room
    (root / "app" / "memory.max").write_text(str(1 << 30))  # a tighter limit above counts too
    assert M.cgroup_left(root, proc) == (1 << 30) - 100
    (root / "app" / "memory.max").write_text("max")
    (root / "app" / "job" / "memory.max").write_text("max\n")
    assert M.cgroup_left(root, proc) is None


def test_cgroup_v1_and_containers_that_see_their_cgroup_as_root(tmp_path):
    root = _tree(tmp_path / "cg", {
        "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
        "memory/docker/abc/memory.limit_in_bytes": str(2 << 30),
        "memory/docker/abc/memory.usage_in_bytes": str(1 << 29),
        "memory/docker/abc/memory.stat": "cache 10\ntotal_inactive_file 0\n",
    })
    proc = _tree(tmp_path, {"cgroup": "5:cpu:/\n4:memory:/docker/abc\n0::/\n"}) / "cgroup"
    assert M.cgroup_left(root, proc) == (2 << 30) - (1 << 29)
    # in a container with its own cgroup namespace the path is "/" and the limit is at the root
    v2 = _tree(tmp_path / "ns", {"memory.max": str(1 << 31), "memory.current": str(1 << 30)})
    proc.write_text("0::/\n")
    assert M.cgroup_left(v2, proc) == 1 << 30
    assert M.cgroup_left(tmp_path / "nowhere", proc) is None
    assert M.cgroup_left(root, tmp_path / "no-such-file") is None


def test_check_bytes_available_names_the_limit_that_refuses(monkeypatch):
    import coordsr.render as R

    monkeypatch.setattr(R, "available_memory", lambda: 64 << 30)
    monkeypatch.setattr(M, "memory_limits", lambda: [("ulimit -v", 1 << 30)])
    R.check_bytes_available(512 << 20, "a small thing")
    with pytest.raises(CoordsrError, match=r"more than the 0\.8 GiB this process may still allocate \(ulimit -v\)"):
        R.check_bytes_available(2 << 30, "a big thing")
    monkeypatch.setattr(M, "memory_limits", lambda: [])
    R.check_bytes_available(2 << 30, "a big thing")


def _cli(args, cwd, preexec=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "coordsr", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)


@pytest.fixture(scope="module")
def p1500(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("p1500")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1500, 1500, 3), dtype=np.uint8)).save(folder / "p1500.png")
    return folder


@pytest.mark.slow
def test_ulimit_v_refuses_in_one_line_before_any_work(p1500):
    """The issue's ``(ulimit -v 2000000; coordsr upscale p1500.png -o o.png --scale 4)``: a one-line
    refusal naming the limit, exit 2, no output (it was a RuntimeError traceback after the work)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2_000_000 * 1024, resource.RLIM_INFINITY))

    r = _cli(["upscale", "p1500.png", "-o", "o.png", "--scale", "4"], p1500, limit)
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "ulimit -v" in r.stderr, r.stderr
    assert not (p1500 / "o.png").exists()


def _make_cgroup(limit: int) -> tuple[Path, str]:
    """A real memory cgroup limited to ``limit`` bytes: (its folder, the file a pid is written to)."""
    if os.geteuid() != 0:
        pytest.skip("making a cgroup needs root")
    name = f"coordsr-test-{secrets.token_hex(4)}"
    root = Path("/sys/fs/cgroup")
    try:
        v2 = "memory" in (root / "cgroup.subtree_control").read_text().split()
    except OSError:
        v2 = False
    if v2:
        folder, limit_file = root / name, "memory.max"
    elif (root / "memory" / "cgroup.procs").exists():
        folder, limit_file = root / "memory" / name, "memory.limit_in_bytes"
    else:
        pytest.skip("no memory cgroup controller to use")
    try:
        folder.mkdir()
        (folder / limit_file).write_text(str(limit))
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup: {exc}")
    return folder, str(folder / "cgroup.procs")


@pytest.mark.slow
def test_a_real_cgroup_limit_refuses_in_one_line(p1500):
    folder, procs = _make_cgroup(1536 << 20)
    try:
        def join():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        code = "from coordsr.memory import memory_limits; print(memory_limits())"
        probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                               preexec_fn=join)
        assert "cgroup" in probe.stdout, probe.stdout + probe.stderr
        r = _cli(["upscale", "p1500.png", "-o", "o.png", "--scale", "4"], p1500, join)
        assert r.returncode == 2, r.stderr[-2000:]
        assert len(r.stderr.strip().splitlines()) == 1 and "cgroup" in r.stderr, r.stderr
        assert not (p1500 / "o.png").exists()
    finally:
        folder.rmdir()
