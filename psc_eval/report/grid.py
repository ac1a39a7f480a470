"""Labelled sample grids (the style of the paper's Figs. 5, 7, 11, 12).

One row per image: the gray input, then each colorizer's samples (``n`` per stochastic
colorizer, one per deterministic one), then the ground truth; a title above every
column. The colorizations come from the one colorize path (``psc_eval.colorize``): sample 0
of an image is the one its mIoU and PSNR were scored on for the same seed (default batch
size), further samples are those of a diversity run. Tiles are
upscaled (nearest neighbour, an integer factor) to at least ``min_tile`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..colorize import colorize_indices, to_rgb_u8
from ..colorizer import build_colorizer
from ..data import get_dataset
from ..errors import PscError
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
    names = list(dict.fromkeys(colorizers))
    if weights is not None and len(names) > 1:
        raise PscError(f"--weights with {len(names)} colorizers, in the options, "
                       "draw one colorizer per weights file")
    ds = get_dataset(dataset, root=root, split=split, size=size)
    first = range(min(limit, len(ds)))
    L = ab_true = None
    tiles: list[torch.Tensor] = []
    titles = ["gray input"]
    rows: list[str] = []  # each row's own name, as miou and the report call it
    for name in names:
        ref = name in ("gray", "gt")
        col = build_colorizer(name, dataset, None if ref else weights, device,
                              None if ref else options)
        k = n if getattr(col, "stochastic", False) else 1
        row = str(getattr(col, "name", name))
        rows.append(row)
        got = colorize_indices(col, ds, first, n_samples=k, seed=seed, device=device,
                               name=row)
        if L is None:
            L, ab_true = got.L, got.ab_true
            tiles.append(to_rgb_u8(L, torch.zeros_like(ab_true)))
        for j in range(k):
            tiles.append(got.rgb_u8(j))
            titles.append(row if k == 1 else f"{row} #{j + 1}")
    if L is None:
        raise PscError("no colorizer given, in --colorizer, name at least one")
    tiles.append(to_rgb_u8(L, ab_true))
    titles.append("ground truth")
    scale = max(1, -(-min_tile // L.shape[-1]))
    columns = []
    for t in tiles:  # (B,3,H,W) -> one column (B*H*scale, W*scale, 3)
        u8 = t.permute(0, 2, 3, 1).cpu().numpy()
        u8 = u8.repeat(scale, axis=1).repeat(scale, axis=2)
        columns.append(np.concatenate(list(u8), axis=0))
    grid = _titled(columns, titles)
    path = ensure_dir(out) / f"{safe_name('+'.join(rows))}-{safe_name(dataset)}-grid.png"

    def save(f):
        from PIL import Image

        Image.fromarray(np.ascontiguousarray(grid)).save(f, format="PNG")

    atomic_write(path, save)
    return path
