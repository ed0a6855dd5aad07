"""The benchmark runner: the protocol pinned to published numbers, errors, cache, isolation."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from coordsr import bench
from coordsr.bench import find_images, format_table, run_bench, summarize, write_json
from coordsr.methods import METHODS, Upscaler
from coordsr.metrics import make_lr, modcrop
from coordsr.progress import Progress

# ---------------------------------------------------------------- published numbers

PUBLISHED_BICUBIC = {  # DESIGN.md section 5, Y-PSNR x2 / x3 / x4
    "Set5": ((33.66, 30.39, 28.42), 0.05),
    "Set14": ((30.24, 27.55, 26.00), 0.1),
}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(PUBLISHED_BICUBIC))
def test_bicubic_reproduces_published_psnr(shared_data, dataset):
    expected, tol = PUBLISHED_BICUBIC[dataset]
    rows = run_bench(find_images(shared_data / dataset), [2, 3, 4], {"bicubic": {}}, dataset=dataset)
    assert all(r["error"] is None for r in rows)
    means = {s["scale"]: s["psnr"] for s in summarize(rows)}
    for scale, psnr in zip((2.0, 3.0, 4.0), expected):
        assert means[scale] == pytest.approx(psnr, abs=tol), f"{dataset} x{scale:g}"
    if dataset == "Set14":  # grey bridge scored on its own luma: within 0.02 dB, not just 0.1
        assert max(abs(means[s] - p) for s, p in zip((2.0, 3.0, 4.0), expected)) < 0.02


# ---------------------------------------------------------------- test-only methods


@dataclass
class spy(Upscaler):
    """Records what it is given; answers with a constant grey."""

    calls: ClassVar[list] = []

    def upscale(self, image, size, *, progress=None):
        spy.calls.append((np.array(image, copy=True), tuple(size), progress))
        return np.full((*size, image.shape[2]), 0.5, dtype=np.float32)


@dataclass
class counting(Upscaler):
    """Nearest-neighbour enlargement that counts its calls; has a budget."""

    steps: int = 10
    calls: ClassVar[int] = 0

    def upscale(self, image, size, *, progress=None):
        counting.calls += 1
        if progress is not None:
            progress(Progress(step=self.steps, total=self.steps))
        rows = np.arange(size[0]) * image.shape[0] // size[0]
        cols = np.arange(size[1]) * image.shape[1] // size[1]
        return image[rows][:, cols]


@dataclass
class failing(Upscaler):
    """Fails on images wider than they are tall."""

    def upscale(self, image, size, *, progress=None):
        if image.shape[1] > image.shape[0]:
            raise RuntimeError("boom\nsecond line")
        return np.zeros((*size, image.shape[2]), dtype=np.float32)


@dataclass
class wrongsize(Upscaler):
    """Returns the input unchanged."""

    def upscale(self, image, size, *, progress=None):
        return image


@pytest.fixture
def test_methods(monkeypatch):
    for cls in (spy, counting, failing, wrongsize):
        monkeypatch.setitem(METHODS, cls.__name__, cls)
    # The real version hashes source files, which others may be editing while the tests run.
    monkeypatch.setattr(bench, "code_version", lambda *objs: "test")
    spy.calls.clear()
    counting.calls = 0


@pytest.fixture
def images(tmp_path) -> list[Path]:
    """Three small images: RGB (taller than wide), grey L (wide), RGBA (square); big enough for
    SSIM's 11x11 window after a 4-pixel shave."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 22, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (21, 37), dtype=np.uint8), mode="L").save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (24, 24, 4), dtype=np.uint8), mode="RGBA").save(folder / "c.png")
    (folder / "notes.txt").write_text("not an image")
    return find_images(folder)


def test_doctests():
    import doctest

    from coordsr import figures

    for module in (bench, figures):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_find_images(images):
    assert [p.name for p in images] == ["a.png", "b.png", "c.png"]


# ---------------------------------------------------------------- isolation


