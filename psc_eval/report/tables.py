"""Tables 3 and 4 and the ablation table, from selected runs (``report.runs``), written as
Markdown, LaTeX (booktabs) and CSV.

A ``Table`` holds raw values (floats stay floats in the CSV) and a formatter per column
for Markdown / LaTeX. Missing values are ``None`` and print as an en dash; a method with
no runs is a row of dashes with a note, never an error. Every table carries the facts of
its runs (dataset, split, images, judge and weights hash, seeds, run dates) above it in
Markdown and LaTeX, and as constant columns in the CSV.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import methods
from ..io import atomic_write
from .aggregate import (
    gap_verdicts,
    interval,
    mean_metric,
    not_converged_note,
    protocol_note,
    seed_spread,
    std_metric,
    training_facts,
)
from .runs import Run, Selection

DASH = "–"

# Labels, Table 3/4 groups and the paper's published numbers (Zhao et al., IJCV 2019:
# Table 3 on VOC 2012 val with a DeepLab-ResNet101 judge, Table 4 from 20 observers) come
# from the method records, declared beside each method (psc_eval.methods).
TABLE3_GROUPS = ("reference", "single", "own", "diverse", "paper")


def _paper3(name: str) -> tuple[float | None, float | None]:
    m = methods.get_method(name)
    return (m.paper_table3 if m is not None and m.paper_table3 else (None, None))


def _paper4(name: str) -> float | None:
    m = methods.get_method(name)
    return m.paper_table4 if m is not None else None


def fmt(digits: int, scale: float = 1.0) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return DASH
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        return f"{v * scale:.{digits}f}"
    return f


def fmt_interval(digits: int, scale: float = 1.0) -> Callable[[Any], str]:
    one = fmt(digits, scale)

    def f(v: Any) -> str:
        if v is None or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in v):
            return DASH
        return f"[{one(v[0])}, {one(v[1])}]"
    return f


def fmt_spread(digits: int, scale: float = 1.0) -> Callable[[Any], str]:
    """(mean, sd, n) over training seeds -> "47.1 ± 2.3 (n=3)"."""
    one = fmt(digits, scale)

    def f(v: Any) -> str:
        if not v or v[0] is None:
            return DASH
        return f"{one(v[0])} ± {one(v[1])} (n={v[2]})"
    return f


def count(v: Any) -> str:
    """An integer count with thousands separators (a 'low-high' range as it is)."""
    if isinstance(v, int):
        return f"{v:,}"
    return text(v)


def text(v: Any) -> str:
    return DASH if v is None or v == "" else str(v)


@dataclass
class Column:
    key: str
    header: str
    format: Callable[[Any], str] = text
    group: str = ""  # a header spanning adjacent columns of the same group ("" none)
    align: str = "r"


@dataclass
class Table:
    name: str  # file stem
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sections: dict[int, str] = field(default_factory=dict)  # row index -> section title
    facts_text: str | None = None  # replaces the run facts (a human study has no runs)

    def facts_line(self) -> str:
        if self.facts_text is not None:
            return self.facts_text
        f = self.facts
        if not f:
            return ""
        parts = [f"dataset {f['dataset']}", f"split {f['split']}",
                 f"{f['images']} images at {f['size']} px (ids sha256 {str(f['ids_sha256'])[:12]})"
                 + (f", --limit {f['limit']}" if f.get("limit") else "")]
        if "judge" in f:
            parts.append(f"judge {f['judge']} (weights sha256 "
                         f"{str(f['judge_weights_sha256'])[:12]})")
        parts += [f"seeds {', '.join(map(str, f['seeds']))}", f"runs dated {f['dates']}",
                  f"psc-eval git {f['git']}"]
        return "; ".join(parts)

    # --- Markdown ---
    def markdown(self) -> str:
        facts = self.facts_line()
        lines = [f"### {self.title}", ""] + ([f"_{facts}_", ""] if facts else [])
        # Markdown has one header row: with several column groups (measured vs quoted)
        # every header names its group, so a quoted number can never pass as measured
        several = len({c.group for c in self.columns if c.group}) > 1
        lines.append("| " + " | ".join(f"{c.header} [{c.group}]" if several and c.group
                                       else c.header for c in self.columns) + " |")
        lines.append("|" + "|".join("--:" if c.align == "r" else ":--"
                                    for c in self.columns) + "|")
        for i, row in enumerate(self.rows):
            if i in self.sections:
                lines.append("| **" + self.sections[i] + "** |" + " |" * (len(self.columns) - 1))
            lines.append("| " + " | ".join(c.format(row.get(c.key)) for c in self.columns)
                         + " |")
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    # --- LaTeX (booktabs) ---
    def latex(self) -> str:
        n = len(self.columns)
        spec = "".join(c.align for c in self.columns)
        out = ["% generated by psc-eval report from stored run JSONs; do not edit",
               "\\begin{table}[t]", "\\centering", "\\small",
               f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
        groups = [c.group for c in self.columns]
        if len(set(groups) - {""}) > 1:
            cells, rules, i = [], [], 0
            while i < n:
                j = i
                while j + 1 < n and groups[j + 1] == groups[i]:
                    j += 1
                span = j - i + 1
                if groups[i]:
                    cells.append(f"\\multicolumn{{{span}}}{{c}}{{{_tex(groups[i])}}}")
                    rules.append(f"\\cmidrule(lr){{{i + 1}-{j + 1}}}")
                else:
                    cells += [""] * span
                i = j + 1
            out.append(" & ".join(cells) + " \\\\")
            out.append(" ".join(rules))
        out.append(" & ".join(_tex(c.header) for c in self.columns) + " \\\\")
        out.append("\\midrule")
        for i, row in enumerate(self.rows):
            if i in self.sections:
                if i:
                    out.append("\\midrule")
                out.append(f"\\multicolumn{{{n}}}{{l}}{{\\textbf{{{_tex(self.sections[i])}}}}}"
                           " \\\\")
            out.append(" & ".join(_tex(c.format(row.get(c.key))) for c in self.columns)
                       + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}",
                f"\\caption{{{_tex(self.title)}." + (f" {_tex(self.facts_line())}."
                                                        if self.facts_line() else "")
                + "".join(f" {_tex(x)}" for x in self.notes) + "}",
                f"\\label{{tab:{self.name}}}", "\\end{table}"]
        return "\n".join(out) + "\n"

    # --- CSV: raw values, the facts as constant columns ---
    def csv(self) -> str:
        buf = io.StringIO()
        fact_keys = ["dataset", "split", "images", "size", "limit", "judge",
                     "judge_weights_sha256", "seeds", "dates"]
        keys = [k for k in ("colorizer",) if any(k in r for r in self.rows)]
        keys += [c.key for c in self.columns] + [
            k for k in ("run_keys",) if any(k in r for r in self.rows)]
        fact_keys = [k for k in fact_keys if k in self.facts and k not in keys]
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys + fact_keys)
        for row in self.rows:
            vals = []
            for k in keys:
                v = row.get(k)
                if isinstance(v, (tuple, list)):
                    v = " ".join("" if x is None else repr(x) for x in v)
                vals.append("" if v is None or (isinstance(v, float) and math.isnan(v))
                            else repr(v) if isinstance(v, float) else v)
            vals += [" ".join(map(str, self.facts[k])) if k == "seeds" else self.facts[k]
                     for k in fact_keys]
            w.writerow(vals)
        return buf.getvalue()

    def write(self, out: str | Path) -> list[Path]:
        out = Path(out)
        paths = []
        for ext, body in (("md", self.markdown()), ("tex", self.latex()), ("csv", self.csv())):
            p = out / f"{self.name}.{ext}"
            atomic_write(p, lambda f, b=body: f.write(b.encode()))
            paths.append(p)
        return paths


_TEX = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#",
        "_": "\\_", "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}",
        "–": "--"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _metric_row(label: str, runs: Sequence[Run],
                every: Sequence[Run] | None = None) -> dict[str, Any]:
    """One row: the first training seed's runs, and ``every`` training seed's (for the
    mean +- sd over training seeds and the training facts)."""
    every = every or runs
    return {"method": label, **training_facts(every), "miou": mean_metric(runs, "miou"),
            "miou_seeds": seed_spread(every, "miou"), "psnr_seeds": seed_spread(every, "psnr"),
            "train_seeds": " ".join(sorted({str(r.train_seed) for r in every
                                           if r.train_seed is not None})) or None,
            "miou_ci": interval(runs, "miou"), "miou_sd": std_metric(runs, "miou"),
            "psnr": mean_metric(runs, "psnr"), "psnr_ci": interval(runs, "psnr"),
            "psnr_sd": std_metric(runs, "psnr"),
            "seeds": " ".join(str(r.result.seed) for r in runs) or None,
            "run_keys": " ".join(str(r.result.provenance.get("run_key")) for r in runs) or None}


def _supersede_notes(sel: Selection, names: Sequence[str] | None = None) -> list[str]:
    out = []
    for dropped, kept in sel.superseded:
        if names is not None and dropped.result.colorizer not in names:
            continue
        out.append(f"{dropped.result.colorizer} seed {dropped.result.seed}: used the newest "
                   f"run file {kept.path.name}; superseded {dropped.path.name} (same "
                   "configuration, other code hash)")
    return out


def _label(name: str, key: str, ablation: bool = False) -> str:
    """The display label of one configuration row (``key`` is ``name`` or ``name (T=..)``);
    ``ablation``: the record's label in the ablation table where it has one."""
    m = methods.get_method(name)
    base = (m.ablation_label or m.display) if (m is not None and ablation) else \
        methods.label(name)
    return base + key[len(name):]


