"""Evaluation commands: ``miou``, ``psnr``, ``diversity``, ``compare``, ``sample``."""

from __future__ import annotations

import click

from ..dist import DEVICE_HELP
from ..errors import PscError
from .app import cli
from .options import comma_list, prediction_rows, runner_options


def _run_eval_cmd(kind: str, colorizer: tuple[str, ...], predictions: tuple[str, ...],
                  **options) -> None:
    from ..dist import dist_info
    from ..runner import run_eval

    rows: list = comma_list(colorizer)
    rows += prediction_rows(predictions)
    if not rows:
        raise PscError(f"nothing to score, in psc-eval {kind}, pass --colorizer NAME or "
                       "--predictions DIR")
    summary = run_eval(kind, rows, **options)
    if dist_info().is_main:
        click.echo(summary.text())
        for line in checkpoint_lines(summary.results):
            click.echo(line)


def checkpoint_lines(results) -> list[str]:
    """Which checkpoint each row scored (a short training never passes unseen)."""
    from pathlib import Path

    from ..paths import psc_home

    out = []
    for r in results:
        ck = r.provenance.get("colorizer_checkpoint") or {}
        if ck.get("path"):
            here = Path(ck["path"]).resolve().is_relative_to(psc_home().resolve())
            where = ("shipped" if ck.get("source") == "shipped" else
                     "trained under $PSC_HOME" if here else "trained, given file")
            out.append(f"{r.colorizer}: checkpoint {ck['path']} ({where}, epoch "
                       f"{ck.get('epoch')}, step {ck.get('step')})")
    return out


@cli.command("miou", short_help="mIoU of the judge on colorized images (Table 3, Fig. 8).")
@runner_options("miou")
def miou_cmd(colorizer, predictions, **options) -> None:
    """Mean IoU of a judge on colorized images (Table 3, Fig. 8): gray / colorizer / colour."""
    _run_eval_cmd("miou", colorizer, predictions, **options)


@cli.command("psnr", short_help="PSNR against the true colours (Table 3); no masks needed.")
@runner_options("psnr")
def psnr_cmd(colorizer, predictions, **options) -> None:
    """PSNR of colorized images against the true colours (Table 3); needs no masks."""
    _run_eval_cmd("psnr", colorizer, predictions, **options)


@cli.command("diversity", short_help="MS-SSIM of two samples per input (Fig. 10).")
@runner_options("diversity")
def diversity_cmd(colorizer, predictions, **options) -> None:
    """Sample diversity of a stochastic colorizer (Fig. 10): MS-SSIM between two samples of
    each gray input; histogram in the run JSON, a figure of example pairs under OUT/figures."""
    from ..dist import dist_info
    from ..experiments.diversity import run_diversity

    rows: list = comma_list(colorizer)
    rows += prediction_rows(predictions)
    if not rows:
        raise PscError("diversity needs a stochastic colorizer, in --colorizer, name one "
                       "(or --predictions DIR holding <id>_0.png and <id>_1.png)")
    for row in rows:
        summary = run_diversity(row, **options)
        if dist_info().is_main:
            click.echo(summary.text())


@cli.command("compare", short_help="Paired difference of two runs, interval and p-value.")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--resamples", default=10000, show_default=True, type=click.IntRange(100),
              help="Bootstrap resamples and permutations.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(a, b, resamples, seed, as_json) -> None:
    """A - B for two run JSONs of the same images (mIoU, PSNR): paired bootstrap 95%
    interval and sign-flip permutation p-value."""
    from ..report.confidence import compare_runs, comparison_json, format_comparison

    c = compare_runs(a, b, resamples=resamples, seed=seed)
    click.echo(comparison_json(c) if as_json else format_comparison(c))


@cli.command("sample", short_help="Labelled grid: gray input, samples of each method, truth.")
@click.option("--colorizer", "colorizer", required=True, multiple=True,
              help="Colorizer name or module:attr; repeat it (or a comma list) for one "
                   "column group per method; gray and gt work too.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--root", default=None, type=click.Path(file_okay=False))
@click.option("--split", default=None)
@click.option("--size", default=None, type=int)
@click.option("--n", "n", default=3, show_default=True, type=click.IntRange(1, 64),
              help="Samples per image of a stochastic colorizer.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--limit", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Images (grid rows).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--temperature", default=None, type=float,
              help="Sampling temperature (default: the colorizer's own).")
@click.option("--sampler", default=None, type=click.Choice(["cached", "naive"]),
              help="Sampler of the paper's model (default: cached).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint (default: the one trained under $PSC_HOME, else the shipped one).")
def sample_cmd(colorizer, dataset, root, split, size, n, out, limit, seed, temperature,
               sampler, device, weights) -> None:
    """Write a labelled PNG grid: gray input, each method's samples, ground truth."""
    from ..dist import resolve_device
    from ..report.grid import write_sample_grid

    names = comma_list(colorizer)
    options = {k: v for k, v in (("temperature", temperature), ("sampler", sampler))
               if v is not None}
    path = write_sample_grid(names, dataset, out, n=n, limit=limit, seed=seed,
                             device=resolve_device(device), root=root, split=split,
                             size=size, weights=weights, options=options)
    click.echo(f"wrote {path}")

