"""EvalConfig is the one home of evaluation defaults: the CLI options and the provenance
record read it."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

from psc_eval.config import EVAL_KINDS, EvalConfig, cli_default, default, make_config
from psc_eval.errors import ConfigError, PscError

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.mark.parametrize("kind", list(EVAL_KINDS))
def test_cli_options_are_the_config_fields_with_its_defaults(kind):
    from psc_eval.cli import cli

    params = {p.name: p for p in cli.commands[kind].params if p.name != "help"}
    # the rows: names and/or folders of stored predictions (at least one, checked on use)
    assert params.pop("colorizer").multiple and params.pop("predictions").multiple
    shown = {f.name: f for f in fields(EvalConfig)
             if f.metadata.get("cli", True) is not False
             and kind in f.metadata.get("kinds", EVAL_KINDS)}
    assert set(params) == set(shown)
    for name, p in params.items():
        assert p.default == cli_default(shown[name], kind), name
    assert params["device"].default == "auto" and params["metrics"].default == ",".join(
        EVAL_KINDS[kind])


def test_config_validation_and_unknown_fields():
    with pytest.raises(PscError, match="--limit must be >= 1"):
        EvalConfig(limit=0)
    with pytest.raises(PscError, match="--batch-size must be >= 1"):
        make_config(batch_size=0)
    with pytest.raises(ConfigError, match="unknown evaluation option.*'bacth_size'"):
        make_config(bacth_size=4)
    cfg = make_config(metrics="miou, psnr")
    assert cfg.metrics == ("miou", "psnr") and cfg.eval_kind == "miou"
    assert make_config(kind="psnr").scorer_names == EVAL_KINDS["psnr"]
    assert make_config(metrics=("psnr",)).eval_kind == "psnr"
    assert EvalConfig().judge_inference() is None
    assert EvalConfig(precision="bf16").judge_inference() == {
        "precision": "bf16", "channels_last": default("channels_last"),
        "compile": default("compile")}


def test_run_eval_records_the_resolved_config(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    from psc_eval.runner import run_eval

    cfg = EvalConfig(dataset="toy", size=16, limit=3, batch_size=2, progress=False,
                     out=str(tmp_path / "o"), cache=False)
    s = run_eval("psnr", "runner_standins:TiltColorizer", None, cfg)
    rec = s.results[0].provenance["config"]
    assert rec["device"] == "cpu" or rec["device"].startswith("cuda")  # auto, resolved
    assert rec["kind"] == "psnr" and rec["metrics"] == ["psnr"] and rec["segmenter"] is None
    assert rec["split"] == "val" and rec["size"] == 16 and rec["limit"] == 3
    assert s.results[0].provenance["device"] == rec["device"]
    for k in ("batch_size", "seed", "cache", "workers", "n_samples", "temperature"):
        assert rec[k] == getattr(cfg, k), k
    assert [p.parent.name for p in s.paths] == ["gray", "tilt", "gt"]
