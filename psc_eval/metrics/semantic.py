"""Semantic colour accuracy: is each object's colour plausible for its class? (paper Sec. 1:
no blue cows; Fig. 1.)

A segment is one ground-truth class of one image (ignore pixels excluded; segments under
1/256 of the image, 16 px at 64 px, are not scored). Its chroma is the per-channel median
of the colorizer's sample-0 ab over the segment's pixels (upsampled to the mask size as
for PSNR). The median, not the mean: a toy car's dark neutral wheels (a quarter of its
pixels, labelled car) would pull a mean off every car hue; on real data it likewise
ignores small highlights and shadows.

Two laws:

* ``toy``: the generator's own law (``psc_eval.data.toy.CHROMA``, ``CAR_MODES``): each
  object draws (a, b) ~ N(mean, sd) per channel (cars: one of four hues, sd 4). A segment
  is *in law* when its squared Mahalanobis distance to the class's law (cars: to the
  nearest hue) is at most ``TOY_THRESHOLD`` = chi^2_2(0.999) = -2 ln 0.001 = 13.82, so a
  segment drawn by the generator itself is in law with probability 0.999 (gt: ~0.999).
  Reports ``semantic_accuracy`` (in-law rate) overall and per class.
* ``histogram`` (datasets with masks other than toy): the per-class distribution of
  segment chroma on the training split, a 2-D histogram of 32 x 32 bins of 8 Lab units
  over [-128, 128]^2, smoothed with one pseudo-segment spread evenly over the bins,
  estimated once and cached under ``$PSC_HOME/cache/chroma_prior`` keyed by the training
  split's fingerprint and the estimate's code (``scorer_code``). Reports
  ``semantic_loglik`` (mean log-probability, nats, of the segment's bin) and
  ``semantic_accuracy``: the rate of segments whose bin lies in the class's 95%
  highest-density region: the fewest bins, taken in order of probability (ties by bin
  index), that together hold at least 95% of the smoothed histogram, so the region holds
  95% of the mass up to its last bin. A class with fewer than ``MIN_TRAIN_SEGMENTS``
  training segments has no defined region (the pseudo-segment's uniform mass 1/(n+1)
  alone would fill the 5% the region leaves out, and with 18 or fewer segments its region
  covered every bin, so gray passed): its segments are not scored, and the result counts
  them (``semantic_undefined_classes``, ``semantic_undefined_segments``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..identity import scorer_code
from .base import Column, ScoreContext, Scorer, Scores
from .bootstrap import canonical, image_keys
from .segments import SegmentIndex, colorized_ab, segment_index

TOY_THRESHOLD = -2.0 * math.log(0.001)  # chi^2 with 2 dof at 0.999
MIN_SEGMENT_FRACTION = 1.0 / 256
HIST_BINS, HIST_LO, HIST_HI = 32, -128.0, 128.0
HDR_MASS = 0.95
# The pseudo-segment then holds at most 1% of a class's mass, a fifth of the 5% the
# highest-density region leaves out.
MIN_TRAIN_SEGMENTS = 99
PRIOR_VERSION = 1


def _toy_law(C: int) -> tuple[Tensor, Tensor]:
    """(C, M, 2) means and sds of every class's modes (unimodal classes repeated)."""
    from ..data.toy import CAR, CAR_MODE_SD, CAR_MODES, CHROMA

    M = len(CAR_MODES)
    mean = torch.zeros(C, M, 2, dtype=torch.float64)
    sd = torch.ones(C, M, 2, dtype=torch.float64)
    for c in range(C):
        if c == CAR:
            mean[c] = torch.tensor(CAR_MODES, dtype=torch.float64)
            sd[c] = CAR_MODE_SD
        else:
            ma, sa, mb, sb = CHROMA[c]
            mean[c] = torch.tensor([ma, mb], dtype=torch.float64)
            sd[c] = torch.tensor([sa, sb], dtype=torch.float64)
    return mean, sd


def hist_bin(ab: Tensor) -> Tensor:
    """(..., 2) chroma -> (...,) flat bin index of the prior's 32 x 32 grid."""
    w = (HIST_HI - HIST_LO) / HIST_BINS
    i = ((ab - HIST_LO) / w).floor().clamp(0, HIST_BINS - 1).to(torch.int64)
    return i[..., 0] * HIST_BINS + i[..., 1]


# ----------------------------------------------------------------------------- prior


