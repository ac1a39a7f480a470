"""The evaluation cache: keys and per-batch shards (resume of evaluations).

Layout under ``$PSC_HOME/cache/eval`` (or ``cache_dir``), one shard file per batch, written
atomically as soon as the batch is done, so an interrupted run loses at most the batch in
flight and a rerun resumes where it stopped:

* ``ab/<key>/<start>-<count>.pt``: the colorizer's float16 ab, keyed by (colorizer name
  and class, its code (``code_sha256``: the class's file and the project modules it
  imports), weights sha256, config, seed, dataset fingerprint, n_samples, batch size
  for stochastic colorizers). Not written for the reference rows (gray, gt): their ab
  costs nothing to recompute. The key holds the fingerprint's name, root, split, size
  (and toy seed) but not its id list; each shard stores its image ids and is used only
  when they are the batch's ids, so ``--limit`` runs and full runs share batches.
* ``scores/<key>/<start>-<count>.pt``: the batch's scorer states (``Scorer.state_dict``,
  by scorer name) and skipped ids, keyed by the ab key plus the judge (name, class, weights
  sha256, config) and the device type. A repeated run reads only these small files, so it
  is nearly free. A shard serves a run when it holds a state for each of the run's scorers,
  written by the same scorer code (``scorer_code``: the scorer class's source file, every
  module of ``psc_eval/metrics`` and ``psc_eval/color.py``, stored in the shard per
  scorer): a shard of an
  edited formula, or one written before this check existed, is recomputed from the cached
  chroma, never merged.

Each key folder holds ``key.json``, the identity the key hashes, for inspection. The code
and config identities themselves (``code_sha256``, ``scorer_code``, ``digest``) live in
``psc_eval.identity``, below the metrics that also use them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .colorize import AB_DTYPE as AB_CACHE_DTYPE
from .identity import class_path, code_sha256, digest, jsonable, location_free, scorer_code
from .io import atomic_write, atomic_write_json

__all__ = ["AB_CACHE_DTYPE", "CACHE_VERSION", "RowCache", "class_path", "code_sha256", "digest",
           "jsonable", "load_shard", "row_keys", "save_shard", "scorer_code", "shard_name"]

CACHE_VERSION = 1


def row_keys(colorizer: Any, name: str, seg: Any, ds: Any, seed: int, n_samples: int,
             batch_size: int, device: str, scorer_options: Mapping[str, Any] | None = None,
             ) -> tuple[str, str, dict[str, Any]]:
    """(ab key, score key, the identities they hash) of one row of a run.

    ``scorer_options``: scorer name -> the options that change its batch states
    (``Scorer.options()``: PSNR's histogram bins, the MS-SSIM variant, the semantic law and
    prior); each scorer declares its own, the cache names none."""
    ab_ident = {
        "cache_version": CACHE_VERSION,
        "colorizer": name,
        "class": class_path(colorizer),
        "code_sha256": code_sha256(colorizer),
        "weights_sha256": getattr(colorizer, "weights_sha256", None),
        "config": jsonable(getattr(colorizer, "config", None)),
        "seed": int(seed),
        # The fingerprint without its id list: every shard stores its ids and is used only
        # when they match, so a --limit run and a full run share their common batches.
        "dataset": {k: v for k, v in ds.fingerprint().items()
                    if k not in ("num_images", "ids_sha256")},
        "n_samples": int(n_samples),
        "batch_size": int(batch_size) if getattr(colorizer, "stochastic", False) else None,
        "ab_dtype": str(AB_CACHE_DTYPE),
    }
    if n_samples > 1:  # sample 0 drawn alone, samples 1.. from stream 1 (colorize.draw_samples)
        ab_ident["sample_streams"] = 2
    ab_key = digest(ab_ident)
    seg_ident = None if seg is None else {
        "segmenter": getattr(seg, "name", None),
        "class": class_path(seg),
        "code_sha256": code_sha256(seg),
        "weights_sha256": getattr(seg, "weights_sha256", None),
        "num_classes": int(getattr(seg, "num_classes", ds.num_classes)),
        "config": location_free(jsonable(getattr(seg, "config", None))),
    }
    score_ident = {"ab": ab_key, "judge": seg_ident, "device": torch.device(device).type}
    if scorer_options:
        score_ident["scorer_options"] = jsonable(dict(scorer_options))
    return ab_key, digest(score_ident), {"ab": ab_ident, "scores": score_ident}


def load_shard(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (a foreign or damaged file: recompute and overwrite it)
        return None


def save_shard(path: Path, obj: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def shard_name(start: int, count: int) -> str:
    return f"{start:08d}-{count:05d}.pt"


@dataclass
class RowCache:
    """The ab and score shard folders of one row (None: not cached)."""

    ab_dir: Path | None = None
    score_dir: Path | None = None
    ab_names: set[str] = field(default_factory=set)  # shard files present when opened
    score_names: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, root: Path, keys: tuple[str, str, dict[str, Any]], *, store_ab: bool,
             enabled: bool) -> RowCache:
        """The row's folders under ``root`` (``key.json`` written once); ``store_ab``: keep
        the colorizer's chroma too (not for the free reference rows)."""
        if not enabled:
            return cls()
        ab_key, score_key, ident = keys
        rc = cls(root / "ab" / ab_key if store_ab else None, root / "scores" / score_key)
        for d, meta in ((rc.score_dir, ident), (rc.ab_dir, ident["ab"])):
            if d is not None and not (d / "key.json").is_file():
                atomic_write_json(d / "key.json", jsonable(meta))
        rc.ab_names = set(os.listdir(rc.ab_dir)) if rc.ab_dir is not None else set()
        rc.score_names = set(os.listdir(rc.score_dir))
        return rc

    def load_scores(self, fname: str, all_ids: list[str], scorers: Mapping[str, Any],
                    codes: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The batch's shard with ``states`` for every scorer, or None (not cached).
        ``codes``: the scorers' ``scorer_code`` when the caller already has them."""
        if self.score_dir is None or fname not in self.score_names:
            return None
        shard = load_shard(self.score_dir / fname)
        if shard is None or list(shard.get("all_ids", ())) != all_ids:
            return None
        states, shard_codes = shard.get("states") or {}, shard.get("code") or {}
        # a shard without this run's scorers, from other scorer code or an older state
        # layout: recompute
        want = codes if codes is not None else {n: scorer_code(s) for n, s in scorers.items()}
        if any(states.get(n) is None or shard_codes.get(n) != want[n]
               or set(states[n]) != set(s.state) for n, s in scorers.items()):
            return None
        return shard

    def save_scores(self, fname: str, shard: dict[str, Any]) -> None:
        if self.score_dir is not None:
            save_shard(self.score_dir / fname, shard)

    def load_ab(self, fname: str, ids: list[str]) -> Tensor | None:
        if self.ab_dir is None or fname not in self.ab_names:
            return None
        cached = load_shard(self.ab_dir / fname)
        if cached is None or list(cached["ids"]) != ids:
            return None
        return cached["ab"]

    def save_ab(self, fname: str, ids: list[str], ab: Tensor) -> None:
        if self.ab_dir is not None:
            save_shard(self.ab_dir / fname, {"ids": list(ids), "ab": ab.cpu()})
