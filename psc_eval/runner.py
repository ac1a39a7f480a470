"""The evaluation loop: colorize, recombine with the original L, judge, score.

``evaluate(colorizer, dataset, segmenter, cfg)`` scores one colorizer row;
``evaluate_rows`` scores several rows in ONE pass over the data (each batch is loaded once
and fed to every row), which is how ``psc-eval miou`` gets the gray / colorized / colour
rows of Fig. 8 for little more than the cost of one. ``run_eval`` is the body of the
``psc-eval miou`` / ``psc-eval psnr`` commands. All of them take an ``EvalConfig``
(``psc_eval.config``) or its fields as keywords.

Pipeline per batch (paper Sec. 4.3, Table 3; richzhang/colorization's postprocess):

1. ``ab = colorize(L, n)`` (oracles get the true ab), with ``n`` the largest ``n_samples``
   of the run's scorers (a deterministic colorizer is asked once and its sample repeated),
   checked: shape (B, n, 2, H', W'), finite, and inside ``[AB_MIN - 2, AB_MAX + 2]`` Lab
   units (the paper's range [-127, 128] with 2 units of slack for interpolation overshoot
   and float noise; anything further out is a colorizer bug, reported with the image id).
2. ab is rounded to float16 (the cache's storage precision, 0.06 Lab units at |ab| = 128,
   well under one uint8 level) whether or not a cache is used, so cached, resumed and
   uncached runs see bit-identical chroma.
3. ``rgb = lab_to_rgb(L_original, ab[:, 0])`` once, quantised to uint8 as an image file
   would be (``color.to_uint8``): the judge sees ``rgb_u8 / 255`` and PSNR is taken on
   ``rgb_u8`` against the dataset's uint8 image.
4. ``judge.predict(rgb)`` -> labels, when a scorer needs the judge.
5. Every scorer of the row (``psc_eval.metrics.SCORERS``) adds the batch to its sum state
   (streaming: no prediction outlives its batch, memory stays flat); the batch's states
   are stored as one cache shard (``psc_eval.cache``), so a rerun resumes where it stopped.
   Scorers that do not need the judge run before it (beside it, on the scoring thread)
   and see ``pred=None``; after the judge only those that read its labels are left.

Randomness and precision: ``psc_eval.colorize`` (the one colorize path, shared with the
sample grids, the study and the naturalness proxy): per-batch generators seeded from
``(seed, first index of the batch)``, sample 0 drawn alone, further samples from a second
stream; for a stochastic colorizer the samples depend on the batch size, which is part of
the cache key.

Distributed (``torchrun --nproc_per_node N``): batches are dealt round-robin to ranks
(batch i goes to rank i mod N); no index is padded or repeated, so nothing needs
de-duplicating; the scorers' states and the counters are reduced with all_reduce(SUM) and
rank 0 writes the JSON. Ranks share shard names, so a cache filled by one process is
reused by N and vice versa.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .cache import RowCache, class_path, row_keys, scorer_code, shard_name
from .color import to_uint8
from .colorize import (
    AB_DTYPE,
    asked_samples,
    batch_seed,
    canonical_batches,
    check_ab,
    draw_samples,
    draw_samples_parts,
    samples_parts,
    to_rgb_u8,
)
from .colorizer import (
    AB_HIGH,
    AB_LOW,
    GrayColorizer,
    GroundTruthColorizer,
    build_colorizer,
    get_colorizer,
)
from .config import REFERENCE_ROWS, EvalConfig, make_config
from .dist import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    init_distributed,
    rank_device,
    resolve_device,
)
from .errors import PscError
from .io import ensure_dir
from .metrics.base import ScoreContext, Scorer, build_scorers, scorer_classes
from .paths import cache_dir as default_cache_dir
from .results import RunResult, build_provenance, write_result
from .summary import EvalSummary

__all__ = ["EvalSummary", "batch_seed", "check_ab", "draw_samples", "evaluate", "evaluate_rows",
           "run_eval"]


@dataclass
class _Row:
    colorizer: Any
    name: str
    cache: RowCache
    scorers: dict[str, Scorer]
    codes: dict[str, str]  # scorer name -> scorer_code, taken once per run
    skipped: list[dict[str, str]] = field(default_factory=list)
    scored: int = 0
    colorized: int = 0
    from_cache: int = 0
    # chroma drawn ahead for the batches of a chunk (whole-split batching), by batch start
    ready: dict[int, Tensor] = field(default_factory=dict)

    def add(self, shard: dict[str, Any]) -> None:
        for n, s in self.scorers.items():
            s.merge(shard["states"][n])
        self.skipped.extend(shard["skipped"])
        self.scored += len(shard["ids"])


def _is_reference(colorizer: Any) -> bool:
    return isinstance(colorizer, (GrayColorizer, GroundTruthColorizer))


# ----------------------------------------------------------------------------- evaluate


def evaluate(colorizer: Any, dataset: Any, segmenter: Any = None,
             cfg: EvalConfig | None = None, **fields: Any) -> RunResult:
    """Score one colorizer on a dataset with the scorers of ``cfg`` (default: mIoU + PSNR).

    ``colorizer``: a Colorizer object or a registry name; ``dataset``: a SegDataset;
    ``segmenter``: an object with ``predict(rgb) -> (B,H,W)`` (needed by ``miou``);
    ``cfg`` / ``fields``: the ``EvalConfig``. Returns the RunResult (also on ranks > 0
    under torchrun; only the caller writes it).
    """
    return evaluate_rows([colorizer], dataset, segmenter, cfg, **fields)[0]


def evaluate_rows(colorizers: Sequence[Any], dataset: Any, segmenter: Any = None,
                  cfg: EvalConfig | None = None, **fields: Any) -> list[RunResult]:
    """Score several colorizers in one pass over the data (each batch loaded once)."""
    t0 = time.perf_counter()
    cfg = make_config(cfg, **fields)
    classes = scorer_classes(cfg.scorer_names)
    _check_masks(classes, dataset)
    judged = [n for n, c in classes.items() if c.needs_judge]
    if judged and segmenter is None:
        raise PscError(f"{', '.join(judged)} needs a segmenter (judge), in evaluate(), "
                       "pass segmenter=...")
    seg = segmenter if judged else None

    dev = resolve_device(cfg.device)
    info = init_distributed(dev)
    device = rank_device(dev, info)
    ds = dataset if cfg.limit is None else copy.copy(dataset).subset(cfg.limit)
    n = len(ds)
    num_classes = int(getattr(seg, "num_classes", ds.num_classes)) if seg is not None \
        else ds.num_classes
    if seg is not None and num_classes != ds.num_classes:
        raise PscError(
            f"judge {getattr(seg, 'name', '?')!r} predicts {num_classes} classes but dataset "
            f"{ds.name!r} has {ds.num_classes}, in --segmenter/--weights, "
            "use a judge trained on this dataset"
        )
    n_samples = max([cfg.n_samples, *(c.n_samples for c in classes.values())])
    cfg = cfg.resolved(
        device=device, n_samples=n_samples, dataset=ds.name, split=ds.split, size=ds.size,
        root=None if getattr(dataset, "root", None) is None else str(dataset.root),
        segmenter=cfg.segmenter if seg is None or cfg.segmenter else getattr(seg, "name", None),
    )

    croot = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir() / "eval"
    class_names = list(getattr(ds, "class_names", ()))
    rows: list[_Row] = []
    for c in colorizers:
        if isinstance(c, str):
            c = get_colorizer(c)
        name = str(getattr(c, "name", None) or class_path(c))
        scorers = build_scorers(cfg.scorer_names, num_classes, class_names)
        for sc in scorers.values():
            sc.setup(ds, cfg)  # size-dependent variants, priors, bootstrap options
        opts = {k: o for k, o in ((k, sc.options()) for k, sc in scorers.items()) if o}
        keys = row_keys(c, name, seg, ds, cfg.seed, asked_samples(c, n_samples), cfg.batch_size,
                        device, scorer_options=opts)
        cache = RowCache.open(croot, keys, store_ab=not _is_reference(c), enabled=cfg.cache)
        rows.append(_Row(c, name, cache, scorers,
                         {k: scorer_code(sc) for k, sc in scorers.items()}))

    batches = canonical_batches(n, cfg.batch_size)
    mine = batches[info.rank::info.world_size]
    bar = _progress(sum(e - s for s, e in mine), cfg.progress and info.is_main, ds)
    scoring = _Scoring(score_thread())
    to_load: list[tuple[int, int]] = []
    pending: dict[tuple[int, int], list[int]] = {}
    try:
        # Batches every row already scored cost one small file read per row.
        for s, e in mine:
            fname = shard_name(s, e - s)
            need = []
            for i, r in enumerate(rows):
                shard = r.cache.load_scores(fname, ds.ids[s:e], r.scorers, r.codes)
                if shard is None:
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
                num_workers=cfg.workers, pin_memory=torch.device(device).type == "cuda",
            )
            batches_in = zip(to_load, loader)
            if scoring.pool is not None and not cfg.workers:  # load beside the judge too
                batches_in = _prefetch(batches_in)
            try:
                jobs = _jobs(batches_in, rows, pending, cfg.sample_batches, device, cfg.seed,
                             n_samples)
                _run_jobs(jobs, scoring, seg, ds.ids, device, cfg.seed, n_samples, bar)
            finally:
                if hasattr(batches_in, "close"):
                    batches_in.close()  # stops the loading thread on an error or interrupt
        scoring.close()
    finally:
        scoring.close(cancel=True)  # an error or interrupt: the judged batches are stored
        bar.close()

    return [_finish(r, ds, seg, cfg, info, time.perf_counter() - t0) for r in rows]


def _check_protocol_run(colorizer: Any, dataset: str) -> None:
    """A colorizer named without ``--colorizer-weights`` reads the protocol run of its
    method under $PSC_HOME (else the shipped model). A run there of ANOTHER configuration
    (trained before run folders were keyed on their config, or before the protocol
    changed) would be scored under the method's name with other numbers: refused, one
    line, naming what differs and the two ways on."""
    from .checkpoint import load_checkpoint
    from .paths import colorizer_dir
    from .training.entry import protocol_diff

    info = getattr(colorizer, "checkpoint_info", None) or {}
    variant = getattr(colorizer, "weights_variant", None) or getattr(colorizer, "name", None)
    if info.get("source") != "trained" or not variant:
        return
    last = colorizer_dir(dataset, str(variant)) / "last.pt"
    if Path(str(info.get("path"))) != last:
        return
    other = protocol_diff(str(variant), dataset, load_checkpoint(last).get("config") or {})
    if other:
        raise PscError(
            f"the trained {variant} under $PSC_HOME has another configuration than the "
            f"protocol's ({', '.join(other[:4])}{', ...' if len(other) > 4 else ''}), "
            f"{last.parent}, score it with --colorizer-weights {last}, or move that folder "
            "away to use the protocol's run (psc-eval train keys other configs' runs)")


def _check_masks(classes: dict[str, Any], ds: Any, who: str | None = None) -> None:
    need = [n for n, c in classes.items() if c.needs_masks]
    if need and not getattr(ds, "has_masks", True):
        raise PscError(
            f"{who or 'metric ' + repr(need[0])} needs segmentation masks and dataset {ds.name!r} has none, in --dataset, "
            "use a dataset with masks (toy, voc, cocostuff) or run psc-eval psnr"
        )


def score_thread() -> bool:
    """Whether the scorers run on a thread of their own beside the colorizer and the judge:
    when the machine has a core the run's torch threads leave free (``PSC_SCORE_THREAD``
    = 1 / 0 forces it on / off). The numbers are the same either way (one scoring thread
    takes the batches in order: every sum adds in the same order)."""
    force = os.environ.get("PSC_SCORE_THREAD")
    if force in ("0", "1"):
        return force == "1"
    return (os.cpu_count() or 1) > torch.get_num_threads()


class _Scoring:
    """Scores batches on one worker thread, in submission order, while the caller judges
    the next batch (whose chroma and RGB the same thread prepared ahead, ``ahead``); at
    most ``depth`` batches wait to be scored, so memory stays flat. Off: each batch is
    scored at once, on the caller's thread. ``close()`` waits and re-raises the first
    error; ``close(cancel=True)`` (an error or interrupt upstream) still scores and stores
    the batches already judged (nothing computed is lost), then lets the caller's
    exception go on."""

    def __init__(self, threaded: bool, depth: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="psc-score") if threaded else None
        self.depth = depth
        self.waiting: list[Any] = []

    def submit(self, fn: Any, *args: Any) -> None:
        if self.pool is None:
            fn(*args)
            return
        while len(self.waiting) >= self.depth:
            self.waiting.pop(0).result()
        self.waiting.append(self.pool.submit(fn, *args))

    def ahead(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` queued before the scoring submitted after it (its value through
        ``wait``). Off: run when ``wait`` asks for it, i.e. after the scoring submitted in
        between, so an error in it never leaves a judged batch unscored."""
        return functools.partial(fn, *args) if self.pool is None else self.pool.submit(fn, *args)

    def wait(self, value: Any) -> Any:
        return value.result() if self.pool is not None else value()

    def close(self, cancel: bool = False) -> None:
        if self.pool is None:
            return
        if cancel:
            self.pool.shutdown(wait=True)
            return
        try:
            for f in self.waiting:
                f.result()
        finally:
            self.waiting = []


