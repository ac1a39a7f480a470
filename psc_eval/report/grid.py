"""Labelled sample grids (the style of the paper's Figs. 5, 7, 11, 12).

One row per image: the gray input, then each colorizer's samples (``n`` per stochastic
colorizer, one per deterministic one), then the ground truth; a title above every
column. Chroma is joined with the ORIGINAL L, as the harness does for scoring. Tiles are
upscaled (nearest neighbour, an integer factor) to at least ``min_tile`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..color import lab_parts_to_rgb, to_uint8
from ..colorizer import build_colorizer, check_ab, run_colorizer
from ..data import collate, get_dataset
from ..io import atomic_write, ensure_dir
from ..results import safe_name

TITLE_PX = 16


def _titled(tiles: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """Stack (H, W, 3) column images side by side under a title strip each."""
    from PIL import Image, ImageDraw

    cols = []
    for tile, title in zip(tiles, titles):
        strip = Image.new("RGB", (tile.shape[1], TITLE_PX), "white")
        draw = ImageDraw.Draw(strip)
        text = title
        while text and draw.textlength(text) > tile.shape[1] - 4:
            text = text[:-2] + "…" if len(text) > 2 else ""
        draw.text((2, 2), text, fill="black")
        cols.append(np.concatenate([np.asarray(strip), tile], axis=0))
    return np.concatenate(cols, axis=1)


def write_sample_grid(
    colorizers: Sequence[str],
    dataset: str = "toy",
    out: str | Path = "samples",
    *,
    n: int = 3,
    limit: int = 8,
    seed: int = 0,
    device: str = "cpu",
    root: str | None = None,
    split: str | None = None,
    size: int | None = None,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
    min_tile: int = 128,
) -> Path:
    """Write ``out/<names>-<dataset>-grid.png`` and return its path.

    ``options`` (e.g. temperature, sampler) go to every colorizer that is not a reference
    row; ``weights`` only with a single colorizer. Colorizers are built as every command
    builds them (``build_colorizer``), so a plain user class works here as in ``miou``.
    """
    from ..errors import PscError

    names = list(dict.fromkeys(colorizers))
    if weights is not None and len(names) > 1:
        raise PscError(f"--weights with {len(names)} colorizers, in the options, "
                       "draw one colorizer per weights file")
    ds = get_dataset(dataset, root=root, split=split, size=size).subset(limit)
    batch = collate([ds[i] for i in range(len(ds))])
    if batch["L"] is None:
        raise PscError(f"every image of {dataset}/{ds.split} was skipped (no colour), in "
                       "--dataset, choose images with colour")
    L, ab_true = batch["L"], batch["ab"]
    tiles = [lab_parts_to_rgb(L, torch.zeros_like(ab_true))]
    titles = ["gray input"]
    for name in names:
        ref = name in ("gray", "gt")
        col = build_colorizer(name, dataset, None if ref else weights, device,
                              None if ref else options)
        k = n if getattr(col, "stochastic", False) else 1
        g = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            ab = run_colorizer(col, L, ab_true, n_samples=k, generator=g)
        ab = check_ab(ab, batch["ids"], k, name)  # NaN / out of range: one line, no grid
        for j in range(k):
            a = ab[:, j].to(L.dtype)
            if a.shape[-2:] != L.shape[-2:]:
                a = torch.nn.functional.interpolate(a, size=L.shape[-2:], mode="bilinear",
                                                    align_corners=False)
            tiles.append(lab_parts_to_rgb(L, a))
            titles.append(name if k == 1 else f"{name} #{j + 1}")
    tiles.append(lab_parts_to_rgb(L, ab_true))
    titles.append("ground truth")
    scale = max(1, -(-min_tile // L.shape[-1]))
    columns = []
    for t in tiles:  # (B,3,H,W) -> one column (B*H*scale, W*scale, 3)
        u8 = to_uint8(t).permute(0, 2, 3, 1).numpy()
        u8 = u8.repeat(scale, axis=1).repeat(scale, axis=2)
        columns.append(np.concatenate(list(u8), axis=0))
    grid = _titled(columns, titles)
    path = ensure_dir(out) / f"{safe_name('+'.join(names))}-{safe_name(dataset)}-grid.png"

    def save(f):
        from PIL import Image

        Image.fromarray(np.ascontiguousarray(grid)).save(f, format="PNG")

    atomic_write(path, save)
    return path
