"""The colour probe: its recolourings against direct computations, and its truth / gray
rows against psc-eval miou's gt / gray rows on the same images (the same judge through
two code paths must agree exactly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psc_eval.data import collate, get_dataset
from psc_eval.data.toy import CAR, CAR_MODES, CHROMA
from psc_eval.experiments.colour_probe import colour_probe, variants


def test_recolourings_by_hand():
    ds = get_dataset("toy", split="val")
    b = collate([ds[i] for i in range(4)])
    C = ds.num_classes
    v = variants(b["L"], b["ab"], b["mask"], C, torch.Generator().manual_seed(0))
    mask, ab = b["mask"].numpy(), b["ab"].numpy()
    for i in range(4):
        for c in np.unique(mask[i]):
            where = mask[i] == c
            for ch in range(2):
                vals = np.sort(ab[i, ch][where])
                lower_median = vals[(len(vals) - 1) // 2]
                assert np.all(v["segment median"][i, ch].numpy()[where] == np.float32(lower_median))
            want = (np.mean(CAR_MODES, 0) if c == CAR else
                    np.array([CHROMA[c][0], CHROMA[c][2]]))
            got = v["class mean"][i, :, where].numpy()
            assert np.allclose(got, want[:, None], atol=1e-5)
            drawn = v["class sample"][i, :, where].numpy()
            assert np.all(drawn == drawn[:, :1])  # one chroma per segment
    assert torch.equal(v["gray"], torch.zeros_like(v["gray"]))
    noise = (v["truth + noise 20"] - b["ab"]).flatten()
    inside = noise.abs() < 100
    assert 18.0 < float(noise[inside].std()) < 22.0


@pytest.mark.slow
def test_truth_and_gray_rows_equal_the_miou_rows(tmp_path):
    from psc_eval.runner import run_eval

    r = colour_probe("toy", out=tmp_path, limit=64, progress=False)
    s = run_eval("miou", "gray", "toy", limit=64, out=str(tmp_path / "o"), progress=False,
                 cache=False, metrics="miou", bootstrap=0)
    rows = {x.colorizer: x.metrics["miou"] for x in s.results}
    assert r["miou"]["truth"] == pytest.approx(rows["gt"], abs=1e-12)
    assert r["miou"]["gray"] == pytest.approx(rows["gray"], abs=1e-12)
    assert r["miou"]["wrong class"] < r["miou"]["class mean"]
    assert (tmp_path / "experiments" / "toy" / "colour-probe.json").is_file()
