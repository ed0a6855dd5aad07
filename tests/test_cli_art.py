"""`coordsr art` in-process: posters, re-renders from the PNG's settings, fitted fields, animations,
and a one-line error (no traceback, no output file) for every bad setting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from coordsr.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
NET = ("--depth", 3, "--width", 8)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fitted(tmp_path, capsys):
    """A field saved by `coordsr fit` (a few hashgrid steps on a small picture)."""
    yy, xx = np.mgrid[0:12, 0:18] / 12
    img = np.stack([np.sin(6 * xx), np.cos(5 * yy), xx * yy], -1) * 0.4 + 0.5
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    code, _, err = run(capsys, "fit", tmp_path / "photo.png", "-o", tmp_path / "photo.field",
                       "--method", "hashgrid", "--steps", 3, "-q")
    assert code == 0, err
    return tmp_path / "photo.field"


def test_poster_with_settings_in_its_png_then_rerendered_larger(tmp_path, capsys):
    a = tmp_path / "a.png"
    code, _, err = run(capsys, "art", "-o", a, "--seed", 7, "--palette", "sunset", "--symmetry", "mirror-x",
                       *NET, "--size", "48x32", "-q")
    assert code == 0, err
    with Image.open(a) as im:
        assert im.size == (48, 32) and im.mode == "RGB"
        record = json.loads(im.text["coordsr-art"])
    assert record["art"]["seed"] == 7 and record["art"]["palette"] == "sunset" and record["size"] == [48, 32]
    assert run(capsys, "art", "-o", tmp_path / "b.png", "--seed", 7, "--palette", "sunset", "--symmetry",
               "mirror-x", *NET, "--size", "48x32", "-q")[0] == 0
    assert a.read_bytes() == (tmp_path / "b.png").read_bytes()  # same seed and settings, same bytes
    big = tmp_path / "big.png"
    assert run(capsys, "art", "-o", big, "--from", a, "--size", "96x64", "-q")[0] == 0
    small = np.asarray(Image.open(a), dtype=float)
    shrunk = np.asarray(Image.open(big).resize((48, 32), Image.BOX), dtype=float)
    assert np.abs(small - shrunk).mean() < 12  # the same picture, drawn twice as large


def test_art_field_animated_later(tmp_path, capsys):
    field = tmp_path / "a.field"
    assert run(capsys, "art", "-o", field, "--seed", 3, *NET, "-q")[0] == 0
    code, _, err = run(capsys, "art", "-o", tmp_path / "walk.gif", "--from", field, "--animate", "latent",
                       "--frames", 4, "--size", "16x16", "-q")
    assert code == 0, err
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 4


def test_fitted_field_zoom_rotate_warp_and_morph(tmp_path, fitted, capsys):
    out = tmp_path / "zoom.gif"
    code, _, err = run(capsys, "art", "-o", out, "--from", fitted, "--animate", "zoom", "--frames", 3,
                       "--zoom-to", 4, "--size", "18x12", "-q")
    assert code == 0, err
    beyond = tmp_path / "beyond.png"
    assert run(capsys, "art", "-o", beyond, "--from", fitted, "--zoom", 0.5, "--rotate", 20, "--warp", 0.1,
               "--jitter", 0.05, "--seed", 1, "--size", "36x24", "-q")[0] == 0
    with Image.open(beyond) as im:
        record = json.loads(im.text["coordsr-art"])
    assert record["art"] is None and record["source"] == "photo.field" and record["view"]["zoom"] == 0.5
    code, _, err = run(capsys, "art", "-o", tmp_path / "again.png", "--from", beyond)
    assert code == 2 and "give that field to --from" in err
    morph = tmp_path / "morph"
    assert run(capsys, "art", "-o", morph, "--from", fitted, "--to", fitted,  # --to implies the morph
               "--morph", "weights", "--frames", 2, "--size", "18x12", "-q")[0] == 0
    assert len(list(morph.iterdir())) == 2


@pytest.mark.parametrize("args,message", [
    (("--palette", "nope"), "unknown palette 'nope'"),
    (("--animate", "latent", "--frames", 0), "frames must be from 1"),
    (("--size", "99999x99999"), "over the limit"),
    (("--size", "40000x10"), "over the limit"),
    (("--animate", "latent", "--size", "8192x8192"), "over the limit for an animation frame"),
    (("--symmetry", "radial", "--fold", 1), "order"),
    (("--activation", "swish"), "unknown activation"),
    (("--animate", "wobble"), "unknown animation"),
    (("--center", "1;2"), "--center '1;2'"),
    (("--fps", 0, "--animate", "zoom"), "fps must be"),
    (("--zoom", -1), "zoom must be"),
    (("--mode", "grey", "--palette", "fire"), "use mode rgb or rgba"),
])
def test_bad_settings_are_one_line_errors_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / ("o.gif" if "--animate" in args else "o.png")
    code, _, err = run(capsys, "art", "-o", out, *NET, "--size", "16x16", *args) if "--size" not in args \
        else run(capsys, "art", "-o", out, *NET, *args)
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_bad_sources_and_outputs(tmp_path, capsys, fitted):
    (tmp_path / "notes.field").write_text("not a field")
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    cases = [
        (("-o", tmp_path / "o.png", "--from", tmp_path / "notes.field"), "not a coordsr field file"),
        (("-o", tmp_path / "o.png", "--from", tmp_path / "plain.png"), "has no coordsr art settings"),
        (("-o", tmp_path / "o.png", "--from", tmp_path / "missing.field"), "no such file"),
        (("-o", tmp_path / "o.png", "--from", fitted, "--palette", "fire"), "come from --from"),
        (("-o", tmp_path / "o.gif", "--from", fitted, "--animate", "latent"), "latent walk needs a CPPN"),
        (("-o", tmp_path / "o.gif", "--to", fitted, "--animate", "zoom"), "--to is the end of a morph"),
        (("-o", tmp_path / "o.png", "--from", fitted, "--to", fitted), "an animation is written as"),
        (("-o", tmp_path / "o.txt"), "unknown output type '.txt'"),
        (("-o", tmp_path / "o.png", "--animate", "latent"), "an animation is written as"),
        (("-o", tmp_path / "o.mp4", "--animate", "latent", "--size", "15x16"), "even width and height"),
        (("-o", tmp_path / "plain.png"), "already exists; use --force"),
        (("-o", tmp_path / "o.field", "--from", fitted), "only a CPPN is saved"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, message in cases:
        code, _, err = run(capsys, "art", *args, "-q")
        assert code == 2 and message in err, (args, err)
        assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_render_draws_an_art_field_as_art_does_and_streams_it(tmp_path, capsys):
    import tifffile

    field, ref = tmp_path / "a.field", tmp_path / "ref.png"
    assert run(capsys, "art", "-o", field, "--seed", 7, "--palette", "sunset", *NET, "-q")[0] == 0
    assert run(capsys, "art", "-o", ref, "--seed", 7, "--palette", "sunset", *NET, "--size", "40x24", "-q")[0] == 0
    code, _, err = run(capsys, "render", field, "-o", tmp_path / "r.png", "--size", "40x24", "-q")
    assert code == 0, err
    want = np.asarray(Image.open(ref))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "r.png")), want)
    code, _, err = run(capsys, "render", field, "-o", tmp_path / "r.tif", "--size", "40x24", "-q")
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "r.tif", level=0), want)  # streamed, same pixels
    code, _, err = run(capsys, "render", field, "-o", tmp_path / "b.png", "--size", "40x24", "--precision", "bf16")
    assert code == 2 and err.count("\n") == 1 and "float32" in err and not (tmp_path / "b.png").exists()
