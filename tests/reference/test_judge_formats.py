"""Published checkpoint layouts load and run; the preprocessing matches the reference repos.

Checkpoints are built here from random weights in the key layout of
kazuto1011/deeplab-pytorch (``base.`` = its MSC wrapper) and of torchvision's
DeepLabV3_ResNet101 COCO_WITH_VOC_LABELS_V1 file; nothing is downloaded.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from psc_eval.errors import ConfigError, WeightsError
from psc_eval.judge import load_segmenter
from psc_eval.judge.segmenter import Segmenter, preprocess

# Key names as they appear in deeplabv2_resnet101_msc-vocaug-20000.pth (and the
# COCO-stuff files): the stem, the three bottleneck parts, the first-block projection
# shortcut, the dilated stages and the four summed ASPP convolutions.
KAZUTO_KEYS = {
    "base.layer1.conv1.conv.weight": (64, 3, 7, 7),
    "base.layer1.conv1.bn.running_var": (64,),
    "base.layer2.block1.reduce.conv.weight": (64, 64, 1, 1),
    "base.layer2.block1.shortcut.conv.weight": (256, 64, 1, 1),
    "base.layer2.block1.shortcut.bn.running_mean": (256,),
    "base.layer3.block1.reduce.conv.weight": (128, 256, 1, 1),
    "base.layer3.block4.increase.bn.weight": (512,),
    "base.layer4.block23.conv3x3.conv.weight": (256, 256, 3, 3),
    "base.layer5.block3.increase.bn.bias": (2048,),
    "base.aspp.c0.weight": (21, 2048, 3, 3),
    "base.aspp.c3.bias": (21,),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(seed: int, size: int = 40) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def v2_state(tmp_path_factory):
    """A kazuto1011-layout VOC checkpoint with random weights and non-trivial BN statistics."""
    seg = load_segmenter("deeplabv2-resnet101", num_classes=21)
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, v in seg.module.state_dict().items():
        if k.endswith("running_var"):
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean"):
            v = 0.1 * torch.randn(v.shape, generator=g)
        sd[k] = v.clone()
    path = tmp_path_factory.mktemp("v2") / "deeplabv2_resnet101_msc-vocaug-20000.pth"
    # the published files are plain state dicts; drop the BN step counters, as converted ones lack them
    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, path)
    return sd, path


def test_deeplabv2_key_layout_is_kazuto1011s(v2_state):
    sd, _ = v2_state
    for k, shape in KAZUTO_KEYS.items():
        assert k in sd, k
        assert tuple(sd[k].shape) == shape, k
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    # 1 stem + 33 bottlenecks x 3 + 4 shortcuts = 104 conv+BN units (5 tensors each) + 4 ASPP x 2
    assert len(keys) == 104 * 5 + 8
    assert all(k.startswith("base.") for k in keys)
    assert "base.layer2.block2.shortcut.conv.weight" not in sd  # identity shortcuts hold nothing
    assert sd["base.layer1.conv1.conv.weight"].shape[1] == 3


def test_deeplabv2_checkpoint_loads_and_runs(v2_state):
    sd, path = v2_state
    seg = load_segmenter("deeplabv2-resnet101", weights=path, num_classes=21)
    loaded = seg.module.state_dict()
    assert all(torch.equal(loaded[k], sd[k]) for k in sd if not k.endswith("num_batches_tracked"))
    assert seg.weights_sha256 is not None and len(seg.weights_sha256) == 64
    assert seg.config["preprocess"] == "caffe-bgr"
    x = _tiny(1, 25)  # any size: OS 8 logits upsampled to 25x25
    lg = seg.logits(x)
    assert lg.shape == (1, 21, 25, 25)
    # reference: BGR, 0-255, mean subtracted, the base net, bilinear upsampling
    bgr = x[:, [2, 1, 0]] * 255 - torch.tensor([104.008, 116.669, 122.675]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = F.interpolate(seg.module.base(bgr), size=(25, 25), mode="bilinear",
                            align_corners=False)
    torch.testing.assert_close(lg, ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(seg.predict(x), lg.argmax(1))

    # multi-scale: the full-size logits and those at 0.5x and 0.75x, max-fused (MSC)
    # the multiscale option only switches the MSC wrapper on (one build saved here)
    assert seg.module.multiscale is False
    ms = seg
    ms.module.multiscale = True
    x = _tiny(2, 24)
    with torch.no_grad():
        base = ms.module.base
        p = ms.preprocess(x)
        full = base(p)
        outs = [full] + [
            F.interpolate(base(F.interpolate(p, scale_factor=s, mode="bilinear",
                                             align_corners=False)),
                          size=full.shape[-2:], mode="bilinear", align_corners=False)
            for s in (0.5, 0.75)
        ]
        ref = F.interpolate(torch.stack(outs).amax(0), size=(24, 24), mode="bilinear",
                            align_corners=False)
    torch.testing.assert_close(ms.logits(x), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="multi-scale inference is only implemented"):
        load_segmenter("deeplabv3plus-resnet18", multiscale=True)


def test_deeplabv2_wrong_num_classes_is_one_line(v2_state, tmp_path):
    sd, _ = v2_state
    coco = dict(sd)
    for i in range(4):  # a COCO-stuff 182-class head
        coco[f"base.aspp.c{i}.weight"] = torch.zeros(182, 2048, 3, 3)
        coco[f"base.aspp.c{i}.bias"] = torch.zeros(182)
    path = tmp_path / "cocostuff164k.pth"
    torch.save(coco, path)
    with pytest.raises(WeightsError) as e:
        load_segmenter("deeplabv2-resnet101", weights=path, num_classes=21)
    msg = e.value.one_line()
    assert "\n" not in str(e.value)
    assert "0 missing keys" in msg and "8 shape mismatches" in msg
    assert "[182, 2048, 3, 3] vs [21, 2048, 3, 3]" in msg
    assert str(path) in msg and "kazuto1011/deeplab-pytorch" in msg
    # missing / unexpected keys are counted (a file without the MSC prefix)
    bare = {k.removeprefix("base."): v for k, v in sd.items()}
    torch.save(bare, path)
    with pytest.raises(WeightsError, match=r"528 missing keys; 528 unexpected keys"):
        load_segmenter("deeplabv2-resnet101", weights=path, num_classes=21)


def test_torchvision_format_loads_and_runs(tmp_path):
    from torchvision.models.segmentation import deeplabv3_resnet101

    torch.manual_seed(0)
    ref_model = deeplabv3_resnet101(weights=None, weights_backbone=None, num_classes=21,
                                    aux_loss=True).eval()
    sd = ref_model.state_dict()
    for k in ("backbone.conv1.weight", "backbone.layer4.2.conv3.weight",
              "classifier.0.convs.0.0.weight", "classifier.4.weight", "aux_classifier.4.weight"):
        assert k in sd  # the COCO_WITH_VOC_LABELS_V1 file's layout
    path = tmp_path / "deeplabv3_resnet101_coco-586e9e4e.pth"
    torch.save(sd, path)
    seg = load_segmenter("torchvision-deeplabv3-resnet101", weights=path, num_classes=21)
    x = _tiny(3, 24)
    norm = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = ref_model(norm)["out"]
    lg = seg.logits(x)
    assert lg.shape == (1, 21, 24, 24)
    torch.testing.assert_close(lg, ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(WeightsError, match="shape mismatches.*torchvision"):
        load_segmenter("torchvision-deeplabv3-resnet101", weights=path, num_classes=10)


class _Identity1x1(nn.Module):
    """Passes its input through: the segmenter's logits are then its preprocessed input."""

    def forward(self, x):
        return x


@pytest.mark.parametrize("mode, expected", [
    # RGB (1.0, 0.5, 0.0) -> BGR (0, 127.5, 255) minus (104.008, 116.669, 122.675)
    ("caffe-bgr", (-104.008, 10.831, 132.325)),
    # ImageNet: (x - mean) / std
    ("imagenet", ((1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225)),
])
def test_preprocessing_numerics(mode, expected):
    rgb = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    out = preprocess(rgb, mode)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(expected), rtol=0, atol=1e-4)
    # the Segmenter applies it before its network, and crops the smp padding away
    seg = Segmenter("probe", _Identity1x1(), 3, mode, 16, {}, None)
    torch.testing.assert_close(seg.logits(rgb), out, rtol=0, atol=0)


def test_sha256_mismatch(v2_state):
    _, path = v2_state
    with pytest.raises(WeightsError, match="sha256 .* differs from the expected"):
        load_segmenter("deeplabv2-resnet101", weights=path, num_classes=21,
                       expected_sha256="0" * 64)
