"""The checklist every registered method passes (DESIGN.md section 3): a new entry is tested here."""

import dataclasses

import numpy as np
import pytest

from coordsr.methods import DEFAULT_METHOD, METHODS, get_method, methods_for

UPSCALERS = list(methods_for("upscale"))

# Small budgets keep the registry-wide checks fast; the benchmark measures real budgets.
FAST = {"steps": 30}


def fast(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(device="cpu", **{k: v for k, v in FAST.items() if k in names})


def smooth_image(h, w, c, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y) + rng.uniform(0, 6))
             for _ in range(c)]
    return np.stack(chans, axis=-1).astype(np.float32)


@pytest.mark.parametrize("name", UPSCALERS)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_method_keeps_the_contract(name, channels):
    img = smooth_image(12, 10, channels)
    out = fast(METHODS[name]).upscale(img, (25, 21))
    assert out.shape == (25, 21, channels)
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", UPSCALERS)
def test_every_method_is_described_and_deterministic(name):
    cls = METHODS[name]
    assert cls.description() and "\n" not in cls.description()
    assert cls.family in ("interpolation", "per-image", "zero-shot", "pretrained")
    img = smooth_image(10, 10, 3, seed=1)
    a = fast(cls).upscale(img, (20, 20))
    b = fast(cls).upscale(img, (20, 20))
    assert np.array_equal(a, b)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="bicubic"):
        get_method("nope")
    assert DEFAULT_METHOD in METHODS


@pytest.mark.parametrize("bad", [np.zeros((1, 5, 3)), np.zeros((5, 5, 5)), np.zeros((4,))])
def test_bad_images_are_refused(bad):
    with pytest.raises(ValueError):
        METHODS["bicubic"]().upscale(bad, (10, 10))
