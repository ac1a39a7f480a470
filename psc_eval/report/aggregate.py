"""Aggregating a table row's runs: over evaluation seeds (mean, sd), over TRAINING seeds
(mean +- sd, and which gaps survive both the image bootstrap and the training seeds), the
bootstrap interval of a single run, and what the scored checkpoints say of their training
(parameters, images seen, converged, and why a run did not converge)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .runs import Run


def mean_metric(runs: Sequence[Run], key: str) -> float | None:
    vals = [r.result.metrics.get(key) for r in runs]
    vals = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else None


def _sample_sd(vals: Sequence[float]) -> float:
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def std_metric(runs: Sequence[Run], key: str) -> float | None:
    vals = [float(r.result.metrics[key]) for r in runs if r.result.metrics.get(key) is not None]
    return _sample_sd(vals) if len(vals) >= 2 else None


def seed_spread(runs: Sequence[Run], key: str) -> tuple[float, float, int] | None:
    """(mean, sample sd, n) of ``key`` over TRAINING seeds (each seed's value the mean over
    its evaluation seeds); None with fewer than two training seeds."""
    by_seed: dict[Any, list[Run]] = {}
    for r in runs:
        by_seed.setdefault(r.train_seed, []).append(r)
    vals = [v for v in (mean_metric(rs, key) for rs in by_seed.values()) if v is not None]
    if len(vals) < 2 or None in by_seed:
        return None
    return sum(vals) / len(vals), _sample_sd(vals), len(vals)


def gap_verdicts(rows: Sequence[dict[str, Any]], key: str = "miou") -> list[str]:
    """Which gaps between rows with a training-seed spread survive both sources of noise:
    the image bootstrap (the two rows' 95% intervals are disjoint) and the training seeds
    (|difference of the seed means| > 2 x its standard error, sqrt(sd_a^2/n_a + sd_b^2/n_b))."""
    spread = [r for r in rows if r.get(f"{key}_seeds")]
    out = []
    for i, a in enumerate(spread):
        for b in spread[i + 1:]:
            (ma, sa, na), (mb, sb, nb) = a[f"{key}_seeds"], b[f"{key}_seeds"]
            ca, cb = a.get(f"{key}_ci"), b.get(f"{key}_ci")
            boot = None if not (ca and cb) else (ca[1] < cb[0] or cb[1] < ca[0])
            se = math.sqrt(sa ** 2 / na + sb ** 2 / nb)
            seeds = abs(ma - mb) > 2 * se
            word = {True: "yes", False: "no", None: "no interval"}
            out.append(f"{a['method']} vs {b['method']}: seed means differ by "
                       f"{100 * (ma - mb):+.1f} points; survives the image bootstrap: "
                       f"{word[boot]}; survives training seeds: {word[seeds]} "
                       f"(2 x SE = {200 * se:.1f})")
    return out


def interval(runs: Sequence[Run], key: str) -> tuple[float, float] | None:
    """The run's bootstrap 95% interval (metrics issue), only for a single seed: intervals
    of different seeds are not combined here (the seed sd column shows the spread)."""
    if len(runs) != 1:
        return None
    m = runs[0].result.metrics
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    return None if lo is None or hi is None else (float(lo), float(hi))


def training_facts(runs: Sequence[Run]) -> dict[str, Any]:
    """What the checkpoints the runs scored say of their training (the protocol's ``run``
    record, psc_eval.training.plateau): parameters, epochs, images seen, converged.
    Several checkpoints (training seeds): the range of each count; converged "yes" or "no"
    when all agree, else how many did ("2 of 3"). Runs without the record (reference rows,
    older runs) give None."""
    recs = [((r.result.provenance.get("colorizer_checkpoint") or {}).get("run") or {})
            for r in runs]
    recs = [x for x in recs if x]
    if not recs:
        return {"parameters": None, "epochs": None, "images_seen": None, "converged": None}

    def span(key: str) -> Any:
        vals = sorted({int(x[key]) for x in recs if isinstance(x.get(key), (int, float))})
        return None if not vals else vals[0] if len(vals) == 1 else f"{vals[0]}-{vals[-1]}"

    conv = [x.get("converged") for x in recs]
    k = sum(bool(c) for c in conv)
    converged = (None if any(c is None for c in conv) else "yes" if k == len(conv)
                 else "no" if k == 0 else f"{k} of {len(conv)}")
    return {"parameters": span("parameters"), "epochs": span("epochs"),
            "images_seen": span("images_seen"), "converged": converged}


def not_converged_note(label: str, runs: Sequence[Run]) -> str | None:
    """Why a row's model did not converge: where it stopped and what its last window of
    epochs still brought (psc_eval.training.plateau); None when it converged or has no
    protocol record."""
    from ..training.plateau import window_gain, window_size

    ck = (runs[0].result.provenance.get("colorizer_checkpoint") or {}) if runs else {}
    rec = ck.get("run") or {}
    rule = rec.get("plateau") or {}
    if rec.get("converged") is not False or not rule.get("metric"):
        return None
    series = [float(h[rule["metric"]]) for h in ck.get("history") or []
              if isinstance(h.get(rule["metric"]), (int, float))]
    window = float(rule.get("window", 0.25))
    gain = window_gain(series, window)
    where = (f"stopped at the cap of {rule.get('cap')} epochs" if rec.get("until_plateau")
             else f"trained for a fixed {rec.get('epochs')} epochs (no plateau rule)")
    still = ("" if gain is None else f"; its last {window_size(len(series), window)}"
             f" epochs still improved {rule['metric'].removeprefix('val_')} by "
             f"{100 * gain:.1f}% (the rule: < {100 * float(rule.get('tol', 0.01)):g}%)")
    return f"{label}: not converged: {where}{still}."


def protocol_note(rows: Sequence[tuple[str, Sequence[Run]]]) -> str | None:
    """The training protocol as the scored checkpoints recorded it: the rule, its
    parameters (one set, or each set with its rows) and the validation loss each row's rule
    read, and the trained rows that did not follow it (a fixed number of epochs, or trained
    before runs recorded it: not comparable with the others); None when no row was trained
    under the plateau rule."""
    from ..training.plateau import RULE

    sets: dict[tuple, list[str]] = {}
    metrics, fixed = [], []
    averaged: dict[float | None, list[str]] = {}
    for label, runs in rows:
        ck = (runs[0].result.provenance.get("colorizer_checkpoint") or {}) if runs else {}
        rec = ck.get("run") or {}
        rule = rec.get("plateau") or {}
        if ck:
            averaged.setdefault(ck.get("weights_average"), []).append(label)
        if not rec.get("until_plateau") or not rule:
            if ck:
                fixed.append(label)
            continue
        key = (rule.get("window"), rule.get("tol"), rule.get("min_epochs"), rule.get("cap"))
        sets.setdefault(key, []).append(label)
        metrics.append(f"{label}: {str(rule.get('metric', '?')).removeprefix('val_')}")
    if not sets:
        return None

    def params(k: tuple) -> str:
        w, t, m, c = k
        return f"window {w}, tol {100 * float(t):g}%, at least {m} epochs, cap {c} epochs"

    which = (params(next(iter(sets))) if len(sets) == 1 else
             "; ".join(f"{params(k)} ({', '.join(v)})" for k, v in sets.items()))
    off = (f" NOT trained by this protocol (a fixed, shorter training; compare them with "
           f"the other rows only with care): {', '.join(fixed)}." if fixed else "")
    return (f"Training protocol (from the scored checkpoints' run records): {RULE}; "
            f"{which}. The validation loss each rule read: {'; '.join(metrics)}. The last "
            "epoch's weights are scored (validation only decides when to stop)"
            f"{_averaging(averaged)}." + off)


def _averaging(groups: dict[float | None, list[str]]) -> str:
    """Which rows' scored weights are a Polyak average of the training steps (and its
    decay), which the last step's weights; empty when no checkpoint recorded it."""
    parts = [f"the Polyak average of the steps' weights (decay {d:g}) for {', '.join(v)}"
             if d else f"the last step's weights, not averaged, for {', '.join(v)}"
             for d, v in sorted(((d, v) for d, v in groups.items() if d is not None),
                                key=lambda x: -x[0])]
    return f": {'; '.join(parts)}" if parts else ""