def _prefetch(items: Any, depth: int = 2) -> Any:
    """Iterate ``items`` on a thread of its own, at most ``depth`` ahead of the consumer
    (the main thread then only judges while the next batches render); the items and
    their order are unchanged, an error in ``items`` is raised at its place, and a
    consumer that stops early stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001 - re-raised on the consumer's side
            put((end, e))

    t = threading.Thread(target=produce, name="psc-load", daemon=True)
    t.start()
    try:
        while True:
            x, err = q.get()
            if x is end:
                if err is not None:
                    raise err
                return
            yield x
    finally:
        stop.set()
        t.join()


def _score(r: _Row, ctx: ScoreContext | None, judged: bool) -> dict[str, Scorer]:
    """Fresh states of the row's scorers that need the judge (``judged``) or do not, each
    updated with one batch (none: every image of the batch was skipped)."""
    fresh = {name: s.empty() for name, s in r.scorers.items() if s.needs_judge == judged}
    if ctx is not None:
        with torch.inference_mode():  # thread-local: entered on the scoring thread
            for s in fresh.values():
                s.update(ctx)
    return fresh


def _score_and_store(r: _Row, batch: dict[str, Any], all_ids: list[str], fname: str,
                     ctx: ScoreContext | None, early: Any) -> None:
    """The row's scorers on one judged batch -> its cache shard, stored and added;
    ``early()``: the states of the scorers that do not read the judge, scored before it."""
    fresh = {**early(), **_score(r, ctx, judged=True)}
    shard = {"all_ids": list(all_ids), "ids": list(batch["ids"]),
             "skipped": list(batch["skipped"]),
             "states": {name: fresh[name].state_dict() for name in r.scorers},
             "code": dict(r.codes)}
    r.cache.save_scores(fname, shard)
    r.add(shard)


def _draw_ahead(rows: list[_Row], chunk: list[tuple[tuple[int, int], dict[str, Any]]],
                pending: dict[tuple[int, int], list[int]], device: str, seed: int,
                n_samples: int) -> None:
    """Whole-split batching: a row whose colorizer samples several batches at once
    (``colorize_parts``) gets the chroma of every batch of the chunk it still has to
    colorize (not in its ab cache) in one call, kept in ``row.ready`` for ``_colorize``;
    the samples are those of batch-by-batch calls (``draw_samples_parts``)."""
    for i, r in enumerate(rows):
        if not samples_parts(r.colorizer):
            continue
        parts = []
        for (s, e), batch in chunk:
            ids = batch["ids"]
            if i in pending[(s, e)] and ids and \
                    r.cache.load_ab(shard_name(s, e - s), ids) is None:
                parts.append((batch["L"].to(device), batch["ab"].to(device), s, ids))
        if len(parts) < 2:
            continue
        drawn = draw_samples_parts(r.colorizer, parts, n_samples, seed, device, r.name)
        for (_, _, s, _), ab in zip(parts, drawn):
            r.ready[s] = ab


def _colorize(r: _Row, L: Tensor, ab_true: Tensor, ids: list[str], start: int, fname: str,
              device: str, seed: int, n_samples: int) -> Tensor:
    """(B, n_samples, 2, H', W') float16 chroma, from the ab cache, drawn ahead with its
    chunk, or from the colorizer."""
    raw = r.ready.pop(start, None)  # drawn ahead: its batch had no chroma in the cache
    ab = None if raw is not None else r.cache.load_ab(fname, ids)
    if ab is not None:
        ab = ab.to(device)
        r.from_cache += len(ids)
    else:
        if raw is None:
            raw = draw_samples(r.colorizer, L, ab_true, n_samples, seed, start, device, ids,
                               r.name)
        ab = raw.detach().to(AB_DTYPE)
        r.colorized += len(ids)
        r.cache.save_ab(fname, ids, ab)
    return ab.expand(-1, n_samples, -1, -1, -1)


def _jobs(batches_in: Any, rows: list[_Row], pending: dict[tuple[int, int], list[int]],
          sample_batches: int, device: str, seed: int, n_samples: int) -> Iterator[Any]:
    """(row, batch, start, end) jobs in data order. A row that samples several batches at
    once gets its chroma for ``sample_batches`` batches in one call (``_draw_ahead``); with
    no such row, batches are taken one at a time (the first is judged as soon as loaded)."""
    size = sample_batches if any(samples_parts(r.colorizer) for r in rows) else 1
    while chunk := list(itertools.islice(batches_in, size)):
        _draw_ahead(rows, chunk, pending, device, seed, n_samples)
        for (s, e), batch in chunk:
            for i in pending[(s, e)]:
                yield rows[i], batch, s, e


def _run_jobs(jobs: Iterator[tuple[_Row, dict[str, Any], int, int]], scoring: _Scoring,
              seg: Any, all_ids: list[str], device: str, seed: int, n_samples: int,
              bar: Any) -> None:
    """Colorize, judge and score (row, batch, start, end) jobs in order. While the judge
    labels one job, the scoring thread prepares the next job's chroma and RGB and runs the
    scorers that do not read the judge on this one (they see ``pred=None``); after the
    judge, only the scorers that need its labels are left (and the shard is stored)."""
    def prepare(job: Any) -> Any:
        r, batch, s, e = job
        return scoring.ahead(_prepare, r, batch, s, shard_name(s, e - s), device, seed,
                             n_samples)

    job = next(jobs, None)
    ahead = prepare(job) if job is not None else None
    failed: Exception | None = None
    while job is not None:
        r, batch, s, e = job
        ready = scoring.wait(ahead)
        try:  # may draw the next chunk's samples (while nothing else colorizes)
            job = next(jobs, None)
        except Exception as err:  # noqa: BLE001 - raised once this job is judged and scored
            failed, job = err, None
        ahead = prepare(job) if job is not None else None
        early = scoring.ahead(_score, r, None if ready is None else replace(ready, pred=None),
                              False)
        scoring.submit(_score_and_store, r, batch, all_ids[s:e], shard_name(s, e - s),
                       _judge(ready, seg), functools.partial(scoring.wait, early))
        if job is None or job[1] is not batch:
            bar.update(e - s)
    if failed is not None:
        raise failed


def _prepare(r: _Row, batch: dict[str, Any], start: int, fname: str, device: str,
             seed: int, n_samples: int) -> ScoreContext | None:
    """Colorize one batch of one row and recombine it with L into the uint8 RGB the judge
    reads (None: every image of the batch was skipped)."""
    ids: list[str] = batch["ids"]
    if not ids:
        return None
    L = batch["L"].to(device)
    ab_true = batch["ab"].to(device)
    ab = _colorize(r, L, ab_true, ids, start, fname, device, seed, n_samples)
    ab = ab.to(device=L.device, dtype=L.dtype)  # (B,n,2,H',W')
    rgb_u8 = to_rgb_u8(L, ab[:, 0])  # (B,3,H,W) uint8, a saved image
    with torch.inference_mode():
        if "true_u8" not in batch:  # shared by every row of this batch
            batch["true_u8"] = to_uint8(batch["rgb"].to(device))
    return ScoreContext(ids=ids, start=start, L=L, ab=ab, ab_true=ab_true, rgb_u8=rgb_u8,
                        true_u8=batch["true_u8"], mask=batch.get("mask"), pred=None,
                        colorizer=r.name, batch=batch)


def _judge(ctx: ScoreContext | None, seg: Any) -> ScoreContext | None:
    """The judge's labels of a prepared batch (when a scorer needs them)."""
    if ctx is None or seg is None:
        return ctx
    with torch.inference_mode():
        ctx.pred = seg.predict(ctx.rgb_u8.to(torch.float32) / 255.0)
    return ctx


