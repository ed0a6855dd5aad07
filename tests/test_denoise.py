"""Denoising: the protocol pinned, the registry's denoisers, the field's discrepancy stop, the bench."""

import dataclasses
import json

import numpy as np
import pytest

from coordsr.denoise import bench as dbench
from coordsr.denoise.protocol import (add_noise, add_noise_8bit, check_sigma, estimate_sigma, noise_seed,
                                      psnr_rgb, score)
from coordsr.denoise.zsn2n import pair_downsample
from coordsr.bench import code_version
from coordsr.methods import METHODS, get_method, methods_for
from coordsr.methods.denoisers import field

from test_methods import smooth_image

DENOISERS = list(methods_for("denoise"))
# A few steps and small tables: the contract, not the quality.
FAST = {"steps": 8, "crop": 0, "channels": 16, "settings": "log2_table_size=10,levels=4"}


def fast(cls, **kw):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(device="cpu", **{k: v for k, v in {**FAST, **kw}.items() if k in names})


# --- the protocol ----------------------------------------------------------------------------------


def test_noise_is_float64_unclipped_unquantized_and_seeded():
    clean = np.zeros((64, 64, 3))
    clean[:, 32:] = 1.0  # black and white halves: clipping would show at both ends
    noisy = add_noise(clean, 25, seed=[0, 1, 2])
    assert noisy.dtype == np.float64
    assert noisy.min() < 0 and noisy.max() > 1  # not clipped
    assert not np.allclose(noisy * 255, np.round(noisy * 255))  # not quantized
    assert np.array_equal(noisy, add_noise(clean, 25, seed=[0, 1, 2]))
    assert not np.array_equal(noisy, add_noise(clean, 25, seed=[0, 1, 3]))
    assert abs(np.std(noisy - clean) * 255 - 25) < 0.5  # 12288 samples: std within 2%


def test_the_8bit_variant_is_clipped_and_quantized():
    clean = np.full((32, 32, 3), 0.02)
    noisy = add_noise_8bit(clean, 50, seed=0)
    assert noisy.min() == 0.0 and noisy.max() <= 1.0
    assert np.array_equal(noisy * 255, np.round(noisy * 255))
    # the same draw as the float variant, then clipped and rounded
    assert np.allclose(noisy, np.floor(np.clip(add_noise(clean, 50, seed=0), 0, 1) * 255 + 0.5) / 255)


def test_psnr_is_rgb_over_all_pixels_with_no_shave():
    clean = np.full((20, 20, 3), 0.5)
    out = clean.copy()
    out[0, 0, 2] += 0.1  # one border pixel of one channel: a shave or a luma would not see it all
    assert psnr_rgb(out, clean) == pytest.approx(10 * np.log10(1 / (0.01 / 1200)))
    assert psnr_rgb(clean, clean) == np.inf


def test_scores_quantize_the_output_first():
    clean = np.round(smooth_image(16, 16, 3) * 255) / 255
    assert score(clean + 0.4 / 255, clean)["psnr"] == np.inf  # rounds back to the clean levels


def test_seeds_differ_per_image_and_level():
    assert noise_seed("a.png", 15) != noise_seed("b.png", 15)
    assert noise_seed("a.png", 15) != noise_seed("a.png", 25)


@pytest.mark.parametrize("bad", [-1, 100.5, float("nan"), float("inf")])
def test_sigma_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="between 0 and 100"):
        check_sigma(bad)


def test_sigma_is_estimated_from_the_image():
    clean = smooth_image(96, 96, 3)
    assert estimate_sigma(add_noise(clean, 20, seed=1)) == pytest.approx(20, rel=0.15)
    assert estimate_sigma(clean) < 1


# --- the registry's denoisers ------------------------------------------------------------------------


def test_denoisers_are_registered_beside_the_upscalers():
    assert set(DENOISERS) == {"nlmeans", "wavelet", "tv", "field", "zsn2n", "zsnlm", "trained"}
    assert all(METHODS[n].task == "denoise" for n in DENOISERS)
    assert "bicubic" in methods_for("upscale") and "wavelet" not in methods_for("upscale")
    with pytest.raises(ValueError, match="upscale"):
        methods_for("paint")


