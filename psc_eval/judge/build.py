"""Building the judge of an evaluation from a name: a registry segmenter or a user's class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PscError, UnknownNameError


def build_segmenter(
    name: str,
    weights: str | Path | None,
    num_classes: int,
    device: str,
    dataset: str,
    inference: dict[str, Any] | None = None,
) -> Any:
    """A judge by registry name (``psc_eval.judge``) or ``module:attr`` (a user's class).

    A ``module:attr`` class is called as ``cls(weights=..., num_classes=..., device=...)``
    and must provide ``predict(rgb) -> (B,H,W)`` with rgb (B,3,H,W) in [0, 1].
    Registry judges without ``weights`` use the trained file under $PSC_HOME/judges
    (``psc-eval train-judge``); none there is an error naming the command to run.
    ``inference``: speed options (precision, channels_last, compile) passed to the judge's
    ``configure()``; None leaves the judge as built.
    """
    if ":" in name:
        from ..registry import import_attr

        cls = import_attr(name, "segmenter")
        seg = cls(weights=weights, num_classes=num_classes, device=device)
    else:
        from . import load_segmenter, resolve_judge_weights

        # A missing trained judge is a one-line error naming the train-judge command:
        # a randomly initialised judge must never score silently.
        weights = resolve_judge_weights(dataset, name, weights)
        seg = load_segmenter(name, weights=weights, num_classes=num_classes, device=device,
                             dataset=dataset)
    if not hasattr(seg, "predict"):
        raise UnknownNameError(
            f"segmenter {name!r} has no predict() method, in --segmenter, "
            "pass a class with predict(rgb) -> (B,H,W) labels"
        )
    if not getattr(seg, "name", None):
        seg.name = name
    if inference:
        if not hasattr(seg, "configure"):
            raise PscError(
                f"segmenter {name!r} has no configure() for --precision/--channels-last/"
                "--compile, in --segmenter, drop those options"
            )
        seg.configure(**inference)
    return seg


def default_segmenter_name(dataset: str) -> str:
    """The judge a dataset is scored with unless ``--segmenter`` says otherwise."""
    from . import default_segmenter

    return default_segmenter(dataset)
