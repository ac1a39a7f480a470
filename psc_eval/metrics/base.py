"""Scorers: one object per row and metric, fed batch by batch by the evaluation loop.

The protocol follows torchmetrics' sum states: a scorer's ``state`` is a dict of tensors
that combine by addition, so

* ``update(ctx)`` adds one batch (``ScoreContext``: what the loop computed for it);
* ``merge(other)`` adds another scorer's state (a cached batch shard, another half of the
  data): merging the states of two halves of a dataset gives the state of the whole;
* ``all_reduce(info)`` sums the state over ``torchrun`` ranks;
* ``compute()`` turns the state into ``Scores`` (metrics, histograms, per-class values and
  the conventions to record in provenance).

Each scorer declares what it needs: ``needs_judge`` (the loop then segments the colorized
image and hands the labels over as ``ctx.pred``; a scorer without it sees ``pred=None``, as
the loop runs it before the judge), ``needs_masks`` (the dataset must have
them) and ``n_samples`` (colorizer samples per image; the loop asks the colorizer for the
largest ``n_samples`` of the run's scorers). Each scorer also declares its ``columns`` (the
metrics the console summary and ``results.collect()`` show, in that order) and, through
``options()``, whatever besides images and colorizer changes its batch states (it enters the
score cache key). A new metric is a new subclass and one line in ``SCORERS``: the loop, the
summary, ``collect()`` and the cache have no per-metric code. The per-batch score cache stores each
scorer's batch state (``state_dict()``), so a resumed run merges them back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..registry import Registry

SCORERS = Registry("scorer", option="--metrics")
SCORERS.add("miou", "psc_eval.metrics.miou:MiouScorer",
            "mean IoU of the judge on colorized images (Table 3, Fig. 8)")
SCORERS.add("psnr", "psc_eval.metrics.psnr:PsnrScorer",
            "PSNR of the uint8 RGB image and of ab against the true colours (Table 3)")
SCORERS.add("semantic", "psc_eval.metrics.semantic:SemanticScorer",
            "semantic colour accuracy: is each segment's chroma plausible for its class")
SCORERS.add("pollution", "psc_eval.metrics.pollution:PollutionScorer",
            "colour pollution: chroma spread inside segments, contrast across boundaries")
SCORERS.add("diversity", "psc_eval.metrics.diversity:DiversityScorer",
            "MS-SSIM between two samples of one gray input (Fig. 10)")


@dataclass(frozen=True)
class Column:
    """One metric a scorer shows: in ``collect()``'s table always, in the console summary
    when ``summary`` (as ``header``, ``width`` characters, ``digits`` decimals; ``ci_width``
    > 0: followed by its ``<metric>_ci_low/high`` interval; a NaN with a nonzero
    ``<metric>_n_infinite`` prints as inf). ``note`` explains the header under the table."""

    metric: str
    header: str = ""
    width: int = 9
    digits: int = 3
    ci_width: int = 0
    summary: bool = True
    integer: bool = False  # a count: collect() keeps it an integer
    note: str = ""


@dataclass
class ScoreContext:
    """One batch of one row, as the loop computed it (tensors on the evaluation device)."""

    ids: list[str]  # the scored images of the batch (skipped ones are not here)
    start: int  # dataset index of the batch's first image
    L: Tensor  # (B,1,H,W) original Lab L
    ab: Tensor  # (B,n,2,H',W') the colorizer's samples, float16-rounded, in L's dtype
    ab_true: Tensor  # (B,2,H,W) true chroma
    rgb_u8: Tensor  # (B,3,H,W) uint8 RGB of sample 0 with the original L (what the judge sees)
    true_u8: Tensor  # (B,3,H,W) uint8 RGB of the dataset image
    mask: Tensor | None = None  # (B,H,W) ground-truth labels (None: dataset without masks)
    pred: Tensor | None = None  # (B,H,W) judge labels of rgb_u8 (for scorers that need the judge)
    colorizer: str = ""  # the row's name
    batch: dict[str, Any] = field(default_factory=dict)  # the collated batch as loaded
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # derived, once per row

    @property
    def n_samples(self) -> int:
        return int(self.ab.shape[1])

    def sample_rgb_u8(self, k: int) -> Tensor:
        """(B,3,H,W) uint8 RGB of sample ``k`` with the original L (computed once)."""
        from ..color import lab_parts_to_rgb, to_uint8

        if k == 0:
            return self.rgb_u8
        if ("rgb", k) not in self._memo:
            with torch.inference_mode():
                self._memo["rgb", k] = to_uint8(lab_parts_to_rgb(self.L, self.ab[:, k]))
        return self._memo["rgb", k]


@dataclass
class Scores:
    """What ``Scorer.compute`` returns; the loop merges the scorers' parts into a RunResult."""

    metrics: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, Any] = field(default_factory=dict)
    per_class: dict[str, float] = field(default_factory=dict)  # class name -> value (IoU)
    # other per-class values: metric name -> class name -> value
    per_class_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # conventions, variants
    # per-image rows for paired comparisons (psc-eval compare): "key" (image keys, sorted,
    # psc_eval.metrics.bootstrap.image_key) and one list per value, in that order
    per_image: dict[str, Any] = field(default_factory=dict)


