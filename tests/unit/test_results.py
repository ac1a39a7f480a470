"""Results JSON: schema round-trip with non-finite values, atomic writes, layout, collect()."""

from __future__ import annotations

import json
import math

import pytest

from psc_eval import io as pio
from psc_eval.errors import PscError
from psc_eval.results import (
    SCHEMA_VERSION,
    RunResult,
    collect,
    load_result,
    result_path,
    run_key,
    write_result,
)


def make(colorizer="ours", seed=0, miou=0.5, psnr=23.25, segmenter="judge-a", kind="miou"):
    return RunResult(
        kind=kind, dataset="toy", segmenter=segmenter, colorizer=colorizer, split="val",
        seed=seed,
        metrics={"miou": miou, "psnr": psnr, "psnr_n_infinite": 2, "num_images": 10,
                 "psnr_ab": float("inf"), "pixel_accuracy": 0.75},
        per_class_iou={"sky": 0.9, "cow": float("nan"), "car": 0.0},
        histograms={"psnr_rgb": {"bin_edges": [0.0, 1.0, 2.0], "counts": [3, 4],
                                 "extra": [1.0, float("-inf")]}},
        skipped=[{"id": "toy-val-00001", "reason": "grayscale source (PIL mode L)"}],
        provenance={"git_hash": None, "wall_time_s": 1.5, "dataset_fingerprint": {"n": 10}},
    )


def test_round_trip_with_nonfinite_values_is_exact_and_strict_json(tmp_path):
    r = make()
    path = write_result(r, tmp_path)
    key = r.provenance["run_key"]
    assert path == tmp_path / "runs" / "toy" / "judge-a" / "ours" / f"val-seed0-{key}.json"
    assert key == run_key(r) and len(key) == 10

    def refuse(c):
        raise ValueError(c)

    raw = json.loads(path.read_text(), parse_constant=refuse)  # no NaN / Infinity tokens
    assert raw["per_class_iou"]["cow"] is None and raw["metrics"]["psnr_ab"] is None
    assert raw["nonfinite"] == {"metrics.psnr_ab": "inf", "per_class_iou.cow": "nan",
                                "histograms.psnr_rgb.extra[1]": "-inf"}
    assert raw["schema_version"] == SCHEMA_VERSION
    back = load_result(path)
    assert math.isnan(back.per_class_iou["cow"])
    assert back.metrics["psnr_ab"] == float("inf")
    assert back.histograms["psnr_rgb"]["extra"] == [1.0, float("-inf")]
    back.per_class_iou["cow"] = r.per_class_iou["cow"] = 0.0  # NaN != NaN; compare the rest
    assert back == r


def test_result_path_layout_and_unsafe_names(tmp_path):
    p = result_path(tmp_path, "toy", "deeplabv3-resnet101", "my.pkg:Colorizer", "val", 3, "k1")
    assert p == tmp_path / "runs/toy/deeplabv3-resnet101/my.pkg_Colorizer/val-seed3-k1.json"
    assert result_path("reports", "voc", "x", "../../etc", "val", 0, "k").parts[:2] == (
        "reports", "runs")
    assert ".." not in result_path("reports", "voc", "x", "../../etc", "val", 0, "k").parts


def test_distinct_configurations_never_share_a_file(tmp_path):
    a = make()
    a.provenance["config"] = {"limit": None, "temperature": None, "out": "x"}
    b = make()
    b.provenance["config"] = {"limit": 50, "temperature": None, "out": "x"}
    c = make()
    c.provenance["config"] = {"limit": None, "temperature": 0.5, "out": "x"}
    same = make()
    same.provenance["config"] = {"limit": None, "temperature": None, "out": "elsewhere"}
    paths = [write_result(r, tmp_path) for r in (a, b, c)]
    assert len(set(paths)) == 3
    assert write_result(same, tmp_path) == paths[0]  # output folder is no part of the key


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    r = make()
    path = write_result(r, tmp_path)
    before = path.read_text()

    real_dump = json.dump

    def dump_then_fail(obj, f, **kw):
        real_dump(obj, f, **kw)
        f.write("garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pio.json, "dump", dump_then_fail)
    with pytest.raises(PscError, match="no space left on the device, in "):
        write_result(make(miou=0.9), tmp_path)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_load_result_errors(tmp_path):
    with pytest.raises(PscError, match="not found"):
        load_result(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics": ')
    with pytest.raises(PscError, match="not valid JSON"):
        load_result(bad)
    bad.write_text('{"metrics": {}}')
    with pytest.raises(PscError, match="schema_version"):
        load_result(bad)
    bad.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(PscError, match="newer"):
        load_result(bad)


def test_collect_one_row_per_run(tmp_path):
    write_result(make("gray", miou=0.25, psnr=20.0), tmp_path)
    write_result(make("ours", miou=0.5, psnr=25.0), tmp_path)
    write_result(make("ours", seed=1, miou=0.75, psnr=float("inf")), tmp_path)
    write_result(make("ours", segmenter="none", kind="psnr", miou=float("nan")), tmp_path)
    (tmp_path / "runs" / "notes.json").write_text("[1, 2]")  # not a run: ignored
    df = collect(tmp_path)
    assert len(df) == 4
    assert list(df[["colorizer", "seed"]].itertuples(index=False, name=None)) == [
        ("gray", 0), ("ours", 0), ("ours", 1), ("ours", 0)]
    assert df["miou"].tolist()[:3] == [0.25, 0.5, 0.75] and math.isnan(df["miou"].iloc[3])
    assert df["psnr"].tolist()[:3] == [20.0, 25.0, float("inf")]
    assert df["kind"].tolist() == ["miou", "miou", "miou", "psnr"]
    assert df["num_skipped"].tolist() == [1, 1, 1, 1]
    assert df.equals(collect(tmp_path / "runs"))
    assert len(collect(tmp_path / "empty")) == 0
