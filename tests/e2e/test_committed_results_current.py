"""The committed results of the two experiments that train (Fig. 9's runs, the naturalness
proxy's critics) still match the code and the shipped checkpoints.

``make demo`` takes them from ``reports/experiments/toy`` instead of training only while
their ``identity`` (checkpoint sha256s, config, data, the experiment's and the training
loop's source files) equals what the code computes now (``experiments.committed``). Any
edit of ``segcurves.py``, ``naturalness.py`` or the training loop, or a newly shipped
``ours`` / ``psc-purple`` / colorizer, changes it; then the demo would silently train for
many minutes. This test runs each experiment with an empty ``$PSC_HOME`` (the shipped
models) and a training loop that refuses to run: it passes only when the committed result
is reused. When it fails, regenerate the results (``PSC_HOME=<empty> psc-eval reproduce
--dataset toy --shipped --out reports``) and commit them.
"""

from __future__ import annotations

import json

import pytest

from psc_eval.experiments.committed import repo_result
from psc_eval.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def no_training(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PSC_SHIPPED", raising=False)

    def refuse(self, *a, **kw):
        raise AssertionError(
            "the committed result was not reused (its identity differs from the code's): "
            "regenerate it with psc-eval reproduce --dataset toy --shipped --out reports")

    # fit, not the class: the identity hashes Trainer's source file, which stays the same
    monkeypatch.setattr(Trainer, "fit", refuse)
    return tmp_path / "out"


def test_fig9_curves_are_reused(no_training):
    from psc_eval.experiments.segcurves import seg_curves

    path = seg_curves("toy", "toy", out=no_training, progress=False)
    committed = repo_result("toy", path.name)
    assert path.read_bytes() == committed.read_bytes()
    assert path.with_suffix(".csv").read_bytes() == committed.with_suffix(".csv").read_bytes()
    curves = json.loads(path.read_text())["curves"]
    assert set(curves) == {"scratch", "pretrained", "joint"}


def test_naturalness_proxy_is_reused(no_training):
    from psc_eval.experiments.naturalness import naturalness_proxy
    from psc_eval.experiments.reproduce import benchmark_rows

    path = naturalness_proxy(benchmark_rows(), "toy", out=no_training, progress=False)
    assert path.read_bytes() == repo_result("toy", path.name).read_bytes()
    rows = json.loads(path.read_text())["rows"]
    assert {"gray", "gt", "ours"} <= set(rows)

