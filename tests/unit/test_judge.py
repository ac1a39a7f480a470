"""Segmenter registry, shapes, weight errors and the train-judge loop (checkpoint + resume)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from psc_eval.checkpoint import load_checkpoint
from psc_eval.errors import UnknownNameError, WeightsError
from psc_eval.judge import (
    default_segmenter,
    list_segmenters,
    load_segmenter,
    resolve_judge_weights,
    train_judge,
)

SMALL = "deeplabv3plus-resnet18"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_list_segmenters_imports_no_model_code():
    code = (
        "import sys, psc_eval.judge as j; names = j.list_segmenters(); "
        "heavy = [m for m in ('segmentation_models_pytorch', 'torchvision.models') "
        "if m in sys.modules]; print(len(names), heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7 []"


def test_registry_names_and_defaults():
    names = set(list_segmenters())
    assert {"deeplabv2-resnet101", "torchvision-deeplabv3-resnet101", "deeplabv3-resnet101",
            "deeplabv3plus-resnet101", SMALL} <= names
    assert default_segmenter("toy") == "deeplabv3plus-mobilenetv2"  # the shipped toy judge
    assert default_segmenter("voc") == default_segmenter("cocostuff") == "deeplabv2-resnet101"
    with pytest.raises(UnknownNameError, match="unknown segmenter 'nope'"):
        load_segmenter("nope")


# deeplabv2-resnet101 and torchvision-deeplabv3-resnet101 are built, loaded and run
# against their reference forward in tests/reference/test_judge_formats.py.
@pytest.mark.parametrize("name", sorted(
    n for n in list_segmenters()
    if n not in ("deeplabv2-resnet101", "torchvision-deeplabv3-resnet101")
))
def test_every_segmenter_builds_and_predicts(name):
    torch.manual_seed(0)
    seg = load_segmenter(name, num_classes=5)
    # 24 px is not a multiple of 16: DeepLabV3+ inputs are padded and the logits cropped back
    x = torch.rand(1, 3, 24, 24)
    lg = seg.logits(x)
    assert lg.shape == (1, 5, 24, 24) and lg.dtype == torch.float32
    assert torch.isfinite(lg).all()
    pred = seg.predict(x)
    assert pred.dtype == torch.int64 and pred.shape == (1, 24, 24)
    assert torch.equal(pred, lg.argmax(1))
    assert seg.name == name and seg.num_classes == 5 and seg.weights_sha256 is None
    assert seg.config["num_classes"] == 5 and seg.config["weights"] is None
    assert seg.module is not None and seg.to("cpu") is seg


def test_missing_weights_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    monkeypatch.setenv("PSC_SHIPPED", "0")  # nothing trained and nothing shipped
    with pytest.raises(WeightsError) as e:
        resolve_judge_weights("toy", SMALL, None)
    msg = e.value.one_line()
    assert f"psc-eval train-judge --dataset toy --arch {SMALL}" in msg
    assert str(tmp_path / "judges" / "toy" / f"{SMALL}.pt") in msg
    with pytest.raises(WeightsError, match="kazuto1011/deeplab-pytorch"):
        resolve_judge_weights("voc", "deeplabv2-resnet101", None)
    with pytest.raises(WeightsError, match="weights file not found.*COCO_WITH_VOC_LABELS_V1"):
        load_segmenter("torchvision-deeplabv3-resnet101", weights=tmp_path / "none.pth")
    p = tmp_path / "judges" / "toy" / f"{SMALL}.pt"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"x")
    assert resolve_judge_weights("toy", SMALL, None) == p


def test_wrong_num_classes_and_hash_and_arch(tmp_path):
    torch.manual_seed(0)
    seg = load_segmenter(SMALL, num_classes=10)
    path = tmp_path / "j.pt"
    torch.save({"kind": "judge", "arch": SMALL, "model": seg.module.state_dict()}, path)
    with pytest.raises(WeightsError) as e:
        load_segmenter(SMALL, weights=path, num_classes=7, dataset="toy")
    msg = str(e.value)
    assert "\n" not in msg and "shape mismatches" in msg and "[10, 256, 1, 1] vs [7, 256, 1, 1]" \
        in msg and f"psc-eval train-judge --dataset toy --arch {SMALL}" in msg
    ok = load_segmenter(SMALL, weights=path, num_classes=10)
    from psc_eval.io import sha256_file

    assert ok.weights_sha256 == sha256_file(path)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(ok.logits(x), seg.logits(x), rtol=0, atol=0)
    with pytest.raises(WeightsError, match="sha256"):
        load_segmenter(SMALL, weights=path, num_classes=10, expected_sha256="ab" * 32)
    assert load_segmenter(SMALL, weights=path, num_classes=10,
                          expected_sha256=ok.weights_sha256).weights_sha256 == ok.weights_sha256
    with pytest.raises(WeightsError, match="is of segmenter 'deeplabv3plus-resnet18'"):
        load_segmenter("deeplabv3-resnet18", weights=path, num_classes=10)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_segmenter(SMALL, weights=path, num_classes=10)


def _tiny_train(out, **kw):
    return train_judge("toy", SMALL, size=32, n_images=4, val_n_images=2, epochs=2,
                       batch_size=2, lr=1e-3, out=str(out), seed=3, **kw)


def test_train_judge_resumes_to_the_same_state(tmp_path):
    a = _tiny_train(tmp_path / "a.pt")
    assert a["complete"] and a["epochs_done"] == 2
    for k in ("val_miou_color", "val_miou_gray"):
        assert 0.0 <= a[k] <= 1.0
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["val_miou_color"] == a["val_miou_color"] and summary["epochs"] == 2
    assert summary["wall_s"] > 0

    part = _tiny_train(tmp_path / "b.pt", stop_after_epochs=1)
    assert not part["complete"] and part["epochs_done"] == 1
    assert not (tmp_path / "b.pt").exists()
    ck = load_checkpoint(tmp_path / "b.train" / "last.pt")
    assert ck["kind"] == "judge" and ck["epoch"] == 1 and ck["step"] == 2
    assert {"model", "optimizers", "schedulers", "rng", "config", "dataset"} <= set(ck)
    assert ck["dataset"]["name"] == "toy" and ck["config"]["arch"] == SMALL
    b = _tiny_train(tmp_path / "b.pt")  # resumes at epoch 2
    assert b["history"][0] == part["history"][0]

    wa = load_checkpoint(tmp_path / "a.pt")["model"]
    wb = load_checkpoint(tmp_path / "b.pt")["model"]
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert b["val_miou_color"] == a["val_miou_color"]
    assert b["val_miou_gray"] == a["val_miou_gray"]
    # the trained file loads as a judge
    seg = load_segmenter(SMALL, weights=tmp_path / "a.pt", num_classes=10)
    assert seg.predict(torch.rand(2, 3, 32, 32)).shape == (2, 32, 32)


def test_train_judge_refuses_to_resume_other_options(tmp_path):
    from psc_eval.errors import ConfigError

    _tiny_train(tmp_path / "c.pt", stop_after_epochs=1)
    with pytest.raises(ConfigError, match=r"changed config \(lr\)"):
        train_judge("toy", SMALL, size=32, n_images=4, val_n_images=2, epochs=2,
                    batch_size=2, lr=5e-4, out=str(tmp_path / "c.pt"), seed=3)


def test_cli_train_judge_unknown_arch_is_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "psc_eval.cli", "train-judge", "--arch", "nope"],
        check=False, capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("psc-eval: error: unknown segmenter 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1
