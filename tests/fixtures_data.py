"""Builders of small dataset trees in the REAL on-disk layouts (VOC, COCO-stuff 10k/164k,
image folders) and of images in awkward formats, for tests.

Every builder writes under a folder the test owns (``tmp_path``) and returns what it
wrote (the arrays), so tests can compare loaded samples with the source pixels.
Import from tests as ``import fixtures_data`` (``tests/conftest.py`` puts this folder
on ``sys.path``) or use the factory fixtures of ``conftest.py``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def voc_palette() -> list[int]:
    """The 256-entry VOC palette (bit-interleaved class index), flat [r0,g0,b0,r1,...]."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def color_image(seed: int, h: int, w: int) -> np.ndarray:
    """A colourful uint8 HxWx3 image: smooth hue gradients plus a few flat patches."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.stack([
        200 * xx + 30 * rng.random(),
        200 * yy + 30 * rng.random(),
        120 + 100 * np.sin(6 * xx + rng.random()),
    ], -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def label_map(seed: int, h: int, w: int, values: list[int], block: int = 8,
              ignore_border: bool = True) -> np.ndarray:
    """Blocky labels drawn from ``values`` with a 255 line (VOC-style boundary) in row 3."""
    rng = np.random.default_rng(seed)
    grid = rng.choice(values, size=(-(-h // block), -(-w // block)))
    m = np.kron(grid, np.ones((block, block), np.int64))[:h, :w].astype(np.int64)
    if ignore_border:
        m[3, :] = 255
    return m


def write_palette_mask(path: Path, m: np.ndarray) -> None:
    """A VOC-style mask: PIL mode P, the VOC palette, pixel = class index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(m.astype(np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(path)


def write_image(path: Path, rgb: np.ndarray, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(rgb, mode="RGB").save(path, format=fmt, **kw)


def write_png16_rgb(path: Path, rgb16: np.ndarray) -> None:
    """A 48-bit (16 bits per channel) RGB PNG, written by hand (PIL cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_special(path: Path, kind: str, seed: int = 0, h: int = 24, w: int = 20) -> np.ndarray:
    """Write an image in an awkward format; return the 8-bit RGB a loader must produce
    (or the gray array for the gray kinds).

    kinds: rgba, cmyk, rgb16, palette, palette_trns, gray, gray16, gray_rgb, png_as_jpg,
    truncated, not_an_image.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = color_image(seed, h, w)
    if kind == "rgba":
        alpha = np.random.default_rng(seed).integers(0, 256, (h, w, 1)).astype(np.uint8)
        Image.fromarray(np.concatenate([rgb, alpha], -1), mode="RGBA").save(path, format="PNG")
        return rgb  # alpha is dropped, not composited
    if kind == "cmyk":
        rng = np.random.default_rng(seed)
        cmyk = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
        Image.fromarray(cmyk, mode="CMYK").save(path, format="TIFF")
        c, k = cmyk[..., :3].astype(np.float64), cmyk[..., 3:].astype(np.float64)
        return np.round((255 - c) * (255 - k) / 255).astype(np.uint8)  # naive CMYK -> RGB
    if kind == "rgb16":
        rng = np.random.default_rng(seed)
        rgb16 = rng.integers(0, 65536, (h, w, 3)).astype(np.uint16)
        write_png16_rgb(path, rgb16)
        return (rgb16 >> 8).astype(np.uint8)  # the high byte
    if kind in ("palette", "palette_trns"):
        idx = np.random.default_rng(seed).integers(0, 16, (h, w)).astype(np.uint8)
        pal = np.random.default_rng(seed + 1).integers(0, 256, (16, 3)).astype(np.uint8)
        pal[0] = (250, 10, 10)  # guaranteed colour
        im = Image.fromarray(idx, mode="P")
        im.putpalette(pal.flatten().tolist())
        if kind == "palette_trns":
            im.info["transparency"] = 3
            im.save(path, format="PNG", transparency=3)
        else:
            im.save(path, format="PNG")
        return pal[idx]
    if kind == "gray":
        g = rgb[..., 0]
        Image.fromarray(g, mode="L").save(path, format="JPEG", quality=95)
        return g
    if kind == "gray16":
        g = np.random.default_rng(seed).integers(0, 65536, (h, w)).astype(np.uint16)
        Image.fromarray(g).save(path, format="PNG")
        return g
    if kind == "gray_rgb":
        g = rgb[..., 1]
        Image.fromarray(np.stack([g, g, g], -1), mode="RGB").save(path, format="PNG")
        return g
    if kind == "png_as_jpg":
        Image.fromarray(rgb, mode="RGB").save(path, format="PNG")
        return rgb
    if kind == "truncated":
        write_image(path, rgb, "JPEG")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        return rgb
    if kind == "not_an_image":
        path.write_bytes(b"this is not an image\n" * 8)
        return rgb
    raise ValueError(kind)


# ---------------------------------------------------------------------- VOC


@dataclass
class VOCTree:
    devkit: Path  # VOCdevkit
    voc2012: Path  # VOCdevkit/VOC2012
    images: dict[str, np.ndarray] = field(default_factory=dict)  # as written (before JPEG)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    aug_masks: dict[str, np.ndarray] = field(default_factory=dict)
    aug_list: Path | None = None


def voc_ids(n: int, year: int = 2007, start: int = 32) -> list[str]:
    return [f"{year}_{start + i:06d}" for i in range(n)]


def build_voc(
    base: Path,
    train: list[str] | None = None,
    val: list[str] | None = None,
    aug: list[str] | None = None,
    aug_format: str = "deeplab",
    aug_list_place: str = "ImageSets/SegmentationAug",
    hw: tuple[int, int] = (40, 56),
    image_format: str = "PNG",
) -> VOCTree:
    """A VOCdevkit/VOC2012 tree. ``aug`` ids get SegmentationClassAug masks (mode L,
    as SBD conversions store them) and a list in ``aug_list_place`` (relative to
    VOC2012; ``../list`` puts it next to VOC2012) in the ``deeplab`` two-path or ``ids``
    format. Images are PNG bytes under .jpg names unless ``image_format="JPEG"``
    (exact pixels for value tests; decoding is by content)."""
    train = voc_ids(3) if train is None else train
    val = voc_ids(2, start=100) if val is None else val
    devkit = base / "VOCdevkit"
    voc = devkit / "VOC2012"
    tree = VOCTree(devkit, voc)
    seg = voc / "ImageSets" / "Segmentation"
    seg.mkdir(parents=True, exist_ok=True)
    (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    all_ids = list(dict.fromkeys(train + val + (aug or [])))
    for i, sid in enumerate(all_ids):
        rgb = color_image(i, *hw)
        write_image(voc / "JPEGImages" / f"{sid}.jpg", rgb, image_format)
        tree.images[sid] = rgb
        if sid in train or sid in val:
            m = label_map(i, *hw, values=list(range(21)))
            write_palette_mask(voc / "SegmentationClass" / f"{sid}.png", m)
            tree.masks[sid] = m
    (seg / "train.txt").write_text("".join(f"{s}\n" for s in train))
    (seg / "val.txt").write_text("".join(f"{s}\n" for s in val))
    (seg / "trainval.txt").write_text("".join(f"{s}\n" for s in train + val))
    if aug is not None:
        aug_dir = voc / "SegmentationClassAug"
        aug_dir.mkdir(parents=True, exist_ok=True)
        for i, sid in enumerate(aug):
            m = label_map(1000 + i, *hw, values=list(range(21)))
            aug_dir.joinpath(f"{sid}.png").parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(m.astype(np.uint8), mode="L").save(aug_dir / f"{sid}.png")
            tree.aug_masks[sid] = m
        if aug_format == "deeplab":
            text = "".join(f"/JPEGImages/{s}.jpg /SegmentationClassAug/{s}.png\n" for s in aug)
        else:
            text = "".join(f"{s}\n" for s in aug)
        lst = (voc / aug_list_place / "train_aug.txt").resolve()
        lst.parent.mkdir(parents=True, exist_ok=True)
        lst.write_text(text)
        tree.aug_list = lst
    return tree


# ---------------------------------------------------------------------- COCO-stuff


@dataclass
class CocoTree:
    root: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # 10k: S; 164k: PNG values


def build_cocostuff10k(
    base: Path, n_train: int = 3, n_test: int = 2, hw: tuple[int, int] = (36, 44)
) -> CocoTree:
    """images/*.jpg, annotations/*.mat (field S, label ids 0..182 with 0 = unlabeled, uint16
    as in the release), imageLists/{train,test,all}.txt."""
    from scipy.io import savemat

    root = base / "cocostuff-10k"
    tree = CocoTree(root)
    (root / "imageLists").mkdir(parents=True)
    (root / "annotations").mkdir()
    train = [f"COCO_train2014_{i:012d}" for i in range(77, 77 + n_train)]
    test = [f"COCO_train2014_{i:012d}" for i in range(500, 500 + n_test)]
    for i, sid in enumerate(train + test):
        rgb = color_image(200 + i, *hw)
        write_image(root / "images" / f"{sid}.jpg", rgb, "PNG")
        # ids 0 (unlabeled), 1 (person -> 0), 182 (wood -> 181) and a few others
        S = label_map(300 + i, *hw, values=[0, 1, 2, 92, 150, 182], ignore_border=False)
        S = S.astype(np.uint16)
        savemat(root / "annotations" / f"{sid}.mat", {"S": S, "names": np.array(["x"])})
        tree.images[sid] = rgb
        tree.labels[sid] = S
    (root / "imageLists" / "train.txt").write_text("".join(f"{s}\n" for s in train))
    (root / "imageLists" / "test.txt").write_text("".join(f"{s}\n" for s in test))
    (root / "imageLists" / "all.txt").write_text("".join(f"{s}\n" for s in train + test))
    return tree


def build_cocostuff164k(
    base: Path, n_train: int = 2, n_val: int = 3, hw: tuple[int, int] = (30, 42),
    maps_dir: str = "stuffthingmaps",
) -> CocoTree:
    """images/{train2017,val2017}/*.jpg and <maps_dir>/{train2017,val2017}/*.png (mode L,
    values 0..181 and 255)."""
    root = base / "cocostuff-164k"
    tree = CocoTree(root)
    k = 0
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / maps_dir / split).mkdir(parents=True)
        for i in range(n):
            sid = f"{139 + 1000 * (split == 'train2017') + i:012d}"
            rgb = color_image(400 + k, *hw)
            write_image(root / "images" / split / f"{sid}.jpg", rgb, "PNG")
            m = label_map(500 + k, *hw, values=[0, 1, 91, 156, 181, 255], ignore_border=False)
            Image.fromarray(m.astype(np.uint8), mode="L").save(root / maps_dir / split / f"{sid}.png")
            tree.images[f"{split}/{sid}"] = rgb
            tree.labels[f"{split}/{sid}"] = m
            k += 1
    return tree


# The paper model's smallest config (16 px input, 4x4 embedding): the tests' one copy.
TINY_MODEL_TOML = """
[model]
widths = [4, 8, 8, 8, 8]
blocks = [1, 1, 1, 1, 1]
emb_channels = 12
n_mix = 2
input_size = 16
film_hidden = 4
[model.generator]
nr_filters = 6
nr_resnet = 1
"""


def tiny_toml(generator_dropout: float | None = None, **train) -> str:
    """TINY_MODEL_TOML plus a [train] table (``train`` keys: epochs, batch_size, ...)."""
    text = TINY_MODEL_TOML
    if generator_dropout is not None:
        text += f"dropout = {generator_dropout}\n"
    if train:
        text += "[train]\n" + "".join(f"{k} = {v!r}\n" for k, v in train.items())
    return text


def write_tiny_config(path, generator_dropout: float | None = None, **train):
    """Write ``tiny_toml(...)`` to ``path`` and return it."""
    path.write_text(tiny_toml(generator_dropout, **train))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(args: list[str], home, n: int = 2, pythonpath=None, timeout: float = 180):
    """``psc-eval ARGS`` as ``n`` gloo ranks on this machine (torchrun's environment,
    set by hand) -> [(returncode, stdout, stderr)] in rank order."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PSC_HOME": str(home), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(n), "OMP_NUM_THREADS": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])
    procs = [subprocess.Popen([sys.executable, "-m", "psc_eval.cli", *args],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(n)]
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, o, e) for p, (o, e) in zip(procs, outs)]