def table3_order(present: Any) -> list[str]:
    """Table 3's rows: the methods of the paper's Table 3 (always, a missing one noted) and
    every other method present, except the ablation-only variants, in the one table order."""
    paper = [n for n, m in methods.all_methods().items() if m.paper_table3]
    return methods.table_order([*paper, *present], TABLE3_GROUPS)


def _convergence_notes(label: str, runs: Sequence[Run]) -> list[str]:
    """Why a row's model did not converge: a note for each training seed's model among
    ``runs`` (select sorted them), the seed named when there are several."""
    by_seed: dict = {}
    for r in runs:
        by_seed.setdefault(r.train_seed, r)
    notes = (not_converged_note(label + (f", training seed {seed}" if len(by_seed) > 1
                                         else ""), [r]) for seed, r in by_seed.items())
    return [n for n in notes if n]


def table3(sel: Selection, dataset: str) -> Table:
    """Table 3: mIoU of the judge on colorized images and PSNR against the truth."""
    rows, notes, scored = [], [], []
    for name in table3_order(sel.colorizers()):
        if not sel.configs(name):
            notes.append(f"{methods.label(name)}: no run of this method in these runs "
                         f"(psc-eval miou --colorizer {name})")
        for key, runs in sel.configs(name) or [(name, [])]:
            row = _metric_row(_label(name, key), runs, sel.train_seeds.get(key))
            notes += _convergence_notes(row["method"], sel.train_seeds.get(key) or runs)
            scored.append((row["method"], runs))
            row["colorizer"] = name
            if dataset == "voc":
                row["paper_miou"], row["paper_psnr"] = _paper3(name)
            rows.append(row)
    has_ci = any(r["miou_ci"] or r["psnr_ci"] for r in rows)
    has_sd = any(r["miou_sd"] is not None for r in rows)
    has_seeds = any(r["miou_seeds"] for r in rows)
    here = "measured here"
    cols = [Column("method", "Method", align="l", group="")]
    if any(r["parameters"] is not None for r in rows):
        trained = "training (the scored checkpoint)"
        cols += [Column("parameters", "parameters", count, trained),
                 Column("images_seen", "images seen", count, trained),
                 Column("converged", "converged", text, trained)]
        notes.append("Training columns: from the run record of the checkpoint each row "
                     "scored (psc_eval.training.plateau): converged = its validation loss "
                     "plateaued by the protocol's rule before the epoch cap (over training "
                     "seeds: how many did, e.g. 2 of 3); a dash: "
                     "trained for a fixed number of epochs (no plateau rule), trained before "
                     "runs recorded it, or no training.")
        proto = protocol_note(scored)
        if proto:
            notes.append(proto)
    cols.append(Column("miou", "mIoU (%)", fmt(1, 100), here))
    if has_ci:
        cols.append(Column("miou_ci", "95% CI", fmt_interval(1, 100), here))
    if has_sd:
        cols.append(Column("miou_sd", "seed sd", fmt(1, 100), here))
    if has_seeds:
        cols.append(Column("miou_seeds", "mean ± sd, training seeds", fmt_spread(1, 100), here))
    cols.append(Column("psnr", "PSNR (dB)", fmt(2), here))
    if has_ci:
        cols.append(Column("psnr_ci", "95% CI", fmt_interval(2), here))
    if has_sd:
        cols.append(Column("psnr_sd", "seed sd", fmt(2), here))
    if has_seeds:
        cols.append(Column("psnr_seeds", "mean ± sd, training seeds", fmt_spread(2), here))
    cols.append(Column("seeds", "seeds", text, here))
    if has_seeds:
        cols.append(Column("train_seeds", "training seeds", text, here))
    if dataset == "voc":
        q = "quoted from paper"
        cols += [Column("paper_miou", "mIoU (%)", fmt(1), q),
                 Column("paper_psnr", "PSNR (dB)", fmt(2), q)]
        notes.append("Quoted columns: the paper's Table 3 (VOC 2012 val, DeepLab-ResNet101, "
                     "no CRF); gray from Sec. 4.4 / Fig. 8; PSNR of the ground truth: NA "
                     "in the paper.")
    if not has_ci:
        notes.append("No bootstrap intervals in these runs (rerun with this psc-eval to add "
                     "them).")
    else:
        notes.append("95% CI: bootstrap over images, stored in each run JSON.")
    knobs = [f"{methods.label(n)}: {m.decoding}" for n in dict.fromkeys(
        r["colorizer"] for r in rows) if (m := methods.get_method(n)) is not None and m.decoding]
    if knobs:
        notes.append("Decoding and sampling as evaluated (the method records): "
                     + "; ".join(knobs) + ".")
    if any("T=" in r["method"] for r in rows):
        notes.append("T=default: the method's own sampling temperature (1 for the paper's "
                     "model: the model as described); another T: the temperature selected on "
                     "held-out TRAINING images, never on val (psc-eval select-temperature, "
                     "decoding_temperature.png).")
    if has_seeds:
        notes.append("mIoU, PSNR and their 95% CI: the first training seed's model (the "
                     "shipped one); mean ± sd: over the models of every training seed (sample "
                     "sd), each scored on the same images.")
        notes += ["Gap " + v for v in gap_verdicts(rows)]
    notes.append("Ground truth PSNR is finite because the true colour also goes through "
                 "uint8 RGB; it is the ceiling of the measurement, not a method.")
    notes += _supersede_notes(sel)
    return Table("table3", f"Table 3: semantic segmentation of colorized images ({dataset})",
                 cols, rows, sel.facts(), notes)


