"""Judges: segmenters that score colorized images, and their trainer.

Imports are lazy so that ``psc-eval ls`` (``list_segmenters``) loads neither
segmentation_models_pytorch nor torchvision's models.
"""

from __future__ import annotations

from typing import Any

from .registry import default_segmenter, list_segmenters, resolve_judge_weights

_LAZY = {
    "build_segmenter": "psc_eval.judge.build",
    "default_segmenter_name": "psc_eval.judge.build",
    "load_segmenter": "psc_eval.judge.segmenter",
    "Segmenter": "psc_eval.judge.segmenter",
    "train_judge": "psc_eval.judge.train",
    "JudgeTrainConfig": "psc_eval.judge.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'psc_eval.judge' has no attribute {name!r}")


__all__ = [
    "JudgeTrainConfig",
    "Segmenter",
    "build_segmenter",
    "default_segmenter",
    "default_segmenter_name",
    "list_segmenters",
    "load_segmenter",
    "resolve_judge_weights",
    "train_judge",
]
