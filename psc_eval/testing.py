"""pytest helpers for a researcher's own repository: keep a colorizer's numbers honest.

``assert_metrics(colorizer, expected_file)`` scores the colorizer on the expected file's
subset (the same path as ``psc-eval regress``: one CPU thread, no cache, the shipped
judge) and raises ``AssertionError`` with a readable table of what moved when a metric
is outside its tolerance, naming what changed around it (judge, images, metric code,
the colorizer's code or weights). Write the file once with ``update=True`` (or
``psc-eval regress --update --colorizer module:Class --expected FILE``) and commit it::

    from psc_eval.testing import assert_metrics

    def test_my_colorizer_keeps_its_numbers():
        assert_metrics("mycolor:Sepia", "tests/expected-sepia.json")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .experiments.expected import Outcome
from .experiments.regress import run_regress


class MetricsDrift(AssertionError):
    """A metric moved beyond its tolerance (``outcome`` holds every check)."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        moved = outcome.moved
        lines = [(f"{len(moved)} of {len(outcome.checks)} metrics moved beyond their "
                  f"tolerance ({outcome.path}):")]
        lines += [f"  {c.row}.{c.metric}: expected {c.expected!r}, got {c.got!r} "
                  f"(diff {c.diff:+.3g}, tolerance {c.tol:g})"
                  + (f" [{c.cause}]" if c.cause else "") for c in moved]
        lines += [f"  changed since the expected file: {x}" for x in outcome.changes]
        lines.append("  if the change is meant: psc-eval regress --update --expected "
                     f"{outcome.path} (or assert_metrics(..., update=True)) and commit it")
        super().__init__("\n".join(lines))


def assert_metrics(colorizer: Any, expected_file: str | Path, *, update: bool = False,
                   limit: int | None = None, dataset: str | None = None) -> Outcome:
    """Score ``colorizer`` (a name, ``module:Class``, a colorizer object or a
    ``PredictionsColorizer``; a list for several) and compare it with ``expected_file``.

    Raises :class:`MetricsDrift` (an ``AssertionError``) when a metric moved, and the
    one-line ``PscError`` of ``psc-eval regress`` on bad input (a missing file names
    ``update=True``). ``update``: write the current values instead (new files: ``dataset``
    and ``limit`` set the subset, default toy and 96 images). Returns the outcome."""
    rows = list(colorizer) if isinstance(colorizer, (list, tuple)) else [colorizer]
    out = run_regress(expected_file, colorizers=rows, update=update, limit=limit,
                      dataset=dataset)
    if not out.ok:
        raise MetricsDrift(out)
    return out
