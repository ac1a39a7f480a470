"""Judge speed options (bf16 autocast, channels_last) keep the judge's answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from psc_eval.cache import row_keys
from psc_eval.errors import ConfigError
from psc_eval.judge import load_segmenter


@pytest.fixture(scope="module")
def judge_and_input(one_thread):
    torch.manual_seed(0)
    seg = load_segmenter("deeplabv3plus-resnet18", num_classes=10)
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return seg, rgb, seg.logits(rgb)


def test_channels_last_gives_the_same_logits(judge_and_input):
    seg, rgb, ref = judge_and_input
    seg.configure(channels_last=True)
    out = seg.logits(rgb)
    assert out.dtype == torch.float32 and out.shape == (2, 10, 32, 32)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert seg.config["inference"] == {"precision": "fp32", "channels_last": True,
                                       "compile": False}


def test_bf16_logits_close_to_fp32_and_recorded(judge_and_input):
    seg, rgb, ref = judge_and_input
    seg.configure(precision="bf16")
    out = seg.logits(rgb)
    assert out.dtype == torch.float32  # autocast inside, fp32 logits out
    err = (out - ref).abs().max() / ref.abs().max()
    assert 0 < err < 0.05  # bf16 really ran (not identical), and stays close
    assert seg.config["inference"]["precision"] == "bf16"
    seg.configure()  # back to fp32
    torch.testing.assert_close(seg.logits(rgb), ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        seg.configure(precision="fp16")


def test_precision_is_part_of_the_score_cache_key(judge_and_input):
    from psc_eval.colorizer import GrayColorizer
    from psc_eval.data import get_dataset

    seg, _, _ = judge_and_input
    ds = get_dataset("toy", n_images=2)
    seg.configure()
    _, k32, _ = row_keys(GrayColorizer(), "gray", seg, ds, 0, 1, 2, "cpu")
    seg.configure(precision="bf16")
    _, kbf, _ = row_keys(GrayColorizer(), "gray", seg, ds, 0, 1, 2, "cpu")
    seg.configure()
    assert k32 != kbf


def test_cli_refuses_speed_options_for_a_judge_without_configure(monkeypatch, tmp_path, capsys):
    from psc_eval.cli import main

    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    with pytest.raises(SystemExit) as e:
        main(["miou", "--colorizer", "gray", "--segmenter", "runner_standins:ChromaJudge",
              "--size", "32", "--limit", "2", "--precision", "bf16", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "has no configure()" in err[0]


def test_nan_or_misshapen_judge_weights_are_refused_where_they_enter(tmp_path):
    from psc_eval.errors import WeightsError
    from psc_eval.judge import load_segmenter

    seg = load_segmenter("deeplabv3plus-resnet18", None, num_classes=10)
    sd = {k: v.clone() for k, v in seg.module.state_dict().items()}
    k = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    bad = dict(sd)
    bad[k] = bad[k].clone()
    bad[k].view(-1)[0] = float("nan")
    torch.save(bad, tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match=r"hold NaN or infinite values \(1 tensors, first "):
        load_segmenter("deeplabv3plus-resnet18", tmp_path / "nan.pt", num_classes=10)
    bad = dict(sd)
    bad[k] = bad[k].to(torch.int64)
    torch.save(bad, tmp_path / "int.pt")
    with pytest.raises(WeightsError, match="1 dtype mismatches"):
        load_segmenter("deeplabv3plus-resnet18", tmp_path / "int.pt", num_classes=10)


def test_nan_logits_stop_the_run_with_one_line(tmp_path):
    from psc_eval.errors import WeightsError

    seg = load_segmenter("deeplabv3plus-resnet18", None, num_classes=10)
    with torch.no_grad():
        next(p for p in seg.module.parameters() if p.ndim == 4).fill_(float("nan"))
    with pytest.raises(WeightsError, match="produced NaN or infinite logits, random weights"):
        seg.predict(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_one_bad_logit_below_the_maximum_still_stops_the_run(monkeypatch, bad):
    """predict checks the per-pixel maxima only: one NaN (or +inf) logit of one class at
    one pixel, not that pixel's largest otherwise, must still be caught."""
    from psc_eval.errors import WeightsError

    seg = load_segmenter("deeplabv3plus-resnet18", None, num_classes=10)
    logits = torch.zeros(2, 10, 4, 4)
    logits[:, 0] = 5.0  # class 0 is every pixel's maximum
    monkeypatch.setattr(seg, "logits", lambda rgb: logits)
    assert seg.predict(torch.rand(2, 3, 4, 4)).eq(0).all()
    logits[1, 7, 2, 3] = bad
    with pytest.raises(WeightsError, match="produced NaN or infinite logits"):
        seg.predict(torch.rand(2, 3, 4, 4))
