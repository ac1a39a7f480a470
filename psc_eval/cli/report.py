"""``psc-eval report``, ``reproduce``, ``regress`` and ``ship``: results in, tables out."""

from __future__ import annotations

import sys

import click

from ..dist import DEVICE_HELP
from .app import cli
from .options import comma_list, pairs


@cli.command("report", short_help="Tables 3-4, ablation, Figs. 8 and 10 from stored runs.")
@click.option("--dataset", default="toy", show_default=True, help="toy, voc or cocostuff.")
@click.option("--runs", default=("reports",), show_default=True, multiple=True,
              type=click.Path(file_okay=False),
              help="The --out folder of the evaluations (holds runs/<dataset>/...); repeat "
                   "it to put runs of several folders in one table.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Report folder (default reports/<dataset>).")
@click.option("--study", default=None, type=click.Path(exists=True),
              help="Human study folder (or its tally.json) for Table 4.")
@click.option("--split", default=None, help="Use only runs of this split.")
@click.option("--judge", default=None, help="Use only runs of this judge (segmenter name).")
@click.option("--samples", is_flag=True, help="Also draw sample grids (needs the models).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--label", "labels", multiple=True, metavar="NAME=TEXT",
              help="Display label of a row without a method record (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="NAME=GROUP",
              help="Table 3-4 group of such a row: single, own, diverse, ablation, paper.")
def report_cmd(dataset, runs, out, study, split, judge, samples, device, labels,
               groups) -> None:
    """Write Table 3, Table 4, the ablation table (Markdown, LaTeX, CSV) and Figs. 8 and 10
    (PNG, PDF) of one dataset, derived only from the stored run JSONs."""
    from ..dist import resolve_device
    from ..report.build import write_report

    click.echo(write_report(dataset, list(runs), out, study=study, split=split,
                            judge=judge, samples=samples, device=resolve_device(device),
                            labels=pairs(labels, "--label"),
                            groups=pairs(groups, "--group")).text())


@cli.command("reproduce", short_help="The whole toy benchmark: judge, models, metrics, report.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Run results go to OUT/runs/..., the report to OUT/<dataset>/.")
@click.option("--from-scratch", is_flag=True,
              help="Train the judge and every model under $PSC_HOME instead of using the "
                   "checkpoints shipped in the repository.")
@click.option("--shipped/--trained", "shipped_first", default=False, show_default=True,
              help="Where both a shipped and a trained judge or model exist: use the shipped "
                   "one (--shipped) or the one trained under $PSC_HOME (--trained).")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1),
              help="Trainings run side by side (CPU: one per core, each on one thread).")
