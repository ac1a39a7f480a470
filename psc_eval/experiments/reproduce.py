"""``psc-eval reproduce --dataset toy``: the whole toy benchmark, resumable, in one command.

Steps, each skipped when its result is already there (rerun after an interruption and it
continues where it stopped; finished trainings and evaluations come from their
checkpoints and the score cache):

1. the judge: trained under ``$PSC_HOME``, else the one shipped in the repository, else
   ``psc-eval train-judge``;
2. every trainable colorizer (the paper's model, its ablations, the baselines) with its
   ``toy`` config: trained, shipped, or trained now (resumed if a run was interrupted);
3. ``psc-eval miou`` of all of them in one pass (gray and colour rows, mIoU with
   intervals, PSNR, semantic colour accuracy, pollution);
4. ``psc-eval diversity`` of every stochastic colorizer (Fig. 10);
5. ``psc-eval seg-curves`` (Fig. 9: h from scratch, from a pretrained colorizer, joint);
6. ``psc-eval naturalness`` (Table 4's labelled proxy: a CNN critic per method);
7. the training-seed spread (``SEED_SPREAD``: ``ours``, the two strongest baselines and
   Zhang, two more training seeds each): trained with ``from_scratch`` or when a run of them is
   already under ``$PSC_HOME`` (then resumed), and scored like step 3 (Table 3's
   mean +- sd over training seeds); skipped otherwise (their models are not shipped);
8. the sampling temperature of ``ours`` selected on held-out TRAIN images
   (``select-temperature``) and, when it is not 1, ``ours`` scored at it: Table 3's
   labelled second row (the first is the paper's model as described, T = 1);
9. the judge's mIoU at a few epoch checkpoints of ``CHECKPOINT_CURVE`` (when their runs
   are here: the epoch copies are not shipped);
10. ``psc-eval colour-probe`` (what the judge rewards: controlled recolourings of val);
11. ``psc-eval report`` (Tables 3-4, ablation, Figs. 8, 9 and 10, learning curves, the
    colour probe, sample grids).

``from_scratch`` ignores the shipped checkpoints: the judge and every colorizer are
trained under ``$PSC_HOME`` (those already trained there are reused or resumed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from .protocol import SEED_SPREAD, seed_checkpoint

# Whose epoch checkpoints the report scores: ours and the strongest baseline.
CHECKPOINT_CURVE = ("ours", "iizuka2016")


@dataclass
class Step:
    name: str
    run: Callable[[], str]  # returns what it did ("trained", "shipped", "scored", ...)
    outcome: str = ""
    seconds: float = 0.0


@dataclass
class ReproduceSummary:
    dataset: str
    steps: list[Step] = field(default_factory=list)
    report_dir: Path | None = None
    runs_dir: Path | None = None

    def text(self) -> str:
        w = max(len(s.name) for s in self.steps)
        lines = [f"psc-eval reproduce: {self.dataset}, {len(self.steps)} steps"]
        lines += [f"  {s.name:<{w}}  {s.outcome:<44} {s.seconds:8.1f} s" for s in self.steps]
        lines.append(f"  {'total':<{w}}  {'':<44} {sum(s.seconds for s in self.steps):8.1f} s")
        lines.append(f"run results: {self.runs_dir}/runs/{self.dataset}/...")
        lines.append(f"report (tables, figures, samples): {self.report_dir}/README.md")
        return "\n".join(lines)


def _trained(path: Path) -> bool:
    return path.is_file()


def _other_config(name: str, dataset: str, last: Path) -> list[str]:
    """The config keys (moving numbers) in which ``last`` differs from the protocol's."""
    from ..checkpoint import load_checkpoint
    from ..training.entry import protocol_diff

    return protocol_diff(name, dataset, load_checkpoint(last).get("config") or {})


def train_outcome(name: str, dataset: str, *, from_scratch: bool = False, device: str = "cpu",
                  prefer: str | None = None, dry_run: bool = False) -> str:
    """reproduce's step for one trainable: "shipped", or its protocol run trained (or
    resumed) in the folder evaluation reads. A run of another configuration found there
    (trained before run folders were keyed) is never resumed: one line saying so."""
    from ..errors import PscError
    from ..paths import colorizer_dir
    from ..shipped import shipped
    from ..training.entry import train

    last = colorizer_dir(dataset, name) / "last.pt"
    ship = None if from_scratch else shipped(dataset, "colorizer", name)
    if ship is not None and (prefer == "shipped" or not last.is_file()):
        return "shipped"
    if last.is_file():
        other = _other_config(name, dataset, last)
        if other:
            raise PscError(
                f"the run of {name} that evaluation reads has another configuration than "
                f"the protocol's ({', '.join(other[:4])}), {last.parent}, move that folder "
                "away (psc-eval train now keys such runs on their config) or pass --shipped")
    if dry_run:
        return "would train"
    res = train(name, dataset, dataset, device=device,
                resume="last" if last.is_file() else None, progress=True)
    return f"trained ({len(res.history)} epochs)"


