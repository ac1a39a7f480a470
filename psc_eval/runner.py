"""The evaluation runner: colorize, recombine with the original L, segment, accumulate.

``evaluate(colorizer, dataset, segmenter)`` scores one colorizer row; ``evaluate_rows``
scores several rows in ONE pass over the data (each batch is loaded once and fed to
every row), which is how ``psc-eval miou`` gets the gray / colorized / colour rows of
Fig. 8 for little more than the cost of one. ``run_eval`` is the body of the
``psc-eval miou`` / ``psc-eval psnr`` commands.

Pipeline per batch (paper Sec. 4.3, Table 3; richzhang/colorization's postprocess):

1. ``ab = colorize(L)`` (one sample; oracles get the true ab), checked: shape
   (B, n, 2, H', W'), finite, and inside ``[AB_MIN - 2, AB_MAX + 2]`` Lab units (the
   paper's range [-127, 128] with 2 units of slack for interpolation overshoot and
   float noise; anything further out is a colorizer bug, reported with the image id).
2. ab is rounded to float16 (the cache's storage precision, 0.06 Lab units at |ab| = 128,
   well under one uint8 level) whether or not a cache is used, so cached, resumed and
   uncached runs see bit-identical chroma.
3. ``rgb = lab_to_rgb(L_original, ab)`` once, quantised to uint8 as an image file would
   be (``color.to_uint8``): the judge sees ``rgb_u8 / 255`` and PSNR is taken on
   ``rgb_u8`` against the dataset's uint8 image. PSNR on ab alone is the second figure.
4. ``judge.predict(rgb)`` -> labels; the batch's confusion counts are added to the
   dataset-level matrix (streaming: no prediction outlives its batch, memory stays flat).

Randomness: the colorizer's generator is re-seeded per batch from
``sha256(seed, first index of the batch)``, so a batch's samples do not depend on which
batches ran before it (resume and ``torchrun`` sharding give the same samples); for a
stochastic colorizer they do depend on the batch size, which is part of the cache key.

Cache (``$PSC_HOME/cache/eval`` or ``cache_dir``): one shard file per batch, written
atomically as soon as the batch is done, so an interrupted run loses at most the batch
in flight and a rerun resumes where it stopped:

* ``ab/<key>/<start>-<count>.pt``: the colorizer's float16 ab, keyed by (colorizer name
  and class, weights sha256, config, seed, dataset fingerprint, n_samples, batch size
  for stochastic colorizers). Not written for the reference rows (gray, gt): their ab
  costs nothing to recompute. The key holds the fingerprint's name, root, split, size
  (and toy seed) but not its id list; each shard stores its image ids and is used only
  when they are the batch's ids, so ``--limit`` runs and full runs share batches.
* ``scores/<key>/<start>-<count>.pt``: the batch's confusion counts, per-image PSNR and
  skipped ids, keyed by the ab key plus the judge (name, class, weights sha256) and the
  device type. A repeated run reads only these small files, so it is nearly free.

Distributed (``torchrun --nproc_per_node N``): batches are dealt round-robin to ranks
(batch i goes to rank i mod N); no index is padded or repeated, so nothing needs
de-duplicating; the confusion matrix and PSNR sums are reduced with all_reduce(SUM) and
rank 0 writes the JSON. Ranks share shard names, so a cache filled by one process is
reused by N and vice versa.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import __version__
from .color import lab_parts_to_rgb, to_uint8
from .colorizer import (
    AB_HIGH,
    AB_LOW,
    GrayColorizer,
    GroundTruthColorizer,
    build_colorizer,
    check_ab,
    get_colorizer,
    run_colorizer,
)
from .dist import DistInfo, all_gather_objects, all_reduce_sum, init_distributed, rank_device
from .errors import PscError, UnknownNameError
from .io import atomic_write, atomic_write_json, ensure_dir
from .paths import cache_dir as default_cache_dir
from .results import DEFAULT_OUT, RunResult, write_result

CACHE_VERSION = 1
AB_CACHE_DTYPE = torch.float16
PSNR_BIN_EDGES = [float(x) for x in range(61)]  # dB; finite values beyond are clipped in
REFERENCE_ROWS = ("gray", "gt")
METRICS = ("miou", "psnr")


# ----------------------------------------------------------------------------- helpers


def _jsonable(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return _jsonable(asdict(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, Tensor):
        return x.tolist()
    return repr(x)


def _digest(obj: Any, n: int = 20) -> str:
    return hashlib.sha256(json.dumps(_jsonable(obj), sort_keys=True).encode()).hexdigest()[:n]


def _class_path(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}:{t.__qualname__}"


def batch_seed(seed: int, start: int) -> int:
    """The colorizer generator's seed for the batch starting at dataset index ``start``."""
    h = hashlib.sha256(f"psc-eval:{int(seed)}:{int(start)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """The source tree's commit (best effort; None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], check=False, cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _load_shard(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (a foreign or damaged file: recompute and overwrite it)
        return None


def _save_shard(path: Path, obj: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def _shard_name(start: int, count: int) -> str:
    return f"{start:08d}-{count:05d}.pt"


# ----------------------------------------------------------------------------- segmenters


def build_segmenter(
    name: str, weights: str | Path | None, num_classes: int, device: str, dataset: str
) -> Any:
    """A judge by registry name (``psc_eval.judge``) or ``module:attr`` (a user's class).

    A ``module:attr`` class is called as ``cls(weights=..., num_classes=..., device=...)``
    and must provide ``predict(rgb) -> (B,H,W)`` with rgb (B,3,H,W) in [0, 1].
    Registry judges without ``weights`` use the trained file under $PSC_HOME/judges
    (``psc-eval train-judge``); none there is an error naming the command to run.
    """
    if ":" in name:
        from .colorizer import _import_attr

        cls = _import_attr(name, "segmenter")
        seg = cls(weights=weights, num_classes=num_classes, device=device)
    else:
        from .judge import load_segmenter, resolve_judge_weights

        # A missing trained judge is a one-line error naming the train-judge command:
        # a randomly initialised judge must never score silently.
        weights = resolve_judge_weights(dataset, name, weights)
        seg = load_segmenter(name, weights=weights, num_classes=num_classes, device=device,
                             dataset=dataset)
    if not hasattr(seg, "predict"):
        raise UnknownNameError(
            f"segmenter {name!r} has no predict() method, in --segmenter, "
            "pass a class with predict(rgb) -> (B,H,W) labels"
        )
    if not getattr(seg, "name", None):
        seg.name = name
    return seg


def default_segmenter_name(dataset: str) -> str:
    from .judge import default_segmenter

    return default_segmenter(dataset)


# ----------------------------------------------------------------------------- rows


@dataclass
class _Row:
    colorizer: Any
    name: str
    ab_dir: Path | None  # None: ab not cached (reference rows, or cache off)
    score_dir: Path | None
    cm: Any = None
    psnr: Any = None
    psnr_ab: Any = None
    hist: np.ndarray = field(default_factory=lambda: np.zeros(len(PSNR_BIN_EDGES) - 1, np.int64))
    skipped: list[dict[str, str]] = field(default_factory=list)
    scored: int = 0
    colorized: int = 0
    from_cache: int = 0

    def add(self, shard: dict[str, Any]) -> None:
        if self.cm is not None:
            self.cm.mat += shard["mat"].to(self.cm.mat.dtype)
        v = shard["psnr_rgb"]
        if v.numel():
            self.psnr.update(v)
            self.psnr_ab.update(shard["psnr_ab"])
            fin = v[torch.isfinite(v)].numpy()
            self.hist += np.histogram(np.clip(fin, PSNR_BIN_EDGES[0], PSNR_BIN_EDGES[-1]),
                                      bins=PSNR_BIN_EDGES)[0]
        self.skipped.extend(shard["skipped"])
        self.scored += len(shard["ids"])


def _row_keys(colorizer: Any, name: str, seg: Any, ds: Any, seed: int, n_samples: int,
              batch_size: int, device: str) -> tuple[str, str, dict[str, Any]]:
    ab_ident = {
        "cache_version": CACHE_VERSION,
        "colorizer": name,
        "class": _class_path(colorizer),
        "weights_sha256": getattr(colorizer, "weights_sha256", None),
        "config": _jsonable(getattr(colorizer, "config", None)),
        "seed": int(seed),
        # The fingerprint without its id list: every shard stores its ids and is used only
        # when they match, so a --limit run and a full run share their common batches.
        "dataset": {k: v for k, v in ds.fingerprint().items()
                    if k not in ("num_images", "ids_sha256")},
        "n_samples": int(n_samples),
        "batch_size": int(batch_size) if getattr(colorizer, "stochastic", False) else None,
        "ab_dtype": str(AB_CACHE_DTYPE),
    }
    ab_key = _digest(ab_ident)
    seg_ident = None if seg is None else {
        "segmenter": getattr(seg, "name", None),
        "class": _class_path(seg),
        "weights_sha256": getattr(seg, "weights_sha256", None),
        "num_classes": int(getattr(seg, "num_classes", ds.num_classes)),
        "config": _jsonable(getattr(seg, "config", None)),
    }
    score_ident = {"ab": ab_key, "judge": seg_ident, "device": torch.device(device).type,
                   "psnr_bins": PSNR_BIN_EDGES}
    return ab_key, _digest(score_ident), {"ab": ab_ident, "scores": score_ident}


def _is_reference(colorizer: Any) -> bool:
    return isinstance(colorizer, (GrayColorizer, GroundTruthColorizer))


# ----------------------------------------------------------------------------- evaluate


def evaluate(
    colorizer: Any,
    dataset: Any,
    segmenter: Any = None,
    *,
    metrics: Sequence[str] = ("miou",),
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    limit: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    n_samples: int = 1,
    progress: bool = True,
) -> RunResult:
    """Score one colorizer on a dataset: mIoU through ``segmenter`` and/or PSNR.

    ``colorizer``: a Colorizer object or a registry name; ``dataset``: a SegDataset;
    ``segmenter``: an object with ``predict(rgb) -> (B,H,W)`` (needed for ``"miou"``).
    Returns the RunResult (also on ranks > 0 under torchrun; only the caller writes it).
    """
    return evaluate_rows(
        [colorizer], dataset, segmenter, metrics=metrics, batch_size=batch_size, device=device,
        seed=seed, limit=limit, cache=cache, cache_dir=cache_dir, workers=workers,
        n_samples=n_samples, progress=progress,
    )[0]


def evaluate_rows(
    colorizers: Sequence[Any],
    dataset: Any,
    segmenter: Any = None,
    *,
    metrics: Sequence[str] = ("miou",),
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    limit: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    n_samples: int = 1,
    progress: bool = True,
) -> list[RunResult]:
    """Score several colorizers in one pass over the data (each batch loaded once)."""
    from .metrics import ConfusionMatrix, PsnrMeter

    t0 = time.perf_counter()
    metrics = tuple(metrics)
    for m in metrics:
        if m not in METRICS:
            raise PscError(f"unknown metric {m!r}, in metrics, use {' / '.join(METRICS)}")
    if batch_size < 1:
        raise PscError(f"--batch-size must be >= 1, got {batch_size}, in the options, pass 1+")
    if limit is not None and limit < 1:
        raise PscError(f"--limit must be >= 1, got {limit}, in the options, drop it or pass 1+")
    want_miou = "miou" in metrics
    if want_miou and not getattr(dataset, "has_masks", True):
        raise PscError(
            f"mIoU needs segmentation masks and dataset {dataset.name!r} has none, in --dataset, "
            "use a dataset with masks (toy, voc, cocostuff) or run psc-eval psnr"
        )
    if want_miou and segmenter is None:
        raise PscError("mIoU needs a segmenter (judge), in evaluate(), pass segmenter=...")
    seg = segmenter if want_miou else None

    info = init_distributed(device)
    device = rank_device(device, info)
    ds = dataset if limit is None else copy.copy(dataset).subset(limit)
    n = len(ds)
    num_classes = int(getattr(seg, "num_classes", ds.num_classes)) if seg is not None \
        else ds.num_classes
    if seg is not None and num_classes != ds.num_classes:
        raise PscError(
            f"judge {getattr(seg, 'name', '?')!r} predicts {num_classes} classes but dataset "
            f"{ds.name!r} has {ds.num_classes}, in --segmenter/--weights, "
            "use a judge trained on this dataset"
        )

    croot = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "eval"
    rows: list[_Row] = []
    for c in colorizers:
        if isinstance(c, str):
            c = get_colorizer(c)
        name = str(getattr(c, "name", None) or _class_path(c))
        ab_key, score_key, ident = _row_keys(c, name, seg, ds, seed, n_samples, batch_size,
                                             device)
        ab_dir = score_dir = None
        if cache:
            score_dir = croot / "scores" / score_key
            if not _is_reference(c):
                ab_dir = croot / "ab" / ab_key
            for d, meta in ((score_dir, ident), (ab_dir, ident["ab"])):
                if d is not None and not (d / "key.json").is_file():
                    atomic_write_json(d / "key.json", _jsonable(meta))
        rows.append(_Row(
            c, name, ab_dir, score_dir,
            cm=ConfusionMatrix(num_classes) if seg is not None else None,
            psnr=PsnrMeter(), psnr_ab=PsnrMeter(),
        ))

    batches = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    mine = batches[info.rank::info.world_size]
    existing = [set(os.listdir(r.score_dir)) if r.score_dir is not None else set() for r in rows]
    ab_existing = [set(os.listdir(r.ab_dir)) if r.ab_dir is not None else set() for r in rows]

    bar = _progress(sum(e - s for s, e in mine), progress and info.is_main, ds)
    to_load: list[tuple[int, int]] = []
    pending: dict[tuple[int, int], list[int]] = {}
    try:
        # Batches every row already scored cost one small file read per row.
        for s, e in mine:
            fname = _shard_name(s, e - s)
            need = []
            for i, r in enumerate(rows):
                shard = _load_shard(r.score_dir / fname) if fname in existing[i] else None
                if shard is None or list(shard["all_ids"]) != ds.ids[s:e]:
                    need.append(i)
                else:
                    r.add(shard)
                    r.from_cache += len(shard["ids"])
            if need:
                to_load.append((s, e))
                pending[(s, e)] = need
            else:
                bar.update(e - s)

        if to_load:
            from .data import collate

            loader = torch.utils.data.DataLoader(
                ds, batch_sampler=[list(range(s, e)) for s, e in to_load], collate_fn=collate,
                num_workers=workers,
            )
            for (s, e), batch in zip(to_load, loader):
                fname = _shard_name(s, e - s)
                for i in pending[(s, e)]:
                    r = rows[i]
                    shard = _score_batch(
                        r, batch, ds.ids[s:e], s, fname, ab_existing[i], seg, device, seed,
                        n_samples, num_classes,
                    )
                    if r.score_dir is not None:
                        _save_shard(r.score_dir / fname, shard)
                    r.add(shard)
                bar.update(e - s)
    finally:
        bar.close()

    return [_finish(r, ds, seg, metrics, info, device, seed, batch_size, n_samples, limit,
                    cache, workers, time.perf_counter() - t0) for r in rows]


def _score_batch(r: _Row, batch: dict[str, Any], all_ids: list[str], start: int, fname: str,
                 ab_existing: set[str], seg: Any, device: str, seed: int, n_samples: int,
                 num_classes: int) -> dict[str, Any]:
    from .metrics import ConfusionMatrix, psnr_ab, psnr_rgb_uint8

    ids: list[str] = batch["ids"]
    out: dict[str, Any] = {"all_ids": list(all_ids), "ids": list(ids),
                           "skipped": list(batch["skipped"]),
                           "mat": torch.zeros(num_classes, num_classes, dtype=torch.int64),
                           "psnr_rgb": torch.zeros(0, dtype=torch.float64),
                           "psnr_ab": torch.zeros(0, dtype=torch.float64)}
    if not ids:
        return out
    L = batch["L"].to(device)
    ab_true = batch["ab"].to(device)
    ab = None
    if r.ab_dir is not None and fname in ab_existing:
        cached = _load_shard(r.ab_dir / fname)
        if cached is not None and list(cached["ids"]) == ids:
            ab = cached["ab"].to(device)
            r.from_cache += len(ids)
    if ab is None:
        gen = torch.Generator(device=torch.device(device)).manual_seed(batch_seed(seed, start))
        with torch.inference_mode():
            raw = run_colorizer(r.colorizer, L, ab_true, n_samples=n_samples, generator=gen)
        raw = check_ab(raw, ids, n_samples, r.name)
        ab = raw.detach().to(AB_CACHE_DTYPE)
        r.colorized += len(ids)
        if r.ab_dir is not None:
            _save_shard(r.ab_dir / fname, {"ids": list(ids), "ab": ab.cpu()})
    ab1 = ab[:, 0].to(device=L.device, dtype=L.dtype)  # (B,2,H',W'): Table 3 scores one sample
    with torch.inference_mode():
        rgb_u8 = to_uint8(lab_parts_to_rgb(L, ab1))  # (B,3,H,W) uint8, what a saved image holds
        if "true_u8" not in batch:  # shared by every row of this batch
            batch["true_u8"] = to_uint8(batch["rgb"].to(device))
        true_u8 = batch["true_u8"]
        out["psnr_rgb"] = psnr_rgb_uint8(rgb_u8, true_u8).cpu()
        if ab1.shape[-2:] != ab_true.shape[-2:]:
            ab1 = torch.nn.functional.interpolate(ab1, size=ab_true.shape[-2:], mode="bilinear",
                                                  align_corners=False)
        out["psnr_ab"] = psnr_ab(ab1, ab_true).cpu()
        if seg is not None:
            pred = seg.predict(rgb_u8.to(torch.float32) / 255.0)  # (B,H,W)
            cm = ConfusionMatrix(num_classes)
            cm.update(pred.to(torch.int64), batch["mask"].to(pred.device))  # bincount on device
            out["mat"] = cm.mat
    return out


def _progress(total: int, enabled: bool, ds: Any):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True,
                desc=f"{ds.name}/{ds.split}", leave=False)


def _finish(r: _Row, ds: Any, seg: Any, metrics: tuple[str, ...], info: DistInfo, device: str,
            seed: int, batch_size: int, n_samples: int, limit: int | None, cache: bool,
            workers: int, wall: float) -> RunResult:
    # Everything below is a sum, so ranks reduce by SUM and get the single-process numbers.
    if r.cm is not None:
        all_reduce_sum(r.cm.mat, info)
    sums = torch.tensor([r.psnr.total, r.psnr.count, r.psnr.n_infinite, r.psnr_ab.total,
                         r.psnr_ab.count, r.psnr_ab.n_infinite, r.scored, r.colorized,
                         r.from_cache], dtype=torch.float64)
    hist = torch.from_numpy(r.hist.copy())
    all_reduce_sum(sums, info)
    all_reduce_sum(hist, info)
    r.psnr.total, r.psnr.count, r.psnr.n_infinite = float(sums[0]), int(sums[1]), int(sums[2])
    r.psnr_ab.total, r.psnr_ab.count, r.psnr_ab.n_infinite = \
        float(sums[3]), int(sums[4]), int(sums[5])
    scored, colorized, from_cache = int(sums[6]), int(sums[7]), int(sums[8])
    skipped: dict[str, str] = {}
    for part in all_gather_objects(r.skipped, info):
        for s in part:
            skipped.setdefault(s["id"], s["reason"])
    order = {i: k for k, i in enumerate(ds.ids)}
    skipped_list = [{"id": k, "reason": v} for k, v in
                    sorted(skipped.items(), key=lambda kv: order.get(kv[0], 0))]
    if scored + len(skipped_list) != len(ds):
        raise PscError(
            f"internal count mismatch: {scored} scored + {len(skipped_list)} skipped != {len(ds)}"
            f" images, in the {r.name!r} row, rerun with --no-cache and report the bug"
        )

    pm, pa = r.psnr.compute(), r.psnr_ab.compute()
    m: dict[str, Any] = {"num_images": scored, "num_skipped": len(skipped_list),
                         "psnr": pm["psnr_mean"], "psnr_n": pm["n"],
                         "psnr_n_infinite": pm["n_infinite"], "psnr_ab": pa["psnr_mean"],
                         "psnr_ab_n_infinite": pa["n_infinite"]}
    per_class: dict[str, float] = {}
    convention = None
    if r.cm is not None:
        c = r.cm.compute()
        m.update(miou=c["miou"], pixel_accuracy=c["pixel_accuracy"],
                 mean_accuracy=c["mean_accuracy"], num_pixels=c["num_pixels"])
        names = list(getattr(ds, "class_names", ())) or []
        per_class = {(names[k] if k < len(names) else str(k)): v for k, v in enumerate(c["iou"])}
        convention = c["convention"]
    kind = "miou" if r.cm is not None else "psnr"
    seg_name = "none" if seg is None else (getattr(seg, "name", None) or type(seg).__name__)
    col = r.colorizer
    prov = {
        "psc_eval_version": __version__,
        "git_hash": git_hash(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "world_size": info.world_size,
        "seeds": {"seed": int(seed), "colorizer_generator":
                  "torch.Generator per batch, seeded with sha256('psc-eval:<seed>:<start>')"},
        "config": {
            "metrics": list(metrics), "batch_size": int(batch_size), "n_samples": int(n_samples),
            "scored_sample": 0, "limit": limit, "cache": bool(cache), "workers": int(workers),
            "ab_precision": str(AB_CACHE_DTYPE), "ab_allowed_range": [AB_LOW, AB_HIGH],
            "rgb_quantisation": "uint8 (judge sees rgb_u8/255; PSNR on rgb_u8)",
            "luminance": "original L of the dataset image",
        },
        "dataset_fingerprint": ds.fingerprint(),
        "colorizer_class": _class_path(col),
        "colorizer_weights_sha256": getattr(col, "weights_sha256", None),
        "colorizer_config": _jsonable(getattr(col, "config", None)),
        "judge": None if seg is None else getattr(seg, "name", None),
        "judge_weights_sha256": None if seg is None else getattr(seg, "weights_sha256", None),
        "judge_config": None if seg is None else _jsonable(getattr(seg, "config", None)),
        "msssim_variant": None,
        "miou_convention": convention,
        "psnr_convention": pm["convention"],
        "wall_time_s": wall,
        "cache_stats": {"images_colorized": colorized, "images_from_cache": from_cache},
    }
    hists = {"psnr_rgb": {"bin_edges": PSNR_BIN_EDGES, "counts": hist.tolist(), "unit": "dB",
                          "n_infinite": pm["n_infinite"],
                          "note": "finite values outside the edges are clipped into the end bins"}}
    return RunResult(kind=kind, dataset=ds.name, segmenter=seg_name, colorizer=r.name,
                     split=ds.split, seed=int(seed), metrics=m, per_class_iou=per_class,
                     histograms=hists, skipped=skipped_list, provenance=prov)


# ----------------------------------------------------------------------------- commands


@dataclass
class EvalSummary:
    kind: str
    results: list[RunResult]
    paths: list[Path]
    dataset: Any

    def text(self) -> str:
        """Fig. 8-style table: gray / colorized / colour (gt) rows."""
        first = self.results[0]
        fp = first.provenance["dataset_fingerprint"]
        head = (f"psc-eval {self.kind}: {first.dataset}/{first.split}, {fp['num_images']} images "
                f"at {fp['size']} px, seed {first.seed}")
        if self.kind == "miou":
            sha = first.provenance.get("judge_weights_sha256")
            head += f", judge {first.segmenter}" + (f" (sha256 {sha[:12]})" if sha else "")
        lines = [head]
        cols = f"  {'row':<22}" + (f"{'mIoU':>8}" if self.kind == "miou" else "") + \
            f"{'PSNR RGB (dB)':>15}{'PSNR ab (dB)':>14}"
        lines.append(cols)
        for r in self.results:
            label = {"gray": "gray", "gt": "colour (gt)"}.get(r.colorizer, r.colorizer)
            line = f"  {label:<22}"
            if self.kind == "miou":
                line += f"{r.metrics['miou']:>8.4f}"
            for key, width in (("psnr", 15), ("psnr_ab", 14)):
                v, n_inf = r.metrics[key], r.metrics[f"{key}_n_infinite"]
                # no finite image at all: every image identical, print inf, not nan
                line += f"{'inf' if math.isnan(v) and n_inf else f'{v:.2f}':>{width}}"
            if r.metrics["psnr_n_infinite"]:
                line += f"  ({r.metrics['psnr_n_infinite']} identical images, PSNR inf, not averaged)"
            lines.append(line)
        sk = first.skipped
        reasons = Counter(s["reason"] for s in sk)
        lines.append(f"skipped {len(sk)} images" + (
            " (" + "; ".join(f"{v}x {k}" for k, v in reasons.items()) + ")" if sk else ""))
        main = [r for r in self.results if r.colorizer not in REFERENCE_ROWS] or self.results
        for r in main:
            st = r.provenance["cache_stats"]
            lines.append(f"{r.colorizer}: colorized {st['images_colorized']} images, "
                         f"{st['images_from_cache']} from cache")
        if self.paths:
            lines.append(f"wrote {len(self.paths)} results: " + ", ".join(map(str, self.paths)))
        return "\n".join(lines)


def run_eval(
    kind: str,
    colorizer: str,
    dataset: Any,
    *,
    segmenter: str | None = None,
    weights: str | Path | None = None,
    colorizer_weights: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    out: str | Path = DEFAULT_OUT,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    progress: bool = True,
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    temperature: float | None = None,
) -> EvalSummary:
    """``psc-eval miou`` / ``psc-eval psnr``: the gray, ``colorizer`` and gt rows, one JSON each.

    Cheap checks (limit, output folder, masks, names, weights) all run before any image
    is colorized.
    """
    if kind not in METRICS:
        raise PscError(f"unknown evaluation {kind!r}, in run_eval(), use miou or psnr")
    if limit is not None and limit < 1:
        raise PscError(f"--limit must be >= 1, got {limit}, in the options, drop it or pass 1+")
    if kind == "miou" and not getattr(dataset, "has_masks", True):
        raise PscError(
            f"psc-eval miou needs segmentation masks and dataset {dataset.name!r} has none, "
            f"in --dataset, use a dataset with masks (toy, voc, cocostuff) or run psc-eval psnr"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PscError(f"--device {device} asked but CUDA is not available, in the options, "
                       "use --device cpu")
    ensure_dir(out, "--out folder")
    if cache:
        ensure_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir(),
                   "cache folder")
    info = init_distributed(device)
    dev = rank_device(device, info)

    names = list(dict.fromkeys(["gray", colorizer, "gt"]))
    opts = {} if temperature is None else {"temperature": float(temperature)}
    cols = [build_colorizer(nm, dataset.name, colorizer_weights if nm == colorizer else None,
                            dev, opts if nm == colorizer else None) for nm in names]
    seg = None
    if kind == "miou":
        seg_name = segmenter or default_segmenter_name(dataset.name)
        seg = build_segmenter(seg_name, weights, dataset.num_classes, dev, dataset.name)
        if (precision, channels_last, compile) != ("fp32", False, False):
            if not hasattr(seg, "configure"):
                raise PscError(
                    f"segmenter {seg_name!r} has no configure() for --precision/--channels-last/"
                    "--compile, in --segmenter, drop those options"
                )
            seg.configure(precision=precision, channels_last=channels_last, compile=compile)
    results = evaluate_rows(
        cols, dataset, seg, metrics=("miou",) if kind == "miou" else ("psnr",),
        batch_size=batch_size, device=device, seed=seed, limit=limit, cache=cache,
        cache_dir=None if cache_dir is None else Path(cache_dir), workers=workers,
        progress=progress,
    )
    # The colorized row first, as Fig. 8 reads: gray / colorized / colour.
    paths = [write_result(r, out) for r in results] if info.is_main else []
    return EvalSummary(kind, results, paths, dataset)

