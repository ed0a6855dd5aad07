"""Per-image fields: fitting, both observation models, saving, reloading, rendering."""

import numpy as np
import pytest
import torch

from coordsr.coords import pixel_centers
from coordsr.errors import Cancelled, FieldFileError
from coordsr.field import Field, FieldConfig, ImageMeta
from coordsr.fit import FitConfig, fit
from coordsr.methods import METHODS
from coordsr.render import check_fits_in_memory, render, render_field
from coordsr.resize import imresize_np

from test_methods import smooth_image

PER_IMAGE = [n for n, c in METHODS.items() if c.family == "per-image" and c.task == "upscale"]


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((a - b) ** 2))


def test_a_fitted_field_reproduces_a_small_image_above_40db():
    img = smooth_image(16, 16, 3)
    field, result = METHODS["hashgrid"](steps=300, device="cpu").fit_field(img, (16, 16))
    assert psnr(render_field(field, (16, 16)), img) > 40
    assert result.psnr > 40


@pytest.mark.parametrize("name", PER_IMAGE)
def test_each_family_fits_both_ways(name):
    img = smooth_image(8, 8, 3)
    for obs in ("point", "consistent"):
        field, result = METHODS[name](steps=20, fit=obs, device="cpu").fit_field(img, (16, 16))
        assert result.steps == 20 and np.isfinite(result.psnr)
        assert render_field(field, (16, 16)).shape == (16, 16, 3)


def test_consistent_fit_matches_the_input_through_the_kernel():
    hr = smooth_image(32, 32, 1, seed=3)
    lr = imresize_np(hr, scale=0.5).astype(np.float32)
    method = METHODS["hashgrid"](steps=300, fit="consistent", device="cpu")
    field, _ = method.fit_field(lr, (32, 32))
    sr = render_field(field, (32, 32))
    assert psnr(imresize_np(sr, scale=0.5), lr) > 35  # consistent with what it saw


def test_crops_of_the_consistent_model_equal_the_full_operator():
    """A crop's prediction is the full operator's prediction restricted to that crop."""
    from coordsr.fit import ConsistentObservation

    torch.manual_seed(0)
    lr = torch.rand(9, 11, 2)
    field = Field(FieldConfig(hidden=16, layers=2), ImageMeta(9, 11, 2))
    obs = ConsistentObservation(lr, (27, 33), "cubic", 0, 0.0, torch.Generator())
    with torch.no_grad():
        full, _ = obs.predict(field, 0, 9, 0, 11)
        crop, _ = obs.predict(field, 2, 6, 5, 10)
        # and the full prediction is the MATLAB-style resize of the rendered output
        hr = field(pixel_centers(27, 33)).double().numpy()  # unclipped, unlike render()
        ref = imresize_np(hr, (9, 11), scale=(1 / 3, 1 / 3))
    assert torch.allclose(crop, full[:, 2:6, 5:10], atol=1e-6)
    assert np.abs(full.permute(1, 2, 0).numpy() - ref).max() < 1e-5


def test_save_load_render_is_identical(tmp_path):
    img = smooth_image(10, 14, 4)
    method = METHODS["siren"](steps=20, device="cpu", precision="fp32")  # render_field below draws in fp32
    field, _ = method.fit_field(img, (20, 28))
    path = tmp_path / "f.field"
    field.save(path, method="siren", settings=method.settings())
    back = Field.load(path)
    assert back.meta == field.meta
    assert np.array_equal(render_field(back, (33, 47)), render_field(field, (33, 47)))
    assert np.array_equal(method.upscale(img, (20, 28)), render_field(back, (20, 28)))
    # the file gets the mode open() would give (not mkstemp's 0600), and no temporary is left
    from coordsr.atomic import new_file_mode

    assert path.stat().st_mode & 0o777 == new_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["f.field"]


def test_bad_field_files(tmp_path):
    bad = tmp_path / "x.field"
    bad.write_bytes(b"not a field")
    with pytest.raises(FieldFileError, match="x.field"):
        Field.load(bad)
    with pytest.raises(FieldFileError, match="no such"):
        Field.load(tmp_path / "missing.field")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(bad), metadata={"coordsr": '{"format": "coordsr-field", "format_version": 99}'})
    with pytest.raises(FieldFileError, match="version 99"):
        Field.load(bad)


def test_render_in_tiles_equals_one_pass_and_uint8_quantizes():
    field = Field(FieldConfig(hidden=16, layers=2), ImageMeta(5, 7, 3))
    one = render_field(field, (37, 53), tile_pixels=10**9)
    tiled = render_field(field, (37, 53), tile_pixels=100)
    assert np.allclose(one, tiled, atol=1e-6)
    q = render_field(field, (37, 53), tile_pixels=100, dtype=np.uint8)
    assert q.dtype == np.uint8 and np.abs(q / 255 - one).max() <= 0.5 / 255 + 1e-6