@pytest.mark.parametrize("name", DENOISERS)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_denoiser_keeps_the_contract(name, channels):
    clean = smooth_image(24, 20, channels)
    noisy = add_noise(clean, 25, seed=0)
    if channels in (2, 4):
        noisy[:, :, -1] = clean[:, :, -1]  # alpha is not noisy
    out = fast(METHODS[name]).denoise(noisy, 25)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if channels in (2, 4):
        assert np.array_equal(out[:, :, -1], clean[:, :, -1].astype(np.float32))  # passed through


@pytest.mark.parametrize("name", DENOISERS)
def test_every_denoiser_is_described_and_deterministic(name):
    cls = METHODS[name]
    assert cls.description() and "\n" not in cls.description()
    assert cls.family in ("classical", "per-image", "zero-shot", "pretrained")
    noisy = add_noise(smooth_image(16, 16, 3, seed=2), 25, seed=3)
    assert np.array_equal(fast(cls).denoise(noisy, 25), fast(cls).denoise(noisy, 25))


@pytest.mark.parametrize("name", ["nlmeans", "wavelet", "tv"])
@pytest.mark.parametrize("sigma", [25, None])  # given, and blind
def test_classical_denoisers_remove_noise(name, sigma):
    clean = smooth_image(64, 64, 3)
    noisy = add_noise(clean, 25, seed=0)
    out = METHODS[name]().denoise(noisy, sigma)
    assert psnr_rgb(out, clean) > psnr_rgb(noisy, clean) + 5


@pytest.mark.parametrize("name", DENOISERS)
def test_a_clean_image_comes_back_unchanged(name):
    clean = np.round(smooth_image(48, 48, 3) * 255) / 255  # 8-bit rounding: 0.3 levels of noise
    out = fast(METHODS[name]).denoise(clean)  # blind: estimated level below CLEAN_SIGMA
    assert np.array_equal(out, clean.astype(np.float32))
    assert np.array_equal(fast(METHODS[name]).denoise(clean, 0), clean.astype(np.float32))


def test_field_stops_by_the_discrepancy_principle_and_trace_agrees():
    clean = smooth_image(24, 24, 3)
    noisy = add_noise(clean, 25, seed=0)
    den = field(network="hashgrid", steps=60, device="cpu", settings="log2_table_size=10,levels=8")
    seen = {}
    info = den.trace(noisy, 25, 20, lambda step, img: seen.setdefault(step, img))
    assert info["stop_step"] < 60  # the stop fired before the budget ran out
    assert {20, 40, 60} <= set(seen) and info["stop_step"] in seen
    stopped = den.denoise(noisy, 25)
    # denoise() stops at the same iterate the trace reports: the benchmark's auto row is the method
    assert np.allclose(stopped, np.clip(seen[info["stop_step"]], 0, 1), atol=1e-6)
    residual = np.mean((stopped.astype(np.float64) - noisy) ** 2)
    assert residual == pytest.approx((25 / 255) ** 2, rel=0.35)  # stopped near the noise variance


def test_field_refuses_networks_that_are_not_per_image_presets():
    with pytest.raises(ValueError, match="per-image"):
        field(network="bicubic").denoise(np.zeros((8, 8, 3)) + 0.5, 10)
    with pytest.raises(ValueError, match="NAME=VALUE"):
        field(network="siren", settings="nope=1").denoise(np.zeros((8, 8, 3)) + 0.5, 10)


def test_pair_downsampler_splits_the_diagonals():
    import torch

    x = torch.zeros(1, 1, 2, 2)
    x[..., 0, 1] = 1.0  # top right: in the anti-diagonal average only
    a, b = pair_downsample(x)
    assert float(a) == 0.5 and float(b) == 0.0


