"""``toy``: procedural outdoor scenes, rendered on the fly, no files needed.

Every sample is a pure function of (seed, split, index): a numpy PCG64 generator
seeded with ``[seed, split_code, index]`` draws the layout and colours, the scene
is painted in Lab, converted to sRGB once and quantised to uint8 like a stored
photo; L, ab are then computed from that uint8 image like any real dataset.

Classes and their chroma (a, b in Lab units; each object draws its colour once
per image from the distribution below, plus a little per-pixel noise):

====  =========  ======================  ==========================================
 id   class      L (luminance)           chroma (a, b)
====  =========  ======================  ==========================================
 0    sky        gradient 85 -> 62       unimodal blue        N(-4, 2),  N(-32, 5)
 1    grass      52 + texture (sd ~7)    unimodal green       N(-38, 4), N(38, 4)
 2    sand       52 + texture (sd ~7)    unimodal yellow      N(6, 3),   N(36, 4)
 3    tree       34 + texture            unimodal dark green  N(-26, 4), N(24, 4)
 4    cow        40 + texture            unimodal brown       N(14, 3),  N(22, 3)
 5    umbrella   55 + texture            unimodal red         N(58, 5),  N(36, 5)
 6    car        50 + texture            MULTIMODAL, 4 hues:  red (55, 40), blue (15, -55),
                                         yellow (0, 55), purple (45, -35), each +- N(0, 4)
 7    sun        90                      unimodal yellow      N(-4, 2),  N(72, 4)
 8    cloud      92 + texture            near neutral         N(0, 1),   N(-3, 1)
 9    rock       48 + texture            neutral gray         N(0, 1.5), N(2, 1.5)
====  =========  ======================  ==========================================

``grass`` and ``sand`` share shape (the ground below a wavy horizon), texture and
luminance distribution and differ ONLY in chroma. Scene context tells them apart:
a meadow (grass) holds trees and cows, a beach (sand) holds umbrellas; cars, rocks,
the sun and clouds appear in both, and some scenes hold no context object at all.
A judge trained on colour images leans on chroma for the ground, so it loses mIoU
on gray inputs; a colorizer that reads the context can win it back. Cars draw one
of four hues, so a diverse colorizer has something to be diverse about.

Splits: ``train`` (default 4000 images) and ``val`` (default 500). Default size 64 px
(the toy benchmark runs on a CPU); ``size=128`` renders the paper's input size.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..color import lab_to_rgb, rgb_to_lab, to_uint8
from ..errors import DataError
from .base import DEFAULT_SIZE, Sample, SegDataset, make_sample

CLASS_NAMES = (
    "sky", "grass", "sand", "tree", "cow", "umbrella", "car", "sun", "cloud", "rock",
)
SKY, GRASS, SAND, TREE, COW, UMBRELLA, CAR, SUN, CLOUD, ROCK = range(10)

# (mean a, sd a, mean b, sd b) per class; the car is a mixture over CAR_MODES.
CHROMA = {
    SKY: (-4.0, 2.0, -32.0, 5.0),
    GRASS: (-38.0, 4.0, 38.0, 4.0),
    SAND: (6.0, 3.0, 36.0, 4.0),
    TREE: (-26.0, 4.0, 24.0, 4.0),
    COW: (14.0, 3.0, 22.0, 3.0),
    UMBRELLA: (58.0, 5.0, 36.0, 5.0),
    SUN: (-4.0, 2.0, 72.0, 4.0),
    CLOUD: (0.0, 1.0, -3.0, 1.0),
    ROCK: (0.0, 1.5, 2.0, 1.5),
}
CAR_MODES = ((55.0, 40.0), (15.0, -55.0), (0.0, 55.0), (45.0, -35.0))
CAR_MODE_SD = 4.0
LUMA = {GRASS: 52.0, SAND: 52.0, TREE: 34.0, COW: 40.0, UMBRELLA: 55.0, CAR: 50.0,
        SUN: 90.0, CLOUD: 92.0, ROCK: 48.0}
PIXEL_CHROMA_NOISE = 1.5
SPLITS = {"train": 0, "val": 1}
# Bump when render_scene changes what it draws (tests/unit/test_toy.py pins what each
# version draws): the render cache and the dataset fingerprint carry it, so no cached
# render, colorization or score of other pixels is reused.
RENDER_VERSION = 2
# Render caches larger than this are not written (render on the fly instead).
MAX_CACHE_BYTES = 512 * 2**20
DEFAULT_COUNTS = {"train": 4000, "val": 500}


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, amp: float) -> np.ndarray:
    """Luminance texture: three random sinusoids plus pixel noise (sd ~ amp)."""
    t = np.zeros_like(yy)
    for _ in range(3):
        fy, fx = rng.uniform(2, 14, size=2)
        t += np.sin(2 * np.pi * (fy * yy + fx * xx) + rng.uniform(0, 2 * np.pi))
    return amp * (0.45 * t + 0.6 * rng.standard_normal(yy.shape))


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _rect(yy, xx, y0, y1, x0, x1):
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def render_scene(seed: int, split: str, index: int, size: int = DEFAULT_SIZE):
    """-> (uint8 HxWx3 RGB, int64 HxW mask, scene kind). Pure function of its arguments."""
    rng = np.random.default_rng([int(seed), SPLITS[split], int(index)])
    n = size
    yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
    mask = np.zeros((n, n), np.int64)
    L = np.zeros((n, n))
    A = np.zeros((n, n))
    B = np.zeros((n, n))

    def chroma(cls):
        ma, sa, mb, sb = CHROMA[cls]
        return rng.normal(ma, sa), rng.normal(mb, sb)

    def paint(region, cls, lum, ab):
        mask[region] = cls
        L[region] = lum[region] if isinstance(lum, np.ndarray) else lum
        A[region] = ab[0] + PIXEL_CHROMA_NOISE * rng.standard_normal(int(region.sum()))
        B[region] = ab[1] + PIXEL_CHROMA_NOISE * rng.standard_normal(int(region.sum()))

    meadow = bool(rng.random() < 0.5)
    horizon = rng.uniform(0.35, 0.55)
    wave = horizon + 0.03 * np.sin(2 * np.pi * (rng.uniform(0.5, 2.0) * xx + rng.uniform(0, 6.3)))
    sky = yy < wave
    paint(sky, SKY, 85.0 - 23.0 * yy / max(horizon, 1e-3) + 1.0 * rng.standard_normal((n, n)),
          chroma(SKY))
    ground_cls = GRASS if meadow else SAND
    paint(~sky, ground_cls, LUMA[ground_cls] + _texture(rng, yy, xx, 7.0), chroma(ground_cls))

    if rng.random() < 0.5:  # sun
        r = rng.uniform(0.07, 0.1)
        cy, cx = rng.uniform(r + 0.02, max(horizon - r - 0.05, r + 0.03)), rng.uniform(0.1, 0.9)
        paint(_ellipse(yy, xx, cy, cx, r, r) & sky, SUN, LUMA[SUN], chroma(SUN))
    for _ in range(int(rng.random() < 0.6) + int(rng.random() < 0.3)):  # clouds
        cy, cx = rng.uniform(0.06, max(horizon - 0.1, 0.08)), rng.uniform(0.1, 0.9)
        region = np.zeros((n, n), bool)
        for _ in range(3):
            region |= _ellipse(yy, xx, cy + rng.uniform(-0.02, 0.02), cx + rng.uniform(-0.08, 0.08),
                               rng.uniform(0.03, 0.05), rng.uniform(0.06, 0.1))
        paint(region & sky, CLOUD, LUMA[CLOUD] + _texture(rng, yy, xx, 2.0), chroma(CLOUD))

    def ground_y(lo=0.08, hi=0.92):
        return rng.uniform(min(horizon + lo, 0.9), hi)

    if meadow:
        for _ in range(int(rng.random() < 0.75) + int(rng.random() < 0.3)):  # trees
            r = rng.uniform(0.11, 0.16)
            cx = rng.uniform(0.12, 0.88)
            cy = horizon - 0.4 * r + rng.uniform(0.0, 0.1)
            region = _ellipse(yy, xx, cy, cx, r, r * rng.uniform(0.8, 1.1))
            region |= _rect(yy, xx, cy, cy + 1.6 * r, cx - 0.15 * r, cx + 0.15 * r)
            paint(region, TREE, LUMA[TREE] + _texture(rng, yy, xx, 5.0), chroma(TREE))
    else:
        for _ in range(int(rng.random() < 0.8) + int(rng.random() < 0.3)):  # umbrellas
            r = rng.uniform(0.12, 0.17)
            cx, base = rng.uniform(0.15, 0.85), ground_y(0.15, 0.85)
            top = base - 2.2 * r
            region = _ellipse(yy, xx, top + r, cx, r, r) & (yy <= top + r)
            region |= _rect(yy, xx, top + r, base, cx - 0.02, cx + 0.02)
            paint(region, UMBRELLA, LUMA[UMBRELLA] + _texture(rng, yy, xx, 4.0), chroma(UMBRELLA))
    if rng.random() < 0.5:  # rock, either scene
        cy, cx = ground_y(), rng.uniform(0.1, 0.9)
        ry, rx = rng.uniform(0.06, 0.1), rng.uniform(0.09, 0.15)
        bump = 1.0 + 0.15 * np.sin(6 * np.arctan2(yy - cy, xx - cx) + rng.uniform(0, 6.3))
        region = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= bump
        paint(region, ROCK, LUMA[ROCK] + _texture(rng, yy, xx, 6.0), chroma(ROCK))
    if meadow and rng.random() < 0.6:  # cow
        cy, cx = ground_y(0.12, 0.85), rng.uniform(0.15, 0.85)
        w, h = rng.uniform(0.11, 0.15), rng.uniform(0.055, 0.075)
        side = 1 if rng.random() < 0.5 else -1
        region = _ellipse(yy, xx, cy, cx, h, w)
        region |= _ellipse(yy, xx, cy - 0.6 * h, cx + side * 1.1 * w, 0.5 * h, 0.35 * w)
        for dx in (-0.7, -0.3, 0.3, 0.7):
            region |= _rect(yy, xx, cy, cy + 2.0 * h, cx + dx * w - 0.015, cx + dx * w + 0.015)
        paint(region, COW, LUMA[COW] + _texture(rng, yy, xx, 5.0), chroma(COW))
    if rng.random() < 0.5:  # car, either scene, one of four hues
        cy, cx = ground_y(0.12, 0.85), rng.uniform(0.18, 0.82)
        w, h = rng.uniform(0.14, 0.2), rng.uniform(0.05, 0.07)
        ma, mb = CAR_MODES[int(rng.integers(len(CAR_MODES)))]
        ab = (rng.normal(ma, CAR_MODE_SD), rng.normal(mb, CAR_MODE_SD))
        body = _rect(yy, xx, cy - h, cy + h, cx - w, cx + w)
        body |= _rect(yy, xx, cy - 2.6 * h, cy - h, cx - 0.55 * w, cx + 0.5 * w)
        paint(body, CAR, LUMA[CAR] + _texture(rng, yy, xx, 4.0), ab)
        for dx in (-0.6, 0.6):  # wheels: dark, labelled car
            wheel = _ellipse(yy, xx, cy + h, cx + dx * w, 0.8 * h, 0.8 * h)
            paint(wheel, CAR, 18.0, (0.0, 0.0))

    lab = np.stack([np.clip(L, 0.0, 100.0), A, B]).astype(np.float32)
    rgb = to_uint8(lab_to_rgb(torch.from_numpy(lab)[None]))[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(rgb), mask, "meadow" if meadow else "beach"


class ToyDataset(SegDataset):
    """The embedded procedural dataset (see the module docstring for its classes)."""

    name = "toy"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    default_split = "val"
    default_size = 64  # CPU-sized; any size renders natively (no resize)
    class_convention = "toy: 10 classes 0..9, no ignore pixels"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "val",
        size: int = 64,
        seed: int = 0,
        n_images: int | None = None,
        cache: bool = True,
        **_: object,
    ):
        if split not in SPLITS:
            raise DataError(
                f"unknown toy split {split!r}, in --split, use one of {', '.join(SPLITS)}"
            )
        super().__init__(None, split, size)
        self.seed = int(seed)
        n = DEFAULT_COUNTS[split] if n_images is None else int(n_images)
        if n < 1:
            raise DataError(f"toy split size must be >= 1, got {n}, in n_images, pass 1 or more")
        self.ids = [f"toy-{split}-{i:05d}" for i in range(n)]
        self._n_rendered = n
        # uint8 RGB + mask and float32 Lab: 16 bytes a pixel
        self._cache = cache and n * size * size * 16 <= MAX_CACHE_BYTES
        self._arrays: tuple[np.ndarray, ...] | None = None

    def _cache_path(self) -> Path:
        from ..paths import cache_dir

        name = f"v{RENDER_VERSION}-seed{self.seed}-{self.split}-{self.size}px-n{self._n_rendered}"
        return cache_dir() / "toy" / f"{name}.npz"

    def _load_arrays(self):
        """The whole split rendered once to an .npz under $PSC_HOME/cache (uint8 RGB, mask,
        and its Lab, so loading costs a lookup instead of a render and a colour
        conversion); the render is a pure function, so the cache holds what rendering on
        the fly gives."""
        if self._arrays is None:
            path = self._cache_path()
            try:
                with np.load(path) as z:
                    arrays = (z["rgb"], z["mask"], z["scene"], z["lab"])
                if arrays[0].shape != (self._n_rendered, self.size, self.size, 3):
                    raise ValueError("stale cache")
            except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
                arrays = self._render_all(path)  # missing, truncated or stale: render again
            self._arrays = arrays
        return self._arrays

    def _render_all(self, path: Path):
        from tqdm import tqdm

        from ..io import atomic_write

        n, sz = self._n_rendered, self.size
        rgb = np.empty((n, sz, sz, 3), np.uint8)
        mask = np.empty((n, sz, sz), np.uint8)
        scene = np.empty(n, np.uint8)
        # disable=None: no bar when stderr is not a terminal (one-line error contract)
        for i in tqdm(range(n), desc=f"rendering toy/{self.split} once", leave=False,
                      disable=True if n < 200 else None):
            r, m, kind = render_scene(self.seed, self.split, i, sz)
            rgb[i], mask[i], scene[i] = r, m, kind == "meadow"
        lab = np.empty((n, 3, sz, sz), np.float32)
        for s in range(0, n, 256):  # Lab per pixel: batching does not change the values
            x = torch.from_numpy(rgb[s:s + 256]).permute(0, 3, 1, 2).float() / 255.0
            lab[s:s + 256] = rgb_to_lab(x).numpy()
        try:
            atomic_write(path, lambda f: np.savez(f, rgb=rgb, mask=mask, scene=scene, lab=lab))
        except OSError:
            pass  # an unwritable cache only costs speed
        return rgb, mask, scene, lab

    def load(self, index: int) -> Sample:
        # a --limit run (ids truncated by subset()) renders just what it needs
        if self._cache and len(self.ids) == self._n_rendered:
            rgb_all, mask_all, scene_all, lab_all = self._load_arrays()
            s = make_sample(self.ids[index], rgb_all[index], mask_all[index].astype(np.int64),
                            lab=lab_all[index])
            s["scene"] = "meadow" if scene_all[index] else "beach"
            return s
        rgb, mask, kind = render_scene(self.seed, self.split, index, self.size)
        s = make_sample(self.ids[index], rgb, mask)
        s["scene"] = kind
        return s

    def fingerprint(self) -> dict:
        fp = super().fingerprint()
        fp["seed"] = self.seed
        fp["render_version"] = RENDER_VERSION  # other pixels, other cache keys and results
        return fp
