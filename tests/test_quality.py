"""--degradation auto: a JPEG's saved quality, block artefacts and noise, measured on known inputs."""

import io

import numpy as np
import pytest
from PIL import Image

import coordsr
from coordsr import quality as Q
from coordsr.images import decode_image_bytes, from_pillow

from test_content import photo_like


def smooth(h=96, w=128, seed=0) -> np.ndarray:
    """A clean photo-like image: smooth colour fields, no noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    parts = [0.5 + 0.3 * np.sin(2 * np.pi * (rng.uniform(1, 3) * x + rng.uniform(1, 3) * y + rng.uniform()))
             for _ in range(3)]
    return np.stack(parts, axis=-1).astype(np.float32)


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.mark.parametrize("q", [10, 25, 40, 63, 75, 90, 95, 100])
def test_a_jpegs_quality_is_read_from_its_tables(q):
    assert decode_image_bytes(jpeg_bytes(smooth(), q), "x.jpg").jpeg_quality == q
    assert from_pillow(Image.open(io.BytesIO(jpeg_bytes(smooth(), q)))).jpeg_quality == q


def test_no_quality_for_other_files_or_tables():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    assert decode_image_bytes(buf.getvalue(), "x.png").jpeg_quality is None
    assert Q.jpeg_quality_from_tables({}) is None


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255


def test_blocks_of_a_jpeg_saved_again_as_png_are_seen():
    x = smooth(128, 128)
    clean, blocky = Q.assess(x), Q.assess(decoded(jpeg_bytes(x, 15)))
    assert clean.kind == "clean" and clean.blockiness < 1.1
    assert blocky.kind == "real" and blocky.blockiness >= Q.BLOCKY and "JPEG blocks" in blocky.reason


def test_noise_is_measured_in_levels_and_texture_free_gradients_read_clean():
    for sigma in (5, 10, 20):
        a = Q.assess(photo_like(128, 128, noise=sigma / 255))
        assert a.kind == "real" and "noise" in a.reason
        assert abs(a.chroma_noise - sigma) < 0.25 * sigma
    assert Q.assess(photo_like(128, 128, noise=0.0)).kind == "clean"


def test_grey_noise_is_seen_in_luma():
    rng = np.random.default_rng(1)
    x = smooth(128, 128)
    noisy = np.clip(x + rng.normal(0, 16 / 255, x.shape[:2])[..., None], 0, 1)
    a = Q.assess(noisy)
    assert a.chroma_noise < Q.CHROMA_NOISE and a.luma_noise >= Q.LUMA_NOISE and a.kind == "real"


def test_a_low_jpeg_quality_decides_before_any_pixel_is_measured_and_a_high_one_does_not():
    a = Q.assess(smooth(), jpeg_q=50)
    assert (a.kind, a.reason, a.blockiness) == ("real", "JPEG quality 50", None)
    b = Q.assess(smooth(), jpeg_q=95)
    assert b.kind == "clean" and b.reason.startswith("JPEG quality 95, ")


def test_tiny_and_grey_images_are_measured_without_error():
    assert Q.assess(np.zeros((4, 4, 1), np.float32)).kind == "clean"
    assert Q.assess(np.full((40, 40, 2), 0.5, np.float32)).kind == "clean"


def test_the_api_chooses_as_the_cli_does(tmp_path):
    path = tmp_path / "small.jpg"
    path.write_bytes(jpeg_bytes(smooth(48, 64), 35))
    found = coordsr.classify(path)
    assert (found.kind, found.method, found.degradation.reason) == ("photo", "blind", "JPEG quality 35")
    assert coordsr.classify(path, degradation="clean").method == "pretrained"
    assert coordsr.classify(Image.open(path)).method == "blind"  # a Pillow image keeps its tables
    out = coordsr.upscale(path, scale=2)
    assert np.array_equal(np.asarray(out), np.asarray(coordsr.upscale(path, scale=2, method="blind")))
    with pytest.raises(coordsr.SettingError, match="degradation must be one of auto, clean, real"):
        coordsr.upscale(path, scale=2, degradation="bad")
