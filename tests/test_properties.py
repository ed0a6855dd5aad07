"""Issue 11's proof by generated inputs (hypothesis): argument lists at the CLI, bytes and headers
at the image and field readers.

The only outcomes allowed: a result, or one line of error with a non-zero status; never a
traceback, never a partial or temporary file, never a changed input. Examples are few and
small (the suite stays fast) and deterministic (derandomize: the same examples every run).
"""

import json
import shutil
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from coordsr.cli import main
from coordsr.errors import FieldFileError, ImageError
from coordsr.field import Field
from coordsr.images import read_image
from coordsr.render import render_field

from test_methods import smooth_image

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """A photo and a small field fitted to it, copied into each example's own folder."""
    root = tmp_path_factory.mktemp("originals")
    photo = root / "photo.png"
    Image.fromarray((smooth_image(12, 16, 3) * 255).astype(np.uint8)).save(photo)
    (root / "notimage.png").write_text("hello")
    field = root / "photo.field"
    assert main(["fit", str(photo), "-o", str(field), "--method", "hashgrid", "--steps", "2", "-q",
                 "--set", "levels=2", "--set", "log2_table_size=8"]) == 0
    return root


# --- the CLI ------------------------------------------------------------------------------------

NUMBERS = st.sampled_from(["0", "-1", "1", "2", "3", "12", "1e-9", "1e300", "inf", "-inf", "nan", "1.5", "abc", ""])
FILES = st.sampled_from(["photo.png", "photo.field", "notimage.png", "missing.png", "out.png", ".", "out.xyz",
                         "nofolder/out.png"])
# Each option with the values worth trying: the usual, the edges and the nonsense.
OPTION_VALUES = {
    "--scale": ["2", "0.5", "0", "-2", "1e-9", "1e300", "inf", "nan", "abc"],
    "--width": ["8", "0", "-3", "99999999", "x"],
    "--height": ["6", "0", "-3", "99999999", "1.5"],
    "--size": ["8x6", "0x4", "99999999x1", "axb", "4x", "30x20"],
    "--bit-depth": ["8", "16", "12", "0", "x"],
    "--max-pixels": ["100", "0", "-1", "1000000"],
    "--method": ["bicubic", "nearest", "hashgrid", "siren", "zeroshot", "pretrained", "cppn", "magic"],
    "--steps": ["-5", "0", "1", "2", "1.5", "x"],
    "--set": [f"{k}={v}" for k in ("lr", "hidden", "layers", "batch", "seed", "quality", "kernel", "levels",
                                   "log2_table_size", "w0", "tile", "nonsense") for v in ("nan", "-3", "0", "2", "x")],
    "--fit": ["point", "consistent", "sideways"],
    "--device": ["cpu", "auto", "bogus", "cuda:7", ""],
    "--box": ["-1,-1,1,1", "-inf,-1,inf,1", "0,0,0,0", "a,b,c,d", "0,0,.5,.5", "0,0,1e9,1"],
    "--seed": ["-1", "3", "99999999999999999999999"],
    "-o": ["out.png", "photo.png", ".", "out.xyz", "nofolder/out.png", "out.field"],
}
OPTIONS = st.one_of(
    st.sampled_from(sorted(OPTION_VALUES)).flatmap(
        lambda name: st.sampled_from(OPTION_VALUES[name]).map(lambda value: (name, value))),
    st.sampled_from([("--force",), ("--quiet",), ("--no-such-option",)]),
)


# A valid command line of each kind; the examples add a few options to it (which may break it)
# or, one time in five, are any list of words at all.
VALID = {
    "upscale": ["upscale", "photo.png", "-o", "out.png", "--method", "bicubic", "--scale", "2"],
    "fit": ["fit", "photo.png", "-o", "out.field", "--set", "levels=2", "--set", "log2_table_size=8"],
    "render": ["render", "photo.field", "-o", "out.png", "--size", "8x6"],
    "methods": ["methods"],
}


@st.composite
def argument_lists(draw):
    if draw(st.integers(0, 4)) == 0:
        args = [draw(st.sampled_from(["upscale", "fit", "render", "methods", "nonsense"]))]
        args += draw(st.lists(st.one_of(FILES, NUMBERS, st.sampled_from(["-o", "--scale", "--set", "-q"])),
                              max_size=6))
    else:
        args = list(VALID[draw(st.sampled_from(sorted(VALID)))])
        for option in draw(st.lists(OPTIONS, min_size=1, max_size=2)):
            args += list(option)
    # a fitting method always gets a small budget (perhaps overriding one drawn): examples stay fast
    methods = [args[i + 1] for i in range(len(args) - 1) if args[i] == "--method"]
    if args[0] == "fit" or (args[0] == "upscale" and (methods or ["pretrained"])[-1] in FITTING):
        args += ["--steps", "2"]
    return args + ["-q"] if args[0] in ("upscale", "fit") else args


FITTING = {"hashgrid", "siren", "cppn", "zeroshot"}


