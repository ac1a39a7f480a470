"""``psc-eval report``: Tables 3-4, the ablation table and Figs. 8 and 10 of one dataset,
derived only from stored run JSONs (the ablation's losses included: each run records the
checkpoint it scored) and a study's tally.json for Table 4, written to ``reports/<dataset>/``.

Output (every table as .md, .tex with booktabs, .csv; figures as .png and .pdf)::

    README.md                 all tables, the figures, and the run files used
    table3.*                  mIoU / PSNR of gray, single-output methods, ours, ground truth
    ablation.*                psc-purple / psc-purple-blue / ours / psc-film / psc-embedding
    table4.*                  human naturalness (--study), else a table saying why not
    colour_probe.*            what the judge rewards (psc-eval colour-probe), when run
    fig8_per_class_iou.*      per-class IoU bars
    fig10_msssim.*            MS-SSIM histograms (when diversity runs exist)
    ablation_val_losses.*     validation losses per epoch (when runs recorded them)
    samples/                  sample grids (--samples: needs the trained models)

Running it twice on the same files writes the same bytes: nothing depends on the clock
(run dates are the run files' modification dates), and the PDFs carry no dates.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PscError
from ..io import atomic_write, ensure_dir
from ..methods import ablation_rows, describe, forget_described, names_in
from . import figures
from .runs import Run, Selection, load_runs, run_roots, runs_dir, select
from .tables import Table, ablation, missing_table, table3, table3_order, table4_human


@dataclass
class ReportSummary:
    out: Path
    files: list[Path] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"psc-eval report: wrote {len(self.files)} files to {self.out}"]
        lines += [f"  {p.relative_to(self.out)}" for p in self.files]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def write_report(
    dataset: str,
    runs: str | Path | Sequence[str | Path] = "reports",
    out: str | Path | None = None,
    *,
    study: str | Path | None = None,
    split: str | None = None,
    judge: str | None = None,
    samples: bool = False,
    sample_limit: int = 4,
    device: str = "cpu",
    labels: Mapping[str, str] | None = None,
    groups: Mapping[str, str] | None = None,
) -> ReportSummary:
    """Write the report of ``dataset`` from the run JSONs under ``runs``.

    The ablation's validation losses come from the runs too (the checkpoint each run
    scored, ``provenance.colorizer_checkpoint``). ``study``: a study folder
    (or its tally.json) for Table 4; ``split`` / ``judge``: pick one context when the runs
    hold several; ``samples``: also draw sample grids with the trained models.
    ``runs``: one folder or several (e.g. the demo's output and one's own runs);
    ``labels`` / ``groups``: row name -> display label / Table 3-4 group for rows without
    a method record (their runs' recorded label and group otherwise).
    """
    forget_described()
    roots = run_roots(runs)
    all_runs = load_runs(roots, dataset)
    for name, text in (labels or {}).items():
        describe(name, label=text)
    for name, grp in (groups or {}).items():
        describe(name, group=grp)
    base = runs_dir(roots[0], dataset)
    final = ensure_dir(Path(out) if out is not None else Path("reports") / dataset)
    # Every output is written into a staging folder first and moved into place only when
    # all of them were written: a failure leaves the previous report whole, never half.
    stage = Path(tempfile.mkdtemp(prefix=".report-partial-", dir=final))
    try:
        summary = _write_all(dataset, roots, all_runs, base, stage, study=study, split=split,
                             judge=judge, samples=samples, sample_limit=sample_limit,
                             device=device)
        moved = {}
        for p in sorted(q for q in stage.rglob("*") if q.is_file()):
            dest = final / p.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
            moved[p] = dest
        summary.out = final
        summary.files = [moved.get(p, p) for p in summary.files]
        return summary
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_all(dataset: str, roots: Any, all_runs: list[Run], base: Path, out: Path, *,
               study: str | Path | None, split: str | None, judge: str | None,
               samples: bool, sample_limit: int, device: str) -> ReportSummary:
    """Every table, figure, grid and the index of the report, written into ``out``."""
    summary = ReportSummary(out)

    sel = select(all_runs, judged=True, split=split, judge=judge, what="Table 3")
    t3 = table3(sel, dataset)
    unjudged = sorted({r.result.colorizer for r in all_runs
                       if not r.judged and "diversity_msssim" not in r.result.histograms})
    if unjudged:
        t3.notes.append("Runs without a judge (psc-eval psnr) are not in this table: "
                        + ", ".join(unjudged) + ".")
    if not sel.runs:
        t3.notes.insert(0, "No judged run (psc-eval miou) in these runs: every cell is empty.")

    losses, logs = model_losses(sel)
    tab = ablation(sel, losses, dataset)
    t4 = _table4(study, dataset, roots)
    extra = []
    probes = [r / "experiments" / dataset / "colour-probe.json" for r in run_roots(roots)]
    probe = next((p for p in probes if p.is_file()), None)
    if probe is not None:
        from .tables import colour_probe_table

        extra.append(colour_probe_table(json.loads(probe.read_text()), probe.name))
    for t in (t3, tab, t4, *extra):
        summary.files += t.write(out)
        summary.tables[t.name] = t

    figs: list[str] = []
    if sel.runs:
        have = set(sel.colorizers())
        methods = [m for m in table3_order(have) if m in have and m not in ("gray", "gt")]
        summary.files += figures.fig8(sel, methods, out, t3.facts_line())
        figs.append("fig8_per_class_iou")
    div = select(all_runs, judged=False, split=split, what="Fig. 10",
                 want=lambda r: "diversity_msssim" in r.result.histograms)
    if div.runs:
        summary.files += figures.fig10(div, out, _facts_line(div))
        figs.append("fig10_msssim")
    else:
        summary.notes.append(f"Fig. 10 not drawn: no diversity run of {dataset} "
                             f"(psc-eval diversity --colorizer ours --dataset {dataset})")
    if logs:
        summary.files += figures.ablation_curves(logs, out, dataset)
        figs.append("ablation_val_losses")
    decoding = [json.loads(p.read_text()) for r in roots
                for p in sorted((r / "experiments" / dataset).glob("decoding-*.json"))]
    if decoding:
        summary.files += figures.decoding_curves(decoding, out, dataset)
        figs.append("decoding_temperature")
    learning = figures.learning_series(sel)
    if learning:
        ck_miou = [json.loads(p.read_text()) for r in roots for p in
                   sorted((r / "experiments" / dataset).glob("checkpoint-miou-*.json"))]
        summary.files += figures.learning_curves(learning, out, dataset, ck_miou)
        figs.append("learning_curves")
    curves = sorted(p for r in roots for p in (r / "experiments" / dataset).glob("fig9-*.json"))
    if curves:
        summary.files += figures.fig9(json.loads(curves[-1].read_text()), out)
        figs.append("fig9_seg_curves")
    else:
        summary.notes.append(f"Fig. 9 not drawn: no psc-eval seg-curves result for {dataset}")
    grids: list[Path] = []
    if samples:
        grids = _sample_grids(sel, dataset, out / "samples", sample_limit, device, summary)
        summary.files += grids
    readme = _index(dataset, base, [t3, tab, t4, *extra], figs, grids, sel, div, out,
                    summary.notes)
    atomic_write(out / "README.md", lambda f: f.write(readme.encode()))
    summary.files.append(out / "README.md")
    return summary


def _facts_line(sel: Selection) -> str:
    return Table("", "", [], [], sel.facts()).facts_line()


def _table4(study: str | Path | None, dataset: str,
            roots: str | Path | Sequence[str | Path]) -> Table:
    title = f"Table 4: naturalness ({dataset})"
    if study is None:
        found = [r / "experiments" / dataset / "naturalness-proxy.json"
                 for r in run_roots(roots)]
        proxy = next((p for p in found if p.is_file()), found[0])
        if proxy.is_file():
            from .tables import table4_proxy

            return table4_proxy(json.loads(proxy.read_text()), dataset, proxy.name)
        return missing_table(
            "table4", title,
            "Not available: no human study was given (--study DIR holding the tally.json "
            "of psc-eval study tally) and no naturalness proxy was computed (psc-eval "
            "naturalness), so no number stands in for human judgement here.")
    p = Path(study)
    p = p / "tally.json" if p.is_dir() else p
    try:
        tally = json.loads(p.read_text())
    except FileNotFoundError:
        raise PscError(f"no tally of the study, {p}, run psc-eval study tally "
                       f"{p.parent} first") from None
    except json.JSONDecodeError:
        raise PscError(f"tally is not valid JSON, {p}, rerun psc-eval study tally") from None
    if tally.get("kind") != "human" or not isinstance(tally.get("methods"), dict):
        raise PscError(f"not a human-study tally (kind {tally.get('kind')!r}), {p}, point "
                       "--study at a folder tallied by psc-eval study tally")
    got = (tally.get("study") or {}).get("dataset")
    if got not in (None, dataset):
        raise PscError(f"the study is of dataset {got!r}, not {dataset!r}, {p}, pass the "
                       "study of this dataset to --study")
    if not any((m or {}).get("n") for m in tally["methods"].values()):
        raise PscError(f"the study has no answers yet, {p}, collect answers with psc-eval "
                       "study serve, then tally")
    return table4_human(tally, dataset, p.name)


# --- validation losses of the ablation variants (recorded in their runs) ---

LOSS_KEYS = ("val_L_emb_bpd", "val_L_gen_bpd", "val_L_seg", "val_total")


def model_losses(sel: Selection
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Row label -> the epoch and validation losses of the checkpoint its runs scored, and
    variant -> that checkpoint's per-epoch validation losses, both read from the runs'
    ``provenance.colorizer_checkpoint`` (runs written before it existed: a note)."""
    names = [m.name for m in ablation_rows()]
    out: dict[str, dict[str, Any]] = {}
    logs: dict[str, list[dict[str, Any]]] = {}
    for label, runs in [c for name in names for c in sel.configs(name)]:
        cks = [r.result.provenance.get("colorizer_checkpoint") for r in runs]
        found = {(c.get("path"), c.get("epoch"), c.get("step")): c for c in cks if c}
        if len(found) != 1:
            why = ("its runs record no checkpoint (written before psc-eval recorded it; "
                   "rerun psc-eval miou)" if not found else "its runs scored different "
                   "checkpoints")
            out[label] = {"note": f"{why}; losses not shown"}
            continue
        ck = next(iter(found.values()))
        val = ck.get("val_losses") or {}
        out[label] = {"epoch": ck.get("epoch"), **{k: val.get(k) for k in LOSS_KEYS}}
        if ck.get("history"):
            logs.setdefault(runs[0].result.colorizer, ck["history"])
    return out, logs


# --- sample grids (optional; need the trained models) ---


def _sample_grids(sel: Selection, dataset: str, out: Path, limit: int, device: str,
                  summary: ReportSummary) -> list[Path]:
    from .grid import write_sample_grid

    have = set(sel.colorizers())
    groups = [("fig7", ["psc-purple", "psc-purple-blue", "ours"], 1),
              ("fig11", [*names_in("single"), "ours"], 1),
              ("fig12", [*names_in("diverse"), "ours"], 3)]
    paths = []
    for fig, names, n in groups:
        names = [m for m in names if m in have]
        if fig == "fig11" and len(names) < 2:
            summary.notes.append("fig11 grid not drawn: no single-output baseline has runs")
            continue
        if not names:
            summary.notes.append(f"{fig} grid not drawn: none of its methods has runs")
            continue
        try:
            p = write_sample_grid(names, dataset, out / fig, n=n, limit=limit, seed=0,
                                  device=device)
        except PscError as e:
            summary.notes.append(f"{fig} grid not drawn: {e.one_line()}")
            continue
        paths.append(p)
    return paths


# --- README.md of the report folder ---


def _index(dataset: str, base: Path, tables: list[Table], figs: list[str], grids: list[Path],
           sel: Selection, div: Selection, out: Path, notes: list[str]) -> str:
    lines = [f"# psc-eval report: {dataset}", "",
             ("Generated by `psc-eval report` from stored run JSONs only; do not edit "
              "(rerun the command)."), ""]
    for t in tables:
        lines += [t.markdown(), ""]
    for f in figs:
        lines += [f"![{f}]({f}.png)", ""]
    for g in grids:
        rel = g.relative_to(out)
        lines += [f"![{rel.parent.name} samples]({rel.as_posix()})", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Run files used", "", "| table | colorizer | seed | run key | date | file |",
              "|---|---|--:|---|---|---|"]
    for what, s in (("Table 3 / ablation / Fig. 8", sel), ("Fig. 10", div)):
        # every training seed's runs (Table 3's mean +- sd reads them all)
        for label, runs in (s.train_seeds or s.runs).items():
            for r in runs:
                seed = str(r.result.seed) + ("" if r.train_seed is None else
                                             f" (training seed {r.train_seed})")
                lines.append(f"| {what} | {label} | {seed} | "
                             f"{r.result.provenance.get('run_key')} | {r.date} | "
                             f"{_rel(r, base)} |")
        for dropped, _kept in s.superseded:
            lines.append(f"| superseded (not used) | {dropped.result.colorizer} | "
                         f"{dropped.result.seed} | {dropped.result.provenance.get('run_key')}"
                         f" | {dropped.date} | {_rel(dropped, base)} |")
    return "\n".join(lines) + "\n"


def _rel(r: Run, base: Path) -> str:
    try:
        return r.path.relative_to(base).as_posix()
    except ValueError:
        return r.path.name