def test_self_ensemble_maps_each_transform_back():
    import torch

    from coordsr.zeroshot.ops import ENSEMBLE_ORDER, dihedral, self_ensemble

    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert len({tuple(dihedral(x, k).flatten()[:7].tolist()) for k in ENSEMBLE_ORDER}) == 8  # 8 distinct
    # An equivariant map is unchanged by the ensemble; one that is not (a shift) is averaged.
    assert torch.equal(self_ensemble(lambda t: 2 * t, x, 8), 2 * x)
    shifted = self_ensemble(lambda t: t.roll(1, -1), x, 2)  # the second transform mirrors columns
    assert torch.allclose(shifted, 0.5 * (x.roll(1, -1) + x.roll(-1, -1)))
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        self_ensemble(lambda t: t, x, 3)


def test_trained_self_ensemble_averages_its_passes_over_the_flips():
    import torch

    from coordsr.zeroshot.ops import ENSEMBLE_ORDER, dihedral, undihedral

    noisy = add_noise(smooth_image(24, 20, 3, seed=6), 25, seed=7)
    one = METHODS["trained"](device="cpu").denoise(noisy, 25)
    two = METHODS["trained"](device="cpu", ensemble=2).denoise(noisy, 25)
    mirrored = METHODS["trained"](device="cpu").denoise(
        undihedral(torch.from_numpy(noisy).permute(2, 0, 1), ENSEMBLE_ORDER[1]).permute(1, 2, 0).numpy(), 25)
    back = dihedral(torch.from_numpy(mirrored).permute(2, 0, 1), ENSEMBLE_ORDER[1]).permute(1, 2, 0).numpy()
    assert not np.array_equal(one, two)
    assert np.allclose(two, np.clip(0.5 * (one + back), 0, 1), atol=2e-6)
    with pytest.raises(ValueError, match="ensemble must be 1, 2, 4 or 8, got 3"):
        METHODS["trained"](ensemble=3)


def test_zsn2n_refuses_an_ensemble_it_cannot_make():
    from coordsr.methods import get_method

    with pytest.raises(ValueError, match="ensemble must be 1, 2, 4 or 8, got 3"):
        get_method("zsn2n")(ensemble=3)


def test_zsnlm_is_the_weighted_mean_of_its_network_and_nonlocal_means():
    noisy = add_noise(smooth_image(20, 16, 3, seed=4), 25, seed=5)
    settings = dict(steps=3, crop=0, ensemble=2, device="cpu")
    learned = METHODS["zsn2n"](**settings).denoise(noisy, 25)
    classical = METHODS["nlmeans"](h=0.8).denoise(noisy, 25)
    # Both parts are clipped to [0, 1] here and not inside zsnlm: compare where neither clips.
    inside = (learned > 0) & (learned < 1) & (classical > 0) & (classical < 1)
    for weight in (0.0, "0.4", 1.0, "sure"):
        m = METHODS["zsnlm"](weight=weight, h=0.8, **settings)
        out = m.denoise(noisy, 25)
        w = m.last_weight
        assert 0 <= w <= 1 and (weight == "sure" or w == float(weight))
        assert np.allclose(out[inside], (w * learned + (1 - w) * classical)[inside], atol=1e-5)
    for bad, message in ((dict(weight=1.5), "weight must be 'sure' or a number in \\[0, 1\\]"),
                         (dict(weight="best"), "weight must be"), (dict(h=0), "h must be positive"),
                         (dict(probe_eps=0), "probe_eps must be positive")):
        with pytest.raises(ValueError, match=message):
            METHODS["zsnlm"](**bad)


