"""``psc-eval diversity``: Fig. 10 for one stochastic colorizer: the MS-SSIM histogram of
two samples per gray input in its run JSON, and a figure of example pairs with their scores.

The figure's pairs are the run's own first batch (same images, batch size and per-batch
seed as the run), so each pair's printed score is the one the run recorded for it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import EvalConfig, make_config
from ..errors import PscError
from ..results import RunResult, safe_name, write_result

N_EXAMPLES = 6


@dataclass
class DiversitySummary:
    result: RunResult
    path: Path | None
    figure: Path | None

    def text(self) -> str:
        m = self.result.metrics
        h = self.result.histograms["diversity_msssim"]
        v = self.result.provenance["msssim_variant"]
        lines = [(f"psc-eval diversity: {self.result.colorizer} on {self.result.dataset}/"
                  f"{self.result.split}, {m['diversity_n']} images, seed {self.result.seed}"),
                 (f"  MS-SSIM of two samples: mean {m['diversity_msssim']:.4f}, median "
                  f"{m['diversity_msssim_median']:.4f} (1 = identical samples)"),
                 (f"  variant: window {v['win_size']} px, sigma {v['win_sigma']}, "
                  f"{v['scales']} scales at {v['image_size']} px ({v['implementation']})"),
                 "  histogram (Fig. 10): " + " ".join(
                     f"{lo:.2f}:{c}" for lo, c in zip(h["bin_edges"], h["counts"]) if c)]
        if self.path:
            lines.append(f"wrote {self.path}")
        if self.figure:
            lines.append(f"wrote {self.figure}")
        return "\n".join(lines)


def run_diversity(colorizer: str | Any, cfg: EvalConfig | None = None,
                  **fields: Any) -> DiversitySummary:
    """Score ``colorizer``'s sample diversity (a deterministic one is refused)."""
    from ..colorizer import build_colorizer
    from ..dist import init_distributed, rank_device, resolve_device
    from ..io import ensure_dir
    from ..runner import evaluate_rows, open_dataset

    cfg = make_config(cfg, kind="diversity", **fields)
    if cfg.scorer_names != ("diversity",) and "diversity" not in cfg.scorer_names:
        cfg = replace(cfg, metrics=("diversity", *cfg.scorer_names))
    ds = open_dataset(cfg)
    dev = resolve_device(cfg.device)
    ensure_dir(cfg.out, "--out folder")
    info = init_distributed(dev)
    dev = rank_device(dev, info)
    opts = {} if cfg.temperature is None else {"temperature": float(cfg.temperature)}
    col = colorizer if not isinstance(colorizer, str) else build_colorizer(
        colorizer, ds.name, cfg.colorizer_weights, dev, opts)
    name = getattr(col, "name", str(colorizer))
    if not getattr(col, "stochastic", False):
        if getattr(col, "by_id", False):
            raise PscError(f"predictions {name!r} hold one image per id, in --predictions, "
                           "save two samples per image as <id>_0.png and <id>_1.png")
        raise PscError(f"colorizer {name!r} is deterministic (one colorization per input), "
                       "in --colorizer, diversity needs a stochastic colorizer such as ours")
    from ..metrics.diversity import msssim_variant

    msssim_variant(ds.size)  # a too-small size fails here, before any colorization
    result = evaluate_rows([col], ds, None, replace(cfg, device=dev))[0]
    if not info.is_main:
        return DiversitySummary(result, None, None)
    path = write_result(result, cfg.out)
    fig = diversity_figure(col, ds, result, cfg, dev,
                           Path(cfg.out) / "figures" / "diversity" /
                           f"{safe_name(ds.name)}-{safe_name(name)}-seed{cfg.seed}.png")
    return DiversitySummary(result, path, fig)


def diversity_figure(col: Any, ds: Any, result: RunResult, cfg: EvalConfig, device: str,
                     path: Path) -> Path:
    """Histogram + up to ``N_EXAMPLES`` pairs of the run's first batch, spread over its
    range of MS-SSIM, each with its score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..colorize import colorize_indices
    from ..io import atomic_write
    from ..metrics.diversity import ms_ssim_pairs

    # the run's own first batch: same images, batch size and seed as the run it illustrates
    scored = copy.copy(ds).subset(cfg.limit)
    got = colorize_indices(col, scored, range(min(cfg.batch_size, len(scored))), n_samples=2,
                           seed=cfg.seed, device=device, batch_size=cfg.batch_size,
                           name=result.colorizer)
    rgb = [got.rgb_u8(k) for k in range(2)]
    with torch.inference_mode():
        scores = ms_ssim_pairs(rgb[0], rgb[1], result.provenance["msssim_variant"]).cpu()
    order = torch.argsort(scores)
    k = min(N_EXAMPLES, len(order))
    pick = [int(order[round(j * (len(order) - 1) / max(k - 1, 1))]) for j in range(k)]
    h = result.histograms["diversity_msssim"]
    fig = plt.figure(figsize=(2.2 * k, 5.2))
    gs = fig.add_gridspec(3, k, height_ratios=[1.2, 1, 1])
    ax = fig.add_subplot(gs[0, :])
    edges = np.array(h["bin_edges"])
    ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", edgecolor="k",
           color="#7aa6c2")
    ax.set_xlabel("MS-SSIM of two samples")
    ax.set_ylabel("images")
    ax.set_title(f"{result.colorizer} on {result.dataset}/{result.split}: mean "
                 f"{result.metrics['diversity_msssim']:.3f} ({result.metrics['diversity_n']} "
                 "images)", fontsize=9)
    for j, i in enumerate(pick):
        for r in range(2):
            a = fig.add_subplot(gs[1 + r, j])
            a.imshow(rgb[r][i].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if r == 0:
                a.set_title(f"{got.ids[i]}\nMS-SSIM {float(scores[i]):.3f}", fontsize=8)
    fig.tight_layout()

    def save(f):
        fig.savefig(f, format="png", dpi=100)

    atomic_write(path, save)
    plt.close(fig)
    return path
