"""``psc-eval data preview``: a grid like the paper's Fig. 3 (colour, gray, segmentation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PscError
from .base import IGNORE_INDEX, SegDataset


def class_palette(num_classes: int) -> np.ndarray:
    """Pascal VOC's bit-interleaved palette, (num_classes, 3) uint8; ignore is drawn white."""
    pal = np.zeros((max(num_classes, 1), 3), np.uint8)
    for i in range(num_classes):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def colorize_mask(mask: np.ndarray, num_classes: int) -> np.ndarray:
    pal = class_palette(num_classes)
    out = np.full(mask.shape + (3,), 255, np.uint8)
    valid = mask != IGNORE_INDEX
    out[valid] = pal[np.clip(mask[valid], 0, num_classes - 1)]
    return out


def write_preview(dataset: SegDataset, out: str | Path, n: int = 6) -> Path:
    """Write an n-row grid: colour | gray (L) | segmentation map, with a class legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PscError(f"cannot create folder ({e.strerror}), {out.parent}, choose a writable --out")
    rows = []
    for i in range(len(dataset)):
        s = dataset[i]
        if s["skip"] is None:
            rows.append(s)
        if len(rows) == n:
            break
    if not rows:
        raise PscError(f"no colour image to preview, in {dataset.name}/{dataset.split}, check --root")
    cols = 3 if dataset.has_masks else 2
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols + (2.0 if cols == 3 else 0), 2.2 * len(rows)),
                             squeeze=False)
    present: set[int] = set()
    for r, s in enumerate(rows):
        axes[r, 0].imshow(s["rgb"].permute(1, 2, 0).numpy())
        axes[r, 1].imshow(s["L"][0].numpy(), cmap="gray", vmin=0, vmax=100)
        if cols == 3:
            m = s["mask"].numpy()
            axes[r, 2].imshow(colorize_mask(m, dataset.num_classes), interpolation="nearest")
            present |= {int(v) for v in np.unique(m) if v != IGNORE_INDEX}
        axes[r, 0].set_ylabel(s["id"], fontsize=7)
    for c, title in enumerate(["colour", "gray (L)", "segmentation"][:cols]):
        axes[0, c].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if cols == 3 and dataset.class_names:
        pal = class_palette(dataset.num_classes) / 255.0
        handles = [Patch(color=pal[k], label=dataset.class_names[k]) for k in sorted(present)]
        fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
        fig.subplots_adjust(right=0.78)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
