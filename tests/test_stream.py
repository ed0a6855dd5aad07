"""Issue 17, parts 1 and 2: streamed output (tiled pyramidal TIFF, Deep Zoom, OME-Zarr) and tiled
image-conditioned methods.

Every tile of a streamed file is compared with the in-memory result of that region; reduced
levels with the 2x2 means of the level above; the files are opened with tifffile and Pillow;
and every failure (bad suffix, unwritable folder, a full disk mid-stream, an interrupt) leaves
no output and no temporary file, and says so in one line.
"""

from __future__ import annotations

import errno
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import coordsr.stream as stream
from coordsr.cli import main
from coordsr.field import Field
from coordsr.liif.model import save_weights
from coordsr.methods.pretrained import pretrained
from coordsr.render import render_field, render_field_rows
from coordsr.stream import Rows, halve, level_sizes, rebanded, tiff_levels, write_rows

from test_cli_errors import assert_one_line_error, run
from test_liif import tiny_model
from test_methods import smooth_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray((smooth_image(12, 16, 3) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def field_file(tmp_path_factory):
    """A tiny fitted field, made once (read only by the tests)."""
    folder = tmp_path_factory.mktemp("field")
    Image.fromarray((smooth_image(12, 16, 3) * 255).astype(np.uint8)).save(folder / "photo.png")
    assert main(["fit", str(folder / "photo.png"), "-o", str(folder / "photo.field"), "--method", "hashgrid",
                 "--steps", "2", "--set", "levels=2", "--set", "log2_table_size=8", "-q"]) == 0
    return folder / "photo.field"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(tiny_model(), p)
    return str(p)


def array_rows(a: np.ndarray, cuts=(100, 37, 300)) -> Rows:
    """``a`` handed over in uneven bands (the writers must regroup them)."""
    def bands():
        r = 0
        for n in [*cuts, len(a)]:
            if r < len(a):
                yield r, a[r:r + n]
                r += min(n, len(a) - r)
    return Rows(a.shape[0], a.shape[1], a.shape[2], a.dtype, bands())


def levels_of(path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tif:
        return [lv.asarray().reshape(lv.shape[0], lv.shape[1], -1) for lv in tif.series[0].levels]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- the pieces -----------------------------------------------------------------------------


def test_halve_is_the_rounded_2x2_mean_with_odd_edges_averaged_with_themselves():
    a = (np.arange(5 * 7 * 2, dtype=np.int64).reshape(5, 7, 2) * 997 % 65536).astype(np.uint16)
    h = halve(a.astype(np.uint16))
    assert h.shape == (3, 4, 2) and h.dtype == np.uint16
    f = a.astype(float)
    assert h[1, 1, 0] == np.floor(f[2:4, 2:4, 0].mean() + 0.5)
    assert h[2, 3, 1] == a[4, 6, 1]  # the corner pixel alone
    assert h[0, 3, 0] == np.floor(f[0:2, 6, 0].mean() + 0.5)


def test_rebanded_regroups_and_checks_the_bands():
    a = np.random.default_rng(0).integers(0, 255, (50, 9, 3), dtype=np.uint8)
    out = list(rebanded(array_rows(a, cuts=(7, 1, 30)), 16))
    assert [r for r, _ in out] == [0, 16, 32, 48] and [len(b) for _, b in out] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([b for _, b in out]), a)
    gap = Rows(50, 9, 3, np.uint8, iter([(0, a[:10]), (11, a[11:])]))
    with pytest.raises(ValueError, match="expected row 10"):
        list(rebanded(gap, 16))
    short = Rows(50, 9, 3, np.uint8, iter([(0, a[:10])]))
    with pytest.raises(ValueError, match="ended at row 10"):
        list(rebanded(short, 16))


@pytest.mark.parametrize("channels, dtype", [(1, np.uint8), (2, np.uint8), (3, np.uint8), (4, np.uint16)])
def test_tiff_tiles_and_levels(tmp_path, channels, dtype):
    top = np.iinfo(dtype).max
    a = np.random.default_rng(channels).integers(0, top, (700, 1100, channels), dtype=dtype, endpoint=True)
    write_rows(tmp_path / "x.tif", array_rows(a))
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256) and not tif.is_bigtiff
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert all(p.is_reduced for p in tif.pages[1:])
    levels = levels_of(tmp_path / "x.tif")
    assert len(levels) == 1 + tiff_levels(700, 1100) == 4
    expect = a
    for lv, size in zip(levels, level_sizes(700, 1100, 3)):
        assert lv.shape[:2] == size
        np.testing.assert_array_equal(lv, expect)
        expect = halve(expect)
    if dtype == np.uint8:  # Pillow reads the small levels as pages
        with Image.open(tmp_path / "x.tif") as im:
            im.seek(3)
            np.testing.assert_array_equal(np.asarray(im).reshape(levels[3].shape), levels[3])
    assert leftovers(tmp_path) == []


def test_tiff_is_bigtiff_past_4gb(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "BIGTIFF_AT", 1000)
    a = np.zeros((40, 30, 3), np.uint8)
    write_rows(tmp_path / "x.tif", array_rows(a, cuts=(7,)))
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        assert tif.is_bigtiff and len(tif.pages) == 1  # one tile: no reduced levels
    np.testing.assert_array_equal(levels_of(tmp_path / "x.tif")[0], a)


@pytest.mark.parametrize("channels, dtype", [(3, np.uint8), (2, np.uint16)])
def test_dzi_tiles_and_levels(tmp_path, channels, dtype):
    a = np.random.default_rng(1).integers(0, 200, (300, 520, channels), dtype=dtype)
    write_rows(tmp_path / "x.dzi", array_rows(a))
    root = ET.parse(tmp_path / "x.dzi").getroot()
    assert root.tag == "{http://schemas.microsoft.com/deepzoom/2008}Image"
    assert (root.get("Format"), root.get("TileSize"), root.get("Overlap")) == ("png", "256", "0")
    size = root[0]
    assert (size.get("Width"), size.get("Height")) == ("520", "300")
    files = tmp_path / "x_files"
    assert sorted(int(p.name) for p in files.iterdir()) == list(range(11))  # ceil(log2(520)) = 10
    expect = a
    for level in range(10, -1, -1):  # full size down to 1 x 1
        h, w = expect.shape[:2]
        names = sorted(p.name for p in (files / str(level)).iterdir())
        assert len(names) == -(-h // 256) * -(-w // 256)
        for name in names:
            col, row = (int(v) for v in name[:-4].split("_"))
            tile = np.asarray(Image.open(files / str(level) / name)) if dtype == np.uint8 else \
                __import__("imagecodecs").png_decode((files / str(level) / name).read_bytes())
            want = expect[row * 256:(row + 1) * 256, col * 256:(col + 1) * 256]
            np.testing.assert_array_equal(tile.reshape(want.shape), want)
        expect = halve(expect)
    assert expect.shape[:2] == (1, 1)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("channels, dtype", [(3, np.uint8), (1, np.uint16), (4, np.uint8)])
def test_zarr_levels_chunks_and_ngff_metadata(tmp_path, channels, dtype):
    """Every level is the 2x2 mean of the one above, in (c, y, x) chunks of 256; the OME-NGFF
    reader of ome-zarr-py finds the same arrays and axes."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    a = np.random.default_rng(2).integers(0, 200, (300, 520, channels), dtype=dtype)
    write_rows(tmp_path / "x.zarr", array_rows(a))
    group = zarr.open_group(str(tmp_path / "x.zarr"), mode="r")
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [ax["name"] for ax in ms["axes"]] == ["c", "y", "x"]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]  # down to one 256 chunk
    expect = a
    for k, d in enumerate(ms["datasets"]):
        arr = group[d["path"]]
        assert arr.chunks == (channels, 256, 256) and d["coordinateTransformations"][0]["scale"] == [1, 2**k, 2**k]
        np.testing.assert_array_equal(arr[:].transpose(1, 2, 0), expect)
        expect = halve(expect)
    node = next(iter(Reader(parse_url(str(tmp_path / "x.zarr")))()))
    assert [tuple(x.shape) for x in node.data] == [(channels, 300, 520), (channels, 150, 260), (channels, 75, 130)]
    np.testing.assert_array_equal(np.asarray(node.data[1]).transpose(1, 2, 0), halve(a))
    assert leftovers(tmp_path) == []


def test_zarr_output_replaces_only_a_zarr_folder(tmp_path, field_file, capsys):
    """An existing .zarr image needs --force; a folder that is not one is never replaced."""
    out = tmp_path / "x.zarr"
    assert run(capsys, "render", field_file, "-o", out, "--size", "64x64", "-q")[0] == 0
    code, _, err = run(capsys, "render", field_file, "-o", out, "--size", "32x32")
    assert_one_line_error(code, err, "already exists")
    assert run(capsys, "render", field_file, "-o", out, "--size", "32x32", "--force", "-q")[0] == 0
    import zarr

    assert zarr.open_group(str(out), mode="r")["0"].shape == (3, 32, 32)
    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "render", field_file, "-o", mine, "--size", "32x32", "--force")
    assert_one_line_error(code, err, "not a Zarr image")
    assert (mine / "notes.txt").read_text() == "mine" and leftovers(tmp_path) == []


# --- producers: every streamed tile equals the in-memory result ---------------------------------


def test_render_rows_equal_render(field_file):
    field = Field.load(field_file)
    full = render_field(field, (300, 700), dtype=np.uint8)
    rows = list(render_field_rows(field, (300, 700), dtype=np.uint8))
    assert [r for r, _ in rows] == [0, 256]
    np.testing.assert_array_equal(np.concatenate([b for _, b in rows]), full)


@pytest.mark.parametrize("suffix", [".tif", ".dzi", ".zarr"])
def test_cli_render_streams_the_in_memory_pixels(tmp_path, field_file, capsys, suffix):
    # float32 like the reference below (auto may pick bfloat16 for hashgrid: 1-level differences)
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / f"big{suffix}", "--size", "700x300",
                       "--box", "-0.5,-0.5,0.7,0.9", "--precision", "fp32", "-q")
    assert code == 0, err
    ref = render_field(Field.load(field_file), (300, 700), box=(-0.5, -0.5, 0.7, 0.9), dtype=np.uint8)
    if suffix == ".tif":
        got = levels_of(tmp_path / "big.tif")[0]
    elif suffix == ".zarr":
        import zarr

        got = zarr.open_group(str(tmp_path / "big.zarr"), mode="r")["0"][:].transpose(1, 2, 0)
    else:
        top = tmp_path / "big_files" / "10"
        got = np.zeros_like(ref)
        for p in top.iterdir():
            col, row = (int(v) for v in p.stem.split("_"))
            got[row * 256:(row + 1) * 256, col * 256:(col + 1) * 256] = np.asarray(Image.open(p))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_pretrained_rows_equal_upscale(tiny_weights, channels, bit_depth):
    """A row of tiles at a time, quantized: the same as upscale + write_image's quantization."""
    from coordsr.images import quantize

    img = np.random.default_rng(channels).random((13, 19, channels), dtype=np.float32)
    method = pretrained(weights=tiny_weights, device="cpu", precision="fp32", tile=16)
    size = (33, 41)  # x2.54 / x2.16: non-integer, non-square
    ref = quantize(method.upscale(img, size), bit_depth)
    got = method.upscale_rows(img, size, bit_depth=bit_depth)
    bands = list(got.bands)
    assert [r for r, _ in bands] == [0, 16, 32] and got.channels == channels
    np.testing.assert_array_equal(np.concatenate([b for _, b in bands]), ref)


def test_pretrained_tiled_equals_untiled(tiny_weights):
    """Overlapping tiles padded by the receptive field: the same result as one tile."""
    img = np.random.default_rng(3).random((40, 52, 3), dtype=np.float32)
    one = pretrained(weights=tiny_weights, device="cpu", precision="fp32", tile=10_000).upscale(img, (80, 104))
    tiled = pretrained(weights=tiny_weights, device="cpu", precision="fp32", tile=24).upscale(img, (80, 104))
    np.testing.assert_allclose(tiled, one, atol=1e-5)


def test_cli_upscale_streams(tmp_path, photo, capsys, tiny_weights):
    args = ["--method", "pretrained", "--set", f"weights={tiny_weights}", "--set", "tile=16", "--scale", "3", "-q"]
    assert run(capsys, "upscale", photo, "-o", tmp_path / "a.png", *args)[0] == 0
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "a.tif", *args)
    assert code == 0, err
    np.testing.assert_array_equal(levels_of(tmp_path / "a.tif")[0], np.asarray(Image.open(tmp_path / "a.png")))


def test_per_image_methods_stream_their_render(tmp_path, photo, capsys):
    args = ["--method", "hashgrid", "--steps", "2", "--until", "steps", "--set", "levels=2",
            "--set", "log2_table_size=8", "--scale", "4", "-q"]
    assert run(capsys, "upscale", photo, "-o", tmp_path / "a.png", *args)[0] == 0
    assert run(capsys, "upscale", photo, "-o", tmp_path / "a.tif", *args)[0] == 0
    np.testing.assert_array_equal(levels_of(tmp_path / "a.tif")[0], np.asarray(Image.open(tmp_path / "a.png")))


# --- bad input and failures: one line, no partial output ----------------------------------------


def test_unknown_suffix_is_refused_naming_the_streamed_ones(tmp_path, field_file, capsys):
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.zarrr", "--size", "64x64")
    assert_one_line_error(code, err, ".dzi")
    assert "x.zarrr" in err


def test_dzi_tile_folder_needs_force(tmp_path, field_file, capsys):
    (tmp_path / "x_files").mkdir()
    (tmp_path / "x_files" / "old").write_text("mine")
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.dzi", "--size", "64x64")
    assert_one_line_error(code, err, "x_files")
    assert (tmp_path / "x_files" / "old").exists()
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.dzi", "--size", "64x64", "--force", "-q")
    assert code == 0, err
    assert not (tmp_path / "x_files" / "old").exists() and (tmp_path / "x_files" / "6" / "0_0.png").exists()
    assert leftovers(tmp_path) == []


def test_unwritable_folder_is_refused_before_work(tmp_path, field_file, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.tif", "--size", "64x64")
    assert_one_line_error(code, err, "permission denied")


def _fail_on_second_band(monkeypatch, exc):
    real = stream.Pyramid.push
    seen = {"n": 0}

    def push(self, level, band):
        if level == 0:
            seen["n"] += 1
            if seen["n"] == 2:
                raise exc
        return real(self, level, band)
    monkeypatch.setattr(stream.Pyramid, "push", push)


@pytest.mark.parametrize("suffix", [".tif", ".dzi", ".zarr"])
def test_full_disk_mid_stream_leaves_nothing(tmp_path, field_file, capsys, monkeypatch, suffix):
    _fail_on_second_band(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    out = tmp_path / f"x{suffix}"
    code, _, err = run(capsys, "render", field_file, "-o", out, "--size", "600x600", "-q")
    assert_one_line_error(code, err, "No space left on device")
    assert str(out) in err
    assert not out.exists() and not (tmp_path / "x_files").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tif", ".dzi", ".zarr"])
def test_interrupt_mid_stream_leaves_nothing(tmp_path, field_file, capsys, monkeypatch, suffix):
    import signal

    real = stream.Pyramid.push
    calls = {"n": 0}

    def push(self, level, band):  # a real SIGINT to this process at the second band
        if level == 0:
            calls["n"] += 1
            if calls["n"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, level, band)
    monkeypatch.setattr(stream.Pyramid, "push", push)
    out = tmp_path / f"x{suffix}"
    code, _, err = run(capsys, "render", field_file, "-o", out, "--size", "600x600", "-q")
    assert code == 130 and err.strip() == "coordsr: interrupted", err
    assert not out.exists() and not (tmp_path / "x_files").exists() and leftovers(tmp_path) == []


def test_in_memory_refusal_points_at_the_streamed_formats(tmp_path, field_file, capsys, monkeypatch):
    import coordsr.render as render_module

    monkeypatch.setattr(render_module, "available_memory", lambda: (1 << 30) + 1000)
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.png", "--size", "512x512")
    assert_one_line_error(code, err, ".tif")
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.tif", "--size", "512x512", "-q")
    assert code == 0, err  # streamed: no output array to hold


# --- zeroshot in tiles ------------------------------------------------------------------------


@pytest.mark.parametrize("in_size, size, channels, tile", [((72, 56), (144, 112), 3, 32), ((88, 20), (352, 80), 2, 64)])
def test_zeroshot_tiled_equals_untiled(in_size, size, channels, tile, one_thread):
    """x2 in one step, x4 in two: tiles with MARGIN input pixels of context give the whole
    image's result to float rounding, and its rows, quantized, are the same pixels."""
    from coordsr.images import quantize
    from coordsr.methods.zeroshot import zeroshot

    img = np.clip(smooth_image(*in_size, channels) + 0.1 * np.random.default_rng(0).random((*in_size, channels)),
                  0, 1).astype(np.float32)
    common = dict(device="cpu", train_pixels=24 * 24)  # a small training crop keeps the test fast
    whole = zeroshot(tile=0, **common).upscale(img, size)
    tiled = zeroshot(tile=tile, **common)
    h, w = in_size
    _, steps, sizes = tiled._plan(h, w, size)
    assert tiled._grid(h, w, sizes, steps)[0] == tile * h // size[0] < h - 48  # tiles smaller than the image
    np.testing.assert_allclose(tiled.upscale(img, size), whole, atol=1e-5)
    rows = tiled.upscale_rows(img, size, bit_depth=8)
    got = np.concatenate([b for _, b in rows.bands])
    assert np.abs(got.astype(int) - quantize(np.clip(whole, 0, 1), 8)).max() <= 1  # rounding ties only


def test_zeroshot_without_a_grid_is_whole():
    """x3 goes through x sqrt(3): no tile lands on whole pixels there unless it is most of the
    image; a TV refinement is global: both are made whole, not in tiles."""
    from coordsr.methods.zeroshot import zeroshot

    m = zeroshot(device="cpu", tile=32)
    _, steps, sizes = m._plan(70, 70, (210, 210))
    assert m._grid(70, 70, sizes, steps) is None
    best = zeroshot(device="cpu", tile=32, quality="best")
    _, steps, sizes = best._plan(80, 80, (160, 160))
    assert best._grid(80, 80, sizes, steps) is None


def test_denoise_does_not_stream(tmp_path, photo, capsys):
    """Only render and upscale stream: denoise refuses .dzi before any work, naming its formats."""
    code, _, err = run(capsys, "denoise", photo, "-o", tmp_path / "x.dzi", "--method", "wavelet")
    assert_one_line_error(code, err, "unknown image type '.dzi'")
    assert not (tmp_path / "x.dzi").exists()


def test_zarr_without_the_package_is_refused_before_work(tmp_path, field_file, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zarr" else real(name, *a))
    code, _, err = run(capsys, "render", field_file, "-o", tmp_path / "x.zarr", "--size", "64x64")
    assert_one_line_error(code, err, "coordsr[zarr]")
    assert not (tmp_path / "x.zarr").exists()
