"""The ``psc-eval`` command line: thin. Each command parses options and calls one function.

Errors a user can cause arrive as ``PscError`` and are printed on one line
(``psc-eval: error: ...``) with exit status 2; click's own usage errors keep click's format.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import PscError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="psc-eval")
def cli() -> None:
    """Pixelated Semantic Colorization: models, baselines and the paper's evaluation."""


def dataset_options(default_split: str | None = None):
    """--dataset/--root/--split/--size/--allow-partial, shared by every command that reads data."""

    def deco(f):
        f = click.option("--allow-partial", is_flag=True,
                         help="Accept a VOC split whose image count differs from the official one.")(f)
        f = click.option("--size", default=None, type=int,
                         help="Square input size; default 128 (real data), 64 (toy).")(f)
        f = click.option("--split", default=default_split,
                         help="Split as named on disk (default: the dataset's evaluation split).")(f)
        f = click.option("--root", default=None, type=click.Path(file_okay=False),
                         help="Dataset folder (VOCdevkit, COCO-stuff root, image folder).")(f)
        f = click.option("--dataset", default="toy", show_default=True,
                         help="Dataset name (psc-eval ls).")(f)
        return f

    return deco


def open_dataset(dataset: str, root, split, size: int, allow_partial: bool, **kw):
    from .data import get_dataset

    return get_dataset(dataset, root=root, split=split, size=size, allow_partial=allow_partial, **kw)


@cli.command("ls")
def ls_cmd() -> None:
    """List colorizers, segmenters and datasets."""
    from .colorizer import list_colorizers
    from .data import list_datasets

    click.echo("colorizers:")
    for k, v in list_colorizers().items():
        click.echo(f"  {k:<18} {v}")
    click.echo("segmenters:")
    try:
        from .judge import list_segmenters

        for k, v in list_segmenters().items():
            click.echo(f"  {k:<34} {v}")
    except ImportError:
        click.echo("  (judge module not available)")
    click.echo("datasets:")
    for k, v in list_datasets().items():
        click.echo(f"  {k:<18} {v}")


@cli.group("data")
def data_group() -> None:
    """Inspect datasets."""


@data_group.command("preview")
@dataset_options()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--n", "n_rows", default=6, show_default=True, type=click.IntRange(1, 64))
def data_preview(dataset, root, split, size, allow_partial, out, n_rows) -> None:
    """Write a Fig. 3-style grid: colour, gray and segmentation map with a class legend."""
    from .data.preview import write_preview

    ds = open_dataset(dataset, root, split, size, allow_partial)
    path = write_preview(ds, out, n=n_rows)
    click.echo(f"wrote {path}")


# --- judge commands (train-judge): psc_eval.judge ---

# --- runner commands (miou, psnr, diversity): psc_eval.runner ---

# --- model commands (train, sample): psc_eval.models ---

# --- study commands (study create/serve/tally): psc_eval.study ---

# --- report commands (reproduce, report, regress) ---


def main(argv: list[str] | None = None) -> None:
    try:
        rc = cli.main(args=argv, prog_name="psc-eval", standalone_mode=False)
    except PscError as e:
        click.echo(f"psc-eval: error: {e.one_line()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("psc-eval: interrupted; finished work is kept, rerun the command to resume",
                   err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
