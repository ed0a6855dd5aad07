"""`coordsr upscale` choosing the model by what the image shows (--content), for one image, a
folder and the Python API; and `-o NAME.svg`, the upscale traced into a vector file."""

import re

import numpy as np
import pytest
from PIL import Image

import coordsr
from coordsr.cli import main

from test_content import icon, photo_like, sprite


def q8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def save(path, pixels):
    Image.fromarray(q8(pixels)).save(path)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture
def files(tmp_path):
    return {"icon": save(tmp_path / "icon.png", icon(24, 24)),
            "photo": save(tmp_path / "photo.png", photo_like(16, 20, noise=0.005)),
            "sprite": save(tmp_path / "sprite.png", sprite(12))}


def test_a_drawing_gets_the_drawing_model_and_the_line_says_why(tmp_path, files, capsys):
    out, ref = tmp_path / "icon_x2.png", tmp_path / "ref.png"
    code, _, err = run(capsys, "upscale", files["icon"], "-o", out, "--scale", 2)
    assert code == 0, err
    assert last_line(err).startswith(f"wrote {out} (48x48, drawing model, detected drawing: transparent background, ")
    assert run(capsys, "upscale", files["icon"], "-o", ref, "--scale", 2, "--method", "drawing", "-q")[0] == 0
    assert np.array_equal(pixels(out), pixels(ref))
    assert pixels(out).shape == (48, 48, 4)  # transparency kept


def test_a_photo_runs_and_reads_exactly_as_before(tmp_path, files, capsys):
    out, ref = tmp_path / "a.png", tmp_path / "b.png"
    code, _, err = run(capsys, "upscale", files["photo"], "-o", out, "--scale", 2)
    assert code == 0, err
    assert last_line(err) == f"wrote {out} (40x32, pretrained)"
    assert run(capsys, "upscale", files["photo"], "-o", ref, "--scale", 2, "--method", "pretrained", "-q")[0] == 0
    assert np.array_equal(pixels(out), pixels(ref))


def test_a_compressed_or_noisy_photo_gets_the_blind_model_and_the_line_says_why(tmp_path, files, capsys):
    jpeg = tmp_path / "small.jpg"
    Image.open(files["photo"]).resize((64, 48)).save(jpeg, quality=40)
    out, ref = tmp_path / "j.png", tmp_path / "ref.png"
    code, _, err = run(capsys, "upscale", jpeg, "-o", out, "--scale", 2)
    assert code == 0 and last_line(err) == f"wrote {out} (128x96, blind model, compressed or noisy photo: JPEG quality 40)"
    assert run(capsys, "upscale", jpeg, "-o", ref, "--scale", 2, "--method", "blind", "-q")[0] == 0
    assert np.array_equal(pixels(out), pixels(ref))
    noisy = save(tmp_path / "noisy.png", photo_like(32, 40, noise=0.04))
    code, _, err = run(capsys, "upscale", noisy, "-o", tmp_path / "n.png", "--scale", 2)
    found = re.search(r"blind model, compressed or noisy photo: noise \(about (\d+) levels\)\)$", last_line(err))
    assert code == 0 and found and 8 <= int(found.group(1)) <= 11  # sigma 0.04 = 10.2 levels, before 8-bit rounding
    code, _, err = run(capsys, "upscale", jpeg, "-o", tmp_path / "c.png", "--scale", 2, "--degradation", "clean")
    assert code == 0 and last_line(err) == f"wrote {tmp_path / 'c.png'} (128x96, pretrained)"
    code, _, err = run(capsys, "upscale", files["photo"], "-o", tmp_path / "r.png", "--scale", 2,
                       "--degradation", "real")
    assert code == 0 and last_line(err).endswith("(40x32, blind model, as --degradation real asked)")
    code, _, err = run(capsys, "upscale", files["photo"], "-o", tmp_path / "p.png", "--scale", 2,
                       "--content", "photo")  # the kind said; the file still decides clean or not
    assert code == 0 and last_line(err) == f"wrote {tmp_path / 'p.png'} (40x32, pretrained)"


def test_a_folder_counts_the_compressed_photos_apart(tmp_path, files, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(files["photo"]).save(src / "clean.png")
    Image.open(files["photo"]).save(src / "small.jpg", quality=30)
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "out", "--scale", 2)
    assert code == 0, err
    assert "by content: 1 photo with pretrained, 1 photo (compressed or noisy) with blind" in last_line(err)


