"""The Fig. 9 experiment on a tiny config: three curves in shared units, resumable,
drawn by psc-eval report."""

from __future__ import annotations

import json

import pytest
import torch
from fixtures_data import tiny_toml

from psc_eval.experiments.segcurves import SegNet, seg_curves
from psc_eval.training import train


@pytest.mark.slow
def test_seg_curves_scratch_pretrained_joint(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(tiny_toml(epochs=2, batch_size=4, n_train=8, n_val=4))
    from psc_eval.paths import colorizer_dir

    for v in ("ours", "psc-purple"):  # where Fig. 9 reads them (a TOML path is keyed)
        train(v, "toy", str(cfg), progress=False, device="cpu",
              out_dir=colorizer_dir("toy", v))
    path = seg_curves("toy", str(cfg), out=tmp_path / "reports", device="cpu", progress=False)
    res = json.loads(path.read_text())
    c = res["curves"]
    assert [len(c[k]) for k in ("scratch", "pretrained", "joint")] == [2, 2, 2]
    assert all(v > 0 for k in c for v in c[k])
    assert c["scratch"] != c["pretrained"]  # same seed and data: only the trunk differs
    lines = path.with_suffix(".csv").read_text().splitlines()
    assert lines[0] == "epoch,scratch,pretrained,joint" and len(lines) == 3
    assert [float(x) for x in lines[2].split(",")[1:]] == [c[k][1] for k in
                                                            ("scratch", "pretrained", "joint")]
    # a rerun resumes the finished runs: same curves, nothing retrained
    again = json.loads(seg_curves("toy", str(cfg), out=tmp_path / "reports", device="cpu",
                                  progress=False).read_text())
    assert again["curves"] == c
    # a fresh clone's demo: no runs under $PSC_HOME, but the repository's result has these
    # inputs' identity: it is copied, nothing is trained
    import shutil

    from psc_eval.experiments import committed

    runs = sorted(p for p in colorizer_dir("toy", "x").parent.iterdir() if "fig9" in p.name)
    assert len(runs) == 2
    for p in runs:
        shutil.rmtree(p)
    monkeypatch.setattr(committed, "repo_result", lambda dataset, name: path.parent / name)
    demo = seg_curves("toy", str(cfg), out=tmp_path / "demo", device="cpu", progress=False)
    assert demo != path and json.loads(demo.read_text()) == again
    assert demo.with_suffix(".csv").read_text() == path.with_suffix(".csv").read_text()
    assert not any("fig9" in p.name for p in colorizer_dir("toy", "x").parent.iterdir())
    # another psc-purple checkpoint: the pretrained run is trained again from its trunk
    # (the finished run of the old trunk is not reused), the scratch run is not
    from psc_eval.checkpoint import load_checkpoint, save_checkpoint
    from psc_eval.io import sha256_file
    from psc_eval.paths import colorizer_dir

    pre = colorizer_dir("toy", "psc-purple") / "last.pt"
    ck = load_checkpoint(pre)
    ck["ema"] = {k: v + 0.05 if k.startswith("trunk.") and v.is_floating_point() else v
                 for k, v in ck["ema"].items()}
    save_checkpoint(pre, {k: v for k, v in ck.items() if k != "digest"})
    new = json.loads(seg_curves("toy", str(cfg), out=tmp_path / "reports", device="cpu",
                                progress=False).read_text())
    assert new["curves"]["scratch"] == c["scratch"]
    assert new["curves"]["pretrained"] != c["pretrained"]
    assert new["sources"]["pretrained_trunk"]["sha256"] == sha256_file(pre)


def test_segnet_is_the_branch_h_of_the_network():
    from psc_eval.models.method import build_net, resolve_train_config

    cfg = resolve_train_config("ours", "toy")
    net = build_net("ours", cfg, 10)
    seg = SegNet(net)
    L = torch.rand(2, 1, 64, 64) * 100
    _, logits = net.embed(L)
    torch.testing.assert_close(seg(L), logits, rtol=0, atol=0)
