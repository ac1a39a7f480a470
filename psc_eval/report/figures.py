"""Figures of the report from stored runs: Fig. 8 (per-class IoU of gray / colorized /
colour inputs), Fig. 10 (MS-SSIM histograms of two samples) and the ablation's validation
loss curves (training logs). PNG and PDF through matplotlib's Agg backend, with the PDF's
dates removed so that a second report on the same runs writes identical bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write
from ..methods import label as method_label
from .runs import Selection

# matplotlib's own colour cycle keeps every plotting colour out of this code; the two
# reference rows are drawn in its gray and black by name.
_REF_STYLE = {"gray": {"color": "0.65", "hatch": "//"}, "gt": {"color": "0.15"}}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "psc-eval", "font.size": 8})
    return plt


def save(fig: Any, out: Path, stem: str) -> list[Path]:
    """``stem.png`` (150 dpi) and ``stem.pdf`` with no creation date (byte-stable); the
    figure is closed once written."""
    paths = []
    for ext, kw in (("png", {"dpi": 150, "metadata": {"Software": None}}),
                    ("pdf", {"metadata": {"CreationDate": None, "ModDate": None,
                                          "Producer": None, "Creator": None}})):
        p = out / f"{stem}.{ext}"
        atomic_write(p, lambda f, e=ext, k=kw: fig.savefig(f, format=e, **k))
        paths.append(p)
    _plt().close(fig)
    return paths


def fig8(sel: Selection, methods: Sequence[str], out: Path, facts_line: str) -> list[Path]:
    """Per-class IoU bars (and overall mIoU) of gray, each method with runs, and colour.
    Several seeds: the mean per class."""
    plt = _plt()
    keys = [k for m in dict.fromkeys(["gray", *methods, "gt"]) for k, _ in sel.configs(m)]
    names = keys
    classes: list[str] = []
    for m in names:
        for r in sel.runs[m]:
            classes += [c for c in r.result.per_class_iou if c not in classes]
    vals = {}
    for m in names:
        rows = [[_f(r.result.per_class_iou.get(c)) for c in classes]
                + [_f(r.result.metrics.get("miou"))] for r in sel.runs[m]]
        a = np.array(rows, dtype=np.float64)  # (seeds, classes + 1); NaN: class absent
        n = np.isfinite(a).sum(0)
        vals[m] = np.where(n > 0, np.nansum(a, 0) / np.maximum(n, 1), np.nan)
    xs = np.arange(len(classes) + 1)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * (len(classes) + 1) * max(1, len(names) / 3)),
                                    3.4))
    k = 0
    for i, m in enumerate(names):
        style = dict(_REF_STYLE.get(m) or {"color": f"C{k}"})
        if m not in _REF_STYLE:
            k += 1
        ax.bar(xs - 0.4 + width * (i + 0.5), np.nan_to_num(vals[m] * 100), width,
               label=f"{_label(m)} ({vals[m][-1] * 100:.1f})", edgecolor="k",
               linewidth=0.3, **style)
    ax.set_xticks(xs, [*classes, "mean IoU"], rotation=30, ha="right")
    ax.axvline(len(classes) - 0.5, color="k", linewidth=0.5)
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Fig. 8: segmentation of gray, colorized and colour images", fontsize=9)
    # one column right of the axes: any number of methods, never over the title or bars
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    fig.text(0.01, 0.005, facts_line, fontsize=5.5, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, out, "fig8_per_class_iou")


def fig10(sel: Selection, out: Path, facts_line: str) -> list[Path]:
    """MS-SSIM histograms of two samples per gray input, one curve per diverse method
    (fraction of images per bin, so methods with different image counts compare)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    items = sorted(sel.runs.items(), key=lambda kv: (kv[0] != "ours", kv[0]))
    n, lo = len(items), 1.0
    for i, (m, runs) in enumerate(items):
        r = runs[0].result  # one seed per histogram: seeds are not pooled
        h = r.histograms["diversity_msssim"]
        edges = np.asarray(h["bin_edges"], np.float64)
        counts = np.asarray(h["counts"], np.float64)
        if counts.any():
            lo = min(lo, float(edges[:-1][counts > 0].min()))
        frac = counts / max(counts.sum(), 1)
        w = np.diff(edges) / n
        ax.bar(edges[:-1] + w * i, frac, w, align="edge", color=f"C{i}", edgecolor="k",
               linewidth=0.3, label=f"{m} (seed {r.seed}): mean "
               f"{r.metrics.get('diversity_msssim', float('nan')):.3f}, "
               f"{int(counts.sum())} images")
    ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    ax.set_xlabel("MS-SSIM between two samples of one gray input (1 = identical)")
    ax.set_ylabel("fraction of images")
    ax.set_title("Fig. 10: sample diversity", fontsize=9, pad=12 + 9 * ((n + 1) // 2))
    ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=2)
    fig.text(0.01, 0.005, facts_line, fontsize=5.5, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, out, "fig10_msssim")


def ablation_curves(logs: dict[str, list[dict[str, Any]]], out: Path,
                    dataset: str) -> list[Path]:
    """Validation L_gen and L_seg per epoch of each ablation variant (training logs)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    keys = [("val_L_gen_bpd", "val L_gen (bits per chroma value)"),
            ("val_L_seg", "val L_seg (cross-entropy per pixel)")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for i, (name, rows) in enumerate(logs.items()):
        for ax, (k, lab) in zip(axes, keys):
            pts = [(int(r["epoch"]), float(r[k])) for r in rows if r.get(k) not in (None, "")]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, color=f"C{i}", label=name)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(lab)
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"Ablation variants: validation losses per epoch ({dataset}, training logs)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out, "ablation_val_losses")


def learning_series(sel: Selection) -> dict[str, list[tuple[int, float]]]:
    """Row label -> [(images seen, validation value)] of the loss the plateau rule read,
    over the epochs it read, from the run record of the checkpoint each row scored (rows
    trained before the protocol have no images_seen and are left out). One line per
    trained model: rows that score the same weights (another temperature, psc-embedding
    reading ours) share the first row's line, labelled by the method."""
    out: dict[str, list[tuple[int, float]]] = {}
    seen: set = set()
    for name in sel.colorizers():
        for _key, runs in sel.configs(name):
            prov = runs[0].result.provenance
            ck = prov.get("colorizer_checkpoint") or {}
            rule = (ck.get("run") or {}).get("plateau") or {}
            metric, first = rule.get("metric"), int(rule.get("first_epoch") or 1)
            # from the first epoch the rule reads (Deshpande: after the VAE stage)
            pts = [(int(h["images_seen"]), float(h[metric])) for h in ck.get("history") or []
                   if metric and "images_seen" in h and h.get(metric) is not None
                   and int(h.get("epoch") or 0) >= first]
            weights = prov.get("colorizer_weights_sha256") or ck.get("path")
            if len(pts) >= 2 and weights not in seen:
                seen.add(weights)
                out[f"{method_label(name)}: {metric.removeprefix('val_')}"] = pts
    return out


def learning_curves(series: dict[str, list[tuple[int, float]]], out: Path, dataset: str,
                    checkpoints: Sequence[dict[str, Any]] = ()) -> list[Path]:
    """Each method's validation loss (the one its plateau rule reads) against images seen,
    normalised per method to [0, 1] between its highest and lowest value, so every method
    fits one plot; a flat tail is a plateau. ``checkpoints``: stored
    ``checkpoint-miou`` results, drawn beside it (the judge's mIoU at a few epochs)."""
    plt = _plt()
    pts_ck = [c for c in checkpoints if any(isinstance(p.get("miou"), float)
                                            and p.get("images_seen") for p in c["points"])]
    fig, axes = plt.subplots(1, 2 if pts_ck else 1, figsize=(11 if pts_ck else 7, 4),
                             squeeze=False)
    ax = axes[0][0]
    for i, (name, pts) in enumerate(series.items()):
        x, y = zip(*pts)
        lo, hi = min(y), max(y)
        ax.plot(x, [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in y], marker="o",
                markersize=2.5, color=f"C{i % 10}", ls="-" if i < 10 else "--", label=name)
    ax.set_xlabel("training images seen")
    ax.set_ylabel("validation loss, normalised per method")
    ax.legend(fontsize=6, frameon=False, loc="upper right")
    ax.set_title(f"Learning curves ({dataset}): the loss each method's plateau rule reads",
                 fontsize=9)
    if pts_ck:
        ax2 = axes[0][1]
        for i, c in enumerate(pts_ck):
            pts = [(p["images_seen"], 100 * p["miou"], p.get("miou_ci") or [None, None])
                   for p in c["points"] if isinstance(p.get("miou"), float)
                   and p.get("images_seen")]
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            # the interval's arms; a point without an interval gets none
            err = [[v - 100 * ci[0] if ci[0] is not None else 0.0 for _, v, ci in pts],
                   [100 * ci[1] - v if ci[1] is not None else 0.0 for _, v, ci in pts]]
            ax2.errorbar(x, y, yerr=err, marker="o", markersize=3, capsize=2,
                         color=f"C{i}", label=method_label(c["colorizer"]))
        ax2.set_xlabel("training images seen (epoch checkpoints)")
        ax2.set_ylabel("judge mIoU (%) on val, 95% CI")
        ax2.legend(fontsize=7, frameon=False)
        ax2.set_title("mIoU at epoch checkpoints", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "learning_curves")


def decoding_curves(results: Sequence[dict[str, Any]], out: Path, dataset: str) -> list[Path]:
    """The judge's mIoU against the sampling temperature on held-out TRAINING images
    (``psc-eval select-temperature``), one line per colorizer, the selected value marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, r in enumerate(results):
        pts = [(c["temperature"], 100 * c["miou"]) for c in r["curve"]
               if isinstance(c.get("miou"), float)]
        if not pts:
            continue
        ax.plot(*zip(*pts), marker="o", markersize=3, color=f"C{i}",
                label=f"{method_label(r['colorizer'])} (selected T={r['selected']:g})")
        sel = [y for x, y in pts if x == r["selected"]]
        if sel:
            ax.plot([r["selected"]], sel, marker="*", markersize=10, color=f"C{i}")
    ax.set_xlabel("sampling temperature")
    ax.set_ylabel("mIoU (%), held-out train images")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"Temperature selection ({dataset}): never on val", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "decoding_temperature")


def _label(key: str) -> str:
    name = key.split(" (", 1)[0]
    return method_label(name) + key[len(name):]


def _f(x: Any) -> float:
    return float("nan") if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)



def fig9(result: dict[str, Any], out: Path) -> list[Path]:
    """Validation segmentation loss per epoch: h from scratch, from a pretrained colorizer,
    and trained jointly with the colorizer (the stored ``psc-eval seg-curves`` result)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    labels = {"scratch": "h from scratch", "pretrained": "h from a pretrained colorizer",
              "joint": "h trained jointly (ours)"}
    for key in ("scratch", "pretrained", "joint"):
        ys = result["curves"].get(key) or []
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker="o", label=labels[key])
    ax.set_xlabel(f"epoch ({result['steps_per_epoch']} steps each)")
    ax.set_ylabel("validation L_seg (nats per pixel)")
    ax.set_title(f"Fig. 9 ({result['dataset']}, {result['val_images']} val images)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return save(fig, out, "fig9_seg_curves")
