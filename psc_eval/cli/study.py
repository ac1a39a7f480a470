"""``psc-eval study create / serve / tally``: the human naturalness study (Table 4)."""

from __future__ import annotations

import click

from ..dist import DEVICE_HELP
from ..errors import PscError
from .app import cli
from .options import dataset_options, open_dataset


@cli.group("study", short_help="Human naturalness study (Table 4): create, serve, tally.")
def study_group() -> None:
    """Human naturalness study (Table 4): create stimuli, serve them, tally the answers."""


def _parse_weights(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for it in items:
        method, sep, path = it.partition("=")
        if not sep or not method or not path:
            raise PscError(f"--weights expects METHOD=PATH, got {it!r}, in the options, "
                           "e.g. --weights ours=model.pt")
        out[method] = path
    return out


@study_group.command("create", short_help="Pick images, render the stimuli, write the manifest.")
@dataset_options()
@click.option("--methods", required=True, help="Comma-separated colorizers, e.g. gray,gt,ours.")
@click.option("--images", "n_images", default=20, show_default=True, type=int,
              help="Test images; every method colorizes each of them.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Study folder.")
@click.option("--display-size", default=256, show_default=True, type=int,
              help="Pixels per side at which observers see every image.")
@click.option("--vigilance", "n_vigilance", default=None, type=int,
              help="Catch trials (half real, half wrong colours); default max(4, 10%).")
@click.option("--weights", "weights", multiple=True, metavar="METHOD=PATH",
              help="Weights file for one method (repeatable).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def study_create(dataset, root, split, size, allow_partial, methods, n_images, seed, out,
                 display_size, n_vigilance, weights, device) -> None:
    """Pick images, render each method's colorization and the catch trials, write the manifest."""
    from ..dist import resolve_device
    from ..study import create_study

    ds = open_dataset(dataset, root, split, size, allow_partial)
    path = create_study(dataset, methods, n_images, seed, out, display_size=display_size,
                        n_vigilance=n_vigilance, weights=_parse_weights(weights),
                        device=resolve_device(device),
                        dataset_obj=ds)
    import json

    n = len(json.loads(path.read_text())["trials"])
    click.echo(f"wrote {path} ({n} trials per observer); serve it with "
               f"'psc-eval study serve {out}'")


@study_group.command("serve", short_help="Serve the observer page; answers go to responses.jsonl.")
@click.argument("study_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 or a LAN IP lets colleagues connect.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--exposure-ms", default=None, type=int,
              help="Hide each image after this many milliseconds (default: no limit).")
def study_serve(study_dir, host, port, exposure_ms) -> None:
    """Serve the observer page until Ctrl-C; answers go to STUDY_DIR/responses.jsonl."""
    from ..study import serve_study

    serve_study(study_dir, host=host, port=port, exposure_ms=exposure_ms, echo=click.echo)


@study_group.command("tally", short_help="Table 4: % judged natural per method, with intervals.")
@click.argument("study_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="JSON to write (default STUDY_DIR/tally.json).")
@click.option("--vigilance-threshold", default=0.75, show_default=True, type=float,
              help="Exclude observers below this fraction of correct catch trials.")
@click.option("--n-boot", default=2000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
def study_tally(study_dir, out, vigilance_threshold, n_boot, seed) -> None:
    """Table 4: % judged natural per method, Wilson and two-way bootstrap 95% intervals."""
    from pathlib import Path

    from ..study import TallyConfig, format_table, tally_study

    res = tally_study(study_dir, out, TallyConfig(vigilance_threshold, n_boot, seed))
    click.echo(format_table(res))
    click.echo(f"wrote {out or Path(study_dir) / 'tally.json'}")

