"""The CPU benchmarks run end to end with --small (the figures in reports/perf.md come
from the same code at full size); no timing is asserted."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:  # as when run as a script: its sibling helpers import
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_bench_train_small(one_thread):
    res = _load("bench_train").main(["--small"])
    assert res["flops_per_step"] > 0 and res["bound_ms"] > 0
    assert {"backward", "Adam step", "Polyak average (EMA)"} <= set(res["phases_ms"])


@pytest.mark.slow
def test_bench_sampling_small_against_old_checkout(one_thread, tmp_path):
    # the benchmark's --old path: the same checkout stands in for the old code
    root = tmp_path / "old"
    (root / "models").mkdir(parents=True)
    for f in (BENCH.parent / "models").glob("*.py"):
        (root / "models" / f.name).write_text(f.read_text())
    res = _load("bench_sampling").main(["--small", "--bound", "--old", str(root)])
    for row in res["batches"].values():
        assert row["cached_over_forward"] > 0 and row["bit_identical_to_old"]
    assert _load("bench_sampling").main(["--small"])["cpu"]["speedup_median"] > 0


@pytest.mark.slow
def test_bench_pipeline_small(one_thread, tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    res = _load("bench_pipeline").main(["--small"])
    assert res["images"] == 8 and res["ratio"] > 0 and res["ratio_inline"] > 0
    # the pipeline's wall splits into the judge's calls (timed inside it) and the rest
    assert all(0 < j < p for j, p in zip(res["pipeline_judge_calls_s"], res["pipeline_s"]))
    assert 0 < res["outside_judge_over_judge"] < res["ratio"]


@pytest.mark.slow
def test_bench_pipeline_ab_small_against_this_checkout(one_thread, tmp_path, monkeypatch):
    # the same checkout stands in for the old code: one process of each, a ratio each
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    res = _load("bench_pipeline_ab").main(["--small", "--old", str(BENCH.parent)])
    assert len(res["old"]["ratios"]) == len(res["new"]["ratios"]) == 1
    assert res["old"]["median"] > 0 and res["new"]["median"] > 0
    assert 0 < res["new"]["outside_median"] < res["new"]["median"]


def test_bench_scripts_answer_help():
    for name in ("bench_train", "bench_sampling", "bench_pipeline", "bench_pipeline_ab",
                 "bench_larsson_targets"):
        out = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert "--small" in out


@pytest.mark.slow
def test_bench_split_small(one_thread):
    res = _load("bench_split").main(["--small"])
    assert res["bit_identical"] and res["images"] == 64
    assert res["chunked_over_batch_by_batch"] > 0 and res["chunked_over_forward"] > 0


def test_bench_larsson_targets_small(one_thread):
    # the two ways of building Larsson's targets agree (the benchmark checks it), both timed
    res = _load("bench_larsson_targets").main(["--small"])
    assert res["toy"]["equal"] and res["toy"]["batch"] == 2
    assert res["toy"]["full_maps_ms"] > 0 and res["toy"]["sampled_ms"] > 0


@pytest.mark.slow
def test_bench_allocator_small():
    # fresh processes under each malloc setting compute the same bits (the benchmark checks)
    res = _load("bench_allocator").main(["--small", "--workloads", "train-ours,sample-16"])
    for row in res["workloads"].values():
        assert row["bit_identical"] and row["system_ms"] > 0 and row["kept_ms"] > 0


@pytest.mark.slow
def test_bench_train_trajectory_small(one_thread, tmp_path):
    # two runs of the same code compare bit-identical; the comparison reads the losses back
    bench = _load("bench_train")
    first = bench.main(["--small", "--trajectory", "2", "--out", str(tmp_path / "t.json")])
    again = bench.main(["--small", "--trajectory", "2", "--against", str(tmp_path / "t.json")])
    assert len(first["losses"]) == 2 and first["losses"][0] != first["losses"][1]
    assert again["against"]["bit_identical"] and again["against"]["max_relative_difference"] == 0
    assert again["against"]["last"] == [first["losses"][1]] * 2
