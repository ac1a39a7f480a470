"""``psc-eval ls`` and ``psc-eval data``: the registries and the datasets."""

from __future__ import annotations

import click

from .app import cli
from .options import dataset_options, open_dataset


@cli.command("ls", short_help="List the registries: colorizers, methods, judges, datasets, scorers.")
def ls_cmd() -> None:
    """List every registry: colorizers, trainable methods, segmenters, datasets, scorers."""
    import importlib

    # (heading, module, its psc_eval.registry.Registry); listing imports no model code
    registries = (
        ("colorizers", "psc_eval.colorizer", "COLORIZERS"),
        ("trainable colorizers (psc-eval train)", "psc_eval.training.entry", "TRAINABLE"),
        ("segmenters", "psc_eval.judge.registry", "SEGMENTERS"),
        ("datasets", "psc_eval.data", "DATASETS"),
        ("scorers", "psc_eval.metrics", "SCORERS"),
    )
    for heading, module, attr in registries:
        registry = getattr(importlib.import_module(module), attr, None)
        if registry is None:  # a registry not (yet) in this tree
            continue
        entries = registry.list()
        click.echo(f"{heading}:")
        width = max((len(k) for k in entries), default=0) + 2
        for k, v in entries.items():
            click.echo(f"  {k:<{width}}{v}".rstrip())


@cli.group("data")
def data_group() -> None:
    """Inspect datasets."""


@data_group.command("preview", short_help="Preview grid: colour, gray and segmentation map.")
@dataset_options()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--n", "n_rows", default=6, show_default=True, type=click.IntRange(1, 64))
def data_preview(dataset, root, split, size, allow_partial, out, n_rows) -> None:
    """Write a Fig. 3-style grid: colour, gray and segmentation map with a class legend."""
    from ..data.preview import write_preview

    ds = open_dataset(dataset, root, split, size, allow_partial)
    path = write_preview(ds, out, n=n_rows)
    click.echo(f"wrote {path}")