def parallel_step(names: list[str], dataset: str, *, from_scratch: bool, device: str,
                  prefer: str | None, jobs: int, echo: Callable[[str], None]) -> str:
    """reproduce --jobs N: the trainings the per-method steps would do (and the extra seeds
    they would train), N at a time."""
    from .protocol import Job, job_state, protocol_jobs, train_protocol

    todo = [Job(n, 0) for n in names
            if train_outcome(n, dataset, from_scratch=from_scratch, device=device,
                             prefer=prefer, dry_run=True) == "would train"]
    todo += [j for j in protocol_jobs(names, SEED_SPREAD) if j.seed != 0
             and (from_scratch or job_state(j, dataset)[0] != "absent")]
    if not todo:
        return "nothing to train"
    res = train_protocol(dataset, todo, workers=jobs, device=device, echo=echo)
    failed = [k for k, v in res.items() if v.startswith("FAILED")]
    if failed:
        from ..errors import PscError

        raise PscError(f"{len(failed)} protocol trainings failed ({'; '.join(failed)}), in "
                       "the log above, fix the cause and rerun: finished runs are kept")
    return f"{len(res)} runs trained or finished"


def seed_spread_step(dataset: str, out: Path, *, from_scratch: bool, device: str) -> str:
    """reproduce's step 7: train (or resume) and score the extra training seeds."""
    from ..runner import run_eval
    from ..training.entry import train

    scored, skipped = [], 0
    for name, seeds in SEED_SPREAD.items():
        for seed in seeds:
            last = seed_checkpoint(name, dataset, seed)
            if not (from_scratch or last.is_file()):
                skipped += 1
                continue
            train(name, dataset, dataset, device=device, seed=seed,
                  resume="last" if last.is_file() else None, progress=True)
            run_eval("miou", name, dataset, colorizer_weights=str(last), device=device,
                     out=str(out), progress=True)
            scored.append(f"{name} seed {seed}")
    if not scored:
        return (f"skipped: no extra training seed under $PSC_HOME ({skipped} runs; "
                "--from-scratch trains them)")
    return f"{len(scored)} seed runs scored" + (f", {skipped} absent" if skipped else "")


def decoding_step(dataset: str, out: Path, device: str) -> str:
    """reproduce's step 8: select ours' temperature on held-out train images and score
    ours at it on val when it is not 1 (the paper's model as described)."""
    from ..runner import run_eval
    from .decoding import select_temperature

    r = select_temperature("ours", dataset, out=out, device=device)
    t = float(r["selected"])
    if t == 1.0:
        return "selected T=1 (ours' row as it is)"
    run_eval("miou", "ours", dataset, temperature=t, device=device, out=str(out),
             progress=True)
    return f"selected T={t:g}, ours scored at it"


def checkpoint_step(dataset: str, out: Path, device: str) -> str:
    from .checkpoints import checkpoint_miou

    done = [n for n in CHECKPOINT_CURVE
            if checkpoint_miou(n, dataset, out=out, device=device) is not None]
    return (f"{', '.join(done)}: epoch checkpoints scored" if done else
            "skipped: no epoch checkpoints here (trained elsewhere or shipped)")


def reproduce(dataset: str = "toy", *, out: str | Path = "reports", from_scratch: bool = False,
              device: str = "cpu", echo: Callable[[str], None] = click.echo,
              prefer: str | None = None, jobs: int = 1) -> ReproduceSummary:
    """``prefer``: "shipped" uses the shipped judge and models where both a shipped and a
    trained one exist (``--shipped``); None / "trained" (``--trained``, the default)
    uses what was trained under $PSC_HOME. ``jobs`` > 1: the trainings to do run that
    many at a time (experiments.protocol) before the per-method steps read them."""
    import os

    before = os.environ.get("PSC_SHIPPED")
    if prefer == "shipped":
        os.environ["PSC_SHIPPED"] = "first"  # every step builds its colorizers by name
    try:
        return _reproduce(dataset, out, from_scratch, device, echo, prefer, jobs)
    finally:
        if before is None:
            os.environ.pop("PSC_SHIPPED", None)
        else:
            os.environ["PSC_SHIPPED"] = before


