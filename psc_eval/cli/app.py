"""The ``psc-eval`` command group and its entry point.

Errors a user can cause arrive as ``PscError`` and are printed on one line
(``psc-eval: error: ...``) with exit status 2; click's own usage errors keep click's format.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import PscError


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                                "max_content_width": 100})
@click.version_option(__version__, prog_name="psc-eval")
def cli() -> None:
    """Pixelated Semantic Colorization: models, baselines and the paper's evaluation."""


def main(argv: list[str] | None = None) -> None:
    from ..allocator import keep_freed_memory
    from ..dist import abort_run, dist_info, shutdown_distributed

    keep_freed_memory()  # tensors' memory reused, not faulted in again each step
    try:
        rc = cli.main(args=argv, prog_name="psc-eval", standalone_mode=False)
        shutdown_distributed()
    except PscError as e:
        if dist_info().enabled:  # end every rank now; the first to fail reports
            first, code = abort_run(e.exit_code)
            if first:
                click.echo(f"psc-eval: error: {e.one_line()}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        click.echo(f"psc-eval: error: {e.one_line()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("psc-eval: interrupted; finished work is kept, rerun the command to resume",
                   err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except Exception:
        if dist_info().enabled:  # a bug or a dead peer: print it once, end every rank
            first, code = abort_run(1)
            if first:
                import traceback

                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


