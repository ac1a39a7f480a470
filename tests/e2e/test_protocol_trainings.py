"""The protocol trainings side by side (reproduce --jobs N): job order, finished / partial /
absent runs told apart from their checkpoints, two workers training at once, and a
failing job reported without stopping the others."""

from __future__ import annotations

import pytest

from psc_eval.checkpoint import save_checkpoint
from psc_eval.experiments.protocol import Job, job_state, protocol_jobs, train_protocol
from psc_eval.experiments.reproduce import seed_checkpoint


def test_slow_models_and_seed_zero_first():
    jobs = protocol_jobs(["iizuka2016", "ours", "royer2017"], {"ours": (1,), "iizuka2016": (1,)})
    assert [str(j) for j in jobs] == ["ours seed 0", "royer2017 seed 0", "iizuka2016 seed 0",
                                      "ours seed 1", "iizuka2016 seed 1"]


def test_job_state_reads_the_run_record(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    j = Job("iizuka2016", 1)
    assert job_state(j, "toy")[0] == "absent"
    last = seed_checkpoint("iizuka2016", "toy", 1)
    cfg = {"train": {"epochs": 40, "seed": 1}}
    for ck, want in (({"epoch": 12, "run": {"converged": None}}, "partial"),
                     ({"epoch": 14, "run": {"converged": True}}, "finished"),
                     ({"epoch": 40, "run": {"converged": False}}, "finished")):
        last.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(last, {"kind": "colorizer", "config": cfg, **ck})
        assert job_state(j, "toy") == (want, last)


@pytest.mark.slow
def test_two_workers_train_and_a_failure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    tiny = {"train.epochs": 1, "train.n_train": 16, "train.n_val": 8,
            "train.until_plateau": False, "train.batch_size": 8}
    lines = []
    res = train_protocol("toy", [Job("larsson2016", 0), Job("gray", 0), Job("zhang2016", 0)],
                         workers=2, overrides=tiny, echo=lines.append)
    assert res["larsson2016 seed 0"].startswith("trained: 1 epochs")
    assert res["zhang2016 seed 0"].startswith("trained: 1 epochs")
    assert res["gray seed 0"].startswith("FAILED: ") and "not trainable" in res["gray seed 0"]
    assert "2 at a time" in lines[0]
    # keyed folders of the tiny config, never the protocol's
    assert not (tmp_path / "models" / "toy" / "larsson2016" / "last.pt").exists()
    assert list((tmp_path / "models" / "toy" / "larsson2016" / "runs").glob("*/last.pt"))


def test_reproduce_status_lists_every_protocol_run(tmp_path, monkeypatch, capsys):
    from cli_helpers import cli

    from psc_eval.experiments.protocol import SEED_SPREAD
    from psc_eval.training.entry import TRAINABLE

    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    last = seed_checkpoint("iizuka2016", "toy", 0)
    last.parent.mkdir(parents=True)
    save_checkpoint(last, {"kind": "colorizer", "config": {"train": {"epochs": 40}},
                           "epoch": 14, "run": {"converged": True, "epochs": 14,
                                                "images_seen": 42000, "wall_s": 998.0}})
    code, out, err = cli(capsys, "reproduce", "--status")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == len(list(TRAINABLE)) + sum(len(s) for s in SEED_SPREAD.values())
    row = next(x for x in lines if x.startswith("iizuka2016 seed 0"))
    assert "finished" in row and "42000 images seen, 17 min converged" in row
    assert sum("absent" in x for x in lines) == len(lines) - 1