def _reproduce(dataset: str, out: str | Path, from_scratch: bool, device: str,
               echo: Callable[[str], None], prefer: str | None,
               jobs: int = 1) -> ReproduceSummary:
    from ..colorizer import resolve_colorizer_class
    from ..judge import default_segmenter
    from ..paths import judge_weights_path
    from ..shipped import shipped
    from ..training.entry import TRAINABLE

    if dataset != "toy":
        from ..errors import PscError

        raise PscError(f"reproduce runs the embedded toy benchmark, got --dataset {dataset}, "
                       "in the options, run the steps one by one on real data (README)")
    out = Path(out)
    judge = default_segmenter(dataset)
    summary = ReproduceSummary(dataset, runs_dir=out, report_dir=out / dataset)

    def judge_step() -> str:
        if prefer == "shipped" and shipped(dataset, "judge", judge) is not None:
            return f"shipped ({judge})"
        if _trained(judge_weights_path(dataset, judge)):
            return f"trained under $PSC_HOME ({judge})"
        if not from_scratch and shipped(dataset, "judge", judge) is not None:
            return f"shipped ({judge})"
        from ..judge import train_judge

        s = train_judge(dataset, judge, device=device)
        return f"trained: colour {s['val_miou_color']:.3f}, gray {s['val_miou_gray']:.3f}"

    summary.steps.append(Step(f"judge {judge}", judge_step))

    def train_step(name: str) -> Callable[[], str]:
        return lambda: train_outcome(name, dataset, from_scratch=from_scratch, device=device,
                                     prefer=prefer)

    names = list(TRAINABLE)
    if jobs > 1:
        summary.steps.append(Step(f"protocol trainings ({jobs} at a time)", lambda: (
            parallel_step(names, dataset, from_scratch=from_scratch, device=device,
                          prefer=prefer, jobs=jobs, echo=echo))))
    for name in names:
        summary.steps.append(Step(f"train {name}", train_step(name)))

    rows = benchmark_rows(names)

    def miou_step() -> str:
        from ..runner import run_eval

        s = run_eval("miou", rows, dataset, device=device, out=out, progress=True)
        n = len(s.results)
        cached = sum(r.provenance["cache_stats"]["images_from_cache"] for r in s.results)
        return f"{n} rows scored ({cached} images from cache)"

    summary.steps.append(Step("miou (all rows)", miou_step))

    def diversity_step() -> str:
        from .diversity import run_diversity

        stochastic = [n for n in rows if getattr(resolve_colorizer_class(n), "stochastic",
                                                 False)]
        for n in stochastic:
            run_diversity(n, dataset=dataset, device=device, out=out, progress=True)
        return f"{len(stochastic)} stochastic rows"

    summary.steps.append(Step("diversity (Fig. 10)", diversity_step))

    def fig9_step() -> str:
        from .segcurves import seg_curves

        path = seg_curves(dataset, dataset, out=out, device=device)
        return f"curves in {path}"

    summary.steps.append(Step("seg-curves (Fig. 9)", fig9_step))

    def naturalness_step() -> str:
        from .naturalness import naturalness_proxy

        path = naturalness_proxy(rows, dataset, out=out, device=device, progress=True)
        return f"proxy in {path}"

    summary.steps.append(Step("naturalness proxy (Table 4)", naturalness_step))
    summary.steps.append(Step("training seeds (Table 3)", lambda: seed_spread_step(
        dataset, out, from_scratch=from_scratch, device=device)))
    summary.steps.append(Step("temperature of ours (Table 3)",
                              lambda: decoding_step(dataset, out, device)))
    summary.steps.append(Step("mIoU at epoch checkpoints",
                              lambda: checkpoint_step(dataset, out, device)))

    def probe_step() -> str:
        from .colour_probe import colour_probe

        r = colour_probe(dataset, out=out, device=device)
        return f"{len(r['miou'])} recolourings scored"

    summary.steps.append(Step("colour probe (what the judge rewards)", probe_step))

    def report_step() -> str:
        from ..report.build import write_report

        write_report(dataset, out, out / dataset, samples=True, device=device)
        return f"written to {out / dataset}"

    summary.steps.append(Step("report", report_step))

    for i, step in enumerate(summary.steps, 1):
        echo(f"[{i}/{len(summary.steps)}] {step.name} ...")
        t0 = time.perf_counter()
        step.outcome = step.run()
        step.seconds = time.perf_counter() - t0
        echo(f"[{i}/{len(summary.steps)}] {step.name}: {step.outcome} ({step.seconds:.1f} s)")
    return summary


def benchmark_rows(names: list[str] | None = None) -> list[str]:
    """The colorizers reproduce scores: every registered one that reads the checkpoint of
    one of the trainables ``names`` (default: all of them), psc-embedding too."""
    from ..colorizer import resolve_colorizer_class
    from ..training.entry import TRAINABLE

    names = list(TRAINABLE) if names is None else names
    return [n for n in _colorizers() if
            getattr(resolve_colorizer_class(n), "weights_variant", n) in names or n in names]


def _colorizers() -> list[str]:
    from ..colorizer import list_colorizers

    return [n for n in list_colorizers() if n not in ("gray", "gt")]