def _table4_order(rows: Any, every_method: bool) -> list[str]:
    """Table 4's rows in the one table order; ``every_method``: the paper's Table 4 methods
    even when ``rows`` lacks them (the human table notes them), else only those present."""
    paper = [n for n, m in methods.all_methods().items() if m.paper_table4 is not None]
    return methods.table_order([*rows, *paper] if every_method else list(rows),
                               TABLE3_GROUPS)


def _table4_sections(order: list[str]) -> dict[int, str]:
    """Row index -> section title of Table 4 rows in ``order``."""
    titles = {"own": "Other methods", "diverse": "Diverse colorization",
              "paper": "Diverse colorization"}
    sections = {0: "Single colorization"}
    for i, name in enumerate(order):
        title = "Reference" if name == "gt" else titles.get(methods.group(name))
        if title and title not in sections.values():
            sections[i] = title
    return sections


def table4_human(tally: dict[str, Any], dataset: str, source: str) -> Table:
    """Table 4 from ``psc-eval study tally`` (human answers), single / diverse / truth."""
    answers = tally.get("methods") or {}
    order = _table4_order(answers, every_method=True)
    rows, notes = [], []
    for name in order:
        m = answers.get(name) or {}
        rate = m.get("natural_rate")
        rows.append({"method": methods.label(name), "colorizer": name,
                     "natural": rate, "wilson": m.get("wilson"), "bootstrap": m.get("bootstrap"),
                     "n": m.get("n"), "paper": _paper4(name)})
        if rate is None:
            notes.append(f"{methods.label(name)}: no answers for this method in the study")
    sections = _table4_sections(order)
    obs = tally.get("observers") or {}
    study = tally.get("study") or {}
    facts = {"dataset": dataset, "images": study.get("n_images"),
             "seeds": [study.get("seed")], "dates": str(tally.get("created", ""))[:10]}
    facts_text = (f"dataset {dataset}; human study of {study.get('n_images')} images, "
                  f"{obs.get('included')} of {obs.get('total')} observers kept; study seed "
                  f"{study.get('seed')}, manifest sha256 "
                  f"{str(study.get('manifest_sha256'))[:12]}; tallied "
                  f"{str(tally.get('created', ''))[:10]} by psc-eval "
                  f"{tally.get('psc_eval_version')}")
    here = "human, this study"
    cols = [Column("method", "Method", align="l"),
            Column("natural", "Natural (%)", fmt(2, 100), here),
            Column("wilson", "Wilson 95% CI", fmt_interval(1, 100), here),
            Column("bootstrap", "bootstrap 95% CI", fmt_interval(1, 100), here),
            Column("n", "answers", text, here)]
    notes.append(f"HUMAN answers from {source}: {obs.get('included', '?')} of "
                 f"{obs.get('total', '?')} observers passed vigilance.")
    if dataset in ("voc", "cocostuff"):
        cols.append(Column("paper", "Natural (%)", fmt(2), "quoted from paper"))
        notes.append("Quoted column: the paper's Table 4 (20 observers, VOC val + COCO-stuff "
                     "subset), not measured here.")
    return Table("table4", f"Table 4: naturalness judged by human observers ({dataset})",
                 cols, rows, facts, notes, sections, facts_text)


