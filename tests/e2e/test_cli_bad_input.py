"""Bad input through the CLI: each case exits 2 with ONE stderr line
``psc-eval: error: ...`` naming the file or value, and no traceback. Awkward but valid
images (CMYK, RGBA, 16-bit, palette) are converted and load with the right pixels;
grayscale sources are skipped with a reason, never scored.

Most cases call ``psc_eval.cli.main`` in-process (the console script's entry point,
SystemExit captured); one runs the installed script in a subprocess to check a real
process prints no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import fixtures_data as fd
import numpy as np
import pytest
from cli_helpers import assert_error, cli
from PIL import Image

import psc_eval
from psc_eval.cli import main
from psc_eval.data import get_dataset
from psc_eval.errors import UnknownNameError


def preview(capsys, tmp_path: Path, dataset: str, root: Path, *extra: str):
    return cli(capsys, "data", "preview", "--dataset", dataset, "--root", root,
               "--out", tmp_path / "out" / "p.png", "--n", "2", "--size", "32", *extra)


# ------------------------------------------------------------------ images


def test_truncated_image_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "imgs" / "broken.jpg"
    fd.write_special(bad, "truncated")
    code, _, err = preview(capsys, tmp_path, "folder", tmp_path / "imgs")
    assert_error(code, err, "cannot decode image", str(bad), "replace or remove")


def test_file_with_image_extension_that_is_not_an_image(capsys, tmp_path):
    fd.write_image(tmp_path / "imgs" / "a.png", fd.color_image(0, 20, 20), "PNG")
    bad = tmp_path / "imgs" / "b.png"
    fd.write_special(bad, "not_an_image")
    code, _, err = preview(capsys, tmp_path, "folder", tmp_path / "imgs")
    assert_error(code, err, "cannot decode image (UnidentifiedImageError", str(bad))


@pytest.mark.parametrize("kind,name", [
    ("rgba", "x.png"), ("cmyk", "x.tif"), ("rgb16", "x.png"), ("palette", "x.png"),
    ("palette_trns", "x.png"), ("png_as_jpg", "x.jpg"),
])
def test_awkward_formats_are_converted_with_exact_pixels(tmp_path, kind, name):
    expected = fd.write_special(tmp_path / "imgs" / name, kind, seed=3, h=24, w=24)
    ds = get_dataset("folder", root=tmp_path / "imgs", size=24)  # native size: no resize
    s = ds[0]
    assert s["skip"] is None
    got = np.round(s["rgb"].permute(1, 2, 0).numpy() * 255).astype(np.int16)
    tol = 1 if kind == "cmyk" else 0  # PIL's integer CMYK arithmetic rounds differently
    assert np.abs(got - expected.astype(np.int16)).max() <= tol


def test_preview_of_converted_formats_succeeds(capsys, tmp_path):
    for i, (kind, name) in enumerate([("rgba", "a.png"), ("cmyk", "b.tif"), ("rgb16", "c.png"),
                                      ("palette", "d.png")]):
        fd.write_special(tmp_path / "imgs" / name, kind, seed=i)
    code, _, err = preview(capsys, tmp_path, "folder", tmp_path / "imgs", "--n", "4")
    assert code == 0, err
    with Image.open(tmp_path / "out" / "p.png") as im:
        assert im.format == "PNG"


@pytest.mark.parametrize("kind,name,reason", [
    ("gray", "g.jpg", "grayscale source (PIL mode L)"),
    ("gray16", "g.png", "grayscale source (PIL mode I;16)"),
    ("gray_rgb", "g.png", "grayscale content (RGB channels differ by <= 2 levels)"),
])
def test_grayscale_source_is_skipped_with_reason(capsys, tmp_path, kind, name, reason):
    fd.write_special(tmp_path / "imgs" / name, kind)
    ds = get_dataset("folder", root=tmp_path / "imgs", size=32)
    assert ds[0]["skip"] == reason
    # nothing else to show: the preview says so instead of scoring the gray image
    code, _, err = preview(capsys, tmp_path, "folder", tmp_path / "imgs")
    assert_error(code, err, "no colour image to preview", "folder/all")


def test_grayscale_source_is_counted_in_a_run(capsys, tmp_path):
    fd.write_special(tmp_path / "imgs" / "a_gray.jpg", "gray")
    fd.write_image(tmp_path / "imgs" / "b.png", fd.color_image(1, 24, 24), "PNG")
    code, out, err = cli(capsys, "psnr", "--colorizer", "gray", "--dataset", "folder",
                         "--root", tmp_path / "imgs", "--size", "32", "--out", tmp_path / "rep",
                         "--no-cache", "--quiet")
    assert code == 0, err
    assert "skipped 1 images" in out, out


# ------------------------------------------------------------------ masks (VOC layout)


def _voc_with_mask(tmp_path, m: np.ndarray | None = None, mode: str = "P"):
    t = fd.build_voc(tmp_path / "d", hw=(40, 56))
    sid = fd.voc_ids(2, start=100)[0]  # first val id: the preview loads it first
    path = t.voc2012 / "SegmentationClass" / f"{sid}.png"
    if m is not None:
        if mode == "P":
            fd.write_palette_mask(path, m)
        else:
            Image.fromarray(m.astype(np.uint8), mode=mode).save(path)
    return t, path


def test_voc_preview_works_on_the_fixture(capsys, tmp_path):
    t, _ = _voc_with_mask(tmp_path)
    code, out, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert code == 0, err
    assert "wrote" in out and (tmp_path / "out" / "p.png").is_file()


def test_mask_with_out_of_range_values(capsys, tmp_path):
    m = fd.label_map(0, 40, 56, values=list(range(21)))
    m[10:12, 10:12] = 37
    t, path = _voc_with_mask(tmp_path, m)
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "mask holds values [37] outside {0..20, 255}", str(path))


def test_mask_of_another_size(capsys, tmp_path):
    m = fd.label_map(0, 40, 50, values=list(range(21)))
    t, path = _voc_with_mask(tmp_path, m)
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "mask size 50x40 differs from its image 56x40", str(path))


def test_rgb_colour_mask(capsys, tmp_path):
    pal = np.array(fd.voc_palette(), np.uint8).reshape(256, 3)
    rgb_mask = pal[fd.label_map(0, 40, 56, values=list(range(21)))]
    t, path = _voc_with_mask(tmp_path, rgb_mask, mode="RGB")
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "mask has PIL mode RGB", str(path), "palette-index (P) or L")


# ------------------------------------------------------------------ folders and lists


def test_missing_directory(capsys, tmp_path):
    missing = tmp_path / "no" / "VOCdevkit"
    code, _, err = preview(capsys, tmp_path, "voc", missing)
    assert_error(code, err, "dataset folder not found", str(missing), "--root")


def test_root_without_voc_layout(capsys, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    code, _, err = preview(capsys, tmp_path, "voc", tmp_path / "elsewhere")
    assert_error(code, err, "no VOC2012/JPEGImages folder found", str(tmp_path / "elsewhere"))


def test_missing_mask_directory(capsys, tmp_path):
    t = fd.build_voc(tmp_path / "d")
    shutil.rmtree(t.voc2012 / "SegmentationClass")
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "mask folder not found", str(t.voc2012 / "SegmentationClass"))


def test_missing_list_file(capsys, tmp_path):
    t = fd.build_voc(tmp_path / "d")
    lst = t.voc2012 / "ImageSets" / "Segmentation" / "val.txt"
    lst.unlink()
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "voc val list file not found", str(lst))


def test_list_naming_a_missing_file(capsys, tmp_path):
    t = fd.build_voc(tmp_path / "d")
    lst = t.voc2012 / "ImageSets" / "Segmentation" / "val.txt"
    lst.write_text("2011_999999\n" + lst.read_text())
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "image file not found",
                 str(t.voc2012 / "JPEGImages" / "2011_999999.jpg"))


def test_empty_list(capsys, tmp_path):
    t = fd.build_voc(tmp_path / "d")
    lst = t.voc2012 / "ImageSets" / "Segmentation" / "val.txt"
    lst.write_text("\n  \n")
    code, _, err = preview(capsys, tmp_path, "voc", t.devkit, "--allow-partial")
    assert_error(code, err, "voc val list is empty", str(lst))


def test_empty_image_folder(capsys, tmp_path):
    (tmp_path / "imgs").mkdir()
    code, _, err = preview(capsys, tmp_path, "folder", tmp_path / "imgs")
    assert_error(code, err, "no image files found", str(tmp_path / "imgs"))


def test_wrong_count_names_allow_partial_and_cocostuff_preview(capsys, tmp_path):
    t = fd.build_cocostuff10k(tmp_path / "d")
    code, _, err = preview(capsys, tmp_path, "cocostuff", t.root)
    assert_error(code, err, "'test' has 2 images, the official count is 1000",
                 str(t.root / "imageLists" / "test.txt"), "--allow-partial")
    code, _, err = preview(capsys, tmp_path, "cocostuff", t.root, "--allow-partial")
    assert code == 0, err


# ------------------------------------------------------------------ names


def test_unknown_dataset_name(capsys, tmp_path):
    code, _, err = preview(capsys, tmp_path, "pascal", tmp_path)
    assert_error(code, err, "unknown dataset 'pascal'", "voc", "psc-eval ls")


def test_unknown_colorizer_name_python_api():
    with pytest.raises(UnknownNameError) as e:
        psc_eval.get_colorizer("colourful")
    msg = str(e.value)
    assert "unknown colorizer 'colourful'" in msg and "gray" in msg and "psc-eval ls" in msg


def test_unknown_colorizer_name_cli(capsys, tmp_path):
    code, _, err = cli(capsys, "psnr", "--colorizer", "colourful", "--dataset", "toy",
                       "--size", "16", "--limit", "1", "--out", tmp_path / "rep", "--no-cache",
                       "--quiet")
    assert_error(code, err, "unknown colorizer 'colourful'", "psc-eval ls")


def test_real_process_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "imgs" / "broken.jpg"
    fd.write_special(bad, "truncated")
    exe = Path(sys.executable).with_name("psc-eval")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "psc_eval.cli"]
    r = subprocess.run(cmd + ["data", "preview", "--dataset", "folder", "--root",
                              str(tmp_path / "imgs"), "--out", str(tmp_path / "p.png")],
                       capture_output=True, text=True, check=False)
    assert_error(r.returncode, r.stderr, "cannot decode image", str(bad))
    assert r.stdout == ""


@pytest.mark.parametrize("argv, expect", [
    (["miou", "--colorizer", "gray", "--size", "0"], "image size must be an integer >= 8"),
    (["sample", "--colorizer", "gray", "--size", "0", "--out", "x"], "image size must be"),
    (["psnr", "--colorizer", "os:system", "--size", "16"],
     "is a builtin_function_or_method, not a colorizer class"),
    (["train", "--colorizer", "ours", "--lr", "-1"], "train.lr=-1.0 must be finite and > 0"),
    (["train", "--colorizer", "ours", "--lr", "nan"], "train.lr=nan must be finite and > 0"),
    (["train", "--colorizer", "ours", "--size", "0"], "input size 0 is too small"),
    (["train", "--colorizer", "ours", "--workers", "-1"], "train.workers=-1 is negative"),
    (["train", "--colorizer", "ours", "--device", "bogus"], "unknown device 'bogus'"),
    (["train", "--colorizer", "nope"], "unknown trainable colorizer 'nope'"),
    (["train", "--colorizer", "ours", "--n-train", "-5"], "train.n_train=-5 is negative"),
    (["train-judge", "--lr", "0"], "train.lr=0.0 must be finite and > 0"),
    (["train-judge", "--lr", "inf"], "train.lr=inf must be finite and > 0"),
])
def test_options_checked_where_they_enter(argv, expect, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("psc-eval: error: ") and expect in lines[0], err
    assert not (tmp_path / "models").exists()


def test_toml_not_utf8_is_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("# caf\xe9\n[train]\nepochs = 1\n".encode("latin-1"))
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main(["train", "--colorizer", "ours", "--config", str(bad)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err == f"psc-eval: error: config is not UTF-8 text, {bad}, " \
                                        "save it as UTF-8 TOML"


@pytest.mark.parametrize("side", [30000, 10000])  # PIL's own bomb limit; ours (64M pixels)
def test_decompression_bomb_header_is_one_line_and_fast(side, tmp_path, monkeypatch, capsys):
    import struct
    import time
    import zlib


    # a PNG whose header claims side x side pixels (the data is never allocated)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0,
                                                              0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png)
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    t0 = time.time()
    with pytest.raises(SystemExit) as e:
        main(["psnr", "--colorizer", "gray", "--dataset", "folder", "--root", str(folder),
              "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and time.time() - t0 < 20
    assert len(err.splitlines()) == 1 and "pixels, over the limit of 64,000,000" in err
    assert str(folder / "bomb.png") in err
