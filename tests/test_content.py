"""coordsr.content: photo, drawing or pixel art, on synthetic pictures whose kind is known."""

import numpy as np
import pytest

import coordsr
from coordsr.content import KINDS, classify, content_of, describe, given, measure, method_for, scale_note


def photo_like(h=64, w=64, seed=0, noise=0.03) -> np.ndarray:
    """A gradient with sensor-like noise (sigma ``noise``: 0.03 is 7.7 levels, a noisy photo; 0.005
    is below what ``--degradation auto`` calls noise): many colours, no flat regions."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=-1)
    return np.clip(base + rng.normal(0, noise, base.shape), 0, 1).astype(np.float32)


def coverage(h, w, inside, k=4) -> np.ndarray:
    """Antialiased coverage of a shape: the share of k x k samples of each pixel that ``inside`` holds."""
    y, x = np.mgrid[0:h * k, 0:w * k]
    cy, cx = (y + 0.5) / k, (x + 0.5) / k
    return inside(cy, cx).reshape(h, k, w, k).mean(axis=(1, 3)).astype(np.float32)


def icon(h=48, w=48, alpha=True) -> np.ndarray:
    """Flat antialiased shapes: an orange disc with a dark bar, on transparency (or white)."""
    disc = coverage(h, w, lambda y, x: (y - h / 2) ** 2 + (x - w / 2) ** 2 <= (0.4 * h) ** 2)
    bar = coverage(h, w, lambda y, x: (abs(y - h / 2) <= h / 10) & (abs(x - w / 2) <= 0.25 * w))
    rgb = np.array([1.0, 0.6, 0.1]) * (1 - bar[..., None]) + np.array([0.15, 0.1, 0.1]) * bar[..., None]
    if alpha:
        return np.concatenate([rgb, disc[..., None]], axis=2).astype(np.float32)
    return (rgb * disc[..., None] + (1 - disc[..., None])).astype(np.float32)  # on white


def sprite(n=16, colours=5, seed=1) -> np.ndarray:
    """A palette sprite: a mirrored random pattern of a few colours on transparency, hard pixels."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (colours, 3)) / 255
    half = rng.integers(0, colours + 1, (n, n // 2))  # 0: transparent
    idx = np.concatenate([half, half[:, ::-1]], axis=1)
    out = np.zeros((n, n, 4), np.float32)
    out[idx > 0, :3] = palette[idx[idx > 0] - 1]
    out[idx > 0, 3] = 1
    return out


def test_a_noisy_gradient_is_a_photo():
    found = classify(photo_like())
    assert found.kind == "photo" and found.method == "pretrained"
    assert found.reason.startswith("photo: ") and "few flat regions" in found.reason


def test_flat_antialiased_shapes_are_a_drawing_with_or_without_alpha():
    found = classify(icon())
    assert found.kind == "drawing" and found.method == "drawing"
    assert found.reason.startswith("drawing: transparent background, ")
    f = found.features
    assert f.has_background and not f.hard_alpha and f.blends > 0.3  # antialiased edges, in alpha
    opaque = classify(icon(alpha=False))
    assert opaque.kind == "drawing" and "transparent" not in opaque.reason


def test_a_palette_sprite_is_pixel_art_also_enlarged_with_nearest():
    found = classify(sprite())
    assert found.kind == "pixel-art" and found.method == "nearest"
    assert found.reason == f"pixel-art: {found.features.colours} colours, hard edges, no antialiasing, 16x16"
    big = sprite().repeat(4, axis=0).repeat(4, axis=1)  # a 64 px nearest enlargement
    assert classify(big).kind == "pixel-art"


def test_antialiasing_is_what_tells_a_drawing_from_pixel_art():
    f_icon, f_sprite = measure(icon()), measure(sprite())
    assert f_sprite.blends < 0.05 and f_sprite.rare <= 0.4 and f_sprite.hard_alpha
    assert f_icon.colours > f_sprite.colours
    # the same icon drawn without antialiasing: hard alpha, few colours, no blends
    hard = icon()
    hard[..., 3] = hard[..., 3] >= 0.5
    hard[..., :3] = np.where(hard[..., :3] > 0.5, 1.0, 0.1) * hard[..., 3:]
    assert classify(hard[:32, :32]).kind == "pixel-art"


def test_grey_and_grey_alpha_inputs_are_measured():
    grey = photo_like()[..., :1]
    assert classify(grey).kind == "photo"
    la = np.concatenate([icon()[..., :1], icon()[..., 3:]], axis=2)
    assert classify(la).kind == "drawing"


def test_large_images_are_measured_on_a_subsample_but_keep_their_size():
    big = np.repeat(np.repeat(icon(64, 64), 40, axis=0), 40, axis=1)  # 2560 x 2560
    f = measure(big)
    assert (f.height, f.width) == (2560, 2560)
    assert classify(big).kind == "drawing"


def test_kinds_map_to_registered_methods():
    from coordsr.methods import DEFAULT_METHOD, METHODS

    assert method_for("photo") == DEFAULT_METHOD
    for kind in KINDS:
        assert method_for(kind) in METHODS
    with pytest.raises(ValueError, match="auto, photo, drawing, pixel-art"):
        method_for("cartoon")


def test_given_content_is_not_measured():
    found = given("drawing")
    assert found.kind == "drawing" and found.features is None
    assert content_of(photo_like(), "drawing") == found
    assert content_of(photo_like(), "auto").kind == "photo"
    assert describe("drawing", found) == "drawing model, --content drawing"


def test_the_words_say_which_model_and_why():
    found = classify(icon())
    assert describe("drawing", found) == f"drawing model, detected {found.reason}"
    art = classify(sprite())
    note = scale_note("pixel-art", (16, 16), (40, 40))
    assert "x2.5 is not a whole scale" in note
    assert scale_note("pixel-art", (16, 16), (64, 64)) == "" and scale_note("drawing", (16, 16), (40, 40)) == ""
    assert describe("nearest", art, note).startswith("nearest, hard pixels kept, detected pixel-art: ")
    assert describe("nearest", art, note).endswith(note)


def test_the_public_classify_takes_every_input_type(tmp_path):
    from PIL import Image

    u8 = (sprite() * 255).round().astype(np.uint8)
    path = tmp_path / "sprite.png"
    Image.fromarray(u8).save(path)
    for image in (u8, Image.fromarray(u8), path, str(path)):
        assert coordsr.classify(image).kind == "pixel-art"


def test_doctests():
    import doctest

    from coordsr import content

    result = doctest.testmod(content)
    assert result.attempted > 0 and result.failed == 0


def test_calibration_script_runs_and_counts(shared_data, tmp_path, monkeypatch, capsys):
    import importlib
    import json
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    script = importlib.import_module("content_calibration")
    out = tmp_path / "cal.json"
    monkeypatch.setattr(sys, "argv", ["content_calibration.py", "--limit", "2", "--json", str(out)])
    assert script.main() == 0
    doc = json.loads(out.read_text())
    assert set(doc["confusion"]) == set(KINDS) and doc["thresholds"]["DRAWING_COMMON"] > 0
    assert sum(sum(row.values()) for row in doc["confusion"].values()) > 30
