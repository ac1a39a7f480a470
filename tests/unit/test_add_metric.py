"""The README's "Add a metric" file, run as written: registered with one line, it is fed by
the evaluation loop, shown by the console summary and collect(), and its value equals a
direct evaluation of the colourfulness formula on the images the judge saw (numpy)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import readme_block

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def registered(tmp_path, monkeypatch):
    (tmp_path / "colorfulness.py").write_text(readme_block("colorfulness.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    from psc_eval.metrics import SCORERS

    SCORERS.add("colorfulness", "colorfulness:ColorfulnessScorer", "Hasler-Susstrunk")
    yield
    SCORERS._own.pop("colorfulness", None)
    sys.modules.pop("colorfulness", None)


def colorfulness(rgb_u8: np.ndarray) -> float:
    """Hasler & Susstrunk (2003), Eq. 3, on one (H,W,3) uint8 image."""
    r, g, b = (rgb_u8[..., i].astype(np.float64).ravel() for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2)
                 + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def test_readme_metric_is_fed_shown_and_right(registered, tmp_path):
    from psc_eval.color import lab_parts_to_rgb, to_uint8
    from psc_eval.data import collate, get_dataset
    from psc_eval.results import collect
    from psc_eval.runner import run_eval

    ds = get_dataset("toy", split="val", size=32)
    summary = run_eval("psnr", "gray", ds, metrics=("psnr", "colorfulness"), limit=6,
                       batch_size=4, out=str(tmp_path / "out"), cache=False, progress=False)
    got = {r.colorizer: r.metrics["colorfulness"] for r in summary.results}
    batch = collate([ds[i] for i in range(6)])
    # what the judge sees: the original L with the chroma rounded as the loop stores it
    ab16 = batch["ab"].to(torch.float16).to(batch["L"].dtype)
    for row, ab in (("gray", torch.zeros_like(ab16)), ("gt", ab16)):
        rgb = to_uint8(lab_parts_to_rgb(batch["L"], ab)).permute(0, 2, 3, 1).numpy()
        want = np.mean([colorfulness(x) for x in rgb])
        assert got[row] == pytest.approx(want, rel=1e-12, abs=1e-12), row
    assert got["gray"] < 0.5 and got["gt"] > 10.0  # gray: only uint8 rounding's tint
    assert "colourful" in summary.text()
    df = collect(tmp_path / "out")
    assert "colorfulness" in df.columns
    assert sorted(df["colorfulness"].round(9)) == sorted(round(v, 9) for v in got.values())
