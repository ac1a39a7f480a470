"""``psc-eval study tally``: Table 4 from the stored answers, with honest error bars.

Per method: the number of answers, the fraction judged natural, a 95% Wilson score
interval (Wilson 1927; the interval statsmodels' ``proportion_confint(method="wilson")``
computes) and a two-way cluster bootstrap interval.

Why two intervals. Wilson treats every answer as an independent coin flip. Answers are
not independent: one observer is stricter than another, one image looks odder than
another, and every observer judges every image. The bootstrap resamples both sources:
each replicate draws observers with replacement AND images with replacement,
independently, and weighs answer (o, i) by (times o was drawn) x (times i was drawn),
the "pigeonhole" bootstrap for crossed random effects (Owen 2007, Ann. Appl. Stat.,
"The pigeonhole bootstrap"). The same draws serve every method within a replicate, so
differences between methods stay paired. The interval is the percentile interval of the
replicates (replicates where a method received no weight are dropped and counted).

Vigilance: an observer's accuracy on catch trials (real image -> "natural", wrong
colours -> "not natural"). Observers below the threshold (default 0.75) are excluded;
observers who answered no catch trial cannot be checked and are excluded too (listed
separately). Exclusions are counted in the output.

The output is HUMAN data (``"kind": "human"``); ``psc-eval report`` shows it as Table 4
and never mixes it with the automated proxies. tally.json (schema psc-eval/study-tally/1)::

    {"schema", "kind": "human", "table": "Table 4", "study": {..., "manifest_sha256"},
     "config": {"vigilance_threshold", "n_boot", "seed", "confidence", "interval"},
     "observers": {"total", "included", "excluded_failed_vigilance",
                   "excluded_no_vigilance", "per_observer": {id: {...}}},
     "methods": {method: {"n", "n_natural", "natural_rate", "wilson": [lo, hi],
                          "bootstrap": [lo, hi], "bootstrap_dropped",
                          "n_observers", "n_images"}},      # rates are fractions in [0, 1]
     "vigilance": {"vigilance-real" | "vigilance-wrong": {"n", "n_natural", ...}},
     "responses": {"valid", "ignored_malformed_lines", "ignored_duplicates", ...}}

A method with no answers has ``natural_rate`` and its intervals as null.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import PscError
from ..io import atomic_write_json, sha256_file
from .store import ANSWERS, TALLY, Study, load_study, read_responses

TALLY_SCHEMA = "psc-eval/study-tally/1"
EXPECTED = {"vigilance-real": True, "vigilance-wrong": False}


@dataclass
class TallyConfig:
    vigilance_threshold: float = 0.75  # minimum fraction of catch trials answered correctly
    n_boot: int = 2000
    seed: int = 0
    confidence: float = 0.95


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (Wilson 1927, JASA 22:209-212).

    p = k/n, z = Phi^-1(1 - alpha/2):
    centre = (p + z^2/2n) / (1 + z^2/n), half = z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2).
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside [0, n={n}]")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def draw_weights(n_units: int, n_boot: int, generator: torch.Generator) -> np.ndarray:
    """(n_boot, n_units) float64: how often each unit is drawn in each replicate."""
    idx = torch.randint(n_units, (n_boot, n_units), generator=generator)
    w = torch.zeros(n_boot, n_units, dtype=torch.float64)
    w.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    return w.numpy()


def two_way_bootstrap(
    y: np.ndarray, obs: np.ndarray, img: np.ndarray, w_obs: np.ndarray, w_img: np.ndarray,
    confidence: float = 0.95,
) -> tuple[float, float, int]:
    """Percentile interval of the weighted mean of ``y`` under two-way (pigeonhole) weights.

    y (n,) in {0,1}; obs/img (n,) unit indices into the columns of w_obs (B,O) / w_img (B,I).
    Returns (lo, hi, number of replicates dropped because the method got zero weight).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return (math.nan, math.nan, int(w_obs.shape[0]))
    est = []
    for b0 in range(0, w_obs.shape[0], 256):  # chunks keep (B, n) small
        w = w_obs[b0:b0 + 256][:, obs] * w_img[b0:b0 + 256][:, img]  # (b, n)
        tot = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            est.append((w @ y) / tot)
    e = np.concatenate(est)
    ok = np.isfinite(e)
    if not ok.any():
        return (math.nan, math.nan, int(e.size))
    a = (1 - confidence) / 2
    lo, hi = np.quantile(e[ok], [a, 1 - a])
    return (float(lo), float(hi), int((~ok).sum()))