def test_render_region_is_the_matching_part_of_the_whole():
    field = Field(FieldConfig(hidden=16, layers=2), ImageMeta(6, 6, 1))
    whole = render_field(field, (64, 64))
    part = render_field(field, (32, 32), box=(0.0, -1.0, 1.0, 0.0))
    assert np.allclose(whole[:32, 32:], part, atol=1e-6)


def test_outputs_larger_than_memory_are_refused():
    from coordsr.errors import CoordsrError

    with pytest.raises(CoordsrError, match="GiB"):
        check_fits_in_memory(10**6, 10**6, 3)


def test_progress_reports_and_cancel():
    img = smooth_image(8, 8, 3)
    seen = []

    def cb(p):
        seen.append(p)
        assert p.preview().shape == (8, 8, 3)
        if p.step >= 50:
            raise Cancelled

    with pytest.raises(Cancelled):
        METHODS["hashgrid"](steps=200, device="cpu").fit_field(img, (8, 8), progress=cb)
    assert [p.step for p in seen] == [1, 25, 50] and seen[1].eta is not None


def test_early_stop_on_a_plateau():
    img = np.full((6, 6, 1), 0.5, np.float32)
    field = Field(FieldConfig(hidden=8, layers=1), ImageMeta(6, 6, 1))
    with torch.no_grad():
        for p in field.net.parameters():
            p.zero_()
    res = fit(field, img, FitConfig(steps=1000, patience=20, lr=1e-3))
    assert res.steps < 1000


@pytest.mark.parametrize("convention", ["cell", "seed", "centred", "standard"])
def test_separable_render_equals_pointwise_render(convention):
    # render() takes the field's forward_grid fast path; a plain callable takes the per-point
    # path. Both must draw the same picture, aspect scaling and region included.
    cfg = FieldConfig(encoding="MultiresGrid", encoding_args={"n_levels": 4, "base_resolution": 2,
                      "finest_resolution": 12, "init_scale": 1.0}, hidden=16, layers=2,
                      convention=convention)
    field = Field(cfg, ImageMeta(6, 10, 3))
    kwargs = {"box": (-0.5, -1.0, 1.0, 0.25)} if convention == "cell" else {}
    fast = render(field, (70, 45), 3, convention=convention, tile_pixels=500, **kwargs)
    slow = render(lambda c: field(c), (70, 45), 3, convention=convention, tile_pixels=500, **kwargs)
    np.testing.assert_allclose(fast, slow, atol=1e-6)


def test_reusing_memory_nests_and_restores_glibc_defaults(monkeypatch):
    from coordsr import memory

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(memory, "_libc", lambda: FakeLibc())
    with memory.reusing_memory():
        with memory.reusing_memory():  # nested: no second switch
            assert calls == [(memory.M_MMAP_MAX, 0), (memory.M_TRIM_THRESHOLD, memory.TRIM_THRESHOLD)]
        assert len(calls) == 2
    assert calls[2:] == [(memory.M_MMAP_MAX, memory.DEFAULT_MMAP_MAX),
                         (memory.M_TRIM_THRESHOLD, memory.DEFAULT_TRIM_THRESHOLD), ("trim", 0)]
    assert memory._depth == 0


def test_glibc_allocator_is_tunable_here():
    import platform
    import sys

    from coordsr import memory

    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"):
        pytest.skip("mallopt tuning is glibc-only")
    assert memory.tunable()
    with memory.reusing_memory():
        assert memory._depth == 1


def test_until_words():
    from coordsr.fit import Until, parse_until

    assert parse_until("auto") == Until("auto") and parse_until("steps") == Until("steps")
    assert parse_until("PSNR:35.5") == Until("psnr", 35.5)
    assert parse_until("auto:0.5") == Until("auto", levels=0.5)
    for bad in ("psnr", "psnr:-3", "psnr:x", "auto:", "auto:0", "auto:x", "steps:3", "soon"):
        with pytest.raises(ValueError, match="until must be 'auto', 'auto:LEVELS' .*'steps' or 'psnr:DB'"):
            parse_until(bad)
    with pytest.raises(ValueError, match="until must be"):
        METHODS["hashgrid"](until="soon")
    with pytest.raises(ValueError, match="valid: auto, fp32, bf16"):
        METHODS["siren"](precision="half")


