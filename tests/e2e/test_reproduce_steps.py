"""reproduce's protocol steps: the extra training seeds live in their own keyed folders,
are skipped when absent (their models are not shipped), and the epoch-checkpoint mIoU
scores the per-epoch copies outside the runs Table 3 reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from psc_eval.experiments.checkpoints import checkpoint_miou, pick_epochs
from psc_eval.experiments.reproduce import SEED_SPREAD, seed_checkpoint, seed_spread_step

ROOT = Path(__file__).resolve().parents[2]


def test_pick_epochs_spreads_over_the_run_with_first_and_last():
    assert pick_epochs(list(range(1, 41)), 4) == [1, 14, 27, 40]
    assert pick_epochs([3, 1, 2], 4) == [1, 2, 3]
    assert pick_epochs(list(range(1, 13)), 4) == [1, 5, 8, 12]


def test_seed_runs_have_their_own_folders_and_are_skipped_when_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    home = tmp_path / "models" / "toy"
    assert seed_checkpoint("ours", "toy", 0) == home / "ours" / "last.pt"  # the protocol's
    one, two = seed_checkpoint("ours", "toy", 1), seed_checkpoint("ours", "toy", 2)
    assert one.parent.parent == home / "ours" / "runs" and one != two
    assert set(SEED_SPREAD) == {"ours", "iizuka2016", "royer2017", "zhang2016"}
    out = seed_spread_step("toy", tmp_path / "out", from_scratch=False, device="cpu")
    assert out.startswith("skipped") and "8 runs" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_checkpoint_miou_scores_epoch_copies_outside_table3_runs(tmp_path, monkeypatch):
    from psc_eval.runner import run_eval

    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "models" / "toy" / "ours"
    folder.mkdir(parents=True)
    shipped = ROOT / "reports" / "toy" / "checkpoints" / "colorizer-ours.pt"
    for e in (1, 2):
        shutil.copy(shipped, folder / f"epoch-{e:04d}.pt")
    out = tmp_path / "out"
    r = checkpoint_miou("ours", "toy", out=out, device="cpu", progress=False, limit=8)
    assert [p["epoch"] for p in r["points"]] == [1, 2]
    stored = json.loads((out / "experiments" / "toy" / "checkpoint-miou-ours.json").read_text())
    assert stored["points"] == r["points"]
    # the same weights scored directly give the same mIoU; nothing lands in out/runs
    direct = run_eval("miou", "ours", "toy", colorizer_weights=str(folder / "epoch-0001.pt"),
                      device="cpu", out=str(tmp_path / "direct"), progress=False, limit=8)
    want = next(x for x in direct.results if x.colorizer == "ours").metrics["miou"]
    assert r["points"][0]["miou"] == pytest.approx(want, abs=1e-12)
    assert r["points"][1]["miou"] == pytest.approx(want, abs=1e-12)
    assert not (out / "runs").exists()
    assert checkpoint_miou("iizuka2016", "toy", out=out) is None  # no epoch copies here


@pytest.mark.parametrize("from_scratch", [False, True])
def test_reproduce_jobs_trains_what_the_steps_would(tmp_path, monkeypatch, from_scratch):
    """reproduce --jobs N hands the trainings the per-method steps would do to the parallel
    trainer: from scratch every trainable and the seed spread; else only the trainables
    without a shipped model (no seed runs: none are here)."""
    from psc_eval.experiments import protocol, reproduce
    from psc_eval.training.entry import TRAINABLE

    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    got = {}

    def fake(dataset, jobs, *, workers, device, echo):
        got["jobs"], got["workers"] = [str(j) for j in jobs], workers
        return {str(j): "trained: fake" for j in jobs}

    monkeypatch.setattr(protocol, "train_protocol", fake)
    out = reproduce.parallel_step(list(TRAINABLE), "toy", from_scratch=from_scratch,
                                  device="cpu", prefer=None, jobs=2, echo=lambda s: None)
    shipped = {n for n in TRAINABLE
               if (ROOT / "reports" / "toy" / "checkpoints" / f"colorizer-{n}.pt").is_file()}
    want = {f"{n} seed 0" for n in TRAINABLE if from_scratch or n not in shipped}
    if from_scratch:
        want |= {f"{n} seed {s}" for n, seeds in SEED_SPREAD.items() for s in seeds}
    if not want:  # every trainable shipped: nothing is handed to the trainer
        assert out == "nothing to train" and got == {}
        return
    assert set(got["jobs"]) == want and got["workers"] == 2
    assert out == f"{len(want)} runs trained or finished"