def table4_proxy(proxy: dict[str, Any], dataset: str, source: str) -> Table:
    """Table 4 from the naturalness PROXY (``psc-eval naturalness``): a CNN critic's
    fraction of colorizations judged real; labelled a proxy in the title, every column
    group and a note, and never mixed with human answers."""
    proxied = proxy.get("rows") or {}
    order = _table4_order(proxied, every_method=False)
    sections = _table4_sections(order)
    rows = []
    for name in order:
        m = proxied[name]
        rows.append({"method": methods.label(name), "colorizer": name,
                     "natural": m.get("judged_real"), "wilson": m.get("wilson95"),
                     "real": m.get("real_images_judged_real"), "n": m.get("n")})
    here = "PROXY: CNN critic, not humans"
    cols = [Column("method", "Method", align="l"),
            Column("natural", "judged real (%)", fmt(1, 100), here),
            Column("wilson", "Wilson 95% CI", fmt_interval(1, 100), here),
            Column("real", "real images judged real (%)", fmt(1, 100), here),
            Column("n", "images", text, here)]
    notes = [f"PROXY from {source}: {proxy.get('definition', '')}",
             ("Each method has its own critic; the last column is that critic's rate on the "
              "real validation images (its calibration). No human judged these images.")]
    idle = [methods.label(n) for n in order if proxied[n].get("critic_learned") is False]
    if idle:
        notes.append("The critic of " + ", ".join(idle) + " did not learn (final training "
                     "BCE at chance, ln 2): its rate says nothing about naturalness.")
    facts = {"dataset": dataset, "images": proxy.get("val_images"),
             "seeds": [proxy.get("seed")], "dates": ""}
    facts_text = (f"dataset {dataset}; split {proxy.get('val_split')}; "
                  f"{proxy.get('val_images')} images; critic seed {proxy.get('seed')}")
    return Table("table4", f"Table 4 (PROXY): naturalness judged by a CNN critic ({dataset})",
                 cols, rows, facts, notes, sections, facts_text)