def _progress(total: int, enabled: bool, ds: Any):
    from .progress import bar

    return bar(total=total, unit="img", disable=not enabled, dynamic_ncols=True,
               desc=f"{ds.name}/{ds.split}", leave=False)


def _finish(r: _Row, ds: Any, seg: Any, cfg: EvalConfig, info: DistInfo,
            wall: float) -> RunResult:
    # Every state is a sum, so ranks reduce by SUM and get the single-process numbers.
    for s in r.scorers.values():
        s.all_reduce(info)
    counts = torch.tensor([r.scored, r.colorized, r.from_cache], dtype=torch.int64)
    all_reduce_sum(counts, info)
    scored, colorized, from_cache = (int(x) for x in counts.tolist())
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

    metrics: dict[str, Any] = {"num_images": scored, "num_skipped": len(skipped_list)}
    histograms: dict[str, Any] = {}
    per_class: dict[str, float] = {}
    per_class_metrics: dict[str, dict[str, float]] = {}
    per_image: dict[str, Any] = {}
    conventions: dict[str, Any] = {}
    for s in r.scorers.values():
        out = s.compute()
        metrics.update(out.metrics)
        histograms.update(out.histograms)
        per_class.update(out.per_class)
        per_class_metrics.update(out.per_class_metrics)
        if "key" in out.per_image and per_image.get("key", out.per_image["key"]) != \
                out.per_image["key"]:
            raise PscError(f"internal error: scorers of the {r.name!r} row saw different "
                           "images, rerun with --no-cache and report the bug")
        per_image.update(out.per_image)
        conventions.update(out.provenance)
    config = {**cfg.record(), "scored_sample": 0, "ab_precision": str(AB_DTYPE),
              "ab_allowed_range": [AB_LOW, AB_HIGH],
              "rgb_quantisation": "uint8 (judge sees rgb_u8/255; PSNR on rgb_u8)",
              "luminance": "original L of the dataset image"}
    prov = build_provenance(
        config=config, device=cfg.device, world_size=info.world_size, seed=cfg.seed,
        dataset_fingerprint=ds.fingerprint(), colorizer=r.colorizer, judge=seg,
        conventions=conventions, wall_time_s=wall,
        cache_stats={"images_colorized": colorized, "images_from_cache": from_cache},
    )
    seg_name = "none" if seg is None else (getattr(seg, "name", None) or type(seg).__name__)
    return RunResult(kind=cfg.eval_kind, dataset=ds.name, segmenter=seg_name, colorizer=r.name,
                     split=ds.split, seed=int(cfg.seed), metrics=metrics,
                     per_class_iou=per_class, histograms=histograms, skipped=skipped_list,
                     provenance=prov, per_class_metrics=per_class_metrics,
                     per_image=per_image)


