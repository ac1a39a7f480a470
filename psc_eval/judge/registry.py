"""The segmenter registry: plain data, no heavy imports (``psc-eval ls`` reads it).

Each entry names the builder, the preprocessing and where weights come from. The
builders themselves live in ``segmenter.py`` and import smp / torchvision lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WeightsError
from ..registry import Registry

IMAGENET = "imagenet"  # (rgb - mean) / std, ImageNet statistics, RGB order
CAFFE_BGR = "caffe-bgr"  # kazuto1011/deeplab-pytorch: BGR, 0-255, minus mean, no std

KAZUTO_URL = "https://github.com/kazuto1011/deeplab-pytorch"
TORCHVISION_FILE = "deeplabv3_resnet101_coco-586e9e4e.pth"


@dataclass(frozen=True)
class SegmenterSpec:
    name: str
    description: str
    builder: str  # "smp", "deeplabv2", "torchvision"
    preprocess: str
    # builder keyword arguments (smp: model class, encoder, atrous rates)
    kwargs: dict = field(default_factory=dict)
    # True: weights are published elsewhere and must be given; False: train-judge makes them
    published: bool = False


# name -> SegmenterSpec (plain data; the builders import smp / torchvision lazily).
SEGMENTERS = Registry("segmenter", allow_paths=False, option="--segmenter (train-judge: --arch)")
for _spec in (
    SegmenterSpec(
        "deeplabv2-resnet101",
        "DeepLab v2 ResNet-101, ASPP 6/12/18/24, OS 8; kazuto1011 checkpoints (paper's judge)",
        "deeplabv2", CAFFE_BGR, published=True,
    ),
    SegmenterSpec(
        "torchvision-deeplabv3-resnet101",
        "torchvision DeepLabV3 ResNet-101, COCO_WITH_VOC_LABELS_V1 weights file (21 classes)",
        "torchvision", IMAGENET, published=True,
    ),
    SegmenterSpec(
        "deeplabv3-resnet101",
        "smp DeepLabV3, ResNet-101 encoder, OS 8 (train with psc-eval train-judge)",
        "smp", IMAGENET, {"cls": "DeepLabV3", "encoder": "resnet101"},
    ),
    SegmenterSpec(
        "deeplabv3plus-resnet101",
        "smp DeepLabV3+, ResNet-101 encoder, OS 16 (train with psc-eval train-judge)",
        "smp", IMAGENET, {"cls": "DeepLabV3Plus", "encoder": "resnet101"},
    ),
    SegmenterSpec(
        "deeplabv3plus-resnet18",
        "smp DeepLabV3+, ResNet-18 encoder, ASPP rates 1/2/3 for small inputs (toy default)",
        "smp", IMAGENET,
        {"cls": "DeepLabV3Plus", "encoder": "resnet18", "decoder_atrous_rates": (1, 2, 3)},
    ),
    SegmenterSpec(
        "deeplabv3plus-mobilenetv2",
        "smp DeepLabV3+, MobileNetV2 encoder, 128 decoder channels, ASPP rates 1/2/3: the "
        "small toy judge (6 MB shipped)",
        "smp", IMAGENET,
        {"cls": "DeepLabV3Plus", "encoder": "mobilenet_v2", "decoder_channels": 128,
         "decoder_atrous_rates": (1, 2, 3)},
    ),
    SegmenterSpec(
        "deeplabv3-resnet18",
        "smp DeepLabV3, ResNet-18 encoder, OS 8, ASPP rates 2/4/6 for small inputs",
        "smp", IMAGENET,
        {"cls": "DeepLabV3", "encoder": "resnet18", "decoder_atrous_rates": (2, 4, 6)},
    ),
):
    SEGMENTERS.add(_spec.name, _spec, _spec.description)

# The judge each dataset is scored with unless --segmenter says otherwise.
_DEFAULTS = {"toy": "deeplabv3plus-mobilenetv2", "voc": "deeplabv2-resnet101",
             "cocostuff": "deeplabv2-resnet101"}
DATASET_NUM_CLASSES = {"toy": 10, "voc": 21, "cocostuff": 182}


def list_segmenters() -> dict[str, str]:
    return SEGMENTERS.list()


def get_spec(name: str) -> SegmenterSpec:
    return SEGMENTERS.get(name)


def default_segmenter(dataset: str) -> str:
    """Name of the default judge of a dataset (toy: the small CPU judge; voc / cocostuff:
    DeepLab v2 ResNet-101, the paper's judge; num_classes comes from the dataset)."""
    return _DEFAULTS.get(dataset, "deeplabv2-resnet101")


def weights_hint(name: str, dataset: str | None = None, num_classes: int | None = None) -> str:
    """Where to get the weights of a segmenter: the 'what to do' part of a WeightsError."""
    spec = get_spec(name)
    if spec.builder == "deeplabv2":
        which = {182: "the COCO-stuff 182-class checkpoint (cocostuff164k or cocostuff10k)",
                 21: "deeplabv2_resnet101_msc-vocaug-20000.pth (VOC, 21 classes)"}.get(
            num_classes or 0, "deeplabv2_resnet101_msc-vocaug-20000.pth (VOC, 21 classes) "
            "or a COCO-stuff 182-class checkpoint")
        return f"download {which} from the project page of kazuto1011/deeplab-pytorch " \
               f"({KAZUTO_URL}) and pass --weights FILE"
    if spec.builder == "torchvision":
        return (f"save torchvision's DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1 "
                f"state dict ({TORCHVISION_FILE}, from the torchvision model zoo) and pass "
                "--weights FILE")
    return f"train it: psc-eval train-judge --dataset {dataset or 'DATASET'} --arch {name}"


def resolve_judge_weights(dataset: str, name: str, weights: str | Path | None) -> Path:
    """The weights file to load: ``weights`` if given, else the trained judge under $PSC_HOME,
    else the one shipped in the repository (``psc_eval.shipped``).

    A missing file is a one-line WeightsError that names the expected path and
    how to get it (the exact train-judge command for judges trained here).
    """
    from ..paths import judge_weights_path
    from ..shipped import trained_or_shipped

    get_spec(name)
    path = Path(weights) if weights is not None else trained_or_shipped(
        judge_weights_path(dataset, name), dataset, "judge", name)
    if not path.is_file():
        what = "weights file not found" if weights is not None else \
            f"no trained {name} judge for {dataset}"
        raise WeightsError(
            f"{what}, {path}, {weights_hint(name, dataset, DATASET_NUM_CLASSES.get(dataset))}"
        )
    return path