def test_method_sees_only_the_lr_image(test_methods, images):
    from coordsr.bench import read_hr

    run_bench(images, [2, 4], {"spy": {}}, dataset="t")
    assert len(spy.calls) == 6
    for (given, size, _), (path, scale) in zip(spy.calls, [(p, s) for p in images for s in (2, 4)]):
        hr = modcrop(read_hr(path), scale)
        assert size == hr.shape[:2]
        assert given.dtype == np.float32
        np.testing.assert_array_equal(given, make_lr(hr, scale).astype(np.float32))
        assert given.shape[:2] == (hr.shape[0] // scale, hr.shape[1] // scale)
    grey, rgba = spy.calls[2][0], spy.calls[4][0]
    assert grey.shape[2] == 1  # a grey image stays grey
    assert rgba.shape[2] == 3  # alpha dropped before the method and the scores


def test_rows_have_the_documented_fields(test_methods, images):
    rows = run_bench(images[:1], [2], {"counting": {"steps": 7}, "bicubic": {}}, dataset="t")
    assert [r["method"] for r in rows] == ["counting", "bicubic"]
    for r in rows:
        assert {"dataset", "image", "method", "settings", "scale", "psnr", "ssim", "seconds",
                "error"} <= set(r)
        assert r["dataset"] == "t" and r["image"] == "a" and r["scale"] == 2.0
        assert r["error"] is None and r["seconds"] >= 0 and 0 < r["ssim"] <= 1
    assert rows[0]["settings"]["steps"] == 7  # the budget is stated, defaults included
    assert "device" in rows[1]["settings"]


# ---------------------------------------------------------------- errors


def test_failing_method_gives_error_rows_and_the_run_goes_on(test_methods, images):
    rows = run_bench(images, [2], {"failing": {}, "counting": {}}, dataset="t")
    assert len(rows) == 6
    by = {(r["image"], r["method"]): r for r in rows}
    bad = by[("b", "failing")]
    assert bad["error"] == "RuntimeError: boom second line"
    assert bad["psnr"] is None and bad["ssim"] is None
    assert by[("a", "failing")]["error"] is None
    assert all(by[(i, "counting")]["error"] is None for i in "abc")
    table = format_table(rows)
    assert "(2/3 ok)" in table and "error: t failing x2: RuntimeError: boom" in table


def test_wrong_output_shape_is_an_error_row(test_methods, images):
    (row,) = run_bench(images[:1], [2], {"wrongsize": {}}, dataset="t")
    assert row["error"].startswith("output has shape") and row["psnr"] is None


def test_too_small_to_score_is_an_error_row(test_methods, tmp_path):
    Image.fromarray(np.zeros((12, 12, 3), dtype=np.uint8)).save(tmp_path / "tiny.png")
    (row,) = run_bench([tmp_path / "tiny.png"], [2], {"counting": {}}, dataset="t")
    assert row["error"].startswith("cannot score: SSIM needs at least 11x11")


def test_unreadable_image_gives_error_rows(test_methods, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    rows = run_bench([bad], [2, 3], {"counting": {}}, dataset="t")
    assert len(rows) == 2 and all("broken.png" in r["error"] for r in rows)
    assert counting.calls == 0


def test_bad_requests_raise_before_running(test_methods, images):
    with pytest.raises(ValueError, match="unknown method 'nosuch'"):
        run_bench(images, [2], {"nosuch": {}}, dataset="t")
    with pytest.raises(ValueError, match="no setting 'steps'.*device"):
        run_bench(images, [2], {"bicubic": {"steps": 5}}, dataset="t")
    with pytest.raises(ValueError, match="greater than 1"):
        run_bench(images, [1], {"bicubic": {}}, dataset="t")
    assert bench.settings_for("counting", steps=5, fit=None, lr=1) == {"steps": 5}


# ---------------------------------------------------------------- cache


class Interrupt(Exception):
    pass


def test_cache_resumes_an_interrupted_run(test_methods, images, tmp_path):
    cache = tmp_path / "cache"

    def stop_after_two(p):
        if p.row is not None and p.done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_bench(images, [2, 4], {"counting": {}}, dataset="t", cache_dir=cache, progress=stop_after_two)
    assert counting.calls == 2
    with (cache / "t.jsonl").open("a") as f:
        f.write('{"dataset": "t", "image": "a", "meth')  # a line cut short by the interruption

    events = []
    rows = run_bench(images, [2, 4], {"counting": {}}, dataset="t", cache_dir=cache, progress=events.append)
    assert counting.calls == 6  # 2 before, 4 now: finished cells are not run again
    assert len(rows) == 6 and [p.cached for p in events if p.row is not None] == [True] * 2 + [False] * 4
    assert events[-1].done == events[-1].total == 6
    relayed = [p for p in events if p.method_progress is not None]  # the method's own reports
    assert len(relayed) == 4 and relayed[0].method_progress.step == 10 and relayed[0].row is None

    again = run_bench(images, [2, 4], {"counting": {}}, dataset="t", cache_dir=cache)
    assert counting.calls == 6 and again == rows


def test_cache_key_includes_settings_and_scale(test_methods, images, tmp_path):
    cache = tmp_path / "cache"
    run_bench(images[:1], [2], {"counting": {"steps": 1}}, dataset="t", cache_dir=cache)
    run_bench(images[:1], [2], {"counting": {"steps": 2}}, dataset="t", cache_dir=cache)
    run_bench(images[:1], [3], {"counting": {"steps": 2}}, dataset="t", cache_dir=cache)
    run_bench(images[:1], [2], {"counting": {"steps": 1}}, dataset="other", cache_dir=cache)
    assert counting.calls == 4
    run_bench(images[:1], [2, 3], {"counting": {"steps": 2}}, dataset="t", cache_dir=cache)
    assert counting.calls == 4
    cached = run_bench(images, [2, 3], {"counting": {"steps": 2}}, dataset="t", cache_dir=cache, cached_only=True)
    assert counting.calls == 4 and len(cached) == 2


def test_failed_cells_are_retried(test_methods, images, tmp_path):
    cache = tmp_path / "cache"
    run_bench(images, [2], {"failing": {}}, dataset="t", cache_dir=cache)
    events = []
    run_bench(images, [2], {"failing": {}}, dataset="t", cache_dir=cache, progress=events.append)
    assert [p.image for p in events if p.cached] == ["a", "c"]


def _run_as(monkeypatch, version, images, cache, **kwargs):
    monkeypatch.setattr(bench, "code_version", lambda *objs: version)
    return run_bench(images, [2, 4], {"counting": {}}, dataset="t", cache_dir=cache, **kwargs)


def test_canary_keeps_older_rows_when_the_result_is_unchanged(test_methods, images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    old = _run_as(monkeypatch, "v1", images, cache)
    assert counting.calls == 6
    rows = _run_as(monkeypatch, "v2", images, cache)
    assert counting.calls == 7  # one canary instead of six cells
    assert [r["version"] for r in rows] == ["v2"] * 6
    assert [r["psnr"] for r in rows] == pytest.approx([r["psnr"] for r in old], abs=1e-9)
    validated = [r for r in rows if "validated" in r]
    assert len(validated) == 5 and all(r["validated"]["version"] == "v1" for r in validated)
    verdicts = bench.read_rows(bench.canary_file(cache))
    assert len(verdicts) == 1 and verdicts[0]["ok"] and verdicts[0]["old_version"] == "v1"
    assert _run_as(monkeypatch, "v2", images, cache) == rows and counting.calls == 7  # now plain cache hits


def test_canary_rejects_older_rows_when_the_result_changed(test_methods, images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _run_as(monkeypatch, "v1", images, cache)
    path = cache / "t.jsonl"
    shifted = [{**r, "psnr": r["psnr"] + 0.02} for r in bench.read_rows(path)]  # as if the code changed them
    path.write_text("".join(json.dumps(r) + "\n" for r in shifted))
    rows = _run_as(monkeypatch, "v2", images, cache)
    assert counting.calls == 12 and not any("validated" in r for r in rows)
    assert [v["ok"] for v in bench.read_rows(bench.canary_file(cache))] == [False]
    _run_as(monkeypatch, "v3", images, cache, cached_only=True)
    assert counting.calls == 12  # cached_only runs no canary


def test_canary_covers_a_setting_added_since(test_methods, images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _run_as(monkeypatch, "v1", images, cache)
    path = cache / "t.jsonl"
    older = [{**r, "settings": {k: v for k, v in r["settings"].items() if k != "steps"}}
             for r in bench.read_rows(path)]  # rows written before 'steps' existed
    path.write_text("".join(json.dumps(r) + "\n" for r in older))
    rows = _run_as(monkeypatch, "v1", images, cache)
    assert counting.calls == 7 and all(r["settings"]["steps"] == 10 for r in rows)


def test_code_version_follows_imports():
    from coordsr import metrics

    v = bench.code_version(METHODS["bicubic"])
    assert len(v) == 12 and v == bench.code_version(METHODS["bicubic"])
    assert bench.code_version(METHODS["bicubic"], metrics) != v


# ---------------------------------------------------------------- reports


def test_format_table_states_the_budget(test_methods, images):
    rows = run_bench(images[:1], [2, 4], {"counting": {"steps": 3}, "bicubic": {}}, dataset="t")
    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| dataset | method | budget | x2 | x4 |"
    line = next(l for l in lines if "| counting |" in l)
    assert "steps=3" in line and line.count(" / ") == 4
    assert "| t | bicubic | - |" in table


def test_write_json_round_trip(test_methods, images, tmp_path):
    rows = run_bench(images[:2], [2], {"counting": {}}, dataset="t")
    write_json(rows, tmp_path / "out.json", meta={"command": "x"})
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["rows"] == json.loads(json.dumps(rows))
    assert doc["command"] == "x" and doc["summary"][0]["n"] == 2
    assert "cpu" in doc["environment"] and "65.481" in doc["protocol"]["description"]


def test_make_figures_writes_crops_and_plot(test_methods, images, tmp_path):
    out = tmp_path / "outputs"
    rows = run_bench(images, [2], {"counting": {}, "failing": {}}, dataset="t", outputs_dir=out)
    assert bench.output_path(out, rows[0]).exists()
    written = bench.make_figures(rows, images, tmp_path / "figs", outputs_dir=out, crop=8)
    names = sorted(p.name for p in written)
    assert names == ["t_a_x2.png", "t_b_x2.png", "t_c_x2.png", "t_psnr_vs_seconds.png"]
    for p in written:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 100


def test_outputs_are_the_scored_pixels(test_methods, images, tmp_path):
    from coordsr.images import read_image
    from coordsr.metrics import psnr_y, shave_for

    out = tmp_path / "outputs"
    (row,) = run_bench(images[:1], [2], {"bicubic": {}}, dataset="t", outputs_dir=out)
    sr = read_image(bench.output_path(out, row)).pixels.astype(np.float64)
    hr = modcrop(bench.read_hr(images[0]), 2)
    assert psnr_y(sr, hr, shave_for(2)) == pytest.approx(row["psnr"], abs=1e-6)


def test_progress_bar_renders_without_a_terminal(test_methods, images):
    import io

    from rich.console import Console

    buf = io.StringIO()
    with bench.progress_bar(Console(file=buf, width=100, force_terminal=False)) as cb:
        rows = run_bench(images[:1], [2], {"counting": {}}, dataset="t", progress=cb)
    assert len(rows) == 1 and "1/1" in buf.getvalue()


def test_duplicate_image_names_are_refused(tmp_path, images):
    twin = tmp_path / "a.bmp"
    Image.open(images[0]).save(twin)
    with pytest.raises(ValueError, match="share a name: a"):
        run_bench([images[0], twin], [2], {"bicubic": {}}, dataset="t")


def test_code_version_changes_with_the_shipped_weights_a_module_names(tmp_path, monkeypatch):
    import coordsr.bench as B
    from coordsr.methods.pretrained import pretrained

    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(B, "WEIGHTS_DIR", weights)
    (weights / "pretrained.safetensors").write_bytes(b"old")
    old = B.code_version(pretrained)
    (weights / "pretrained.safetensors").write_bytes(b"new")
    new = B.code_version(pretrained)
    assert new != old
    (weights / "other.safetensors").write_bytes(b"x")  # a file no module names: no change
    assert B.code_version(pretrained) == new


def test_code_version_is_the_code_this_process_runs(tmp_path, monkeypatch):
    """Editing a module's file while a benchmark runs does not relabel the rows it computes
    afterwards with code it is not running."""
    import importlib

    import coordsr.bench as B

    (tmp_path / "edited_mid_run.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("edited_mid_run")
    before = B.code_version(module)
    (tmp_path / "edited_mid_run.py").write_text("X = 2\n")
    assert B.code_version(module) == before


def test_canary_rejects_a_change_of_a_few_thousandths():
    old = {"psnr": 31.143, "ssim": 0.8000, "error": None}  # Set14 face x6 with the step-12000 weights
    assert not bench.canary_agrees({"psnr": 31.148, "ssim": 0.8000, "error": None}, old)  # step 24000's
    assert bench.canary_agrees({"psnr": 31.1430004, "ssim": 0.80000001, "error": None}, old)
    assert not bench.canary_agrees({"psnr": 31.143, "ssim": 0.8003, "error": None}, old)
    assert not bench.canary_agrees({"psnr": None, "ssim": None, "error": "failed"}, old)