def ablation(sel: Selection, losses: dict[str, dict[str, Any]], dataset: str) -> Table:
    """The ablation of Secs. 4.2-4.3: variants of the paper's network, their validation
    losses (training log of the checkpoint scored) and the judge's mIoU."""
    rows, notes, scored = [], [], []
    for name in [m.name for m in methods.ablation_rows()]:
        if not sel.configs(name):
            notes.append(f"{name}: no run in these runs (psc-eval miou --colorizer {name})")
        for key, runs in sel.configs(name) or [(name, [])]:
            row = _metric_row(_label(name, key, ablation=True), runs)
            row["colorizer"] = name
            row.update({k: v for k, v in (losses.get(key) or {}).items() if k != "note"})
            rows.append(row)
            scored.append((row["method"], runs))
            notes += _convergence_notes(row["method"], runs)
    for name in ("gray", "gt"):
        for key, runs in sel.configs(name) or [(name, [])]:
            rows.append({**_metric_row(_label(name, key), runs), "colorizer": name})
    cols = [Column("method", "Variant", align="l"),
            Column("val_L_emb_bpd", "val L_emb (bpd)", fmt(3)),
            Column("val_L_gen_bpd", "val L_gen (bpd)", fmt(3)),
            Column("val_L_seg", "val L_seg", fmt(3)),
            Column("epoch", "epoch", text),
            *([Column("converged", "converged", text)]
              if any(r.get("converged") is not None for r in rows) else []),
            Column("miou", "mIoU (%)", fmt(1, 100)),
            *([Column("miou_ci", "95% CI", fmt_interval(1, 100))]
              if any(r.get("miou_ci") for r in rows) else []),
            Column("psnr", "PSNR (dB)", fmt(2))]
    for name, info in losses.items():
        if info.get("note"):
            notes.append(f"{name}: {info['note']}")
    if not losses:
        notes.append("Validation losses: no ablation run in these runs.")
    proto = protocol_note(scored)
    if proto:
        notes.append(proto)
    notes.append("Losses are per chroma value in bits (L_emb, L_gen) and mean cross-entropy "
                 "per pixel (L_seg) of the epoch of the checkpoint each run scored, as the "
                 "run recorded them; a variant without a term shows a dash.")
    notes += _supersede_notes(sel)
    return Table("ablation", f"Ablation: semantics in the embedding and the generator "
                 f"({dataset})", cols, rows, sel.facts(), notes)