def test_sure_estimates_the_error_without_the_clean_image_and_its_blend_weight_minimises_it():
    from coordsr.denoise.sure import blend_weight, mc_divergence, sure

    rng = np.random.default_rng(0)
    clean = rng.random(200_000)
    sigma = 0.1
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    probe = rng.standard_normal(clean.shape)
    # Two linear denoisers with known divergence: shrink towards the mean, and a 3-tap average.
    def shrink(y):
        return 0.3 * y + 0.7 * 0.5

    def smooth(y):
        return np.convolve(y, np.ones(3) / 3, mode="same")

    a, b = shrink(noisy), smooth(noisy)
    div_a = mc_divergence(a, shrink(noisy + 1e-3 * probe), probe, 1e-3)
    div_b = mc_divergence(b, smooth(noisy + 1e-3 * probe), probe, 1e-3)
    assert abs(div_a / clean.size - 0.3) < 0.01 and abs(div_b / clean.size - 1 / 3) < 0.01
    for out, div in ((a, div_a), (b, div_b)):
        true = float(np.mean((out - clean) ** 2))
        assert abs(sure(noisy, out, div, sigma) - true) < 0.02 * true
    w = blend_weight(noisy, a, b, div_a, div_b, sigma)
    grid = np.linspace(0, 1, 101)
    risks = [sure(noisy, b + g * (a - b), g * div_a + (1 - g) * div_b, sigma) for g in grid]
    assert abs(w - grid[int(np.argmin(risks))]) <= 0.01


# --- the benchmark ---------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    for k in range(2):
        Image.fromarray((smooth_image(24, 24, 3, seed=k) * 255).round().astype(np.uint8)).save(tmp_path / f"im{k}.png")
    return tmp_path


def test_bench_rows_oracle_and_cache(folder, tmp_path):
    paths = sorted(folder.glob("*.png"))
    methods = {"wavelet": {}, "field": {"network": "hashgrid", "steps": 30, "device": "cpu",
                                        "settings": "log2_table_size=10,levels=4"}}
    cache = tmp_path / "cache.jsonl"
    rows = dbench.run_denoise_bench(paths, [25], methods, dataset="toy", oracle_every=10, cache=cache)
    assert len(rows) == 4 and all(r["psnr"] > r["noisy_psnr"] for r in rows if r["method"] == "wavelet")
    for r in rows:
        if r["method"] == "field":
            assert r["psnr_oracle"] >= r["psnr"] and r["oracle_step"] % 10 == 0 or r["oracle_step"] == r["stop_step"]
    again = dbench.run_denoise_bench(paths, [25], methods, dataset="toy", oracle_every=10, cache=cache)
    assert again == rows  # resumed from the cache, not rerun
    table = dbench.format_table(rows)
    assert "oracle" in table and "noisy input (float)" in table and "wavelet" in table
    out = tmp_path / "rows.json"
    dbench.write_json(rows, out)
    assert json.loads(out.read_text())["summary"][0]["n"] == 2


def test_a_crops_rows_do_not_stand_for_the_whole_images(folder, tmp_path):
    paths, cache = sorted(folder.glob("*.png")), tmp_path / "cache.jsonl"
    crops = dbench.run_denoise_bench(paths, [25], {"wavelet": {}}, dataset="toy", crop=12, cache=cache)
    whole = dbench.run_denoise_bench(paths, [25], {"wavelet": {}}, dataset="toy", cache=cache)
    assert {r["dataset"] for r in crops} == {"toy-crop12"} and {r["dataset"] for r in whole} == {"toy"}
    assert [r["psnr"] for r in whole] != [r["psnr"] for r in crops]


def _as_older_code(cache, **change):
    """Rewrite the cache as if another version of the code had made its rows."""
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    cache.write_text("".join(json.dumps({**r, "version": "older", **{k: f(r) for k, f in change.items()}}) + "\n"
                             for r in rows))


