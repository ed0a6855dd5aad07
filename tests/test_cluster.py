"""`coordsr upscale DIR -o OUTDIR --ray` on a real local Ray cluster (2 CPUs on this machine):
the same outputs as the local run, and a worker killed mid-run loses and duplicates nothing."""

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray.data", reason="the cluster extra is not installed: pip install 'coordsr[cluster]'")

import ray  # noqa: E402

from coordsr import batch, cluster  # noqa: E402
from coordsr.cli import build_method, main  # noqa: E402
from coordsr.methods.interpolation import bicubic  # noqa: E402

from test_batch import write_png  # noqa: E402


@pytest.fixture(scope="module")
def local_cluster():
    # Workers import this module (killed_once below) from the tests folder.
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        write_png(folder / f"p{i}.png", i, c=3 if i % 3 else 1)
    return folder


def pixels(path):
    return np.asarray(Image.open(path))


@pytest.mark.slow
def test_ray_gives_the_same_outputs_as_the_local_run(local_cluster, tmp_path, photos, capsys):
    common = ["--scale", 2, "--method", "pretrained", "--precision", "fp32", "-q"]
    assert main([str(a) for a in ["upscale", photos, "-o", tmp_path / "local", *common]]) == 0
    code = main([str(a) for a in ["upscale", photos, "-o", tmp_path / "ray", *common, "--ray", "auto"]])
    assert code == 0, capsys.readouterr().err
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == local == [f"p{i}.png" for i in range(6)]
    for name in local:  # actors run one torch thread: float rounding may move a level
        assert np.abs(pixels(tmp_path / "local" / name).astype(int) - pixels(tmp_path / "ray" / name)).max() <= 1
    # a rerun finds everything finished
    assert main([str(a) for a in ["upscale", photos, "-o", tmp_path / "ray", *common[:-1], "--ray", "auto"]]) == 0
    assert "upscaled 0 of 6 images" in capsys.readouterr().err


@dataclass
class killed_once(bicubic):
    """bicubic whose process is killed (SIGKILL, no clean-up) on the first image after ``marker``
    is created by nobody: the first call to get the marker dies, every other call works."""

    marker: str = ""

    def _upscale(self, image, size, progress):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super()._upscale(image, size, progress)
        Path(self.marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(local_cluster, tmp_path, photos):
    marker = tmp_path / "killed"
    size_of = lambda h, w: (2 * h, 2 * w)  # noqa: E731
    plan = batch.plan_batch(batch.find_inputs(photos), tmp_path / "out")
    plan.make_folder()
    # One image first, so the kill lands mid-run: after an output is finished, before the rest.
    first = batch.run_batch(plan.todo[:1], batch.Recipe(build_method("bicubic", {}, "cpu"), size_of))
    assert [o.status for o in first] == ["done"]
    chaos = batch.Recipe(killed_once(device="cpu", marker=str(marker)), size_of)
    outcomes = cluster.run_on_ray(plan.todo, chaos, address="auto", workers=2)
    assert marker.exists() and marker.read_text().isdigit()  # a worker really died
    assert sorted(o.src for o in outcomes) == sorted(str(it.src) for it in plan.todo)  # each image once
    assert sorted(o.status for o in outcomes) == ["done"] * 5 + ["skipped"]
    names = sorted(os.listdir(tmp_path / "out"))  # no temporaries, nothing twice
    assert names == [f"p{i}.png" for i in range(6)]
    reference = tmp_path / "reference"
    reference.mkdir()
    batch.run_batch([batch.Item(it.src, reference / it.dst.name) for it in plan.todo],
                    batch.Recipe(build_method("bicubic", {}, "cpu"), size_of))
    for name in names:
        assert np.array_equal(pixels(tmp_path / "out" / name), pixels(reference / name))


def test_an_unreachable_or_malformed_address_is_one_line_and_nothing_written(tmp_path, photos, capsys):
    from coordsr.errors import CoordsrError

    with pytest.raises(CoordsrError, match="cannot reach the head"):
        cluster.check_reachable("127.0.0.1:1", timeout=2)  # nothing listens on port 1
    code = main(["upscale", str(photos), "-o", str(tmp_path / "big"), "--ray", "head-without-port"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "expected auto or HOST:PORT" in err
    assert not (tmp_path / "big").exists()