def colour_probe_table(result: dict[str, Any], source: str) -> Table:
    """What the judge rewards (``psc-eval colour-probe``): mIoU of each recolouring and
    its share of the gray -> truth gap."""
    miou = result.get("miou") or {}
    lo, hi = miou.get("gray"), miou.get("truth")
    rows = []
    for name, v in miou.items():
        share = None if lo is None or hi is None or hi == lo else (v - lo) / (hi - lo)
        rows.append({"method": name, "miou": v, "gap_share": share})
    cols = [Column("method", "recolouring", align="l"),
            Column("miou", "mIoU (%)", fmt(1, 100)),
            Column("gap_share", "share of gray -> truth gap (%)", fmt(0, 100))]
    facts = {"dataset": result.get("dataset"), "split": result.get("split"),
             "images": result.get("images"), "judge": result.get("judge"),
             "judge_weights_sha256": result.get("judge_weights_sha256")}
    text_facts = (f"dataset {facts['dataset']}; split {facts['split']}; {facts['images']} "
                  f"images; judge {facts['judge']} (weights sha256 "
                  f"{str(facts['judge_weights_sha256'])[:12]}); noise seed {result.get('seed')}")
    notes = [(f"From {source} (psc-eval colour-probe): every image recoloured from its "
             "ground-truth mask with the ORIGINAL L, no colorizer involved; the toy colour "
             "law is psc_eval/data/toy.py's (one chroma per object from a narrow "
             "per-class Gaussian; the car one of four distant modes; pixel noise sd 1.5).")]
    return Table("colour_probe", f"What the judge rewards ({result.get('dataset')})", cols,
                 rows, facts, notes, facts_text=text_facts)


def missing_table(name: str, title: str, why: str) -> Table:
    """A table that could not be built: written anyway, saying why (never silently absent)."""
    return Table(name, title, [Column("note", "Note", align="p{0.9\\linewidth}")],
                 [{"note": why}], {}, [])