def estimate_prior(train_ds: Any, progress: bool = False) -> dict[str, Any]:
    """Per-class histogram of segment chroma (median ab) over ``train_ds``'s true colours."""
    from ..data import collate

    C = int(train_ds.num_classes)
    counts = torch.zeros(C, HIST_BINS * HIST_BINS, dtype=torch.float64)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=32, collate_fn=collate)
    for batch in loader:
        if not batch["ids"]:
            continue
        seg = SegmentIndex(batch["mask"], C)
        med, n = seg.medians(batch["ab"]), seg.n
        H, W = batch["mask"].shape[-2:]
        ok = n >= max(1, int(MIN_SEGMENT_FRACTION * H * W))
        cls = torch.arange(len(n)) % C
        counts.view(-1).index_add_(0, (cls * HIST_BINS ** 2 + hist_bin(med))[ok],
                                   torch.ones(int(ok.sum()), dtype=torch.float64))
    return {"counts": counts, "fingerprint": train_ds.fingerprint(),
            "fingerprint_key": train_ds.fingerprint_key(), "version": PRIOR_VERSION}


def prior_tables(counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(C, K) log-probabilities of the smoothed histograms, (C, K) bool 95% highest-density
    regions (all False for a class with fewer than ``MIN_TRAIN_SEGMENTS`` segments: no
    region), and (C,) training segments per class.

    A region is the first m bins of the stable descending sort of p, m the fewest whose
    mass reaches ``HDR_MASS``: its mass is in [0.95, 0.95 + the last bin's p)."""
    C, K = counts.shape
    n = counts.sum(1)
    p = (counts + 1.0 / K) / (n + 1.0).unsqueeze(1)
    srt, order = torch.sort(p, dim=1, descending=True, stable=True)
    cum = torch.cumsum(srt, 1)
    m = ((cum < HDR_MASS).sum(1) + 1).clamp(max=K)  # (C,)
    ranks = torch.arange(K).expand(C, K)
    region = torch.zeros(C, K, dtype=torch.bool)
    region.scatter_(1, order, ranks < m.unsqueeze(1))
    region &= (n >= MIN_TRAIN_SEGMENTS).unsqueeze(1)
    return p.log(), region, n


@lru_cache(maxsize=8)
def _load_prior(name: str, root: str | None, size: int) -> dict[str, Any] | None:
    from ..data import get_dataset, train_splits
    from ..errors import PscError
    from ..io import atomic_write
    from ..paths import cache_dir

    # The estimate's code (this module, segments.py, color.py) is part of the file name: a
    # prior of edited code is estimated again, never read.
    code = scorer_code(SemanticScorer)[:12]
    for split in train_splits(name):
        try:
            train = get_dataset(name, root=root, split=split, size=size, allow_partial=True)
        except (PscError, TypeError):
            continue
        path = (cache_dir() / "chroma_prior"
                / f"{name}-{train.fingerprint_key()}-v{PRIOR_VERSION}-{code}.pt")
        if path.is_file():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001, S110 (damaged: estimate again)
                pass
        prior = estimate_prior(train)
        atomic_write(path, lambda f, prior=prior: torch.save(prior, f))
        return prior
    return None


# ----------------------------------------------------------------------------- scorer


class SemanticScorer(Scorer):
    """In-law rate of segment chroma (toy), or its likelihood under the training split's
    per-class chroma histogram (other datasets with masks)."""

    needs_masks = True
    cat_keys = ("key", "rows")
    columns = (Column("semantic_accuracy", "sem.acc", 9,
                      note="segments with plausible chroma for their class"),
               Column("semantic_loglik", "sem.ll", 8,
                      note="mean log-probability of segment chroma under the class prior"))

    law: str | None = None  # "toy" | "histogram" (set by setup from the dataset)
    prior: dict[str, Any] | None = None

    def setup(self, dataset: Any, cfg: Any = None) -> None:
        if self.law is None:
            self.law = "toy" if getattr(dataset, "name", None) == "toy" else "histogram"
        if self.law == "histogram" and self.prior is None:
            root = getattr(dataset, "root", None)
            self.prior = _load_prior(dataset.name, None if root is None else str(root),
                                     int(dataset.size))
            if self.prior is None:
                from ..errors import PscError

                raise PscError(f"no training split found for the chroma prior of dataset "
                               f"{dataset.name!r}, in --root, provide the training split or "
                               "drop 'semantic' from --metrics")
        self._tables = None

    def options(self) -> dict[str, Any]:
        opt: dict[str, Any] = {"law": self.law, "threshold": self._threshold_text(),
                               "min_segment_fraction": MIN_SEGMENT_FRACTION}
        if self.law == "histogram" and self.prior is not None:
            opt["prior"] = self.prior["fingerprint_key"]
        return opt

    def _threshold_text(self) -> str:
        if self.law == "toy":
            return f"Mahalanobis d^2 <= {TOY_THRESHOLD:.4f} (chi2_2 0.999)"
        return f"bin inside the class's {HDR_MASS:.0%} highest-density region"

    def init_state(self) -> dict[str, Tensor]:
        # per class: scored segments, in-law ones, log-likelihood sum, undefined segments
        return {"key": torch.zeros(0, dtype=torch.int64),
                "rows": torch.zeros(0, 4 * self.num_classes, dtype=torch.float64)}

    def update(self, ctx: ScoreContext) -> None:
        assert ctx.mask is not None
        C, B = self.num_classes, len(ctx.ids)
        ab, _ = colorized_ab(ctx)
        seg = segment_index(ctx, C)
        med, n = seg.medians(ab), seg.n  # (B*C, 2), (B*C,)
        H, W = ctx.mask.shape[-2:]
        scored = (n >= max(1, int(MIN_SEGMENT_FRACTION * H * W))).to(torch.float64)
        cls = torch.arange(B * C, device=med.device) % C
        if self.law == "toy":
            mean, sd = (t.to(med.device) for t in _toy_law(C))
            d2 = (((med[:, None, :] - mean[cls]) / sd[cls]) ** 2).sum(-1).min(1).values
            ok = (d2 <= TOY_THRESHOLD).to(torch.float64)
            ll = torch.zeros_like(ok)
            undefined = torch.zeros_like(ok).view(B, C)
        else:
            if getattr(self, "_tables", None) is None:
                self._tables = prior_tables(self.prior["counts"])
            logp, region, ntrain = (t.to(med.device) for t in self._tables)
            present = scored
            scored = scored * (ntrain[cls] >= MIN_TRAIN_SEGMENTS)
            undefined = (present - scored).view(B, C)
            k = hist_bin(med)
            ok = region[cls, k].to(torch.float64)
            ll = logp[cls, k]
        rows = torch.cat([scored.view(B, C), (ok * scored).view(B, C),
                          (ll * scored).view(B, C), undefined], 1).cpu()
        self.state["key"] = torch.cat([self.state["key"], image_keys(ctx.ids)])
        self.state["rows"] = torch.cat([self.state["rows"], rows])

    def compute(self) -> Scores:
        C = self.num_classes
        _, rows = canonical(self.state["key"], self.state["rows"])
        s = rows.numpy().sum(0) if rows.shape[0] else np.zeros(rows.shape[1])
        n, ok, ll = s[:C], s[C:2 * C], s[2 * C:3 * C]
        names = [self.class_names[k] if k < len(self.class_names) else str(k) for k in range(C)]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(n > 0, ok / np.maximum(n, 1), np.nan)
            mll = np.where(n > 0, ll / np.maximum(n, 1), np.nan)
        N = n.sum()
        metrics: dict[str, Any] = {
            "semantic_accuracy": float(ok.sum() / N) if N else float("nan"),
            "semantic_segments": int(N)}
        per = {"semantic_accuracy": {k: float(v) for k, v in zip(names, rate)}}
        if self.law != "toy":
            metrics["semantic_loglik"] = float(ll.sum() / N) if N else float("nan")
            per["semantic_loglik"] = {k: float(v) for k, v in zip(names, mll)}
            undef = s[3 * C:4 * C]
            metrics["semantic_undefined_segments"] = int(undef.sum())
            metrics["semantic_undefined_classes"] = int((undef > 0).sum())
        prov = {"law": self.law, "threshold": self._threshold_text(),
                "segment_chroma": "per-channel median of sample-0 ab over a ground-truth "
                                  "class of one image; segments under 1/256 of the image "
                                  "not scored"}
        if self.law != "toy" and self.prior is not None:
            prov["prior_fingerprint"] = self.prior["fingerprint"]
            prov["prior"] = (f"{HIST_BINS}x{HIST_BINS} ab histogram of training segment "
                             "chroma, one pseudo-segment spread over the bins; classes with "
                             f"under {MIN_TRAIN_SEGMENTS} training segments undefined (their "
                             "segments not scored, counted in semantic_undefined_segments)")
            ntrain = self.prior["counts"].sum(1)
            prov["undefined_classes"] = [names[c] for c in range(C)
                                         if c < len(ntrain) and ntrain[c] < MIN_TRAIN_SEGMENTS]
        return Scores(metrics=metrics, per_class_metrics=per,
                      provenance={"semantic_convention": prov})
