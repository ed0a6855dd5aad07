"""Tests for coordsr.images (read, decode, write, encode) and coordsr.samples."""

import io
import os
import socket
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps, WebPImagePlugin

from coordsr import images, samples
from coordsr.errors import ImageError
from coordsr.images import (
    ImageData,
    decode_image_bytes,
    encode_image_bytes,
    read_image,
    write_image,
)

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def noise(h, w, c, seed=0):
    return np.random.default_rng(seed).random((h, w, c), dtype=np.float32)


def smooth(h, w, c):
    """Gentle gradients, different per channel: what lossy codecs keep well."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    chans = [0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(3 * x + 2 * y), 0.3 + 0.5 * y * x]
    return np.stack(chans[:c], axis=-1).astype(np.float32)


def quantize(pixels, bit_depth):
    top = 2**bit_depth - 1
    return np.rint(np.clip(pixels, 0, 1) * top) / top


def png_bytes(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def patch_png_size(data, width, height):
    """A PNG whose IHDR claims another size (CRC fixed), its pixel data left as it was."""
    data = bytearray(data)
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_lossless_round_trip(tmp_path, suffix, bit_depth, channels):
    pixels = noise(9, 13, channels)
    path = tmp_path / f"img{suffix}"
    write_image(path, pixels, bit_depth=bit_depth)
    img = read_image(path)
    assert isinstance(img, ImageData)
    assert (img.height, img.width, img.channels) == (9, 13, channels)
    assert img.mode == MODES[channels]
    assert img.bit_depth == bit_depth
    assert img.format == ("PNG" if suffix == ".png" else "TIFF")
    assert img.pixels.dtype == np.float32 and img.pixels.flags.c_contiguous
    np.testing.assert_array_equal(img.pixels, quantize(pixels, bit_depth).astype(np.float32))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_16bit_value_survives(fmt, channels):
    levels = np.arange(65536).reshape(256, 256)
    codes = np.stack([np.roll(levels, k) for k in range(channels)], axis=-1)  # (256, 256, C)
    img = decode_image_bytes(encode_image_bytes(codes / 65535.0, fmt, 16), "x")
    assert img.bit_depth == 16
    np.testing.assert_array_equal(np.rint(img.pixels.astype(np.float64) * 65535), codes)


@pytest.mark.parametrize("channels", [1, 3])
def test_bmp_round_trip_is_8bit_exact(tmp_path, channels):
    pixels = noise(6, 5, channels)
    write_image(tmp_path / "a.bmp", pixels, bit_depth=16)  # BMP falls back to 8 bits
    img = read_image(tmp_path / "a.bmp")
    assert (img.format, img.bit_depth, img.mode) == ("BMP", 8, MODES[channels])
    np.testing.assert_array_equal(img.pixels, quantize(pixels, 8).astype(np.float32))


@pytest.mark.parametrize(
    "suffix,fmt,channels",
    [(".jpg", "JPEG", 1), (".jpeg", "JPEG", 3), (".webp", "WEBP", 1), (".webp", "WEBP", 3),
     (".webp", "WEBP", 4)],  # JPEG has no alpha: see test_alpha_is_composited_on_white
)
def test_lossy_round_trip(tmp_path, suffix, fmt, channels):
    pixels = smooth(32, 48, channels)
    write_image(tmp_path / f"a{suffix}", pixels, bit_depth=16)
    img = read_image(tmp_path / f"a{suffix}")
    assert (img.format, img.bit_depth, img.height, img.width) == (fmt, 8, 32, 48)
    if fmt == "WEBP" and channels == 1:  # WebP has no grey mode: it comes back as equal RGB
        assert img.mode == "RGB"
        pixels = np.repeat(pixels, 3, axis=-1)
    else:
        assert img.mode == MODES[channels]
    error = np.abs(img.pixels - pixels)
    assert error.mean() < 0.01 and error.max() < 0.08  # WebP halves chroma resolution


@pytest.mark.parametrize("fmt", ["JPEG", "BMP"])
@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_is_composited_on_white(fmt, channels):
    pixels = smooth(16, 16, channels)
    pixels[..., -1] = 0.0
    pixels[:8, :, -1] = 1.0  # top half opaque, bottom half transparent
    img = decode_image_bytes(encode_image_bytes(pixels, fmt), f"a.{fmt}")
    assert img.channels == channels - 1
    atol = 0.03 if fmt == "JPEG" else 0.5 / 255
    np.testing.assert_allclose(img.pixels[12:], 1.0, atol=atol)
    np.testing.assert_allclose(img.pixels[:4], pixels[:4, :, :-1], atol=atol)


def test_rounding_rule_is_round_clip_times_max():
    pixels = np.array([[-0.2, 0.0, 0.4 / 255, 0.6 / 255], [1.0, 1.3, np.nan, 254.5 / 255]])
    img = decode_image_bytes(encode_image_bytes(pixels, "PNG", 8), "x.png")
    codes = np.rint(img.pixels[..., 0] * 255)
    np.testing.assert_array_equal(codes, [[0, 0, 0, 1], [255, 255, 0, 254]])  # 254.5: half to even


def test_2d_pixels_write_as_grey():
    img = decode_image_bytes(encode_image_bytes(noise(4, 5, 1)[..., 0], "tif"), "x.tif")
    assert img.mode == "L"


def test_read_bytes_matches_read_file(tmp_path):
    write_image(tmp_path / "a.png", noise(5, 6, 3))
    from_file = read_image(tmp_path / "a.png")
    from_bytes = decode_image_bytes((tmp_path / "a.png").read_bytes(), "upload.png")
    np.testing.assert_array_equal(from_file.pixels, from_bytes.pixels)
    assert (from_file.mode, from_file.format) == (from_bytes.mode, from_bytes.format)


# ---------------------------------------------------------------- modes from other writers


def test_palette_with_transparency_reads_as_rgba():
    im = Image.new("P", (4, 3), 1)
    im.putpalette([255, 0, 0, 0, 255, 0])
    img = decode_image_bytes(png_bytes(im, transparency=1), "p.png")
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(img.pixels[0, 0], [0, 1, 0, 0])


def test_palette_reads_as_rgb():
    im = Image.new("P", (4, 3), 1)
    im.putpalette([255, 0, 0, 0, 255, 0])
    img = decode_image_bytes(png_bytes(im), "p.png")
    assert img.mode == "RGB"
    np.testing.assert_array_equal(img.pixels[0, 0], [0, 1, 0])


def test_cmyk_jpeg_reads_as_rgb():
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)
    img = decode_image_bytes(buf.getvalue(), "c.jpg")
    assert (img.mode, img.format) == ("RGB", "JPEG")
    np.testing.assert_allclose(img.pixels[4, 4], [1, 0, 0], atol=0.03)


def test_multi_picture_jpeg_reads_as_jpeg():
    """Cameras write MPO (a JPEG with extra frames); Pillow names it MPO, we read the first frame."""
    first, second = Image.new("RGB", (8, 6), (0, 0, 255)), Image.new("RGB", (8, 6), (255, 0, 0))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[second])
    img = decode_image_bytes(buf.getvalue(), "camera.jpg")
    assert (img.format, img.mode, img.height, img.width) == ("JPEG", "RGB", 6, 8)
    np.testing.assert_allclose(img.pixels[3, 4], [0, 0, 1], atol=0.03)


def test_pillow_16bit_grey_png_keeps_16_bits():
    codes = np.array([[0, 1, 2], [65533, 65534, 65535]], dtype=np.uint16)
    img = decode_image_bytes(png_bytes(Image.fromarray(codes)), "g.png")
    assert (img.mode, img.bit_depth) == ("L", 16)
    np.testing.assert_array_equal(np.rint(img.pixels[..., 0] * 65535.0), codes)


def test_float_tiff_is_clipped_and_16bit():
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.array([[-1.0, 0.25], [0.5, 2.0]], dtype=np.float32))
    img = decode_image_bytes(buf.getvalue(), "f.tif")
    assert (img.mode, img.bit_depth) == ("L", 16)
    np.testing.assert_array_equal(img.pixels[..., 0], [[0, 0.25], [0.5, 1]])


def test_planar_rgb_tiff():
    codes = (np.arange(3 * 4 * 5) * 7 % 256).astype(np.uint8).reshape(3, 4, 5)  # (C, H, W)
    buf = io.BytesIO()
    tifffile.imwrite(buf, codes, photometric="rgb", planarconfig="separate")
    img = decode_image_bytes(buf.getvalue(), "p.tif")
    np.testing.assert_array_equal(img.pixels, np.moveaxis(codes, 0, -1) / np.float32(255))


# ---------------------------------------------------------------- EXIF orientation


def asymmetric_image(h=4, w=6):
    """Distinct values everywhere, so every flip and rotation is told apart."""
    return (np.arange(h * w, dtype=np.uint8) * 10).reshape(h, w)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = png_bytes(Image.fromarray(asymmetric_image()), exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))) / np.float32(255)
    img = decode_image_bytes(data, "o.png")
    np.testing.assert_array_equal(img.pixels[..., 0], expected)


def test_exif_orientation_in_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90 degrees clockwise
    rgb = np.repeat(smooth(16, 32, 1), 3, axis=-1)
    rgb[:4, :4] = [1, 0, 0]  # a red block in the stored top-left corner
    buf = io.BytesIO()
    Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(buf, "JPEG", exif=exif, quality=95)
    img = decode_image_bytes(buf.getvalue(), "o.jpg")
    assert (img.height, img.width) == (32, 16)
    assert np.abs(img.pixels - np.rot90(rgb, -1)).mean() < 0.02  # JPEG rings at the block's edge
    assert img.pixels[1, -2, 0] > 0.9 and img.pixels[1, -2, 1] < 0.1  # now at the top right


def test_exif_orientation_in_16bit_png():
    codes = asymmetric_image().astype(np.uint16) * 257
    exif = Image.Exif()
    exif[0x0112] = 8
    img = decode_image_bytes(png_bytes(Image.fromarray(codes), exif=exif), "o.png")
    assert img.bit_depth == 16
    np.testing.assert_array_equal(np.rint(img.pixels[..., 0] * 65535.0), np.rot90(codes, 1))


def test_tiff_orientation_tag():
    buf = io.BytesIO()
    tifffile.imwrite(buf, asymmetric_image(), extratags=[(274, "H", 1, 3, True)])  # 180 degrees
    img = decode_image_bytes(buf.getvalue(), "o.tif")
    np.testing.assert_array_equal(img.pixels[..., 0], asymmetric_image()[::-1, ::-1] / np.float32(255))


# ---------------------------------------------------------------- bad input


def assert_image_error(call, name, *words):
    with pytest.raises(ImageError) as info:
        call()
    message = str(info.value)
    assert str(name) in message and "\n" not in message
    for word in words:
        assert word in message
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    assert_image_error(lambda: read_image(path), path, "no such file")


def test_directory(tmp_path):
    assert_image_error(lambda: read_image(tmp_path), tmp_path, "folder")


@pytest.mark.parametrize("content", [b"", b"hello, not an image\n", b"GIF89a" + bytes(40)])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    assert_image_error(lambda: read_image(path), path, "not an image")


def gif_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "GIF")
    return buf.getvalue()


def test_unsupported_format_is_not_an_image():
    assert_image_error(lambda: decode_image_bytes(gif_bytes(), "a.gif"), "a.gif", "not an image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP"])
def test_truncated(tmp_path, fmt):
    data = encode_image_bytes(noise(64, 64, 3), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) * 2 // 3])
    assert_image_error(lambda: read_image(path), path, "truncated or corrupt")


def test_truncated_16bit_png():
    data = encode_image_bytes(noise(64, 64, 3), "PNG", 16)
    cut = data[: len(data) // 2]
    assert_image_error(lambda: decode_image_bytes(cut, "cut.png"), "cut.png", "truncated or corrupt")


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1)])
def test_too_small(tmp_path, shape):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    h, w = shape
    assert_image_error(lambda: read_image(path), path, f"too small: {w}x{h} pixels, need at least 2x2")


def test_zero_size_tiff():
    buf = io.BytesIO()
    with pytest.warns(UserWarning):
        tifffile.imwrite(buf, np.zeros((0, 0), np.uint8))
    assert_image_error(lambda: decode_image_bytes(buf.getvalue(), "z.tif"), "z.tif", "too small: 0x0")


def test_two_by_two_is_enough():
    assert decode_image_bytes(encode_image_bytes(noise(2, 2, 1), "PNG"), "x").pixels.shape == (2, 2, 1)


@pytest.fixture
def no_decoding(monkeypatch):
    """Any attempt to decode pixels fails the test: refusals must come from the header."""

    def refuse(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", refuse)  # its own load()
    monkeypatch.setattr(images.imagecodecs, "png_decode", refuse)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", refuse)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP"])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_no_decoding_fixture_catches_decoding(fmt, bit_depth, no_decoding):
    data = encode_image_bytes(noise(20, 30, 3), fmt, bit_depth)
    with pytest.raises(ImageError, match="pixels were decoded"):
        decode_image_bytes(data, "x")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP"])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_max_pixels_refused_before_decoding(fmt, bit_depth, request):
    data = encode_image_bytes(noise(20, 30, 3), fmt, bit_depth)
    assert decode_image_bytes(data, "ok", max_pixels=600).width == 30
    request.getfixturevalue("no_decoding")
    assert_image_error(
        lambda: decode_image_bytes(data, "big.img", max_pixels=599),
        "big.img", "too many pixels: 30x20 = 600, the limit is 599",
    )


def test_max_pixels_in_read_image(tmp_path, no_decoding):
    path = tmp_path / "big.png"
    path.write_bytes(encode_image_bytes(noise(20, 30, 3), "PNG"))
    assert_image_error(lambda: read_image(path, max_pixels=100), path, "too many pixels")


def test_decompression_bomb_header_refused_before_decoding(no_decoding):
    # a tiny file whose header claims 50000 x 50000: far over Pillow's own limit
    bomb = patch_png_size(png_bytes(Image.new("L", (8, 8))), 50000, 50000)
    assert_image_error(lambda: decode_image_bytes(bomb, "bomb.png"), "bomb.png", "too many pixels")
    bomb = patch_png_size(png_bytes(Image.new("L", (8, 8))), 3000, 3000)  # under Pillow's limit
    assert_image_error(
        lambda: decode_image_bytes(bomb, "bomb.png", max_pixels=10**6), "bomb.png", "too many pixels"
    )


# ---------------------------------------------------------------- writing


def test_unknown_suffix(tmp_path):
    path = tmp_path / "out.gif"
    message = assert_image_error(lambda: write_image(path, noise(4, 4, 3)), path, ".png", ".tiff")
    assert "'.gif'" in message
    assert not path.exists()


def test_missing_folder(tmp_path):
    path = tmp_path / "not_there" / "out.png"
    assert_image_error(lambda: write_image(path, noise(4, 4, 3)), path, "folder", "does not exist")


def test_write_over_a_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    assert_image_error(lambda: write_image(tmp_path / "d.png", noise(4, 4, 3)), "d.png", "folder")


def test_write_replaces_existing_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    write_image(path, noise(4, 4, 3))
    assert os.listdir(tmp_path) == ["out.png"]
    assert read_image(path).mode == "RGB"


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "out.tif"
    path.write_bytes(b"precious")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.os, failing, fail)
    assert_image_error(lambda: write_image(path, noise(4, 4, 3)), path, "cannot write", "No space")
    assert os.listdir(tmp_path) == ["out.tif"]
    assert path.read_bytes() == b"precious"


def test_failed_write_of_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(images.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(ImageError):
        write_image(tmp_path / "new.png", noise(4, 4, 3))
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_no_temp(tmp_path, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(images.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "new.png", noise(4, 4, 3))
    assert os.listdir(tmp_path) == []


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "p.png", noise(4, 4, 3))
    finally:
        os.umask(old)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644


def test_encode_rejects_misuse():
    with pytest.raises(ValueError, match="PNG, JPEG, TIFF, WEBP, BMP"):
        encode_image_bytes(noise(4, 4, 3), "GIF")
    with pytest.raises(ValueError, match="8 or 16"):
        encode_image_bytes(noise(4, 4, 3), "PNG", 12)
    with pytest.raises(ValueError, match="floats"):
        encode_image_bytes(np.zeros((4, 4, 3), np.int32), "PNG")
    with pytest.raises(ValueError, match="C in 1..4"):
        encode_image_bytes(noise(4, 4, 5), "PNG")


def test_quantized_pixels_are_written_as_they_are(tmp_path):
    """A tiled render hands over uint8/uint16 pixels; they are written exactly, at either depth."""
    codes8 = (np.arange(6 * 5 * 3) * 7 % 256).astype(np.uint8).reshape(6, 5, 3)
    write_image(tmp_path / "a.png", codes8)
    assert np.array_equal(np.rint(read_image(tmp_path / "a.png").pixels * 255), codes8)
    write_image(tmp_path / "b.png", codes8, bit_depth=16)
    assert np.array_equal(np.rint(read_image(tmp_path / "b.png").pixels * 65535), codes8.astype(np.uint16) * 257)
    codes16 = (np.arange(6 * 5) * 2113 % 65536).astype(np.uint16).reshape(6, 5)
    write_image(tmp_path / "c.tif", codes16, bit_depth=16)
    assert np.array_equal(np.rint(read_image(tmp_path / "c.tif").pixels[..., 0] * 65535), codes16)
    non_contiguous = np.asfortranarray(noise(5, 6, 3))
    assert decode_image_bytes(encode_image_bytes(non_contiguous), "x").width == 6


def test_encode_accepts_aliases():
    for alias in ("jpg", "JPEG", "tif", "png", "webp", "bmp"):
        assert decode_image_bytes(encode_image_bytes(smooth(8, 8, 3), alias), "x").width == 8


def test_16bit_png_is_a_standard_png():
    """Other readers see our 16-bit PNG as 16-bit: Pillow reads grey as I;16, libpng all."""
    data = encode_image_bytes(noise(4, 5, 1), "PNG", 16)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert imagecodecs.png_decode(encode_image_bytes(noise(4, 5, 4), "PNG", 16)).dtype == np.uint16


# ---------------------------------------------------------------- samples


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name", samples.sample_names())
def test_samples_load_offline(name, offline):
    pixels = samples.load_sample(name)
    assert pixels.shape == samples.SAMPLES[name]
    assert pixels.dtype == np.float32
    assert 0.0 <= pixels.min() < pixels.max() <= 1.0


def test_sample_is_a_fresh_array(offline):
    a = samples.load_sample("camera")
    a[:] = 0
    assert samples.load_sample("camera").max() > 0


def test_unknown_sample():
    with pytest.raises(ValueError, match="astronaut.*chelsea"):
        samples.load_sample("lena")


def test_demo_image_is_colour(offline):
    pixels = samples.demo_image()
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and min(pixels.shape[:2]) >= 64
    assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() > 0.01  # not grey


def test_sample_writes_and_reads_back(tmp_path, offline):
    write_image(tmp_path / "logo.png", samples.load_sample("logo"))
    assert read_image(tmp_path / "logo.png").mode == "RGBA"