class Scorer:
    """Base class: subclasses define ``init_state``, ``update`` and ``compute``."""

    needs_judge: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = False
    n_samples: ClassVar[int] = 1
    columns: ClassVar[tuple[Column, ...]] = ()
    # State entries that hold one row per image and combine by concatenation (torchmetrics'
    # "cat" states): per-image values for exact, order-independent means and bootstraps.
    cat_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, num_classes: int = 0, class_names: Sequence[str] = ()) -> None:
        self.num_classes = int(num_classes)
        self.class_names = list(class_names)
        self.state: dict[str, Tensor] = self.init_state()

    # --- to define
    def init_state(self) -> dict[str, Tensor]:
        """The zero state: name -> tensor; every entry must reduce by sum."""
        raise NotImplementedError

    def update(self, ctx: ScoreContext) -> None:
        """Add one batch to ``self.state``."""
        raise NotImplementedError

    def compute(self) -> Scores:
        raise NotImplementedError

    def setup(self, dataset: Any, cfg: Any = None) -> None:
        """Bind to the run's dataset and config before the first batch (a variant that
        depends on the image size, a prior estimated on the training split, the bootstrap
        options). Default: nothing."""

    def options(self) -> dict[str, Any]:
        """What, besides the images and the colorizer, changes this scorer's batch states
        (a variant, a prior's fingerprint): it enters the score cache key. Default: none."""
        return {}

    # --- shared
    def reset(self) -> None:
        self.state = self.init_state()

    def empty(self) -> Scorer:
        """A scorer of the same configuration with a zero state (one batch's accumulator)."""
        new = copy.copy(self)
        new.state = self.init_state()
        return new

    def merge(self, other: Scorer | Mapping[str, Tensor]) -> Scorer:
        """Add another state (a scorer or a ``state_dict``) into this one."""
        st = other.state if isinstance(other, Scorer) else other
        if set(st) != set(self.state):
            raise ValueError(f"cannot merge state {sorted(st)} into {sorted(self.state)}")
        for k, v in self.state.items():
            o = st[k].to(device=v.device, dtype=v.dtype)
            if k in self.cat_keys:
                if o.shape[1:] != v.shape[1:]:
                    raise ValueError(f"state {k!r}: rows {tuple(o.shape[1:])} != "
                                     f"{tuple(v.shape[1:])}")
                self.state[k] = torch.cat([v, o])
                continue
            if o.shape != v.shape:
                raise ValueError(f"state {k!r}: shape {tuple(o.shape)} != {tuple(v.shape)}")
            v += o
        return self

    def state_dict(self) -> dict[str, Tensor]:
        """CPU copies of the state (what a cache shard stores)."""
        return {k: v.detach().cpu().clone() for k, v in self.state.items()}

    def all_reduce(self, info: Any) -> None:
        """Sum the state over ranks (``psc_eval.dist.DistInfo``; "cat" entries are gathered
        and concatenated in rank order); no-op for one process."""
        from ..dist import all_gather_objects, all_reduce_sum

        for k, v in self.state.items():
            if k in self.cat_keys:
                if info.enabled:
                    parts = all_gather_objects(v.detach().cpu(), info)
                    self.state[k] = torch.cat(parts).to(v.device)
            else:
                all_reduce_sum(v, info)


def build_scorers(names: Sequence[str], num_classes: int,
                  class_names: Sequence[str] = ()) -> dict[str, Scorer]:
    """name -> scorer for the registry names given (one-line error for an unknown one)."""
    return {n: SCORERS.get(n)(num_classes=num_classes, class_names=class_names) for n in names}


def scorer_classes(names: Sequence[str]) -> dict[str, type[Scorer]]:
    """name -> scorer class (to read ``needs_judge`` / ``n_samples`` before building)."""
    return {n: SCORERS.get(n) for n in names}


def registered_columns() -> list[Column]:
    """The columns of every registered scorer, in registration order."""
    return [c for n in SCORERS.names() for c in SCORERS.get(n).columns]