# The inputs issue 11 found answered with a traceback or accepted silently always run too.
ISSUE_11 = [VALID["upscale"] + extra for extra in (
    ["--scale", "inf"], ["--scale", "1e-9"], ["--bit-depth", "12"], ["--device", "bogus"], ["--device", "cuda:7"],
    ["--method", "siren", "--set", "lr=nan", "--steps", "2"], ["--method", "siren", "--set", "hidden=-3"],
    ["--method", "siren", "--steps", "0"], ["--method", "siren", "--steps", "-5"], ["--size", "99999999x1"],
)] + [VALID["render"] + extra for extra in (["--box", "-inf,-1,inf,1"], ["--bit-depth", "12"])] + [
    ["upscale", "photo.png"], ["upscale", "photo.png", "-o", "out.png", "--steps", "1.5"], [], ["nonsense"]]


def _with_examples(test):
    for args in ISSUE_11:
        test = example(args=args)(test)
    return test


@FAST
@_with_examples
@given(args=argument_lists())
def test_cli_gives_a_result_or_one_line(originals, capsys, args):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for f in originals.iterdir():
            shutil.copy(f, folder / f.name)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning printed raw would be a second line
            code = main_in(folder, args)
        out, err = capsys.readouterr()
        command = args[0] if args else "(no arguments)"
        event(f"{command}: status {code}")  # --hypothesis-show-statistics shows the mix
        assert isinstance(code, int)
        assert "Traceback" not in err + out
        after = {p.name for p in folder.iterdir()}
        assert not [n for n in after if n.endswith(".tmp")], after
        forced = "--force" in args and code == 0
        for name, data in before.items():  # inputs never change; outputs only with --force
            assert (folder / name).read_bytes() == data or forced, name
        if code != 0:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("coordsr: "), (args, err)
            assert after == set(before), (args, after - set(before))  # no output of a failed run
        elif command in ("upscale", "fit", "render"):
            assert after - set(before) or forced, args  # a success wrote its output


def main_in(folder: Path, args: list[str]) -> int:
    import os

    cwd = os.getcwd()
    os.chdir(folder)  # the file names in args are relative to the example's folder
    try:
        return main(args)
    finally:
        os.chdir(cwd)


# --- the image reader ---------------------------------------------------------------------------


def png_bytes(width: int, height: int, payload: bytes, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG with any IHDR (sizes, depth, colour type) and ``payload`` deflated as its IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(payload))
            + chunk(b"IEND", b""))


def valid_files() -> list[bytes]:
    import io

    import tifffile

    pixels = (smooth_image(6, 5, 3) * 255).astype(np.uint8)
    out = []
    for fmt in ("PNG", "JPEG", "WEBP", "BMP"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        out.append(buf.getvalue())
    buf = io.BytesIO()
    tifffile.imwrite(buf, pixels)
    out.append(buf.getvalue())
    return out


IMAGE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.builds(png_bytes, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.binary(max_size=200),
              st.sampled_from([1, 2, 4, 8, 16, 3]), st.sampled_from([0, 2, 3, 4, 6, 5])),
    st.builds(lambda data, i, b, cut: (data[:i] + bytes([b]) + data[i + 1:])[:cut],
              st.sampled_from(valid_files()), st.integers(0, 400), st.integers(0, 255), st.integers(0, 5000)),
)


@FAST
@given(data=IMAGE_BYTES, suffix=st.sampled_from([".png", ".jpg", ".tif", ".webp", ".bmp", ""]))
def test_read_image_gives_pixels_or_one_line(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = read_image(path, max_pixels=1 << 16)
        except ImageError as e:
            event("refused: " + str(e).split(": ", 1)[1][:24])
            message = str(e)
            assert "\n" not in message and message.startswith(str(path)), message
        else:
            event("decoded")
            assert img.pixels.ndim == 3 and 1 <= img.channels <= 4 and img.pixels.dtype == np.float32
            assert img.height * img.width <= 1 << 16 and np.isfinite(img.pixels).all()
        assert path.read_bytes() == data and sorted(p.name for p in Path(tmp).iterdir()) == [path.name]


# --- the field reader ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
FIELD_KEYS = [("image", k) for k in ("height", "width", "channels", "mode", "bit_depth")] + [
    ("config", k) for k in ("encoding", "encoding_args", "activation", "activation_args", "hidden", "layers",
                            "convention", "aspect")] + [("config", "encoding_args", k) for k in (
                                "n_levels", "base_resolution", "finest_resolution", "log2_table_size")] + [
    ("format_version",), ("format",), ("config",), ("image",)]


@FAST
@given(changes=st.lists(st.tuples(st.sampled_from(FIELD_KEYS),
                                  st.one_of(st.integers(-10, 10**6), JSON_VALUES)), max_size=3),
       raw_header=st.integers(0, 5).flatmap(lambda k: st.text(max_size=20) if k == 0 else st.none()))
def test_field_load_gives_a_field_or_one_line(originals, changes, raw_header):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(originals / "photo.field"), framework="pt") as f:
        header = json.loads(f.metadata()["coordsr"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for keys, value in changes:
        node = header
        for k in keys[:-1]:
            node = node.setdefault(k, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[keys[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.field"
        save_file(tensors, str(path), metadata={"coordsr": raw_header if raw_header is not None else json.dumps(header)})
        data = path.read_bytes()
        try:
            field = Field.load(path)
        except FieldFileError as e:
            event("refused: " + str(e).split(": ", 1)[1][:30])
            assert "\n" not in str(e) and str(e).startswith(str(path)), str(e)
        else:
            event("loaded")
            drawn = render_field(field, (4, 5), dtype=np.uint8)  # a loaded field is a usable one
            assert drawn.shape == (4, 5, field.meta.channels)
        assert path.read_bytes() == data