def test_pixel_art_keeps_hard_pixels_and_warns_of_an_uneven_scale(tmp_path, files, capsys):
    out = tmp_path / "s4.png"
    code, _, err = run(capsys, "upscale", files["sprite"], "-o", out, "--scale", 4)
    assert code == 0, err
    assert last_line(err).startswith(f"wrote {out} (48x48, nearest, hard pixels kept, detected pixel-art: ")
    assert "whole scale" not in err
    assert np.array_equal(pixels(out), pixels(files["sprite"]).repeat(4, axis=0).repeat(4, axis=1))
    code, _, err = run(capsys, "upscale", files["sprite"], "-o", tmp_path / "s25.png", "--scale", 2.5)
    assert code == 0 and "x2.5 is not a whole scale" in last_line(err)


def test_an_explicit_method_wins_and_content_can_be_said(tmp_path, files, capsys):
    code, _, err = run(capsys, "upscale", files["icon"], "-o", tmp_path / "b.png", "--method", "bicubic")
    assert code == 0 and last_line(err) == f"wrote {tmp_path / 'b.png'} (96x96, bicubic)"
    code, _, err = run(capsys, "upscale", files["icon"], "-o", tmp_path / "c.png", "--method", "bicubic",
                       "--content", "pixel-art")
    assert code == 0 and last_line(err).endswith("bicubic)")
    code, _, err = run(capsys, "upscale", files["photo"], "-o", tmp_path / "d.png", "--scale", 2,
                       "--content", "drawing")
    assert code == 0 and last_line(err) == f"wrote {tmp_path / 'd.png'} (40x32, drawing model, --content drawing)"
    code, _, err = run(capsys, "upscale", files["icon"], "-o", tmp_path / "e.png", "--scale", 2, "--content", "photo")
    assert code == 0 and last_line(err) == f"wrote {tmp_path / 'e.png'} (48x48, pretrained)"


def test_settings_go_to_the_chosen_method_when_it_has_them(tmp_path, files, capsys):
    # pretrained and drawing have `ensemble`; nearest has none and runs without it
    for name in ("icon", "sprite"):
        code, _, err = run(capsys, "upscale", files[name], "-o", tmp_path / f"{name}_x2.png", "--scale", 2,
                           "--set", "ensemble=2", "-q")
        assert code == 0, err
    code, _, err = run(capsys, "upscale", files["icon"], "-o", tmp_path / "x.png", "--steps", 5)
    assert code == 2 and "has no setting 'steps'" in err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--content", "cartoon"], "--content 'cartoon': expected one of auto, photo, drawing, pixel-art"),
    (["--degradation", "awful"], "--degradation 'awful': expected one of auto, clean, real"),
    (["--content", "drawing", "--degradation", "real"], "--degradation real is for photos"),
    (["-o", "{tmp}/v.svg", "--bit-depth", "16"], "an SVG has no bit depth"),
    (["-o", "{tmp}/no/v.svg"], "does not exist"),
])
def test_bad_content_and_svg_options_are_one_line_and_no_output(tmp_path, files, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = args[args.index("-o") + 1] if "-o" in args else str(tmp_path / "out.png")
    rest = [a for i, a in enumerate(args) if a != "-o" and (i == 0 or args[i - 1] != "-o")]
    before = set(tmp_path.iterdir())
    code, _, err = run(capsys, "upscale", files["icon"], "-o", out, *rest)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(tmp_path.iterdir()) == before


def render_svg(path, size: int) -> np.ndarray:
    import io

    resvg_py = pytest.importorskip("resvg_py")
    png = bytes(resvg_py.svg_to_bytes(svg_path=str(path), width=size, height=size))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float32) / 255