def _count_denoise_calls(monkeypatch, name):
    cls, calls = get_method(name), []
    real = cls.denoise
    monkeypatch.setattr(cls, "denoise", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    return calls


def test_rows_of_older_code_stand_when_their_canary_agrees(folder, tmp_path, monkeypatch):
    paths, cache = sorted(folder.glob("*.png")), tmp_path / "cache.jsonl"
    rows = dbench.run_denoise_bench(paths, [15, 25], {"wavelet": {}}, dataset="toy", cache=cache)
    assert {r["version"] for r in rows} == {code_version(get_method("wavelet"))}
    _as_older_code(cache)
    calls = _count_denoise_calls(monkeypatch, "wavelet")
    again = dbench.run_denoise_bench(paths, [15, 25], {"wavelet": {}}, dataset="toy", cache=cache)
    assert len(calls) == 1  # the canary: one cell run again, the other three adopted
    assert [r["psnr"] for r in again] == pytest.approx([r["psnr"] for r in rows], abs=1e-9)
    assert sum("validated" in r for r in again) == 3 and {r["version"] for r in again} == {rows[0]["version"]}
    assert dbench.run_denoise_bench(paths, [15, 25], {"wavelet": {}}, dataset="toy", cache=cache) == again
    assert len(calls) == 1  # current rows now, and the verdict is kept


def test_rows_of_older_code_are_run_again_when_their_canary_disagrees(folder, tmp_path, monkeypatch):
    paths, cache = sorted(folder.glob("*.png")), tmp_path / "cache.jsonl"
    rows = dbench.run_denoise_bench(paths, [15, 25], {"wavelet": {}}, dataset="toy", cache=cache)
    _as_older_code(cache, psnr=lambda r: r["psnr"] + 1.0)  # what older weights or code would give
    calls = _count_denoise_calls(monkeypatch, "wavelet")
    again = dbench.run_denoise_bench(paths, [15, 25], {"wavelet": {}}, dataset="toy", cache=cache)
    assert len(calls) == 4 and not any("validated" in r for r in again)
    assert [r["psnr"] for r in again] == pytest.approx([r["psnr"] for r in rows], abs=1e-9)
    verdicts = [json.loads(line) for line in dbench.canary_file(cache).read_text().splitlines()]
    assert len(verdicts) == 1 and verdicts[0]["ok"] is False and verdicts[0]["old_version"] == "older"


def test_new_denoiser_weights_are_a_new_version_of_trained(tmp_path, monkeypatch):
    import coordsr.bench as B
    from coordsr.methods.denoisers import SHIPPED_DENOISER

    monkeypatch.setattr(B, "WEIGHTS_DIR", tmp_path)
    (tmp_path / SHIPPED_DENOISER).write_bytes(b"old")
    old = B.code_version(get_method("trained"))
    (tmp_path / SHIPPED_DENOISER).write_bytes(b"new")
    assert B.code_version(get_method("trained")) != old


def test_bench_refuses_upscalers(folder):
    with pytest.raises(ValueError, match="not a denoiser"):
        dbench.run_denoise_bench(sorted(folder.glob("*.png")), [25], {"bicubic": {}})


def test_field_settings_cannot_override_what_the_denoiser_sets():
    for own in ("steps=5", "until=auto"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            field(network="hashgrid", settings=own).preset(0.1)
    # Its stop is the discrepancy principle under its own cap, not the upscaler's 'auto' rule:
    # `trace` replays the same fit, so it must not stop where `denoise` would not.
    assert field(network="siren").preset(0.1).until == "steps"
    assert field(network="hashgrid", settings="finest=0.25,levels=4").preset(0.1).finest == 0.25


def test_field_uses_the_networks_denoising_defaults_unless_told():
    assert field(network="hashgrid").preset(0.1).finest == 0.25
    assert field(network="hashgrid", settings="finest=1.0").preset(0.1).finest == 1.0
    assert field(network="siren").preset(0.1).w0 == 30.0


def test_field_stops_at_its_networks_level_unless_tau_is_given():
    from coordsr.fit import psnr_from_mse
    from coordsr.methods.denoisers import FIELD_TAU

    sigma = 25 / 255
    assert field(network="fourier").stop_level() == FIELD_TAU["fourier"] < 1
    assert field(network="siren").stop_level() == 1.0  # the discrepancy principle itself
    assert field(network="fourier", tau=1.0).stop_level() == 1.0
    assert field(network="fourier").preset(sigma).target_psnr == pytest.approx(
        psnr_from_mse(FIELD_TAU["fourier"] * sigma**2))
    with pytest.raises(ValueError, match="tau"):
        field(network="fourier", tau=-1.0)