@click.option("--status", is_flag=True,
              help="Only list the protocol's trainings under $PSC_HOME (absent, partial, "
                   "finished; epochs, images seen, converged) and exit.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def reproduce_cmd(dataset, out, from_scratch, shipped_first, jobs, status, device) -> None:
    """Judge, every model (shipped or trained), mIoU / PSNR / semantic / pollution of all
    rows, diversity, and the report; resumable: finished steps are skipped on a rerun."""
    from ..dist import resolve_device
    from ..experiments.reproduce import reproduce

    if status:
        from ..experiments.protocol import protocol_status
        from ..training.entry import TRAINABLE

        for r in protocol_status(dataset, list(TRAINABLE)):
            conv = {True: "converged", False: "not converged (cap)", None: ""}[r.get("converged")]
            facts = "" if r["state"] == "absent" else (
                f"{r['epochs']} epochs, {r['images_seen']} images seen, "
                f"{(r['wall_s'] or 0) / 60:.0f} min {conv}")
            click.echo(f"{r['run']:<26} {r['state']:<9} {facts}")
        return
    s = reproduce(dataset, out=out, from_scratch=from_scratch, device=resolve_device(device),
                  prefer="shipped" if shipped_first else "trained", jobs=jobs)
    click.echo(s.text())


@cli.command("regress", short_help="Re-score a fixed subset; exit 1 if a metric moved.")
@click.option("--expected", default=None, type=click.Path(dir_okay=False),
              help="Expected-metrics file (default reports/toy/expected.json).")
@click.option("--colorizer", "colorizer", multiple=True,
              help="Rows to score: a name (psc-eval ls) or module:Class; repeat it or give a "
                   "comma list (default: the rows of the expected file).")
@click.option("--predictions", "predictions", multiple=True,
              help="A folder of saved colorizations as one more row, DIR or NAME=DIR.")
@click.option("--dataset", default=None, help="Dataset of a new file (--update; default toy).")
@click.option("--split", default=None, help="Split of a new file (--update).")
@click.option("--size", default=None, type=click.IntRange(8), help="Input size of a new file.")
@click.option("--limit", default=None, type=click.IntRange(1),
              help="Score the first N images (a new file: 96, or the split's size).")
@click.option("--update", is_flag=True,
              help="Write the current values (and identities) to the expected file.")
@click.option("--junit-xml", "junit_xml", default=None, type=click.Path(dir_okay=False),
              help="Also write a JUnit XML report: one test case per row and metric.")
@click.option("--summary", "summary", default=None, type=click.Path(dir_okay=False),
              help="Also write a Markdown summary (for a CI job page).")
def regress_cmd(expected, colorizer, predictions, dataset, split, size, limit, update,
                junit_xml, summary) -> None:
    """Re-score the expected file's rows (default: the shipped toy checkpoints on the first
    96 toy val images) and compare every metric with its expected value under its stated
    tolerance.

    Exit status: 0 every metric within tolerance (or --update written), 1 a metric moved
    (the lines above the verdict say whether the judge, the images or the metric code
    changed rather than the method), 2 bad input (one line on stderr)."""
    from ..experiments.regress import run_regress
    from ..io import atomic_write
    from .options import prediction_rows

    rows = [*comma_list(colorizer), *prediction_rows(predictions)]
    out = run_regress(expected, colorizers=rows, dataset=dataset, limit=limit, split=split,
                      size=size, update=update)
    click.echo(out.text())
    for path, body in ((junit_xml, out.junit_xml), (summary, out.summary_md)):
        if path is not None:
            text = body()
            atomic_write(path, lambda f, t=text: f.write(t.encode()))
    if out.exit_code:
        sys.exit(out.exit_code)


@cli.command("ship", short_help="Slim float16 copies of trained toy checkpoints + manifest.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--judge", default=None,
              help="Judge to ship (default: the dataset's, when trained under $PSC_HOME).")
@click.option("--colorizer", "colorizers", multiple=True, required=True,
              help="Trained colorizer to ship (repeat, or a comma list).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder (default reports/<dataset>/checkpoints of this source tree).")
@click.option("--drop", multiple=True,
              help="A shipped entry to remove with its file, e.g. judge/<arch> "
                   "when another judge replaces it (repeat, or a comma list).")
def ship_cmd(dataset, judge, colorizers, out, drop) -> None:
    """Copy the judge and colorizers trained under $PSC_HOME into the repository as slim
    float16 checkpoints with a sha256 manifest (what a fresh clone's first run uses)."""
    from ..colorizer import checkpoint_check
    from ..judge import default_segmenter
    from ..shipped import SHIP_BUDGET_BYTES, ship_trained, shipped_bytes

    names = comma_list(colorizers)
    path = ship_trained(dataset, judge, names, out, check=checkpoint_check(dataset),
                        default_judge=default_segmenter(dataset), drop=comma_list(drop))
    total = shipped_bytes(path.parent)
    click.echo(f"wrote {path}: {total / 1e6:.1f} MB shipped (budget "
               f"{SHIP_BUDGET_BYTES / 1e6:.0f} MB)")
    if total > SHIP_BUDGET_BYTES:
        click.echo(f"psc-eval: warning: {total / 1e6:.1f} MB shipped is over the budget of "
                   f"{SHIP_BUDGET_BYTES / 1e6:.0f} MB, in {path.parent}, drop or shrink a "
                   "checkpoint (e.g. a smaller judge) before committing", err=True)