def test_svg_output_is_the_upscale_traced_and_renders_close_to_it(tmp_path, files, capsys):
    from coordsr.metrics import drawing_scores

    svg, png = tmp_path / "icon.svg", tmp_path / "icon_x8.png"
    code, _, err = run(capsys, "upscale", files["icon"], "-o", svg)
    assert code == 0, err
    line = last_line(err)
    assert line.startswith(f"wrote {svg} (")
    assert "traced from the 192x192 upscale, drawing model, detected drawing" in line
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and 'viewBox="0 0 192 192"' in text and "<path" in text
    assert run(capsys, "upscale", files["icon"], "-o", png, "--scale", 8, "-q")[0] == 0
    raster = pixels(png).astype(np.float32) / 255
    scores = drawing_scores(render_svg(svg, 192), raster)
    # about 23-24 dB on each (the traced outlines are sharper than the model's soft edges); an
    # opaque background, lost colours or a shifted picture would be far below 20
    assert scores["psnr_white"] > 20 and scores["psnr_black"] > 20, scores
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries


def test_svg_never_overwrites_without_force_nor_leaves_a_partial_file(tmp_path, files, capsys, monkeypatch):
    import coordsr.vector as vector

    svg = tmp_path / "icon.svg"
    svg.write_text("mine")
    code, _, err = run(capsys, "upscale", files["icon"], "-o", svg, "--scale", 2)
    assert code == 2 and "already exists" in err and svg.read_text() == "mine"

    def broken(*args, **kwargs):
        raise RuntimeError("the tracer broke")

    monkeypatch.setattr(vector, "_vtracer", lambda: type("T", (), {"convert_raw_image_to_svg": broken}))
    code, _, err = run(capsys, "upscale", files["icon"], "-o", svg, "--scale", 2, "--force")
    assert code == 1 and "vtracer could not trace" in err and len(err.strip().splitlines()) == 1
    assert svg.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["icon.png", "icon.svg", "photo.png", "sprite.png"]


def test_svg_of_an_opaque_image_and_of_grey():
    from coordsr.vector import trace

    text = trace(icon(16, 16, alpha=False))
    assert 'viewBox="0 0 16 16"' in text
    grey = trace(icon(16, 16)[..., [0, 3]])  # grey + alpha
    assert "<path" in grey


def test_a_folder_chooses_per_image_and_the_summary_counts_the_models(tmp_path, files, capsys):
    out = tmp_path / "big"
    folder = tmp_path / "in"
    folder.mkdir()
    for name, path in files.items():
        path.rename(folder / path.name)
    code, _, err = run(capsys, "upscale", folder, "-o", tmp_path / "all.svg")
    assert code == 2 and "SVG output is for one image" in err and not (tmp_path / "all.svg").exists()
    code, _, err = run(capsys, "upscale", folder, "-o", out, "--scale", 2)
    assert code == 0, err
    summary = last_line(err)
    assert "upscaled 3 of 3 images" in summary
    assert "by content: 1 drawing with drawing, 1 photo with pretrained, 1 pixel art with nearest" in summary
    assert np.array_equal(pixels(out / "sprite.png"), pixels(folder / "sprite.png").repeat(2, 0).repeat(2, 1))
    photos_only = tmp_path / "photos"
    photos_only.mkdir()
    (folder / "photo.png").rename(photos_only / "photo.png")
    code, _, err = run(capsys, "upscale", photos_only, "-o", tmp_path / "big2", "--scale", 2)
    assert code == 0 and "by content" not in err  # a folder of photos reads as before


def test_the_api_chooses_the_same_way(files):
    icon_px = np.asarray(Image.open(files["icon"]))
    auto = coordsr.upscale(icon_px, scale=2, device="cpu")
    assert np.array_equal(auto, coordsr.upscale(icon_px, scale=2, method="drawing", device="cpu"))
    sprite_px = np.asarray(Image.open(files["sprite"]))
    assert np.array_equal(coordsr.upscale(sprite_px, scale=3), sprite_px.repeat(3, 0).repeat(3, 1))
    photo_px = np.asarray(Image.open(files["photo"]))
    assert np.array_equal(coordsr.upscale(photo_px, scale=2, content="drawing"),
                          coordsr.upscale(photo_px, scale=2, method="drawing"))
    assert np.array_equal(coordsr.upscale(sprite_px, scale=2, method="bicubic", content="pixel-art"),
                          coordsr.upscale(sprite_px, scale=2, method="bicubic"))
    assert coordsr.classify(icon_px).method == "drawing"
    with pytest.raises(coordsr.SettingError, match="content must be one of"):
        coordsr.upscale(icon_px, content="cartoon")
