"""``psc-eval report``, ``reproduce``, ``regress`` and ``ship``: results in, tables out."""

from __future__ import annotations

import sys

import click

from ..dist import DEVICE_HELP
from .app import cli
from .options import comma_list


@cli.command("report", short_help="Tables 3-4, ablation, Figs. 8 and 10 from stored runs.")
@click.option("--dataset", default="toy", show_default=True, help="toy, voc or cocostuff.")
@click.option("--runs", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="The --out folder of the evaluations (holds runs/<dataset>/...).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Report folder (default reports/<dataset>).")
@click.option("--study", default=None, type=click.Path(exists=True),
              help="Human study folder (or its tally.json) for Table 4.")
@click.option("--split", default=None, help="Use only runs of this split.")
@click.option("--judge", default=None, help="Use only runs of this judge (segmenter name).")
@click.option("--samples", is_flag=True, help="Also draw sample grids (needs the models).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def report_cmd(dataset, runs, out, study, split, judge, samples, device) -> None:
    """Write Table 3, Table 4, the ablation table (Markdown, LaTeX, CSV) and Figs. 8 and 10
    (PNG, PDF) of one dataset, derived only from the stored run JSONs."""
    from ..dist import resolve_device
    from ..report.build import write_report

    click.echo(write_report(dataset, runs, out, study=study, split=split,
                            judge=judge, samples=samples,
                            device=resolve_device(device)).text())


@cli.command("reproduce", short_help="The whole toy benchmark: judge, models, metrics, report.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Run results go to OUT/runs/..., the report to OUT/<dataset>/.")
@click.option("--from-scratch", is_flag=True,
              help="Train the judge and every model under $PSC_HOME instead of using the "
                   "checkpoints shipped in the repository.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def reproduce_cmd(dataset, out, from_scratch, device) -> None:
    """Judge, every model (shipped or trained), mIoU / PSNR / semantic / pollution of all
    rows, diversity, and the report; resumable: finished steps are skipped on a rerun."""
    from ..dist import resolve_device
    from ..experiments.reproduce import reproduce

    s = reproduce(dataset, out=out, from_scratch=from_scratch, device=resolve_device(device))
    click.echo(s.text())


@cli.command("regress", short_help="Re-score a fixed toy subset; exit 1 if a metric moved.")
@click.option("--expected", default=None, type=click.Path(dir_okay=False),
              help="Expected-metrics file (default reports/toy/expected.json).")
@click.option("--update", is_flag=True, help="Rewrite the expected values and show the diff.")
def regress_cmd(expected, update) -> None:
    """Re-evaluate the expected file's toy subset with the shipped checkpoints and compare
    every metric with its expected value under its stated tolerance (exit 1 on drift)."""
    from ..experiments.regress import regress

    text, ok = regress(expected, update=update)
    click.echo(text)
    if not ok:
        sys.exit(1)


@cli.command("ship", short_help="Slim float16 copies of trained toy checkpoints + manifest.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--judge", default=None, help="Judge to ship (default: the dataset's).")
@click.option("--colorizer", "colorizers", multiple=True, required=True,
              help="Trained colorizer to ship (repeat, or a comma list).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder (default reports/<dataset>/checkpoints of this source tree).")
def ship_cmd(dataset, judge, colorizers, out) -> None:
    """Copy the judge and colorizers trained under $PSC_HOME into the repository as slim
    float16 checkpoints with a sha256 manifest (what a fresh clone's first run uses)."""
    from ..judge import default_segmenter
    from ..shipped import ship_trained

    names = comma_list(colorizers)
    path = ship_trained(dataset, judge or default_segmenter(dataset), names, out)
    click.echo(f"wrote {path}")


