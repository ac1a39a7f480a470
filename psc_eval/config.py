"""The evaluation config: the ONE home of evaluation defaults.

``EvalConfig`` is read by all three consumers, so no default is written twice:

* the CLI: the options of ``psc-eval miou`` / ``psc-eval psnr`` are generated from its
  fields (``eval_fields(kind)``; names, defaults and help text come from here);
* the Python API: ``run_eval(kind, colorizer, dataset, cfg)`` / ``evaluate(..., cfg)``, or
  the same functions with ``**fields`` that are turned into an ``EvalConfig``;
* provenance: every result records ``asdict(cfg)`` (kind, metrics and device resolved)
  under ``provenance["config"]``.

Only what changes the numbers (seed, limit, batch size of stochastic colorizers, n_samples,
weights, judge options) enters the score cache key; the rest (out, progress, workers) is
recorded but changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .dist import DEVICE_HELP
from .errors import ConfigError, PscError

# Evaluation kinds (the miou / psnr commands) -> the scorers they run by default.
# PSNR comes with every mIoU run: Table 3 reports both and it costs nothing next to the judge;
# so do semantic colour accuracy and colour pollution (they need the masks a mIoU run has).
# Diversity (two samples per image) is its own command and an opt-in scorer elsewhere.
EVAL_KINDS: dict[str, tuple[str, ...]] = {"miou": ("miou", "psnr", "semantic", "pollution"),
                                          "psnr": ("psnr",), "diversity": ("diversity",)}
# Rows every run_eval adds around the user's colorizer (Fig. 8: gray / colorized / colour).
REFERENCE_ROWS = ("gray", "gt")
# Judge speed options: only when one differs from its default is configure() called, so the
# judge's config (part of the score cache key) is unchanged for a default run.
JUDGE_INFERENCE = ("precision", "channels_last", "compile")


def _opt(default: Any, help: str, **meta: Any) -> Any:
    """A config field with its CLI metadata: ``cli`` (option declaration; False: not an
    option), ``kinds`` (commands that show it), ``type``, ``choices``, ``path`` (dir / file),
    ``min`` / ``max``, ``kind_default`` (the command's scorers, ``EVAL_KINDS``)."""
    return field(default=default, metadata={"help": help, **meta})


def check_temperature(t: Any) -> None:
    """A sampling temperature is a finite number > 0 (inf, NaN or 0 would sample from a
    degenerate distribution and still print a number)."""
    ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0
    if not ok:
        raise ConfigError(f"--temperature must be a finite number > 0, got {t!r}, in the "
                          "options, pass e.g. 1.0 (or drop it for the colorizer's own)")


@dataclass(frozen=True)
class EvalConfig:
    """Everything an evaluation run is configured by (``psc-eval miou`` / ``psnr``)."""

    # what to evaluate on (psc_eval.data)
    dataset: str = _opt("toy", "Dataset name (psc-eval ls).")
    root: str | None = _opt(None, "Dataset folder (VOCdevkit, COCO-stuff root, image folder).",
                            path="dir")
    split: str | None = _opt(None, "Split as named on disk (default: the dataset's evaluation "
                                   "split).")
    size: int | None = _opt(None, "Square input size; default 128 (real data), 64 (toy).",
                            type=int)
    allow_partial: bool = _opt(False, "Accept a split whose image count differs from the "
                                      "official one.")
    limit: int | None = _opt(None, "Evaluate the first N images.", type=int)
    # the judge (mIoU only)
    segmenter: str | None = _opt(None, "Judge name (psc-eval ls) or module:attr; default: the "
                                       "dataset's judge.", kinds=("miou",))
    weights: str | None = _opt(None, "Judge weights (default: the judge trained under "
                                     "$PSC_HOME/judges, else the one shipped for toy).",
                               path="file", kinds=("miou",))
    precision: str = _opt("fp32", "Judge precision (bf16 = autocast; logits in fp32).",
                          choices=("fp32", "bf16"), kinds=("miou",))
    channels_last: bool = _opt(False, "Judge in channels_last memory format.", kinds=("miou",))
    compile: bool = _opt(False, "torch.compile the judge.", kinds=("miou",))
    # the colorizer
    colorizer_weights: str | None = _opt(None, "Colorizer checkpoint (default: the one trained "
                                               "under $PSC_HOME, else the one shipped for toy).",
                                         path="file")
    temperature: float | None = _opt(None, "Sampling temperature of a stochastic colorizer "
                                           "(default: its own).", type=float)
    n_samples: int = _opt(1, "Samples per image asked of a stochastic colorizer (at least what "
                             "the metrics need; deterministic ones give one, repeated).",
                          type=int, min=1)
    seed: int = _opt(0, "Seed of the colorizer's per-batch generators.", type=int)
    # scoring
    kind: str | None = _opt(None, "Evaluation: miou or psnr (default: the first metric's).",
                            cli=False)
    metrics: tuple[str, ...] | None = _opt(
        None, "Comma-separated scorers (psc_eval.metrics.SCORERS; default: the command's).",
        kind_default=True)
    bootstrap: int = _opt(1000, "Bootstrap resamples of the 95% intervals of mIoU and PSNR "
                                "(images resampled; 0: no interval).", type=int, min=0)
    bootstrap_seed: int = _opt(0, "Seed of the bootstrap resampling.", type=int)
    batch_size: int = _opt(32, "Images per batch.", type=int)
    sample_batches: int = _opt(16, "Batches a sampling colorizer (the PixelCNN models) "
                                   "samples in one call (whole-split batching; same "
                                   "samples, fewer sequential steps; 1: batch by batch).",
                               type=int, min=1)
    device: str = _opt("auto", DEVICE_HELP + ".")
    workers: int = _opt(0, "DataLoader worker processes.", type=int, min=0, max=64)
    cache: bool = _opt(True, "Reuse and write the score cache (--no-cache: recompute "
                             "everything, write nothing).", cli="--cache/--no-cache")
    cache_dir: str | None = _opt(None, "Cache folder (default $PSC_HOME/cache/eval).",
                                 path="dir")
    out: str = _opt("reports", "Results go to OUT/runs/...", path="dir")
    progress: bool = _opt(True, "Show a progress bar (--quiet: none).",
                          cli="--progress/--quiet")

    def __post_init__(self) -> None:
        m = self.metrics
        if isinstance(m, str):
            m = tuple(x.strip() for x in m.split(",") if x.strip())
        if m is not None:
            m = tuple(m)
            if not m:
                raise ConfigError("no metric given, in --metrics, name at least one scorer")
        object.__setattr__(self, "metrics", m)
        for name in ("root", "weights", "colorizer_weights", "cache_dir", "out"):
            v = getattr(self, name)
            if isinstance(v, Path):
                object.__setattr__(self, name, str(v))
        if self.kind is not None and self.kind not in EVAL_KINDS:
            raise PscError(f"unknown evaluation {self.kind!r}, in run_eval(), "
                           f"use {' or '.join(EVAL_KINDS)}")
        if self.batch_size < 1:
            raise PscError(f"--batch-size must be >= 1, got {self.batch_size}, in the options, "
                           "pass 1+")
        if self.sample_batches < 1:
            raise PscError(f"--sample-batches must be >= 1, got {self.sample_batches}, in the "
                           "options, pass 1+")
        if self.limit is not None and self.limit < 1:
            raise PscError(f"--limit must be >= 1, got {self.limit}, in the options, "
                           "drop it or pass 1+")
        if self.n_samples < 1:
            raise PscError(f"--n-samples must be >= 1, got {self.n_samples}, in the options, "
                           "pass 1+")
        if self.temperature is not None:
            check_temperature(self.temperature)

    @property
    def scorer_names(self) -> tuple[str, ...]:
        """The scorers to run: ``metrics``, else the kind's (``EVAL_KINDS``)."""
        if self.metrics is not None:
            return self.metrics
        return EVAL_KINDS[self.kind or "miou"]

    @property
    def eval_kind(self) -> str:
        """The run's kind (results' ``kind``): ``kind``, else the first metric's name."""
        return self.kind or self.scorer_names[0]

    def judge_inference(self) -> dict[str, Any] | None:
        """The judge speed options, or None when all are the defaults."""
        opts = {k: getattr(self, k) for k in JUDGE_INFERENCE}
        return None if all(v == default(k) for k, v in opts.items()) else opts

    def resolved(self, **changes: Any) -> EvalConfig:
        """This config with kind and metrics filled in (and ``changes``), as recorded."""
        return replace(self, kind=self.eval_kind, metrics=self.scorer_names, **changes)

    def record(self) -> dict[str, Any]:
        """The JSON form stored in results (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def default(name: str) -> Any:
    """The default of one ``EvalConfig`` field."""
    f = EvalConfig.__dataclass_fields__[name]
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def make_config(cfg: EvalConfig | None = None, /, **changes: Any) -> EvalConfig:
    """``cfg`` (or the defaults) with ``changes``; an unknown field is a one-line error."""
    known = EvalConfig.__dataclass_fields__
    bad = [k for k in changes if k not in known]
    if bad:
        raise ConfigError(f"unknown evaluation option(s) {', '.join(map(repr, bad))}, in the "
                          f"call, use fields of psc_eval.config.EvalConfig: {', '.join(known)}")
    return replace(cfg, **changes) if cfg is not None else EvalConfig(**changes)


def eval_fields(kind: str) -> list[Field]:
    """The config fields that are options of the ``kind`` command, in declaration order."""
    return [f for f in fields(EvalConfig)
            if f.metadata.get("cli", True) is not False and kind in f.metadata.get("kinds", EVAL_KINDS)]


def cli_default(f: Field, kind: str) -> Any:
    """A field's default as the ``kind`` command shows it (metrics: the command's scorers)."""
    if f.metadata.get("kind_default"):
        return ",".join(EVAL_KINDS[kind])
    return default(f.name)