def test_until_steps_runs_the_cap_and_psnr_stops_at_the_target(one_thread):
    img = smooth_image(16, 16, 3)
    small = dict(levels=4, log2_table_size=10, device="cpu", precision="fp32")
    _, full = METHODS["hashgrid"](steps=60, until="steps", **small).fit_field(img, (16, 16))
    assert full.steps == 60 and full.stopped == "steps"
    _, target = METHODS["hashgrid"](steps=60, until="psnr:25", **small).fit_field(img, (16, 16))
    assert target.stopped == "psnr" and target.steps < 60 and target.psnr >= 25


def test_auto_stops_once_the_output_stops_changing(one_thread):
    """A constant image: after a few checks the drawing no longer moves, and the fit ends long
    before its cap; the result is the one the full run passes through at that step."""
    img = np.full((12, 12, 3), 0.25, np.float32)
    small = dict(levels=4, log2_table_size=10, device="cpu", precision="fp32", lr=1e-2)
    field, auto = METHODS["hashgrid"](steps=2000, until="auto", **small).fit_field(img, (24, 24))
    assert auto.stopped == "auto" and auto.steps < 2000 and auto.steps % 25 == 0
    assert psnr(render_field(field, (24, 24)), np.full((24, 24, 3), 0.25)) > 40


def test_auto_levels_sets_the_threshold(one_thread):
    """'auto:LEVELS' is the same rule at another threshold: a huge one stops at the first
    possible check (patience 2: the third check), a tiny one on a noisy image runs the cap."""
    from coordsr.fit import AutoStop

    rng = np.random.default_rng(0)
    img = rng.random((12, 12, 3)).astype(np.float32)
    small = dict(levels=4, log2_table_size=10, device="cpu", precision="fp32", lr=1e-2)
    _, loose = METHODS["hashgrid"](steps=400, until="auto:1000", **small).fit_field(img, (24, 24))
    assert loose.stopped == "auto" and loose.steps == 3 * AutoStop.every
    _, strict = METHODS["hashgrid"](steps=150, until="auto:1e-6", **small).fit_field(img, (24, 24))
    assert strict.stopped == "steps" and strict.steps == 150


def test_projected_change_scales_by_the_learning_rate_left():
    from coordsr.fit import projected_change

    # A flat schedule (lr_end = 1): 0.5 levels over 25 steps, 100 steps left -> 2 levels to come.
    assert abs(projected_change(0.5, 25, 50, 150, lr_end=1.0) - 2.0) < 1e-9
    assert projected_change(3.0, 975, 1000, 1000) == 0  # nothing left at the cap
    # Under the cosine, the same change early (most of the schedule left) projects far more
    # than late: a slow learner is not stopped half-way.
    assert projected_change(0.2, 475, 500, 2000) > 5 * projected_change(0.2, 1875, 1900, 2000)


def test_adam_equals_torch_adam_bit_for_bit(one_thread):
    """fit.Adam + cosine_lr replace torch.optim.Adam + LambdaLR (whose import of torch._dynamo
    costs as much as importing torch) without changing a single result."""
    import math

    from coordsr.fit import Adam, cosine_lr

    torch.manual_seed(0)
    cfg = FitConfig(steps=30, lr=1e-2)
    ref = [torch.randn(40, 7, requires_grad=True), torch.randn(7, requires_grad=True)]
    ours = [t.detach().clone().requires_grad_() for t in ref]
    torch_adam = torch.optim.Adam(ref, lr=cfg.lr, eps=1e-15)
    end = cfg.lr_end
    sched = torch.optim.lr_scheduler.LambdaLR(
        torch_adam, lambda s: end + (1 - end) * 0.5 * (1 + math.cos(math.pi * min(s / cfg.steps, 1.0))))
    adam = Adam(ours, lr=cfg.lr, eps=1e-15)
    x = torch.randn(16, 40)
    for step in range(1, cfg.steps + 1):
        adam.lr = cosine_lr(cfg, step)
        for params, opt in ((ref, torch_adam), (ours, adam)):
            opt.zero_grad()
            (x @ params[0] + params[1]).sin().square().mean().backward()
            opt.step()
        sched.step()
    assert all(torch.equal(a, b) for a, b in zip(ref, ours))


@pytest.mark.slow  # a fresh interpreter imports torch: 2 s idle
def test_fitting_does_not_import_torch_dynamo():
    import subprocess
    import sys

    code = ("import sys, numpy as np\nfrom coordsr.methods import METHODS\n"
            "METHODS['hashgrid'](steps=3, levels=2, log2_table_size=8, device='cpu', precision='fp32')"
            ".upscale(np.zeros((4, 4, 3), np.float32), (8, 8))\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.strip() == "False"
