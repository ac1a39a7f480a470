"""Decoding knobs are selected on held-out training images, never on val: the curve of
the shipped toy `ours` over two temperatures on 16 such images, the choice, and the file
the report reads."""

from __future__ import annotations

import json

import pytest

from psc_eval.cli import main


@pytest.mark.slow
def test_select_temperature_on_held_out_train_images(tmp_path, monkeypatch, capsys):
    from psc_eval.experiments.decoding import SELECTION, select_temperature
    from psc_eval.experiments.naturalness import HELD_OUT_START

    # no toy image is used twice: the protocol trains on [0, 3000), selects on
    # [3000, 3200), and the naturalness critics use [3200, 4000)
    assert SELECTION == (3000, 3200) and HELD_OUT_START == SELECTION[1]
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    r = select_temperature("ours", "toy", temperatures=(0.5, 1.0), images=(3000, 3016),
                           out=tmp_path, progress=False)
    assert [c["temperature"] for c in r["curve"]] == [0.5, 1.0]
    assert all(0.0 < c["miou"] < 1.0 for c in r["curve"])
    best = max(r["curve"], key=lambda c: c["miou"])["temperature"]
    assert r["selected"] == best and r["split"] == "train"
    saved = json.loads((tmp_path / "experiments" / "toy" / "decoding-ours.json").read_text())
    assert saved["curve"] == r["curve"] and saved["images"] == [3000, 3016]
    runs = list((tmp_path / "experiments" / "toy" / "decoding-runs").rglob("*.json"))
    assert runs and all(json.loads(p.read_text())["split"] == "train" for p in runs)
    # the report draws the curve; the selection's train-split runs stay out of Table 3
    from psc_eval.report.build import write_report
    from psc_eval.runner import run_eval

    run_eval("miou", "gray", "toy", limit=8, out=str(tmp_path), progress=False)
    write_report("toy", tmp_path, tmp_path / "rep")
    assert (tmp_path / "rep" / "decoding_temperature.png").is_file()
    assert "split val" in (tmp_path / "rep" / "table3.md").read_text()

    with pytest.raises(SystemExit) as e:
        main(["select-temperature", "--colorizer", "ours", "--temperatures", "0.5,inf",
              "--out", str(tmp_path)])
    assert e.value.code == 2 and "temperature" in capsys.readouterr().err
