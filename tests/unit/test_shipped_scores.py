"""Score shards shipped in the repository (``psc-eval ship-scores``): a run of the same key
takes its scores from them without colorizing and gives the numbers of the run that made
them, bit for bit; any other key, ``PSC_SHIPPED=0``, ``--no-cache`` or a damaged shard
computes as usual."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from psc_eval import shipped
from psc_eval.data import get_dataset
from psc_eval.errors import PscError
from psc_eval.results import write_result
from psc_eval.runner import evaluate
from psc_eval.shipped import ship_scores

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runner_standins import ChromaJudge, NoisyColorizer

SEED, LIMIT = 3, 40  # two canonical batches: [0, 32) and [32, 40)
METRICS = ("miou", "psnr")


@pytest.fixture(autouse=True)
def psc_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PSC_SHIPPED", raising=False)
    monkeypatch.delenv("PSC_SCORE_SHARDS", raising=False)
    monkeypatch.setattr(shipped, "shipped_scores_dir", lambda dataset: tmp_path / "shipped")


@pytest.fixture(scope="module")
def ds():
    return get_dataset("toy").subset(LIMIT)


def _eval(ds, cache_dir, seed=SEED, **kw):
    return evaluate(NoisyColorizer(), ds, ChromaJudge(), seed=seed, cache_dir=cache_dir,
                    progress=False, metrics=METRICS, bootstrap=50, **kw)


def _shipped_run(ds, tmp_path):
    made = _eval(ds, tmp_path / "made-cache")
    write_result(made, tmp_path / "reports")
    (tmp_path / "reports" / "notes.json").write_text("[1, 2]")  # not a run: ignored
    n = ship_scores("toy", tmp_path / "reports", tmp_path / "made-cache", tmp_path / "shipped")
    return made, n


def _no_colorizing(monkeypatch):
    def refuse(self, *a, **kw):
        raise AssertionError("colorized although the shipped scores hold this run")

    monkeypatch.setattr(NoisyColorizer, "colorize", refuse)


def test_same_key_reads_the_shipped_scores_without_colorizing(ds, tmp_path, monkeypatch):
    made, n = _shipped_run(ds, tmp_path)
    key = made.provenance["cache_stats"]["score_key"]
    assert n == {"runs": 1, "keys": 1, "files": 3, "bytes": n["bytes"]} and n["bytes"] > 0
    assert sorted(p.name for p in (tmp_path / "shipped" / key).iterdir()) == [
        "00000000-00032.pt", "00000032-00008.pt", "key.json"]
    _no_colorizing(monkeypatch)
    again = _eval(ds, tmp_path / "fresh-cache")
    assert again.metrics == made.metrics
    assert again.per_image == made.per_image and again.per_class_iou == made.per_class_iou
    stats = again.provenance["cache_stats"]
    assert stats["images_from_repository"] == LIMIT and stats["images_colorized"] == 0
    assert stats["score_key"] == key
    # the user's own cache is not filled from the repository: a later run reads it again
    assert not list((tmp_path / "fresh-cache" / "scores" / key).glob("*.pt"))


def test_another_key_or_switched_off_computes(ds, tmp_path, monkeypatch):
    made, _ = _shipped_run(ds, tmp_path)
    other = _eval(ds, tmp_path / "c1", seed=SEED + 1)  # another seed: another key
    assert other.provenance["cache_stats"]["images_from_repository"] == 0
    assert other.provenance["cache_stats"]["images_colorized"] == LIMIT
    monkeypatch.setenv("PSC_SHIPPED", "0")
    off = _eval(ds, tmp_path / "c2")
    assert off.provenance["cache_stats"]["images_from_repository"] == 0
    assert off.metrics == made.metrics  # computed again, the same numbers
    monkeypatch.delenv("PSC_SHIPPED")
    monkeypatch.setenv("PSC_SCORE_SHARDS", "0")  # make demo FRESH=1
    fresh = _eval(ds, tmp_path / "c4")
    assert fresh.provenance["cache_stats"]["images_from_repository"] == 0
    monkeypatch.delenv("PSC_SCORE_SHARDS")
    no_cache = _eval(ds, tmp_path / "c3", cache=False)
    assert no_cache.provenance["cache_stats"]["images_from_repository"] == 0


def test_a_damaged_shipped_shard_is_recomputed(ds, tmp_path):
    made, _ = _shipped_run(ds, tmp_path)
    key = made.provenance["cache_stats"]["score_key"]
    (tmp_path / "shipped" / key / "00000032-00008.pt").write_bytes(b"not a shard")
    again = _eval(ds, tmp_path / "fresh-cache")
    assert again.provenance["cache_stats"]["images_from_repository"] == 32
    assert again.provenance["cache_stats"]["images_colorized"] == 8
    assert again.metrics == made.metrics


def test_ship_scores_refuses_a_run_whose_shards_are_not_cached(ds, tmp_path):
    made = _eval(ds, tmp_path / "made-cache")
    write_result(made, tmp_path / "reports")
    key = made.provenance["cache_stats"]["score_key"]
    (tmp_path / "made-cache" / "scores" / key / "00000032-00008.pt").unlink()
    (tmp_path / "shipped" / "old-key").mkdir(parents=True)
    with pytest.raises(PscError, match=r"lacks 1 of the 2 score shards"):
        ship_scores("toy", tmp_path / "reports", tmp_path / "made-cache", tmp_path / "shipped")
    assert (tmp_path / "shipped" / "old-key").is_dir()  # nothing replaced


def test_ship_scores_keeps_only_runs_of_shipped_weights(ds, tmp_path):
    made = _eval(ds, tmp_path / "made-cache")
    path = write_result(made, tmp_path / "reports")
    res = json.loads(Path(path).read_text())
    res["provenance"]["colorizer_weights_sha256"] = "ab" * 32  # a model not shipped
    Path(path).write_text(json.dumps(res))
    (tmp_path / "shipped" / "stale-key").mkdir(parents=True)
    n = ship_scores("toy", tmp_path / "reports", tmp_path / "made-cache", tmp_path / "shipped")
    assert n == {"runs": 0, "keys": 0, "files": 0, "bytes": 0}
    assert list((tmp_path / "shipped").iterdir()) == []  # stale folders go
