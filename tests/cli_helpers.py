"""Running ``psc-eval`` in-process from tests and checking its one-line errors.

Import as ``from cli_helpers import cli, assert_error`` (``tests/conftest.py`` puts this
folder on ``sys.path``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(name: str) -> str:
    """The fenced block of the README between ``<!-- example: NAME -->`` and
    ``<!-- end example -->``: the files and commands the README shows are what tests run."""
    m = re.search(rf"<!-- example: {re.escape(name)} -->\s*```[\w-]*\n(.*?)```\s*"
                  r"<!-- end example -->", README.read_text(), re.DOTALL)
    assert m, f"README lost its example block {name}"
    return m.group(1)


def run_cli(cwd: Path, *args: str, timeout: float = 900, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """``python -m psc_eval.cli ARGS`` in ``cwd`` as a user would run it: no PYTHONPATH,
    ``PSC_HOME=cwd/home``, one thread (``env`` adds to that); ``check``: exit status 0."""
    e = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    e.update(PSC_HOME=str(Path(cwd) / "home"), OMP_NUM_THREADS="1", **(env or {}))
    r = subprocess.run([sys.executable, "-m", "psc_eval.cli", *map(str, args)], cwd=cwd,
                       env=e, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert r.returncode == 0, r.stderr
    return r
