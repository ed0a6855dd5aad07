"""Art animations: latent loops, zoom/pan/rotate/morph, and the streaming writers (real codecs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr.art import CPPN, Animation, ArtConfig, Scene, View, draw, write_animation
from coordsr.art.animate import latent_circle, scenes
from coordsr.art.writers import GifWriter, Mp4Writer, PngFramesWriter
from coordsr.errors import CoordsrError
from coordsr.field import Field, FieldConfig, ImageMeta

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = dict(depth=3, width=8)


def small_field(seed: int, channels: int = 3) -> Field:
    torch.manual_seed(seed)
    return Field(FieldConfig(encoding="RawCoords", hidden=8, layers=2, activation="tanh"),
                 ImageMeta(height=12, width=18, channels=channels))


def test_latent_walk_is_a_closed_loop_through_the_still():
    net = CPPN(ArtConfig(seed=3, **SMALL))
    zs = list(latent_circle(net, 0.5, 8))
    torch.testing.assert_close(zs[0], net.z)
    step = [float((zs[i + 1] - zs[i]).norm()) for i in range(7)] + [float((zs[0] - zs[7]).norm())]
    assert max(step) - min(step) < 1e-4  # evenly spaced, and the last step closes the loop
    frames = [draw(s, (8, 8)) for s in scenes(net, View(), Animation(frames=8))]
    assert np.array_equal(frames[0], draw(Scene(net), (8, 8)))


def test_zoom_pan_rotate_frames_follow_the_view():
    net = CPPN(ArtConfig(seed=3, **SMALL))
    zoom = [s.view.zoom for s in scenes(net, View(zoom=2), Animation(kind="zoom", frames=3, zoom_to=4))]
    assert zoom == pytest.approx([2, 4, 8])
    pan = [s.view.center for s in scenes(net, View(), Animation(kind="pan", frames=3, pan_by=(1, -2)))]
    assert pan == [(0, 0), (0.5, -1), (1, -2)]
    turn = [s.view.angle for s in scenes(net, View(), Animation(kind="rotate", frames=4))]
    assert turn == [0, 90, 180, 270]


@pytest.mark.parametrize("how", ["outputs", "weights"])
def test_morph_starts_at_one_field_and_ends_at_the_other(how):
    a, b = small_field(1), small_field(2)
    frames = [draw(s, (6, 9)) for s in scenes(a, View(), Animation(kind="morph", frames=5, morph=how), to=b)]
    assert np.array_equal(frames[0], draw(Scene(a), (6, 9)))
    assert np.array_equal(frames[-1], draw(Scene(b), (6, 9)))
    assert not np.array_equal(frames[2], frames[0])


def test_morph_and_latent_refuse_what_they_cannot_do():
    a = small_field(1)
    with pytest.raises(ValueError, match="channels"):
        list(scenes(a, View(), Animation(kind="morph"), to=small_field(2, channels=1)))
    other = Field(FieldConfig(encoding="RawCoords", hidden=4, layers=1), ImageMeta(12, 18, 3))
    with pytest.raises(ValueError, match="different networks"):
        list(scenes(a, View(), Animation(kind="morph", morph="weights"), to=other))
    with pytest.raises(ValueError, match="latent walk needs a CPPN"):
        list(scenes(a, View(), Animation(kind="latent")))
    with pytest.raises(ValueError, match="frames must be"):
        Animation(frames=0).check()


def test_fitted_field_keeps_its_aspect_and_shows_beyond_its_support():
    f = small_field(1)
    at_home = draw(Scene(f), (12, 18), dtype=np.float32)
    from coordsr.render import render_field

    np.testing.assert_allclose(at_home, render_field(f, (12, 18)), atol=1e-5)  # same picture
    wide = draw(Scene(f, View(zoom=0.5)), (24, 36), dtype=np.float32)
    np.testing.assert_allclose(wide[6:18, 9:27], render_field(f, (12, 18)), atol=0.02)


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
    return out


def test_gif_streams_every_frame_and_is_reproducible(tmp_path):
    net = CPPN(ArtConfig(seed=7, palette="sunset", **SMALL))
    for name in ("a.gif", "b.gif"):
        assert write_animation(tmp_path / name, net, (24, 32), View(), Animation(frames=6, fps=20)) == 6
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()
    frames = gif_frames(tmp_path / "a.gif")
    assert len(frames) == 6 and frames[0].shape == (24, 32, 3)
    still = draw(Scene(net), (24, 32)).astype(int)
    assert np.abs(frames[0].astype(int) - still).mean() < 4  # 256 colours, no dithering
    with Image.open(tmp_path / "a.gif") as im:
        assert im.info["loop"] == 0 and im.info["duration"] == 50


def test_mp4_is_h264_with_the_frames_and_reproducible(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    net = CPPN(ArtConfig(seed=7, **SMALL))
    for name in ("a.mp4", "b.mp4"):
        write_animation(tmp_path / name, net, (32, 48), View(), Animation(frames=5, fps=10))
    data = (tmp_path / "a.mp4").read_bytes()
    assert data == (tmp_path / "b.mp4").read_bytes() and data[4:8] == b"ftyp"
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "a.mp4"))
    meta = next(reader)
    decoded = [np.frombuffer(f, np.uint8).reshape(32, 48, 3) for f in reader]
    assert meta["size"] == (48, 32) and meta["codec"] == "h264" and len(decoded) == 5
    assert np.abs(decoded[0].astype(int) - draw(Scene(net), (32, 48)).astype(int)).mean() < 8


def test_png_frames_folder_keeps_alpha(tmp_path):
    net = CPPN(ArtConfig(seed=1, mode="rgba", **SMALL))
    write_animation(tmp_path / "frames", net, (8, 8), View(), Animation(kind="rotate", frames=3))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    with Image.open(tmp_path / "frames" / names[0]) as im:
        assert im.mode == "RGBA"


@pytest.mark.parametrize("writer,name", [(GifWriter, "x.gif"), (Mp4Writer, "x.mp4"), (PngFramesWriter, "x")])
def test_a_failed_animation_leaves_nothing_behind(tmp_path, writer, name):
    if writer is Mp4Writer:
        pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(RuntimeError):
        with writer(tmp_path / name, (8, 8), 10) as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            raise RuntimeError("stopped")
    assert list(tmp_path.iterdir()) == []


def test_mp4_needs_even_sides(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(CoordsrError, match="even width and height"):
        Mp4Writer(tmp_path / "x.mp4", (9, 8), 10)
