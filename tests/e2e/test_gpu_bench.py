"""benchmarks/gpu.py runs end to end on the CPU with --small (the GPU run uses the same
code at full size), and reports every figure reports/perf.md's GPU section needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_small_on_cpu(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--small", "--device", "cpu", "--json", str(tmp_path / "gpu.json")])
    assert set(res["judge"]) == {"fp32", "bf16_channels_last"}  # no compile on the CPU
    assert all(v["images_per_s"] > 0 for v in res["judge"].values())
    assert res["pipeline"]["images"] == 4 and res["pipeline"]["ratio_to_judge_alone"] > 0
    assert {"cached", "naive"} <= set(res["sampler"])
    t = res["train_step"]
    assert t["images_per_s"] > 0 and t["flops_per_step"] > 0 and t["tflops"] > 0
    assert (tmp_path / "gpu.json").is_file()
