"""The Table 4 proxy: one critic per method on the core loop; gt's colorizations are the
real images themselves, so its rate equals the critic's rate on real images exactly."""

from __future__ import annotations

import json

import pytest

from psc_eval.experiments import naturalness


@pytest.mark.slow
def test_proxy_rates_and_report_table(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(naturalness, "N_TRAIN_EACH", 48)
    monkeypatch.setattr(naturalness, "EPOCHS", 2)
    path = naturalness.naturalness_proxy(["gray"], "toy", out=tmp_path / "out", limit=24,
                                         device="cpu", progress=False)
    res = json.loads(path.read_text())
    assert list(res["rows"]) == ["gray", "gt"]
    gt = res["rows"]["gt"]
    assert gt["judged_real"] == gt["real_images_judged_real"] and gt["n"] == 24
    for row in res["rows"].values():
        lo, hi = row["wilson95"]
        assert 0.0 <= lo <= row["judged_real"] <= hi <= 1.0
    assert "PROXY" in res["label"]
    # every critic says whether it learned (final train BCE below 0.9 ln 2), named per row
    for row in res["rows"].values():
        assert row["critic_learned"] == (row["critic_final_train_bce"] < naturalness.LEARNED_BCE)
    # a rerun with the same methods, weights and seed reuses the result: no critic retrained
    ck = tmp_path / "home" / "models" / "toy" / "critic-gray" / "last.pt"
    before = ck.stat().st_mtime_ns
    again = naturalness.naturalness_proxy(["gray"], "toy", out=tmp_path / "out", limit=24,
                                          device="cpu", progress=False)
    assert json.loads(again.read_text()) == res and ck.stat().st_mtime_ns == before
    # another output folder (make demo's) with the repository's result of these inputs:
    # copied, no critic retrained; the identity names the weights, data and code
    from psc_eval.experiments import committed

    monkeypatch.setattr(committed, "repo_result", lambda dataset, name: path.parent / name)
    demo = naturalness.naturalness_proxy(["gray"], "toy", out=tmp_path / "demo", limit=24,
                                         device="cpu", progress=False)
    assert json.loads(demo.read_text()) == res and ck.stat().st_mtime_ns == before
    assert set(res["identity"]) == {"weights_sha256", "seed", "params", "train_fingerprint",
                                    "val_fingerprint", "code_sha256", "train_code_sha256"}
    assert res["identity"]["val_fingerprint"]["num_images"] == 24

    from psc_eval.report.build import _table4

    table = _table4(None, "toy", tmp_path / "out")
    assert "PROXY" in table.title and [r["colorizer"] for r in table.rows] == ["gray", "gt"]
    assert table.rows[1]["natural"] == gt["judged_real"]