# ----------------------------------------------------------------------------- command


def open_dataset(cfg: EvalConfig) -> Any:
    from .data import get_dataset

    return get_dataset(cfg.dataset, root=cfg.root, split=cfg.split, size=cfg.size,
                       allow_partial=cfg.allow_partial)


def run_eval(kind: str, colorizer: Any, dataset: Any = None, cfg: EvalConfig | None = None,
             **fields: Any) -> EvalSummary:
    """``psc-eval miou`` / ``psc-eval psnr``: the gray, colorizer and gt rows, one JSON each.

    ``colorizer``: a registry name, a ``module:attr`` path, a colorizer object, or a list
    of those (several rows in one pass over the data). ``colorizer_weights`` applies to a
    single colorizer only; ``temperature`` to every one of them.

    ``dataset``: a SegDataset, or a dataset name / None to open ``cfg.dataset`` with the
    config's root, split and size. Cheap checks (limit, output folder, masks, names,
    weights) all run before any image is colorized.
    """
    if isinstance(dataset, str):
        fields["dataset"], dataset = dataset, None
    cfg = make_config(cfg, kind=kind, **fields)
    ds = open_dataset(cfg) if dataset is None else dataset
    classes = scorer_classes(cfg.scorer_names)
    _check_masks(classes, ds, f"psc-eval {cfg.eval_kind}")
    dev = resolve_device(cfg.device)
    ensure_dir(cfg.out, "--out folder")
    if cfg.cache:
        ensure_dir(Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir(),
                   "cache folder")
    info = init_distributed(dev)
    dev = rank_device(dev, info)

    asked = list(colorizer) if isinstance(colorizer, (list, tuple)) else [colorizer]
    if not asked:
        raise PscError("no colorizer given, in --colorizer, name at least one")
    if cfg.colorizer_weights is not None and len(asked) > 1:
        raise PscError(f"--colorizer-weights with {len(asked)} colorizers, in the options, "
                       "evaluate one colorizer per weights file")
    for c in asked:
        if hasattr(c, "check_ids"):  # stored predictions: every scored id has its file
            scored = ds.ids if cfg.limit is None else ds.ids[:cfg.limit]
            c.check_ids(ds.ids, scored, getattr(c, "n_per_id", 1))
    opts = {} if cfg.temperature is None else {"temperature": float(cfg.temperature)}
    cols = []
    for c in [REFERENCE_ROWS[0], *asked, REFERENCE_ROWS[1]]:
        if not isinstance(c, str):
            cols.append(c)  # an object (notebooks): used as it is
        elif c not in [getattr(x, "name", x) for x in cols]:
            user = c not in REFERENCE_ROWS
            built = build_colorizer(c, ds.name, cfg.colorizer_weights if user else None,
                                    dev, opts if user else None)
            if user and cfg.colorizer_weights is None:
                _check_protocol_run(built, ds.name)
            cols.append(built)
    seg = None
    if any(c.needs_judge for c in classes.values()):
        from .judge.build import build_segmenter, default_segmenter_name

        seg_name = cfg.segmenter or default_segmenter_name(ds.name)
        seg = build_segmenter(seg_name, cfg.weights, ds.num_classes, dev, ds.name,
                              cfg.judge_inference())
        cfg = replace(cfg, segmenter=seg_name)
    results = evaluate_rows(cols, ds, seg, replace(cfg, device=dev))
    paths = [write_result(r, cfg.out) for r in results] if info.is_main else []
    return EvalSummary(cfg.eval_kind, results, paths, ds)
