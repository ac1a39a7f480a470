"""Running ``psc-eval`` in-process from tests and checking its one-line errors.

Import as ``from cli_helpers import cli, assert_error`` (``tests/conftest.py`` puts this
folder on ``sys.path``)."""

from __future__ import annotations

import pytest

from psc_eval.cli import main


def cli(capsys, *args) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``psc-eval ARGS`` (the console script's main)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def assert_error(code: int, err: str, *needles: str) -> str:
    """Exit status 2 and exactly one stderr line ``psc-eval: error: ...`` holding every
    needle; returns the line."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("psc-eval: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