def _num(x: float) -> float | None:
    """NaN (no answers) -> None, so tally.json stays strict JSON."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _observer_table(study: Study, records: list[dict], threshold: float) -> dict[str, dict]:
    obs: dict[str, dict] = {}
    for r in records:
        t = study.trials[r["trial"]]
        o = obs.setdefault(r["observer"], {"answers": 0, "vigilance_answers": 0,
                                           "vigilance_correct": 0})
        o["answers"] += 1
        if t.kind in EXPECTED:
            o["vigilance_answers"] += 1
            o["vigilance_correct"] += int(ANSWERS[r["answer"]] == EXPECTED[t.kind])
    has_vig = any(t.kind in EXPECTED for t in study.trials.values())
    for o in obs.values():
        n = o["vigilance_answers"]
        o["vigilance_accuracy"] = o["vigilance_correct"] / n if n else None
        if not has_vig:
            o["status"] = "included"  # the study has no catch trials: nothing to check
        elif n == 0:
            o["status"] = "excluded: no vigilance answers"
        elif o["vigilance_accuracy"] < threshold:
            o["status"] = "excluded: failed vigilance"
        else:
            o["status"] = "included"
    return obs


def tally_study(
    study_dir: str | Path, out: str | Path | None = None, config: TallyConfig | None = None
) -> dict[str, Any]:
    """Compute Table 4 for a study folder, write it as JSON (default STUDY_DIR/tally.json)."""
    cfg = config or TallyConfig()
    if not 0.0 <= cfg.vigilance_threshold <= 1.0:
        raise PscError(
            f"vigilance threshold must lie in [0, 1], got {cfg.vigilance_threshold}, "
            "in --vigilance-threshold, use e.g. 0.75"
        )
    if cfg.n_boot < 100:
        raise PscError(f"--n-boot must be >= 100, got {cfg.n_boot}, in the options, use e.g. 2000")
    study = load_study(study_dir)
    log = read_responses(study.responses_path)
    unknown = sum(r["trial"] not in study.trials for r in log.records)
    records = [r for r in log.records if r["trial"] in study.trials]
    observers = _observer_table(study, records, cfg.vigilance_threshold)
    included = sorted(o for o, v in observers.items() if v["status"] == "included")
    inc_set = set(included)

    methods = [m["method"] for m in study.manifest["methods"]]
    images = list(study.manifest["images"])
    img_index = {im: i for i, im in enumerate(images)}
    obs_index = {o: i for i, o in enumerate(included)}
    gen = torch.Generator().manual_seed(int(cfg.seed))
    # One set of draws for all methods: paired replicates (see the module docstring).
    w_obs = draw_weights(max(len(included), 1), cfg.n_boot, gen)
    w_img = draw_weights(max(len(images), 1), cfg.n_boot, gen)

    by_method: dict[str, dict[str, Any]] = {}
    for m in methods:
        rows = [(obs_index[r["observer"]], img_index[study.trials[r["trial"]].image_id],
                 float(ANSWERS[r["answer"]]))
                for r in records
                if r["observer"] in inc_set and study.trials[r["trial"]].method == m]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
        n, k = len(rows), int(arr[:, 2].sum()) if rows else 0
        lo, hi = wilson_interval(k, n, cfg.confidence)
        blo, bhi, dropped = two_way_bootstrap(arr[:, 2], arr[:, 0].astype(int),
                                              arr[:, 1].astype(int), w_obs, w_img,
                                              cfg.confidence)
        by_method[m] = {
            "n": n,
            "n_natural": k,
            "natural_rate": k / n if n else None,
            "wilson": [_num(lo), _num(hi)],
            "bootstrap": [_num(blo), _num(bhi)],
            "bootstrap_dropped": dropped,
            "n_observers": len({int(o) for o in arr[:, 0]}),
            "n_images": len({int(i) for i in arr[:, 1]}),
        }

    vig: dict[str, dict[str, Any]] = {}
    for kind in EXPECTED:
        ys = [ANSWERS[r["answer"]] for r in records
              if r["observer"] in inc_set and study.trials[r["trial"]].kind == kind]
        k, n = sum(ys), len(ys)
        vig[kind] = {"n": n, "n_natural": k, "natural_rate": k / n if n else None,
                     "wilson": [_num(v) for v in wilson_interval(k, n, cfg.confidence)]}

    excluded = {o: v for o, v in observers.items() if v["status"] != "included"}
    result = {
        "schema": TALLY_SCHEMA,
        "kind": "human",
        "table": "Table 4",
        "note": ("human naturalness judgements from a psc-eval study; report these only as "
                 "human data, never mixed with automated proxies"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "psc_eval_version": __version__,
        "study": {
            "path": str(Path(study_dir).resolve()),
            "seed": study.seed,
            "dataset": study.manifest.get("dataset"),
            "n_images": len(images),
            "n_trials": len(study.trials),
            "manifest_sha256": sha256_file(study.root / "manifest.json"),
            "responses_sha256": (sha256_file(study.responses_path)
                                 if study.responses_path.exists() else None),
        },
        "config": {**asdict(cfg),
                   "interval": "wilson score; two-way (observers x images) pigeonhole "
                               "bootstrap, percentile"},
        "observers": {
            "total": len(observers),
            "included": len(included),
            "excluded_failed_vigilance": sum(v["status"] == "excluded: failed vigilance"
                                             for v in excluded.values()),
            "excluded_no_vigilance": sum(v["status"] == "excluded: no vigilance answers"
                                         for v in excluded.values()),
            "per_observer": observers,
        },
        "methods": by_method,
        "vigilance": vig,
        "responses": {
            "valid": len(records),
            "ignored_malformed_lines": log.bad_lines,
            "ignored_duplicates": log.duplicates,
            "ignored_unknown_trials": unknown,
        },
    }
    atomic_write_json(Path(out) if out else study.root / TALLY, result)
    return result


def format_table(result: dict[str, Any]) -> str:
    """A small text table of a tally (percentages with one decimal)."""

    def pct(x: float | None) -> str:
        return "  n/a" if _num(x) is None else f"{100 * x:5.1f}"

    def ci(pair: list[float]) -> str:
        return f"[{pct(pair[0])}, {pct(pair[1])}]"

    rows = [("method", "n", "natural %", "Wilson 95%", "bootstrap 95%")]
    for m, r in result["methods"].items():
        rows.append((m, str(r["n"]), pct(r["natural_rate"]), ci(r["wilson"]), ci(r["bootstrap"])))
    for kind, r in result["vigilance"].items():
        rows.append((f"({kind})", str(r["n"]), pct(r["natural_rate"]), ci(r["wilson"]), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths))) for row in rows]
    o = result["observers"]
    lines.append(
        f"observers: {o['included']} included of {o['total']}; excluded "
        f"{o['excluded_failed_vigilance']} (vigilance < "
        f"{result['config']['vigilance_threshold']:.0%}), {o['excluded_no_vigilance']} "
        "(no vigilance answers)"
    )
    r = result["responses"]
    ign = r["ignored_malformed_lines"] + r["ignored_duplicates"] + r["ignored_unknown_trials"]
    if ign:
        lines.append(f"ignored {ign} response line(s) (malformed, duplicate or unknown trial)")
    lines.append("human data (Table 4): not comparable with automated proxies")
    return "\n".join(lines)
